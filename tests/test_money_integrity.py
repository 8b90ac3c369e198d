"""The defects the money-integrity review found, end to end over real HTTP against the
sandboxes: every one goes through the one rule and the one writer."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from checkout.sandbox.core import OrderStatus
from checkout.store.models import PaymentAttempt, PaymentReceipt, WebhookEvent, utcnow
from tests.conftest import LiveApp
from tests.support.shopper import CSRF_RE, FLOWS, Shopper, create_checkout, get_checkout
from tests.test_flows import cashier_url, settle, start
from tests.test_reconcile import DEAD_URL, lose_notifies, reconcile, timeline

TEEMOPAY = next(f for f in FLOWS if f.name == "teemopay_kr")
KAKAOPAY = next(f for f in FLOWS if f.name == "paypro_kr_link")
PAYPRO_VA = next(f for f in FLOWS if f.name == "paypro_kr_va")


def shop_events(live_app: LiveApp, checkout_id: str) -> list[tuple[str, int, int]]:
    with live_app.session() as session:
        rows = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.checkout_id == checkout_id)
            .order_by(WebhookEvent.seq)
        ).all()
        return [(e.type, e.seq, e.payload["data"]["amount_paid"]) for e in rows]


def test_a_second_transfer_into_a_teemopay_va_is_credited(live_app: LiveApp) -> None:
    """Two callbacks, one per transfer (paymentOrderNo, paymentAmount): both are money."""
    checkout, shopper, resp = start(live_app, TEEMOPAY)
    url = cashier_url(live_app, TEEMOPAY, resp, shopper)
    settle(live_app, url, "part")
    half = get_checkout(live_app.url, checkout["id"])["amount_paid"]
    assert 0 < half < TEEMOPAY.amount
    settle(live_app, url, "rest")  # the second transfer, the same size as the first
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == TEEMOPAY.amount
    assert data["payment_attempts"][0]["status"] == "paid"
    with live_app.session() as session:
        receipts = session.scalars(select(PaymentReceipt)).all()
        assert len(receipts) == 2 and sum(r.amount for r in receipts) == TEEMOPAY.amount
    assert [t for t, _s, _a in shop_events(live_app, checkout["id"])] == [
        "checkout.pending",
        "checkout.payment_instructions_issued",
        "checkout.partially_paid",
        "checkout.paid",
    ]
    # TeemoPay sends the second callback again: a duplicate, nothing more is credited.
    state = live_app.sandbox.state
    [order] = state.orders.values()
    state.resend_notify(order)
    assert state.notifier.wait_idle(10)
    assert get_checkout(live_app.url, checkout["id"])["amount_paid"] == TEEMOPAY.amount


def test_the_second_transfer_is_found_by_the_query_when_its_callback_is_lost(
    live_app: LiveApp,
) -> None:
    checkout, shopper, resp = start(live_app, TEEMOPAY)
    url = cashier_url(live_app, TEEMOPAY, resp, shopper)
    settle(live_app, url, "part")
    lose_notifies(live_app)
    settle(live_app, url, "rest")
    assert get_checkout(live_app.url, checkout["id"])["status"] == "partially_paid"
    with live_app.session() as session:  # a partly paid VA is final: ask the provider now
        attempt = session.scalars(select(PaymentAttempt)).one()
    from checkout.extensions import catalog_of
    from checkout.services.reconcile import query_now

    with live_app.app.app_context(), live_app.session() as session:
        query_now(session, catalog_of(live_app.app), attempt)
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == TEEMOPAY.amount


def test_paypro_query_reads_pay_amount(live_app: LiveApp) -> None:
    """The Korea query answers payAmount (and orderAmount), not amount (Corrections)."""
    checkout, shopper, resp = start(live_app, PAYPRO_VA)
    lose_notifies(live_app)
    settle(live_app, cashier_url(live_app, PAYPRO_VA, resp, shopper), "part")
    assert reconcile(live_app, timedelta(minutes=5)).changed == 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "partially_paid"
    assert 0 < data["amount_paid"] < PAYPRO_VA.amount


def test_money_after_a_cancel_is_told_to_the_shop(live_app: LiveApp) -> None:
    checkout, shopper, resp = start(live_app, PAYPRO_VA)
    with live_app.session() as session:
        from checkout.services.admin import operator_cancel

        assert "cancelled" in operator_cancel(session, "alice", checkout["id"])
    settle(live_app, cashier_url(live_app, PAYPRO_VA, resp, shopper), "pay")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "cancelled" and data["amount_paid"] == PAYPRO_VA.amount
    events = shop_events(live_app, checkout["id"])
    assert events[-1] == ("checkout.payment_received", len(events), PAYPRO_VA.amount)
    assert [s for _t, s, _a in events] == list(range(1, len(events) + 1))


@pytest.mark.app_config(reconcile_after_seconds=0)
def test_an_abandoned_cashier_attempt_ends_at_its_deadline(live_app: LiveApp) -> None:
    """PayPro keeps saying processing (0015); past the checkout's deadline plus grace, one
    last query, then the attempt expires and the checkout with it."""
    checkout, _shopper, _resp = start(live_app, KAKAOPAY)
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
        assert attempt.deadline_at is not None
        deadline = attempt.deadline_at
    # Before the deadline: queried, still pending.
    assert reconcile(live_app, timedelta(minutes=5)).queried == 1
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"
    later = deadline - utcnow() + timedelta(minutes=16)
    report = reconcile(live_app, later)
    assert report.queried == 1 and report.changed == 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["payment_attempts"][0]["status"] == "expired"
    assert data["status"] == "expired"
    assert ("attempt", "pending", "expired", "expiry") in timeline(data)
    # Nothing is live past its deadline any more: nothing more to query.
    assert reconcile(live_app, later + timedelta(hours=2)).queried == 0


def test_a_create_left_creating_by_a_dead_worker_becomes_unknown_and_is_reconciled(
    live_app: LiveApp,
) -> None:
    checkout, _shopper, _resp = start(live_app, KAKAOPAY)
    with live_app.session() as session:  # as if the process died during the create call
        attempt = session.scalars(select(PaymentAttempt)).one()
        attempt.status = "creating"
        session.commit()
    assert reconcile(live_app, timedelta(seconds=10)).changed == 0  # the call may be running
    report = reconcile(live_app, timedelta(minutes=5))
    assert report.changed >= 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["payment_attempts"][0]["status"] in ("unknown", "pending")
    assert ("attempt", "creating", "unknown", "expiry") in timeline(data)
    # The provider has it (pending): the attempt is live and queried like any other.
    state = live_app.sandbox.state
    [order] = state.orders.values()
    order.notify_url = DEAD_URL
    state.settle(order, OrderStatus.PAID, order.amount)
    assert state.notifier.wait_idle(10)
    reconcile(live_app, timedelta(minutes=10))
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"


@pytest.mark.provider_config(paypro_kr={"ip_daily_attempts": 10, "ip_daily_successes": 10})
def test_parallel_submits_from_one_ip_never_pass_the_daily_rule(live_app: LiveApp) -> None:
    """16 submits at once from one IP against a limit of 10: exactly 10 attempts."""
    shoppers = []
    for _ in range(16):
        made = create_checkout(live_app.url, amount=KAKAOPAY.amount, currency="KRW")
        shopper = Shopper(made["url"])
        match = CSRF_RE.search(shopper.open(KAKAOPAY.method).text)
        assert match
        shopper.csrf = match.group(1)
        shoppers.append(shopper)
    gate = threading.Barrier(len(shoppers))
    answers: list[int] = []

    def submit(shopper: Shopper) -> None:
        gate.wait(10)
        answers.append(
            shopper.submit(KAKAOPAY.method, KAKAOPAY.payer, csrf=shopper.csrf).status_code
        )

    threads = [threading.Thread(target=submit, args=(s,)) for s in shoppers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(answers) == 16
    with live_app.session() as session:
        assert len(session.scalars(select(PaymentAttempt)).all()) == 10
    assert answers.count(303) == 10 and answers.count(422) == 6


def test_pay_another_way_then_both_pay(live_app: LiveApp) -> None:
    """KakaoPay's cashier opened, then the shopper chooses bank transfer instead: the first
    attempt no longer holds the checkout but is still reconciled; when both end up paid the
    checkout is paid, the extra is flagged a duplicate payment and the shop hears of it."""
    made = create_checkout(live_app.url, amount=15000, currency="KRW")
    shopper = Shopper(made["url"])
    first = shopper.submit(KAKAOPAY.method, KAKAOPAY.payer)
    assert first.status_code == 303 and first.headers["Location"].startswith(live_app.sandbox.url)
    page = shopper.http.get(f"{live_app.url}/c/{made['id']}/return")
    assert 'id="another-way"' in page.text
    token = CSRF_RE.search(page.text)
    assert token
    again = shopper.http.post(
        f"{live_app.url}/c/{made['id']}/another-way",
        data={"csrf_token": token.group(1)},
        allow_redirects=False,
        timeout=10,
    )
    assert again.status_code == 303
    data = get_checkout(live_app.url, made["id"])
    assert data["status"] == "open" and data["payment_attempts"][0]["status"] == "pending"
    assert any(
        e["kind"] == "attempt" and e["from"] == e["to"] == "pending" for e in data["events"]
    )  # the abandonment is on the timeline
    # A forged or replayed switch without the form's token changes nothing.
    bad = requests.post(f"{live_app.url}/c/{made['id']}/another-way", data={}, timeout=10)
    assert bad.status_code == 400

    second = shopper.submit(PAYPRO_VA.method, PAYPRO_VA.payer)
    assert second.status_code == 303 and second.headers["Location"].endswith("/pay")
    # Double submit and a second tab land on the live attempt: never a third.
    shopper.submit(PAYPRO_VA.method, PAYPRO_VA.payer)
    assert len(get_checkout(live_app.url, made["id"])["payment_attempts"]) == 2

    state = live_app.sandbox.state
    orders = sorted(state.orders.values(), key=lambda o: o.created_at)
    for order in orders:
        state.settle(order, OrderStatus.PAID, order.amount)
        assert state.notifier.wait_idle(10)
    data = get_checkout(live_app.url, made["id"])
    assert data["status"] == "paid" and data["amount_paid"] == 30000
    assert "duplicate payment" in (data["review_reason"] or "")
    events = shop_events(live_app, made["id"])
    assert events[-1][0] == "checkout.payment_received" and events[-1][2] == 30000
