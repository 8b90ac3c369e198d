"""The five integrations end to end over real HTTP: API -> form -> provider -> notify -> return."""

from __future__ import annotations

import json

import pytest
import requests
from sqlalchemy import select

from checkout.store.models import NotifyMessage, PaymentAttempt
from tests.conftest import LiveApp
from tests.support.shopper import (
    CSRF_RE,
    FLOWS,
    Flow,
    Shopper,
    create_checkout,
    get_checkout,
)


def start(live_app: LiveApp, flow: Flow) -> tuple[dict, Shopper, requests.Response]:
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    return checkout, shopper, resp


def cashier_url(live_app: LiveApp, flow: Flow, resp: requests.Response, shopper: Shopper) -> str:
    """Where the shopper (or the sandbox's deposit button) settles the payment."""
    location = resp.headers["Location"]
    if not flow.shows_details:
        assert location.startswith(live_app.sandbox.url), location
        return location
    assert location.endswith("/pay"), location
    page = shopper.http.get(location if location.startswith("http") else live_app.url + location)
    assert page.status_code == 200
    # The QR code, inline, while the payment is to be made (a finished one shows no details).
    assert "<svg" in page.text or 'id="payment-finished"' in page.text
    assert 'id="account-number"' in page.text or 'id="reference"' in page.text
    marker = 'id="sandbox-deposit" href="'
    start_at = page.text.index(marker) + len(marker)
    return page.text[start_at : page.text.index('"', start_at)]


def settle(live_app: LiveApp, url: str, action: str) -> None:
    resp = requests.post(url, data={"action": action}, allow_redirects=False, timeout=10)
    assert resp.status_code in (200, 303), resp.text
    assert live_app.sandbox.state.notifier.wait_idle(10)


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_pay_in_full(live_app: LiveApp, flow: Flow) -> None:
    checkout, shopper, resp = start(live_app, flow)
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")

    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid"
    assert data["amount_paid"] == flow.amount
    [attempt] = data["payment_attempts"]
    assert attempt["status"] == "paid" and attempt["method"] == flow.method
    assert attempt["payer"]["email"] in (None, "m***@example.com", "a***@example.mx")

    page = shopper.http.get(f"{live_app.url}/c/{checkout['id']}/return?status=failed")
    assert 'data-status="paid"' in page.text  # query parameters are never trusted
    assert 'id="back-to-shop"' in page.text
    # A paid checkout sends the shopper to the return page, never to a new payment.
    again = shopper.http.get(checkout["url"], allow_redirects=False)
    assert again.status_code == 303 and again.headers["Location"].endswith("/return")


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_partial_payment(live_app: LiveApp, flow: Flow) -> None:
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "part")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "partially_paid"
    assert 0 < data["amount_paid"] < flow.amount


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_failed_payment_reopens_checkout(live_app: LiveApp, flow: Flow) -> None:
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "fail")
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "open"
    assert data["payment_attempts"][0]["status"] == "failed"
    page = shopper.http.get(f"{live_app.url}/c/{checkout['id']}/return")
    assert 'id="try-again"' in page.text
    # The shopper can try again: a new attempt with a new trade number.
    retry = shopper.submit(flow.method, flow.payer)
    assert retry.status_code == 303
    data = get_checkout(live_app.url, checkout["id"])
    assert len(data["payment_attempts"]) == 2
    assert len({a["trade_no"] for a in data["payment_attempts"]}) == 2


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_duplicate_notify_changes_nothing(live_app: LiveApp, flow: Flow) -> None:
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    state = live_app.sandbox.state
    order = next(o for o in state.orders.values() if o.provider == flow.provider_type)
    state.resend_notify(order)
    assert state.notifier.wait_idle(10)
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "paid" and data["amount_paid"] == flow.amount
    with live_app.session() as session:
        verdicts = session.scalars(select(NotifyMessage.verdict).order_by(NotifyMessage.id)).all()
    assert verdicts == ["accepted", "duplicate"]
    # Both were acknowledged, so the provider stopped retrying after each.
    assert all(d.accepted for d in state.notifier.deliveries)


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_notify_with_bad_signature_changes_nothing(live_app: LiveApp, flow: Flow) -> None:
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "fail")
    with live_app.session() as session:
        genuine = session.scalars(select(NotifyMessage)).one()
        body = json.loads(genuine.body)
    # Forge a "paid" from the genuine failure notify: the signature no longer matches.
    body["status"] = {"paypro": "0000", "teemopay": 2, "diamondpay": 2}[flow.provider_type]
    forged = requests.post(
        f"{live_app.url}/notify/{flow.instance}",
        data=json.dumps(body).encode(),
        headers={
            k: v for k, v in genuine.headers.items() if k.lower() not in ("content-length", "host")
        },
        timeout=10,
    )
    assert forged.status_code == 401
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "open" and data["amount_paid"] == 0
    with live_app.session() as session:
        latest = session.scalars(select(NotifyMessage).order_by(NotifyMessage.id.desc())).first()
        assert latest.verdict == "bad_signature"
        assert latest.body == json.dumps(body)  # stored raw, as received


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_provider_error_on_create_leaves_checkout_usable(live_app: LiveApp, flow: Flow) -> None:
    live_app.sandbox.state.inject_create_error(flow.provider_type, "9999", "Channel request error")
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(flow.method, flow.payer)
    assert resp.status_code == 422
    assert 'id="form-error"' in resp.text and "Nothing was charged" in resp.text
    assert 'value="' + flow.payer["first_name"] + '"' in resp.text  # what was typed is kept
    data = get_checkout(live_app.url, checkout["id"])
    assert data["status"] == "open"
    assert data["payment_attempts"][0]["status"] == "failed"
    # The next try goes through.
    assert shopper.submit(flow.method, flow.payer).status_code == 303


