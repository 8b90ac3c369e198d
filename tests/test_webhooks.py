"""Webhooks to the shop over real HTTP: the outbox, signing, retries, resend, two workers."""

from __future__ import annotations

import base64
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from standardwebhooks import Webhook, WebhookVerificationError
from werkzeug.wrappers import Request, Response

from checkout.domain.ledger import flag_for_review, resolve_review
from checkout.domain.states import EventSource
from checkout.extensions import settings_of
from checkout.services.checkouts import cancel_unpaid
from checkout.services.webhooks import RETRY_SCHEDULE, deliver_due
from checkout.store.db import db as app_db
from checkout.store.db import make_engine
from checkout.store.ledger import load_state, write_plan
from checkout.store.models import Checkout, WebhookDelivery, WebhookEvent, utcnow
from tests.conftest import LiveApp
from tests.support.live import LiveServer, serve
from tests.support.shopper import FLOWS, Shopper, create_checkout
from tests.test_flows import cashier_url, settle, start

OPERATOR = EventSource.OPERATOR

SECRET = "whsec_" + base64.b64encode(b"test-webhook-secret-0123456789ab").decode()


@dataclass
class Hit:
    webhook_id: str
    headers: dict[str, str]
    payload: Any  # the verified JSON, None if the signature did not verify
    verified: bool


@dataclass
class Receiver:
    """A shop's webhook endpoint: verifies every request as a shop would."""

    secret: str
    url: str = ""
    hits: list[Hit] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # status codes in order; then 200
    delays: list[float] = field(default_factory=list)  # seconds before answering, in order
    delay: float = 0.0  # after `delays` is used up
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        headers = dict(request.headers.items())
        try:
            payload = Webhook(self.secret).verify(body, headers)
            verified = True
        except WebhookVerificationError:
            payload, verified = None, False
        with self.lock:
            self.hits.append(Hit(headers.get("Webhook-Id", ""), headers, payload, verified))
            status = self.answers.pop(0) if self.answers else 200
            delay = self.delays.pop(0) if self.delays else self.delay
        time.sleep(delay)
        if not verified:
            status = 400
        return Response("thanks" if status < 300 else "nope", status=status)(
            environ, start_response
        )

    def ids(self) -> list[str]:
        return [h.webhook_id for h in self.hits]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    hook = Receiver(SECRET)
    server: LiveServer = serve(hook)
    hook.url = f"{server.url}/hooks"
    try:
        yield hook
    finally:
        server.shutdown()


def _hook_to_receiver(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"webhook_url": request.getfixturevalue("receiver").url, "webhook_secret": SECRET}


hooked = pytest.mark.store_config(shop=_hook_to_receiver)


def deliver(live_app: LiveApp, **kwargs: Any) -> int:
    factory = app_db.bound(live_app.app).session_factory
    return deliver_due(factory, settings_of(live_app.app).stores, **kwargs)


def events(live_app: LiveApp) -> list[WebhookEvent]:
    with live_app.session() as session:
        return list(session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)))


def deliveries(live_app: LiveApp, event_id: int) -> list[WebhookDelivery]:
    with live_app.session() as session:
        return list(
            session.scalars(
                select(WebhookDelivery)
                .where(WebhookDelivery.event_id == event_id)
                .order_by(WebhookDelivery.id)
            )
        )


def one_pending_event(live_app: LiveApp) -> WebhookEvent:
    """A shopper starts a payment: the checkout's OPEN -> PENDING queues checkout.pending."""
    flow = FLOWS[0]
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    resp = Shopper(checkout["url"]).submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    [event] = events(live_app)
    assert event.type == "checkout.pending" and event.status == "pending"
    return event


