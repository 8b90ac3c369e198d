"""Every webhook try is recorded before it is sent (issue 25 item 2), and every request this
app sends a shop, the ping included, has one total deadline (issue 22 item 8)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from checkout.config import StoreConfig
from checkout.extensions import settings_of
from checkout.services.events import send_ping
from checkout.services.webhooks import LEASE, OUTCOME_UNKNOWN, deliver_due
from checkout.store.db import db as app_db
from tests.conftest import LiveApp
from tests.test_webhook_deadline import DrippingShop
from tests.test_webhooks import (
    SECRET,
    Receiver,
    deliveries,
    events,
    hooked,
    one_pending_event,
    receiver,
)

__all__ = ["receiver"]


class WorkerKilledAfterSending:
    """The worker's sessions, until the one that would write a try's outcome: that one
    fails as if the worker died while the shop's answer was on the wire."""

    def __init__(self, factory: sessionmaker[Session], sessions_before_the_record: int) -> None:
        self.factory, self.left = factory, sessions_before_the_record

    def __call__(self) -> Session:
        if self.left == 0:
            raise SystemExit("worker killed")  # not an Exception: nothing catches it softly
        self.left -= 1
        return self.factory()


@hooked
def test_a_try_whose_worker_died_after_sending_stays_in_the_history(
    live_app: LiveApp, receiver: Receiver
) -> None:
    event = one_pending_event(live_app)
    factory = app_db.bound(live_app.app).session_factory
    stores = settings_of(live_app.app).stores
    # Claim and renew (the try recorded), then the POST, then the record dies.
    killed = WorkerKilledAfterSending(factory, sessions_before_the_record=2)
    with pytest.raises(SystemExit):
        from checkout.services.webhooks import _claim, _deliver_one

        [item] = _claim(killed, _now(), batch=1)
        _deliver_one(killed, stores, item, _now, (3.0, 10.0), 10.0)
    assert len(receiver.hits) == 1  # the shop received it
    [lost] = deliveries(live_app, event.id)
    assert lost.error == OUTCOME_UNKNOWN and lost.status_code is None
    [row] = events(live_app)
    assert row.status == "pending" and row.attempts == 1

    # Another worker takes the event once the lease has run out, and sends it again.
    assert deliver_due(factory, stores, now=_now() + LEASE + timedelta(seconds=1)) == 1
    assert len(receiver.hits) == 2 and receiver.ids() == [event.public_id] * 2
    tries = deliveries(live_app, event.id)
    assert [(t.status_code, t.error) for t in tries] == [(None, OUTCOME_UNKNOWN), (200, None)]
    [done] = events(live_app)
    assert done.status == "delivered" and done.attempts == 2

    # The shop API shows both tries too.
    from tests.test_events_api import api

    shown = api(live_app, "GET", f"/events/{event.public_id}").json()
    assert [t["status_code"] for t in shown["delivery_attempts"]] == [None, 200]
    assert shown["delivery"]["attempts"] == 2


@hooked
def test_an_outcome_is_written_after_a_database_blip(live_app: LiveApp, receiver: Receiver) -> None:
    """The database refuses the first write of the outcome (a restart): written on the
    next try a moment later, no resend needed."""
    from sqlalchemy.exc import OperationalError

    event = one_pending_event(live_app)
    factory = app_db.bound(live_app.app).session_factory
    calls = {"n": 0}

    def blipping() -> Session:
        calls["n"] += 1
        if calls["n"] == 3:  # claim, renew, then the first record
            raise OperationalError("connect", {}, _ConnectionRefused(), connection_invalidated=True)
        return factory()

    assert deliver_due(blipping, settings_of(live_app.app).stores, now=_now()) == 1
    [row] = events(live_app)
    assert row.status == "delivered" and row.attempts == 1
    assert [d.status_code for d in deliveries(live_app, event.id)] == [200]
    assert len(receiver.hits) == 1


class _ConnectionRefused(Exception):
    sqlstate = "08006"


def _now() -> Any:
    from checkout.store.models import utcnow

    return utcnow()


@pytest.fixture
def dripping_headers() -> Iterator[DrippingShop]:
    shop = DrippingShop("headers")
    try:
        yield shop
    finally:
        shop.close()


def _store(url: str) -> StoreConfig:
    return StoreConfig(
        id="shop",
        name="Shop",
        live_key_hashes=(),
        allowed_origins=(),
        webhook_url=url,
        webhook_secret=SECRET,
    )


def test_a_ping_to_a_shop_dripping_its_headers_ends_at_the_deadline(
    dripping_headers: DrippingShop,
) -> None:
    store = _store(dripping_headers.url)
    started = time.monotonic()
    result = send_ping(store, livemode=False, deadline=1.0)
    elapsed = time.monotonic() - started
    assert not result.ok and result.status_code is None
    assert result.error is not None and "deadline" in result.error
    # Cut at the deadline, not after the drip's every read (bounded, not a timing test).
    assert elapsed < 2.0 * 5


def _drip_hook(request: pytest.FixtureRequest) -> dict[str, str]:
    return {
        "webhook_url": request.getfixturevalue("dripping_headers").url,
        "webhook_secret": SECRET,
    }


@pytest.mark.app_config(webhook_deadline=1)
@pytest.mark.store_config(shop=_drip_hook)
def test_the_api_ping_keeps_the_configured_deadline(live_app: LiveApp) -> None:
    from tests.test_events_api import api

    ping = api(live_app, "POST", "/webhook_endpoint/ping").json()
    assert ping["delivered"] is False and ping["status_code"] is None
    assert ping["error"] == "timeout: deadline of 1 s passed"
