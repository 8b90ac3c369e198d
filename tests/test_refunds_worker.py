"""Sending refunds out (services/refunds.send_refunds) against the payout sandboxes over real
HTTP, with faults injected: one refund never pays out twice, an outcome is never guessed."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from checkout.domain.money import Money
from checkout.providers.registry import build_payout_provider
from checkout.services.refunds import send_refunds
from checkout.store.models import Refund, StateEvent, WebhookEvent, utcnow
from tests.conftest import LiveApp
from tests.support import creds
from tests.test_refunds_api import REFUND_KEY, body, paid_checkout, post_refund

pytestmark = [
    pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]}),
    # API refunds up to 100,000 won need no second operator here.
    pytest.mark.app_config(refunds={"approval_thresholds": {"KRW": 100_000}}),
]
MERCHANT = creds.TEEMOPAY_APP_CODE


def settings(live_app: LiveApp) -> Any:
    return live_app.app.extensions["settings"]


def run_round(live_app: LiveApp, **kwargs: Any):  # type: ignore[no-untyped-def]
    kwargs.setdefault("payouts_for", live_app.app.extensions["catalog"].payouts.__getitem__)
    return send_refunds(live_app.session, settings(live_app), **kwargs)


def refund_row(live_app: LiveApp, public_id: str) -> Refund:
    with live_app.session() as session:
        row = session.scalars(select(Refund).where(Refund.public_id == public_id)).one()
        session.expunge(row)
        return row


def wait_status(live_app: LiveApp, public_id: str, *statuses: str, timeout: float = 15) -> Refund:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        row = refund_row(live_app, public_id)
        if row.status in statuses:
            return row
        time.sleep(0.05)
    raise AssertionError(f"refund {public_id} is {row.status}, not {statuses}")


def new_refund(live_app: LiveApp, amount: int = 10_000, **more: Any) -> str:
    live_app.sandbox.state.config.payout_settle_after = 0.1
    checkout = paid_checkout(live_app)
    resp = post_refund(live_app, checkout["id"], body(amount, **more))
    assert resp.status_code == 201, resp.text
    return resp.json()["id"]


def sandbox_payouts(live_app: LiveApp, payout_no: str) -> list[Any]:
    return [p for p in live_app.sandbox.state.payouts.all() if p.payout_no == payout_no]


def shop_events(live_app: LiveApp) -> list[tuple[str, int]]:
    with live_app.session() as session:
        rows = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
        return [(e.type, e.seq) for e in rows]


def test_an_approved_refund_is_sent_and_told_to_the_shop(live_app: LiveApp) -> None:
    public_id = new_refund(live_app)
    report = run_round(live_app)
    assert report.claimed == 1 and report.sent_calls == 1, report
    row = wait_status(live_app, public_id, "sent")  # the payout notify
    assert row.payout_no and row.payout_no.startswith("PO") and row.completed_at
    assert len(sandbox_payouts(live_app, row.payout_no)) == 1
    events = shop_events(live_app)
    assert [t for t, _ in events][-2:] == ["refund.created", "refund.sent"]
    assert [s for _, s in events] == list(range(1, len(events) + 1))
    with live_app.session() as session:
        steps = session.scalars(
            select(StateEvent).where(StateEvent.kind == "refund").order_by(StateEvent.id)
        ).all()
        assert [(s.from_status, s.to_status) for s in steps] == [
            (None, "approved"),
            ("approved", "sending"),
            ("sending", "processing"),
            ("processing", "sent"),
        ]
    # Later rounds send nothing more.
    assert run_round(live_app).sent_calls == 0


def test_two_workers_at_once_send_one_payout(live_app: LiveApp) -> None:
    public_id = new_refund(live_app)
    reports: list[Any] = []
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        reports.append(run_round(live_app))

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sum(r.sent_calls for r in reports) == 1, reports
    row = wait_status(live_app, public_id, "sent")
    assert len(sandbox_payouts(live_app, row.payout_no)) == 1  # type: ignore[arg-type]


class Killed(BaseException):
    """The worker process dies (not an Exception: nothing catches it)."""


def test_a_worker_killed_after_the_payout_call_never_pays_twice(live_app: LiveApp) -> None:
    public_id = new_refund(live_app)
    real = build_payout_provider(settings(live_app).providers["teemopay_kr"])

    class DiesAfterCreate:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def create_payout(self, request: Any) -> Any:
            real.create_payout(request)
            raise Killed

    with pytest.raises(Killed):
        run_round(live_app, payouts_for=lambda _name: DiesAfterCreate())
    row = refund_row(live_app, public_id)
    assert row.status == "sending" and row.payout_no
    payout_no = row.payout_no
    live_app.sandbox.state.notifier.stop()  # its notify is lost too: only a query can tell
    # A restarted worker, before the call could have ended: leaves it alone.
    assert run_round(live_app).sent_calls == 0
    assert refund_row(live_app, public_id).status == "sending"
    # Past the longest a call can take: unknown, then queried under the same number.
    time.sleep(0.5)
    later = utcnow() + timedelta(minutes=5)
    report = run_round(live_app, now=later)
    assert report.sent_calls == 0 and report.queried == 1, report
    row = refund_row(live_app, public_id)
    assert row.payout_no == payout_no and row.status == "processing"
    [payout] = sandbox_payouts(live_app, payout_no)
    live_app.sandbox.state.payouts.finish(payout, "succeed")  # its notify is lost
    run_round(live_app, now=later + timedelta(hours=1))
    assert refund_row(live_app, public_id).status == "sent"
    assert len(sandbox_payouts(live_app, payout_no)) == 1
    assert len(live_app.sandbox.state.payouts.all()) == 1


@pytest.mark.provider_config(teemopay_kr={"read_timeout": 1.0})
def test_a_timeout_is_unknown_then_a_late_success_notify_settles_it(live_app: LiveApp) -> None:
    held = {"bank_code": "088", "account_number": "110123458888", "holder_name": "김민수"}
    public_id = new_refund(live_app, destination=held)  # the sandbox holds it in processing
    live_app.sandbox.state.inject_fault("teemopay", "read_timeout", endpoint="payout", delay=2.0)
    report = run_round(live_app)
    assert report.unknown == 1, report
    row = refund_row(live_app, public_id)
    assert row.status == "unknown"
    assert run_round(live_app).sent_calls == 0  # unknown is never sent again
    [payout] = sandbox_payouts(live_app, row.payout_no)  # type: ignore[arg-type]
    live_app.sandbox.state.payouts.finish(payout, "succeed")  # then its notify comes
    row = wait_status(live_app, public_id, "sent")
    assert len(sandbox_payouts(live_app, row.payout_no)) == 1  # type: ignore[arg-type]
    # Querying later never resends.
    run_round(live_app, now=utcnow() + timedelta(hours=2))
    assert len(live_app.sandbox.state.payouts.all()) == 1
    with live_app.session() as session:
        steps = session.scalars(
            select(StateEvent.to_status).where(StateEvent.kind == "refund")
        ).all()
        assert "unknown" in steps and steps[-1] == "sent"


@pytest.mark.parametrize("kind", ["http_500", "connection_reset", "malformed_json"])
def test_an_unclear_answer_is_unknown_and_queried_never_resent(
    live_app: LiveApp, kind: str
) -> None:
    public_id = new_refund(live_app)
    live_app.sandbox.state.inject_fault("teemopay", kind, endpoint="payout")
    assert run_round(live_app).unknown == 1
    payout_no = refund_row(live_app, public_id).payout_no
    report = run_round(live_app, now=utcnow() + timedelta(minutes=11))
    assert report.sent_calls == 0
    row = wait_status(live_app, public_id, "sent", "failed")
    assert row.payout_no == payout_no
    made = sandbox_payouts(live_app, payout_no)  # type: ignore[arg-type]
    if kind == "connection_reset":  # the provider acted: it is found and settles
        assert row.status == "sent" and len(made) == 1
    else:  # it never reached the provider: not found past the settle window
        assert row.status == "failed" and row.failure_code == "not_found" and made == []


def test_a_short_balance_fails_clearly_and_sends_nothing(live_app: LiveApp) -> None:
    public_id = new_refund(live_app)
    live_app.sandbox.state.payouts.set_balance("teemopay", MERCHANT, Money(5_000, "KRW"))
    report = run_round(live_app)
    assert report.failed == 1 and report.sent_calls == 0
    row = refund_row(live_app, public_id)
    assert row.status == "failed" and row.failure_code == "insufficient_balance"
    assert "5,000" in (row.failure_message or "") or "5000" in (row.failure_message or "")
    assert live_app.sandbox.state.payouts.all() == []
    assert shop_events(live_app)[-1][0] == "refund.failed"


def test_a_refused_payout_fails_with_the_providers_reason(live_app: LiveApp) -> None:
    public_id = new_refund(
        live_app,
        destination={"bank_code": "055", "account_number": "110123456789", "holder_name": "김민수"},
    )
    report = run_round(live_app)
    assert report.failed == 1, report
    row = refund_row(live_app, public_id)
    assert row.status == "failed" and row.failure_code == "unsupported_bank"
    assert "431" in (row.failure_message or "")


def test_a_payout_the_bank_fails_is_failed_and_refundable_again(live_app: LiveApp) -> None:
    public_id = new_refund(
        live_app,
        destination={"bank_code": "088", "account_number": "110123459999", "holder_name": "김민수"},
    )
    run_round(live_app)
    row = wait_status(live_app, public_id, "failed")
    assert row.failure_code
    again = post_refund(live_app, row.checkout_id, body(30_000))
    assert again.status_code == 201, again.text  # all 30,000 refundable again


@pytest.mark.store_config(
    shop={"refund_api_keys": [REFUND_KEY], "refund_daily_cap": {"KRW": 15_000}}
)
def test_the_daily_cap_holds_a_refund_until_tomorrow(live_app: LiveApp) -> None:
    first = new_refund(live_app, 10_000)
    second = new_refund(live_app, 10_000)
    report = run_round(live_app)
    assert report.claimed == 1 and report.held == 1, report
    held = refund_row(live_app, second)
    assert held.status == "approved" and "cap" in (held.hold_reason or "")
    assert refund_row(live_app, first).status != "approved"


def test_a_forged_payout_notify_is_refused_stored_and_changes_nothing(live_app: LiveApp) -> None:
    import requests

    from checkout.store.models import NotifyMessage

    held = {"bank_code": "088", "account_number": "110123458888", "holder_name": "김민수"}
    public_id = new_refund(live_app, destination=held)
    run_round(live_app)
    row = wait_status(live_app, public_id, "processing")
    forged = json.dumps(
        {"merchantOrderNo": row.payout_no, "status": 2, "sign": "AAAA", "amount": "10000"}
    )
    # The README's verdict table, as for pay-ins: bad_signature 401 (it was 400 here), and
    # 404 for an instance that does not exist.
    for path, status in (("/notify/teemopay_kr/payout", 401), ("/notify/nope/payout", 404)):
        resp = requests.post(
            live_app.url + path,
            data=forged,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        assert resp.status_code == status, resp.text
    assert refund_row(live_app, public_id).status == "processing"
    with live_app.session() as session:
        stored = session.scalars(
            select(NotifyMessage).where(NotifyMessage.provider == "teemopay_kr")
        ).all()
        assert stored[-1].verdict == "bad_signature"
        assert (stored[-1].response_status, stored[-1].response_body) == (401, "bad signature")


PAYPRO_VA = "paypro_kr_va"


def test_a_paypro_refund_goes_out_and_settles(live_app: LiveApp) -> None:
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == PAYPRO_VA)
    live_app.sandbox.state.config.payout_settle_after = 0.1
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    made = post_refund(live_app, checkout["id"], body(5_000))
    assert made.status_code == 201, made.text
    run_round(live_app)
    row = wait_status(live_app, made.json()["id"], "sent")
    assert row.provider == "paypro_kr"
    assert len(sandbox_payouts(live_app, row.payout_no)) == 1  # type: ignore[arg-type]


def test_a_failing_balance_inquiry_does_not_stop_the_send(live_app: LiveApp) -> None:
    public_id = new_refund(live_app)
    live_app.sandbox.state.inject_fault("teemopay", "http_500", endpoint="balance")
    report = run_round(live_app)
    assert report.sent_calls == 1, report
    row = wait_status(live_app, public_id, "sent")
    assert len(sandbox_payouts(live_app, row.payout_no)) == 1  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["http_500", "read_timeout"])
@pytest.mark.provider_config(teemopay_kr={"read_timeout": 1.0})
def test_a_failing_query_asks_again_later(live_app: LiveApp, kind: str) -> None:
    held = {"bank_code": "088", "account_number": "110123458888", "holder_name": "김민수"}
    public_id = new_refund(live_app, destination=held)
    run_round(live_app)
    assert refund_row(live_app, public_id).status == "processing"
    live_app.sandbox.state.inject_fault("teemopay", kind, endpoint="payout_query", delay=2.0)
    later = utcnow() + timedelta(minutes=1)
    assert run_round(live_app, now=later).queried == 1
    row = refund_row(live_app, public_id)
    assert row.status == "processing" and row.query_count == 1
    assert row.next_query_at is not None and row.next_query_at > later
    assert len(live_app.sandbox.state.payouts.all()) == 1


def test_three_workers_racing_over_slow_payout_calls_send_each_refund_once(
    live_app: LiveApp,
) -> None:
    refunds = [new_refund(live_app, 5_000) for _ in range(3)]
    live_app.sandbox.state.inject_fault(
        "teemopay", "slow", endpoint="payout", count=None, delay=0.5
    )
    barrier = threading.Barrier(3)
    reports: list[Any] = []

    def worker() -> None:
        barrier.wait()
        for _ in range(2):
            reports.append(run_round(live_app))

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(r.sent_calls for r in reports) == 3, reports
    assert not any(r.errors for r in reports), reports
    numbers = set()
    for public_id in refunds:
        row = wait_status(live_app, public_id, "sent")
        assert len(sandbox_payouts(live_app, row.payout_no)) == 1  # type: ignore[arg-type]
        numbers.add(row.payout_no)
    assert len(numbers) == 3 and len(live_app.sandbox.state.payouts.all()) == 3


def test_money_the_bank_sends_back_is_returned_and_refundable_again(live_app: LiveApp) -> None:
    # An account the sandbox pays and leaves paid (one ending 7777 it returns by itself a
    # moment later, which raced the return below on a busy machine): the bank's return is
    # this test's own, once the refund is sent.
    back = {"bank_code": "088", "account_number": "110123450001", "holder_name": "김민수"}
    public_id = new_refund(live_app, destination=back)
    run_round(live_app)
    row = wait_status(live_app, public_id, "sent")
    [payout] = sandbox_payouts(live_app, row.payout_no)  # type: ignore[arg-type]
    live_app.sandbox.state.payouts.finish(payout, "return")
    row = wait_status(live_app, public_id, "returned")
    assert shop_events(live_app)[-1][0] == "refund.failed"
    again = post_refund(live_app, row.checkout_id, body(30_000))
    assert again.status_code == 201, again.text


def test_a_payout_the_bank_returns_by_itself_ends_returned(live_app: LiveApp) -> None:
    """The sandbox pays an account ending 7777 and has the bank return it a moment later
    (TeemoPay's status 4), with nobody acting: the refund ends returned."""
    back = {"bank_code": "088", "account_number": "110123457777", "holder_name": "김민수"}
    public_id = new_refund(live_app, destination=back)
    run_round(live_app)
    wait_status(live_app, public_id, "returned")
    assert shop_events(live_app)[-1][0] == "refund.failed"


def valid_clabe(prefix: str = "012180") -> str:
    from checkout.domain.accounts import clabe_check_digit

    first = (prefix + "00123456789")[:17]
    return first + str(clabe_check_digit(first))


def test_a_mexican_refund_to_a_clabe(live_app: LiveApp) -> None:
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == "paypro_mx_api")
    live_app.sandbox.state.config.payout_settle_after = 0.1
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    clabe = valid_clabe()
    bad = clabe[:-1] + str((int(clabe[-1]) + 1) % 10)
    for number, status in ((bad, 400), (clabe, 201)):
        made = post_refund(
            live_app,
            checkout["id"],
            {
                "amount": 10_000,
                "currency": "MXN",
                "reason": "devolución",
                "destination": {
                    "bank_code": "40012",
                    "account_number": number,
                    "holder_name": "Ana López",
                },
            },
        )
        assert made.status_code == status, made.text
    assert made.json()["status"] == "requested"  # no MXN threshold configured: approval
    with live_app.session() as session:
        from checkout.services.refunds import approve

        approve(session, made.json()["id"], "bob")
    run_round(live_app)
    row = wait_status(live_app, made.json()["id"], "sent", "failed")
    assert row.status == "sent", (row.failure_code, row.failure_message)