@hooked
def test_paid_payment_sends_pending_then_paid_signed(live_app: LiveApp, receiver: Receiver) -> None:
    flow = FLOWS[0]
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")

    result = live_app.app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output

    assert [h.verified for h in receiver.hits] == [True, True]
    payloads = [h.payload for h in receiver.hits]
    assert [p["type"] for p in payloads] == ["checkout.pending", "checkout.paid"]
    assert [p["seq"] for p in payloads] == [1, 2]
    paid = payloads[1]["data"]
    assert paid["id"] == checkout["id"] and paid["status"] == "paid"
    assert paid["amount_paid"] == flow.amount and paid["currency"] == flow.currency
    hit = receiver.hits[0]
    assert hit.headers["Content-Type"] == "application/json"
    assert hit.headers["Webhook-Signature"].startswith("v1,")
    assert abs(int(hit.headers["Webhook-Timestamp"]) - time.time()) < 60

    rows = events(live_app)
    assert [e.status for e in rows] == ["delivered", "delivered"]
    assert [e.public_id for e in rows] == receiver.ids()
    assert all(e.delivered_at is not None and e.locked_until is None for e in rows)
    assert [d.status_code for d in deliveries(live_app, rows[0].id)] == [200]
    # Nothing is left to send.
    assert deliver(live_app) == 0 and len(receiver.hits) == 2


@hooked
def test_a_500_is_retried_on_schedule_and_every_try_recorded(
    live_app: LiveApp, receiver: Receiver
) -> None:
    event = one_pending_event(live_app)
    receiver.answers = [500]
    t0 = utcnow()
    assert deliver(live_app, now=t0) == 1
    [after_500] = events(live_app)
    assert after_500.status == "pending" and after_500.attempts == 1
    assert after_500.locked_until is None
    wait = after_500.next_attempt_at - t0
    assert RETRY_SCHEDULE[0] <= wait < RETRY_SCHEDULE[0] + timedelta(seconds=5)

    assert deliver(live_app, now=t0 + timedelta(seconds=5)) == 0  # not due yet
    assert deliver(live_app, now=t0 + timedelta(seconds=11)) == 1

    [done] = events(live_app)
    assert done.status == "delivered" and done.attempts == 2
    tries = deliveries(live_app, event.id)
    assert [d.status_code for d in tries] == [500, 200]
    assert tries[0].response_body == "nope" and tries[1].response_body == "thanks"
    assert all(d.duration_ms is not None and d.error is None for d in tries)
    assert receiver.ids() == [event.public_id, event.public_id]  # the same webhook-id
    assert all(h.verified for h in receiver.hits)


@hooked
def test_a_receiver_that_times_out_is_retried(live_app: LiveApp, receiver: Receiver) -> None:
    event = one_pending_event(live_app)
    receiver.delays = [6.0]
    t0 = utcnow()
    started = time.monotonic()
    assert deliver(live_app, now=t0, timeout=(1, 0.5)) == 1
    # We gave up at the read timeout (0.5 s), long before the receiver answered (6 s): a
    # bound far from both, so a busy machine cannot fail it.
    assert time.monotonic() - started < 4.0
    [first] = deliveries(live_app, event.id)
    assert first.status_code is None and first.error and "timeout" in first.error
    assert events(live_app)[0].status == "pending"

    assert deliver(live_app, now=t0 + timedelta(seconds=11), timeout=(1, 0.5)) == 1
    assert events(live_app)[0].status == "delivered"
    assert [d.status_code for d in deliveries(live_app, event.id)] == [None, 200]


@hooked
def test_an_event_fails_after_the_whole_schedule(live_app: LiveApp, receiver: Receiver) -> None:
    event = one_pending_event(live_app)
    receiver.answers = [503] * 20
    now = utcnow()
    for _ in range(len(RETRY_SCHEDULE) + 1):
        assert deliver(live_app, now=now) == 1
        now += timedelta(hours=25)
    [failed] = events(live_app)
    assert failed.status == "failed" and failed.attempts == len(RETRY_SCHEDULE) + 1
    assert deliver(live_app, now=now) == 0
    assert len(deliveries(live_app, event.id)) == len(RETRY_SCHEDULE) + 1
    assert sum(RETRY_SCHEDULE, timedelta()) >= timedelta(days=1)