def test_second_submit_while_live_does_not_charge_twice(live_app: LiveApp) -> None:
    flow = FLOWS[0]
    checkout, shopper, first = start(live_app, flow)
    # The same form posted again (double click, back button): the page now redirects.
    second = shopper.submit(flow.method, flow.payer, csrf=shopper.csrf)
    assert second.status_code == 303
    assert second.headers["Location"] == first.headers["Location"]
    data = get_checkout(live_app.url, checkout["id"])
    assert len(data["payment_attempts"]) == 1
    assert len(live_app.sandbox.state.orders) == 1


def test_notify_for_unknown_trade_is_refused(live_app: LiveApp) -> None:
    flow = FLOWS[0]
    checkout, _shopper, resp = start(live_app, flow)
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
        attempt.trade_no = "X" * 32  # the provider's trade number is now unknown to us
        session.commit()
    settle(live_app, resp.headers["Location"], "pay")
    with live_app.session() as session:
        verdicts = set(session.scalars(select(NotifyMessage.verdict)).all())
        statuses = [d.status_code for d in live_app.sandbox.state.notifier.deliveries]
    assert verdicts == {"unknown_trade"}
    assert set(statuses) == {404} and len(statuses) > 1  # the provider kept retrying
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"


@pytest.mark.parametrize("flow", [FLOWS[0], FLOWS[4]], ids=["redirect", "va"])
def test_simultaneous_submits_make_one_attempt(live_app: LiveApp, flow: Flow) -> None:
    from concurrent.futures import ThreadPoolExecutor

    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    tabs = [Shopper(checkout["url"]) for _ in range(4)]  # four tabs, each with its form
    tokens = [CSRF_RE.search(tab.open(flow.method).text).group(1) for tab in tabs]  # type: ignore[union-attr]
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda i: tabs[i].submit(flow.method, flow.payer, csrf=tokens[i]), range(4))
        )
    assert all(r.status_code == 303 for r in results), [r.status_code for r in results]
    data = get_checkout(live_app.url, checkout["id"])
    assert len(data["payment_attempts"]) == 1
    assert len(live_app.sandbox.state.orders) == 1


DETAILS = {
    "paypro_kr_va": (
        "Transfer to this account",
        ["bank-name", "account-number", "account-holder", "expires-at"],
    ),
    "paypro_mx_api": ("Transfer to this account", ["account-number"]),
    "teemopay_kr": ("Transfer to this account", ["bank-name", "account-number", "expires-at"]),
    "diamondpay_kr": (
        "Transfer to this bank card",
        ["bank-name", "account-number", "account-holder", "reference", "open-cashier"],
    ),
}


@pytest.mark.parametrize("flow", [f for f in FLOWS if f.shows_details], ids=lambda f: f.name)
def test_payment_details_page(live_app: LiveApp, flow: Flow) -> None:
    checkout, shopper, resp = start(live_app, flow)
    page = shopper.http.get(live_app.url + resp.headers["Location"])
    title, ids = DETAILS[flow.name]
    assert title in page.text
    for element_id in ids:
        assert f'id="{element_id}"' in page.text, element_id
    amount = (
        "KRW " + f"{flow.amount:,}" if flow.currency == "KRW" else f"MXN {flow.amount / 100:,.2f}"
    )
    assert f"<strong>{amount}</strong>" in page.text
    assert "<svg" in page.text and "<img" not in page.text  # the QR code is inline
    status = shopper.http.get(f"{live_app.url}/c/{checkout['id']}/status").json()
    assert status == {
        "status": "pending",
        "final": False,
        "amount": flow.amount,
        "amount_paid": 0,
        "currency": flow.currency,
        "attempt_status": "pending",
    }


def test_mexican_cash_reference_page(live_app: LiveApp) -> None:
    flow = FLOWS[3]
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit("mx_cash", flow.payer)
    page = shopper.http.get(live_app.url + resp.headers["Location"])
    assert "Pay in cash with this reference" in page.text
    assert 'id="reference"' in page.text and "Payment reference" in page.text
