"""The lifecycle you can trust, over real HTTP: timeline, unknown outcomes, lost notifies,
VA expiry. Time is driven by passing `now`, never by sleeping."""

from __future__ import annotations

from datetime import timedelta

import pytest
import requests
from sqlalchemy import select

from checkout.extensions import catalog_of
from checkout.sandbox.core import OrderStatus
from checkout.services.reconcile import reconcile_due
from checkout.store.models import PaymentAttempt, utcnow
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, Shopper, create_checkout, get_checkout
from tests.test_flows import cashier_url, settle, start

DEAD_URL = "http://127.0.0.1:9/notify"  # nothing listens on the discard port: a lost notify


def timeline(data: dict) -> list[tuple[str, str | None, str, str]]:
    return [(e["kind"], e["from"], e["to"], e["source"]) for e in data["events"]]


def lose_notifies(live_app: LiveApp) -> None:
    """Point every sandbox order's notify at a dead port (the app never hears of it)."""
    for order in live_app.sandbox.state.orders.values():
        order.notify_url = DEAD_URL


def reconcile(live_app: LiveApp, later: timedelta, **kwargs):  # type: ignore[no-untyped-def]
    factory = live_app.session
    return reconcile_due(factory, catalog_of(live_app.app), utcnow() + later, **kwargs)


def test_timeline_of_a_paid_flow(live_app: LiveApp) -> None:
    flow = FLOWS[0]
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    data = get_checkout(live_app.url, checkout["id"])
    assert timeline(data) == [
        ("checkout", "open", "pending", "shopper"),
        ("attempt", None, "creating", "shopper"),
        ("attempt", "creating", "pending", "create"),
        ("attempt", "pending", "paid", "notify"),
        ("checkout", "pending", "paid", "notify"),
    ]
    assert all(e["at"] for e in data["events"])
    # The same notify again writes nothing to the timeline.
    state = live_app.sandbox.state
    state.resend_notify(next(iter(state.orders.values())))
    assert state.notifier.wait_idle(10)
    assert len(get_checkout(live_app.url, checkout["id"])["events"]) == 5


def test_timeline_of_a_failed_flow(live_app: LiveApp) -> None:
    flow = FLOWS[4]  # TeemoPay VA
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "fail")
    assert timeline(get_checkout(live_app.url, checkout["id"]))[-2:] == [
        ("attempt", "pending", "failed", "notify"),
        ("checkout", "pending", "open", "notify"),
    ]


@pytest.mark.provider_config(paypro_kr={"read_timeout": 0.5})
def test_create_timeout_is_unknown_blocks_a_second_attempt_and_is_reconciled(
    live_app: LiveApp,
) -> None:
    flow = FLOWS[0]  # KakaoPay via PayPro Korea
    state = live_app.sandbox.state
    # PayPro creates the order but answers after our read timeout.
    state.inject_fault("paypro", "read_timeout", delay=2.0)
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(flow.method, flow.payer)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/c/{checkout['id']}")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "pending"
    [attempt] = data["payment_attempts"]
    assert attempt["status"] == "unknown"
    assert ("attempt", "creating", "unknown", "create") in timeline(data)

    page = shopper.http.get(checkout["url"])
    assert page.status_code == 200 and "checking your earlier payment" in page.text
    # The form posted again cannot start a second payment.
    again = shopper.submit(flow.method, flow.payer, csrf=shopper.csrf)
    assert again.status_code == 200 and "checking your earlier payment" in again.text
    assert len(get_checkout(live_app.url, checkout["id"])["payment_attempts"]) == 1
    [order] = state.orders.values()  # the provider did create it

    # The shopper pays; the notify is lost; reconciliation finds the money.
    order.notify_url = DEAD_URL
    state.settle(order, OrderStatus.PAID, order.amount)
    assert state.notifier.wait_idle(10)
    assert reconcile(live_app, timedelta(minutes=5)).changed == 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == flow.amount
    assert data["payment_attempts"][0]["status"] == "paid"
    assert timeline(data)[-2:] == [
        ("attempt", "unknown", "paid", "query"),
        ("checkout", "pending", "paid", "query"),
    ]


