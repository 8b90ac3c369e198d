"""Webhook delivery against slow shops (issue 12 item 5): one total deadline per delivery,
deliveries to different stores at once (no store takes every thread), the real duration
recorded. A dripping shop endpoint on loopback beside a fast one."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from checkout.config import ConfigError, delivery_options_from_config
from checkout.domain.states import WebhookStatus
from checkout.extensions import settings_of
from checkout.services.webhooks import (
    DeliveryPool,
    deliver_due,
    run_worker,
)
from checkout.store.db import db as app_db
from checkout.store.models import WebhookDelivery, WebhookEvent
from tests.conftest import LiveApp
from tests.support.shopper import create_checkout
from tests.test_webhooks import SECRET, Receiver, receiver

__all__ = ["receiver"]  # the fast shop's webhook receiver fixture

DRIP_EVERY = 2.0  # seconds between two bytes, as the review's shop did


class DrippingShop:
    """A shop endpoint on loopback that reads the request and then answers a byte at a
    time (`mode`: "body" after prompt headers, "headers" from the status line on), or
    answers headers at once and the whole body after `body_delay` ("slow_body")."""

    def __init__(self, mode: str, body_delay: float = 1.5) -> None:
        self.mode, self.body_delay = mode, body_delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}/hooks"
        self.stop = threading.Event()
        self.requests = 0
        self.threads: list[threading.Thread] = []
        self._accepting = threading.Thread(target=self._accept, daemon=True)
        self._accepting.start()

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._answer, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _answer(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        with conn:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
            self.requests += 1
            if self.mode == "slow_body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\nConnection: close\r\n\r\n")
                time.sleep(self.body_delay)
                conn.sendall(b"thanks")
                return
            if self.mode == "body":
                conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\nConnection: close\r\n\r\n")
                drip = b"x" * 500
            else:
                drip = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"y" * 500 + b"\r\n\r\n"
            for byte in drip:  # bounded: 500 bytes, stops when we are cut off or stopped
                if self.stop.wait(DRIP_EVERY):
                    return
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    return

    def close(self) -> None:
        self.stop.set()
        self.listener.close()
        self._accepting.join(timeout=5)
        for thread in self.threads:
            thread.join(timeout=5)


def _shop_fixture(mode: str, **kwargs: Any) -> Any:
    @pytest.fixture
    def shop() -> Iterator[DrippingShop]:
        made = DrippingShop(mode, **kwargs)
        try:
            yield made
        finally:
            made.close()

    return shop


drip_body = _shop_fixture("body")
drip_headers = _shop_fixture("headers")
slow_body = _shop_fixture("slow_body", body_delay=1.5)


def _hook(fixture: str) -> Any:
    """store_config for the "other" store: its webhooks go to the shop fixture named."""

    def keys(request: pytest.FixtureRequest) -> dict[str, str]:
        return {"webhook_url": request.getfixturevalue(fixture).url, "webhook_secret": SECRET}

    return keys


def _fast_hook(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"webhook_url": request.getfixturevalue("receiver").url, "webhook_secret": SECRET}


def _queue_events(live_app: LiveApp, store_id: str, count: int) -> list[int]:
    """`count` due events for one store, on one checkout (the outbox routes by the event's
    store_id)."""
    checkout = create_checkout(live_app.url)
    ids = []
    with live_app.session() as session:
        for seq in range(1, count + 1):
            event = WebhookEvent(
                store_id=store_id,
                checkout_id=checkout["id"],
                type="checkout.pending",
                seq=seq,
                payload={"data": {"id": checkout["id"]}},
            )
            session.add(event)
            session.flush()
            ids.append(event.id)
        session.commit()
    return ids


def _tries(live_app: LiveApp, event_ids: list[int]) -> list[WebhookDelivery]:
    with live_app.session() as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.event_id.in_(event_ids))
                .order_by(WebhookDelivery.id)
            )
        )


def _status(live_app: LiveApp, event_id: int) -> str:
    with live_app.session() as session:
        event = session.get(WebhookEvent, event_id)
        assert event is not None
        return event.status


@pytest.mark.store_config(other=_hook("drip_body"))
def test_a_shop_dripping_its_body_is_cut_off_at_the_deadline(live_app: LiveApp) -> None:
    """It said 200 and then dripped: acknowledged, its body cut at the deadline."""
    attempt, event_id = _deliver_against_a_drip(live_app)
    assert attempt.status_code == 200
    assert (attempt.response_body or "").startswith("<body cut: deadline>")
    assert _status(live_app, event_id) == WebhookStatus.DELIVERED


@pytest.mark.store_config(other=_hook("drip_headers"))
def test_a_shop_dripping_its_headers_is_cut_off_at_the_deadline(live_app: LiveApp) -> None:
    """No status line came in time: a failed try, retried later."""
    attempt, event_id = _deliver_against_a_drip(live_app)
    assert attempt.status_code is None and "deadline" in (attempt.error or "")
    assert _status(live_app, event_id) == WebhookStatus.PENDING


def _deliver_against_a_drip(live_app: LiveApp) -> tuple[WebhookDelivery, int]:
    [event_id] = _queue_events(live_app, "other", 1)
    factory = app_db.bound(live_app.app).session_factory
    started = time.monotonic()
    assert deliver_due(factory, settings_of(live_app.app).stores, deadline=3.0) == 1
    elapsed = time.monotonic() - started
    assert 2.5 < elapsed < 6.0, elapsed  # the deadline, not 500 bytes x 2 s
    [attempt] = _tries(live_app, [event_id])
    assert 2900 <= (attempt.duration_ms or 0) < 6000, attempt.duration_ms
    return attempt, event_id


@pytest.mark.store_config(other=_hook("drip_headers"))
def test_the_default_deadline_is_ten_seconds(live_app: LiveApp) -> None:
    [event_id] = _queue_events(live_app, "other", 1)
    factory = app_db.bound(live_app.app).session_factory
    started = time.monotonic()
    deliver_due(factory, settings_of(live_app.app).stores)
    assert 9.5 < time.monotonic() - started < 14
    [attempt] = _tries(live_app, [event_id])
    assert attempt.status_code is None and 9900 <= (attempt.duration_ms or 0) < 14000


@pytest.mark.store_config(other=_hook("slow_body"))
def test_the_recorded_duration_includes_reading_the_body(live_app: LiveApp) -> None:
    [event_id] = _queue_events(live_app, "other", 1)
    factory = app_db.bound(live_app.app).session_factory
    assert deliver_due(factory, settings_of(live_app.app).stores) == 1
    [attempt] = _tries(live_app, [event_id])
    assert attempt.status_code == 200 and attempt.response_body == "thanks"
    assert (attempt.duration_ms or 0) >= 1400, attempt.duration_ms


@pytest.mark.store_config(other=_hook("drip_body"), shop=_fast_hook)
def test_a_dripping_shop_does_not_hold_back_another_shops_webhooks(
    live_app: LiveApp, drip_body: DrippingShop, receiver: Receiver
) -> None:
    """Three events for a dripping shop are due first, then one for a fast shop: the fast
    shop has its webhook within a couple of seconds (it waited about 50 s before)."""
    shop = drip_body
    slow_ids = _queue_events(live_app, "other", 3)
    [fast_id] = _queue_events(live_app, "shop", 1)
    factory = app_db.bound(live_app.app).session_factory
    stop = threading.Event()
    worker = threading.Thread(
        target=run_worker,
        args=(factory, settings_of(live_app.app).stores),
        kwargs={"stop": stop, "interval": 0.1},
        daemon=True,
    )
    started = time.monotonic()
    worker.start()
    try:
        while not receiver.hits and time.monotonic() - started < 30:
            time.sleep(0.05)
        fast_after = time.monotonic() - started
        assert receiver.hits, "the fast shop never got its webhook"
        assert fast_after < 3.0, f"the fast shop waited {fast_after:.1f} s"
        assert shop.requests == 1  # one thread for the slow store, still dripping
        deadline = time.monotonic() + 15
        while _status(live_app, fast_id) != WebhookStatus.DELIVERED:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        stop.set()
        worker.join(timeout=60)
    assert not worker.is_alive()
    assert len(_tries(live_app, slow_ids)) >= 1


def test_no_store_takes_every_thread_of_the_pool() -> None:
    pool = DeliveryPool(threads=3, per_store=2)
    release = threading.Event()
    running: list[str] = []
    guard = threading.Lock()

    def job(name: str) -> Any:
        def run() -> None:
            with guard:
                running.append(name)
            release.wait(10)

        return run

    try:
        for n in range(5):
            pool.submit("slow", job(f"slow{n}"))
        pool.submit("fast", job("fast"))
        deadline = time.monotonic() + 5
        while "fast" not in running and time.monotonic() < deadline:
            time.sleep(0.01)
        with guard:
            assert "fast" in running
            assert sum(name.startswith("slow") for name in running) == 2
        assert pool.busy_stores() == {"slow"}  # "fast" holds one lane of its two
    finally:
        release.set()
        pool.shutdown()
    assert sorted(running) == ["fast", "slow0", "slow1", "slow2", "slow3", "slow4"]


def test_delivery_options_are_configurable_and_checked() -> None:
    options = delivery_options_from_config(
        {"webhook_deadline": 4, "webhook_threads": 6, "webhook_threads_per_store": 2}
    )
    assert (options.deadline, options.threads, options.threads_per_store) == (4.0, 6, 2)
    assert delivery_options_from_config({}).deadline == 10.0
    for bad in (
        {"webhook_deadline": 0},
        {"webhook_deadline": "soon"},
        {"webhook_threads": 4, "webhook_threads_per_store": 4},  # one store, every thread
        {"webhook_threads": 1},
    ):
        with pytest.raises(ConfigError):
            delivery_options_from_config(bad)


def test_event_statuses_are_an_enum() -> None:
    assert [s.value for s in WebhookStatus] == ["pending", "delivered", "failed", "skipped"]
    from checkout.services import webhooks

    assert webhooks.PENDING is WebhookStatus.PENDING