def test_a_diamond_pay_refund_goes_out_and_settles(live_app: LiveApp) -> None:
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == "diamondpay_kr")
    live_app.sandbox.state.config.payout_settle_after = 0.1
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    made = post_refund(live_app, checkout["id"], body(5_000))
    assert made.status_code == 201, made.text
    run_round(live_app)
    row = wait_status(live_app, made.json()["id"], "sent", "failed")
    assert row.status == "sent", (row.failure_code, row.failure_message)
    assert row.provider == "diamondpay_kr"


def test_a_paypro_payout_notify_on_the_pay_in_url_reaches_the_refund(live_app: LiveApp) -> None:
    """PayPro's one notify URL carries pay-in and payout notifies: notify_kind routes them."""
    import requests

    from checkout.store.models import NotifyMessage
    from tests.support.shopper import FLOWS
    from tests.test_flows import cashier_url, settle, start

    flow = next(f for f in FLOWS if f.name == PAYPRO_VA)
    live_app.sandbox.state.config.payout_settle_after = 0.1
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    made = post_refund(live_app, checkout["id"], body(5_000))
    run_round(live_app)
    row = wait_status(live_app, made.json()["id"], "sent")
    deadline = time.monotonic() + 15  # the provider retries a notify it saw refused (busy)
    while True:
        with live_app.session() as session:
            sent = session.scalars(
                select(NotifyMessage).where(
                    NotifyMessage.trade_no == row.payout_no, NotifyMessage.verdict == "accepted"
                )
            ).all()
            if sent or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert sent, "the payout notify was never accepted"
    raw, headers = sent[-1].body, dict(sent[-1].headers)
    headers.pop("Content-Length", None)
    again = requests.post(
        f"{live_app.url}/notify/paypro_kr", data=raw.encode(), headers=headers, timeout=10
    )
    assert again.status_code == 200, again.text
    with live_app.session() as session:
        last = session.scalars(select(NotifyMessage).order_by(NotifyMessage.id.desc())).first()
        assert last is not None and last.trade_no == row.payout_no
        assert last.verdict == "duplicate"
    assert refund_row(live_app, row.public_id).status == "sent"