@pytest.mark.app_config(reconcile_after_seconds=0)
def test_lost_notify_is_reconciled_by_the_command(live_app: LiveApp) -> None:
    flow = FLOWS[1]  # PayPro Korea VA
    checkout, shopper, resp = start(live_app, flow)
    lose_notifies(live_app)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"

    result = live_app.app.test_cli_runner().invoke(args=["reconcile", "--once"])
    assert result.exit_code == 0, result.output
    assert "queried 1 attempt(s), 1 changed" in result.output
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid"
    assert ("checkout", "pending", "paid", "query") in timeline(data)
    # Nothing is due any more.
    assert reconcile(live_app, timedelta(0)).queried == 0


def test_a_failed_query_is_recorded_and_backs_off(live_app: LiveApp) -> None:
    flow = FLOWS[0]
    checkout, _shopper, _resp = start(live_app, flow)
    live_app.sandbox.state.inject_fault("paypro", "http_500", endpoint="query")
    report = reconcile(live_app, timedelta(minutes=3))
    assert (report.queried, report.failed_queries, report.changed) == (1, 1, 0)
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
        assert attempt.status == "pending" and attempt.query_count == 1
        assert attempt.last_query_error and attempt.next_query_at is not None
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"
    # Not due again until the backoff has passed (1 minute after the first query).
    assert reconcile(live_app, timedelta(minutes=3, seconds=30)).queried == 0
    assert reconcile(live_app, timedelta(minutes=4, seconds=30)).queried == 1


def test_the_return_page_asks_the_provider_when_the_notify_is_late(live_app: LiveApp) -> None:
    flow = FLOWS[0]
    checkout, shopper, resp = start(live_app, flow)
    lose_notifies(live_app)
    settle(live_app, resp.headers["Location"], "pay")
    return_url = f"{live_app.url}/c/{checkout['id']}/return"
    # Just moved: the page shows what we have, without asking.
    assert 'data-status="pending"' in shopper.http.get(return_url).text
    with live_app.session() as session:  # ten seconds pass
        attempt = session.scalars(select(PaymentAttempt)).one()
        attempt.updated_at = utcnow() - timedelta(seconds=11)
        session.commit()
    assert 'data-status="paid"' in shopper.http.get(return_url).text
    assert ("checkout", "pending", "paid", "query") in timeline(
        get_checkout(live_app.url, checkout["id"])
    )


@pytest.mark.parametrize("flow", [FLOWS[1], FLOWS[4]], ids=["paypro_kr_va", "teemopay_kr"])
def test_va_expires_after_grace_and_a_late_payment_is_kept(live_app: LiveApp, flow) -> None:  # type: ignore[no-untyped-def]
    checkout, shopper, resp = start(live_app, flow)
    deposit = cashier_url(live_app, flow, resp, shopper)
    with live_app.session() as session:
        expires_at = session.scalars(select(PaymentAttempt.expires_at)).one()
    assert expires_at is not None
    late = expires_at - utcnow()

    # Within the grace period nothing expires (the provider is asked, says pending).
    assert reconcile(live_app, late + timedelta(minutes=14)).changed == 0
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"
    report = reconcile(live_app, late + timedelta(minutes=16))
    assert report.queried == 1 and report.changed == 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["payment_attempts"][0]["status"] == "expired"
    # The checkout's own deadline (60 minutes) has passed too, so it expires.
    assert data["status"] == "expired"
    assert ("attempt", "pending", "expired", "expiry") in timeline(data)
    assert ("checkout", "pending", "expired", "expiry") in timeline(data)

    # The shopper deposits anyway: the money is kept and flagged, never dropped.
    settle(live_app, deposit, "pay")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == flow.amount
    assert data["review_reason"] == "paid late"
    assert data["payment_attempts"][0]["status"] == "paid"
    assert data["payment_attempts"][0]["review_reason"] == "paid late"
    assert timeline(data)[-2:] == [
        ("attempt", "expired", "paid", "notify"),
        ("checkout", "expired", "paid", "notify"),
    ]


def test_open_checkouts_past_expiry_are_expired(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url)
    assert reconcile(live_app, timedelta(minutes=30)).expired_checkouts == 0
    assert reconcile(live_app, timedelta(minutes=61)).expired_checkouts == 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "expired"
    assert timeline(data) == [("checkout", "open", "expired", "expiry")]
    assert requests.get(checkout["url"], allow_redirects=False, timeout=10).status_code == 303