@hooked
def test_resend_command_delivers_again(live_app: LiveApp, receiver: Receiver) -> None:
    event = one_pending_event(live_app)
    assert deliver(live_app) == 1
    runner = live_app.app.test_cli_runner()
    result = runner.invoke(args=["webhooks-resend", event.public_id])
    assert result.exit_code == 0, result.output
    assert events(live_app)[0].status == "pending"
    assert deliver(live_app) == 1
    assert receiver.ids() == [event.public_id, event.public_id]
    assert events(live_app)[0].status == "delivered"
    assert [d.status_code for d in deliveries(live_app, event.id)] == [200, 200]

    unknown = runner.invoke(args=["webhooks-resend", "evt_nope"])
    assert unknown.exit_code != 0 and "evt_nope" in unknown.output


@hooked
def test_two_workers_never_deliver_an_event_twice(live_app: LiveApp, receiver: Receiver) -> None:
    # 40 events on one checkout (OPEN <-> PENDING), seq 1..40.
    made = create_checkout(live_app.url)
    with live_app.session() as session:
        for n in range(20):  # 40 changes the shop hears of, through the one ledger
            for decide in (lambda s, n=n: flag_for_review(s, f"look {n}", "op"), resolve_review):
                state = load_state(session, made["id"])
                assert state is not None
                write_plan(session, state, decide(state), utcnow())
                session.commit()
    queued = events(live_app)
    assert [e.seq for e in queued] == list(range(1, 41))
    receiver.delay = 0.01  # let the workers overlap

    stores = settings_of(live_app.app).stores
    url = live_app.app.config["DATABASE_URL"]
    gate = threading.Barrier(2)
    errors: list[BaseException] = []

    def work() -> None:
        engine = make_engine(url)
        factory: sessionmaker[Session] = sessionmaker(engine, expire_on_commit=False)
        try:
            gate.wait(5)
            while deliver_due(factory, stores, now=utcnow(), batch=3):
                pass
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors, errors

    hits = Counter(receiver.ids())
    assert set(hits) == {e.public_id for e in queued}
    assert set(hits.values()) == {1}, [k for k, n in hits.items() if n > 1]
    assert all(h.verified for h in receiver.hits)
    assert {e.status for e in events(live_app)} == {"delivered"}
    with live_app.session() as session:
        assert len(session.scalars(select(WebhookDelivery)).all()) == 40


def test_one_event_per_real_change(live_app: LiveApp) -> None:
    made = create_checkout(live_app.url)
    with live_app.session() as session:
        _checkout, was = cancel_unpaid(session, made["id"], None, by="test")
        session.commit()
        assert was == "open"
        _checkout, was = cancel_unpaid(session, made["id"], None, by="test")  # no-op
        session.commit()
        assert was is None
    [event] = events(live_app)
    assert event.type == "checkout.cancelled" and event.seq == 1
    assert event.payload["data"]["status"] == "cancelled"


def test_a_store_without_webhook_url_gets_its_events_skipped(live_app: LiveApp) -> None:
    assert settings_of(live_app.app).stores["shop"].webhook_url is None
    event = one_pending_event(live_app)
    assert deliver(live_app) == 1
    [skipped] = events(live_app)
    assert skipped.status == "skipped" and skipped.locked_until is None
    assert deliveries(live_app, event.id) == []  # nothing was sent
    assert deliver(live_app) == 0


def test_expiry_queues_checkout_expired_once(live_app: LiveApp) -> None:
    from checkout.services.checkouts import expire_if_due

    made = create_checkout(live_app.url)
    with live_app.session() as session:
        checkout = session.get(Checkout, made["id"])
        assert checkout is not None
        later = checkout.expires_at + timedelta(seconds=1)
        assert expire_if_due(session, checkout, now=later)
        assert not expire_if_due(session, checkout, now=later)
    assert [(e.type, e.seq) for e in events(live_app)] == [("checkout.expired", 1)]
