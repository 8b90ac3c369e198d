"""The operator console in a real Chromium: a shopper pays, an operator finds the checkout by
its order id, sees it paid with its timeline, and resends its webhook to the shop.

The shopper pays KakaoPay through PayPro Korea on the sandbox's cashier (`button.pay`); the
shop's webhook endpoint is a real receiver on loopback that verifies every signature; the
webhook worker's delivery round runs in the test (`deliver_due`), as `flask worker` would.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select

from checkout.models import OperatorAction, WebhookEvent
from checkout.services.admin import create_operator
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, create_checkout, get_checkout
from tests.test_webhooks import Receiver, deliver, deliveries, events, hooked, receiver

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
expect = sync_api.expect

WAIT_MS = 20_000  # every wait is bounded (as in conftest.py)
expect.set_options(timeout=WAIT_MS)
PASSWORD = "correct horse battery"
KAKAOPAY = FLOWS[0]  # KakaoPay via PayPro Korea: the shopper pays on the sandbox's cashier

__all__ = ["receiver"]  # the webhook receiver fixture, used through `hooked`


def pay_in_browser(live_app: LiveApp, page: Any, checkout: dict[str, Any]) -> None:
    page.goto(f"{checkout['url']}?method={KAKAOPAY.method}")
    for name, value in KAKAOPAY.payer.items():
        field = page.locator(f'form [name="{name}"]:not([type=hidden])')
        if value and field.count():
            field.fill(value)
    page.locator("form button[type=submit]").click()
    page.wait_for_url(re.compile(re.escape(live_app.sandbox.url) + r"/"))  # the cashier
    page.locator("button.pay").click()
    page.wait_for_url(re.compile(rf"/c/{re.escape(checkout['id'])}/return(\?.*)?$"))
    page.locator('#status[data-status="paid"]').wait_for()
    assert live_app.sandbox.state.notifier.wait_idle(10)


@hooked
def test_operator_finds_a_paid_checkout_and_resends_its_webhook(
    live_app: LiveApp, page: Any, receiver: Receiver
) -> None:
    with live_app.session() as session:
        create_operator(session, "alice", PASSWORD)
    order_id = "ADMIN-BROWSER-1"
    checkout = create_checkout(
        live_app.url, order_id=order_id, amount=KAKAOPAY.amount, currency=KAKAOPAY.currency
    )
    pay_in_browser(live_app, page, checkout)
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"
    # The worker's round: checkout.pending and checkout.paid reach the shop.
    assert deliver(live_app) == 2
    paid_event = next(e for e in events(live_app) if e.type == "checkout.paid")
    assert paid_event.status == "delivered"
    assert receiver.ids().count(paid_event.public_id) == 1

    # The operator logs in; /admin/ sends them to the login page first.
    page.goto(f"{live_app.url}/admin/")
    page.wait_for_url(re.compile(r"/admin/login"))
    page.locator('input[name="name"]').fill("alice")
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    expect(page.locator("#operator-name")).to_have_text("alice")

    # Search by order id: exactly this checkout.
    page.locator('form.search input[name="order_id"]').fill(order_id)
    page.locator("form.search button[type=submit]").click()
    page.wait_for_url(re.compile(r"order_id=" + re.escape(order_id)))
    expect(page.locator("#counts")).to_contain_text("1 checkout(s)")
    rows = page.locator("#checkouts tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(order_id)
    rows.first.locator(f'a:text-is("{checkout["id"]}")').click()

    # The checkout: paid, with its timeline (the notify moved it to paid).
    page.wait_for_url(re.compile(rf"/admin/checkouts/{re.escape(checkout['id'])}$"))
    expect(page.locator("#checkout-status")).to_have_text("paid")
    expect(page.locator("#order-id")).to_have_text(order_id)
    timeline = page.locator("#timeline tbody tr")
    expect(timeline.filter(has_text="notify").filter(has_text="paid").first).to_be_visible()
    assert timeline.count() >= 4  # checkout open -> pending -> paid, attempt to paid

    # Resend the paid webhook.
    row = page.locator("#webhooks tbody tr").filter(has_text="checkout.paid")
    expect(row).to_contain_text(paid_event.public_id)
    row.locator("button", has_text="Resend").click()
    expect(page.locator("ul.flash")).to_contain_text(f"Webhook {paid_event.public_id} queued")
    actions = page.locator("#operator-actions tbody tr")
    expect(actions).to_have_count(1)
    expect(actions.first).to_contain_text("alice")
    expect(actions.first).to_contain_text("resend_webhook")
    expect(actions.first).to_contain_text(paid_event.public_id)

    # Recorded as the operator's action, and the event is queued for the worker again.
    with live_app.session() as session:
        recorded = session.scalars(select(OperatorAction)).all()
        assert [(a.operator, a.action, a.checkout_id, a.target) for a in recorded] == [
            ("alice", "resend_webhook", checkout["id"], paid_event.public_id)
        ]
        queued = session.get(WebhookEvent, paid_event.id)
        assert queued is not None and queued.status == "pending" and queued.attempts == 0
    # The worker's next round sends it again, with the same webhook-id: a second delivery.
    assert deliver(live_app) == 1
    assert receiver.ids().count(paid_event.public_id) == 2
    assert all(hit.verified for hit in receiver.hits)
    assert [d.status_code for d in deliveries(live_app, paid_event.id)] == [200, 200]
    page.reload()
    expect(
        page.locator("#webhooks tbody tr").filter(has_text="checkout.paid").locator("td div")
    ).to_have_count(2)
