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

from checkout.services.admin import create_operator
from checkout.store.models import OperatorAction, Refund, WebhookEvent
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, create_checkout, get_checkout
from tests.test_admin import _post, login
from tests.test_refunds_console import ACCOUNT, money_after_cancel, paid_mx_checkout
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


# ---------------------------------------------------------------- phones, taps, axe
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}
# The console is in English; bank names follow the browser's language (ko, es, en).
LOCALES = {"phone": "ko-KR", "laptop": "es-MX"}
# Every control an operator taps: buttons, button-like links, fields, the nav.
TAPPABLE = (
    "main button, main .button, main input:not([type=hidden]), main select, header a, header button"
)
SIDEWAYS = "document.documentElement.scrollWidth - document.documentElement.clientWidth"


def console_pages(live_app: LiveApp) -> tuple[dict[str, str], str, str]:
    """name -> path of every console page, with a refund waiting for approval (asked by
    carol) on a checkout paid after its cancel; and that checkout's and refund's ids."""
    checkout_id = money_after_cancel(live_app)
    with live_app.session() as session:
        create_operator(session, "carol", PASSWORD)
        create_operator(session, "alice", PASSWORD)
    _post(login(live_app, "carol"), live_app, checkout_id, "refunds", amount="15000",
          reason="Return the excess", **ACCOUNT)  # fmt: skip
    with live_app.session() as session:
        public_id = session.scalars(select(Refund.public_id)).one()
    # A Mexican refund without an account: its page shows the shopper's (long) link.
    mexican_id = paid_mx_checkout(live_app)
    _post(login(live_app, "carol"), live_app, mexican_id, "refunds", amount="120.50",
          reason="Return the excess")  # fmt: skip
    open_checkout = create_checkout(live_app.url)
    pages = {
        "checkouts": "/admin/",
        "checkouts-in-review": "/admin/?review=1",
        "waiting": "/admin/waiting",
        "checkout-with-refund": f"/admin/checkouts/{checkout_id}",
        "checkout-open": f"/admin/checkouts/{open_checkout['id']}",
        "checkout-mexican-refund-link": f"/admin/checkouts/{mexican_id}",
        "confirm-cancel": f"/admin/checkouts/{open_checkout['id']}/cancel",
        "confirm-refund-reject": f"/admin/checkouts/{checkout_id}/refunds/{public_id}/reject",
        "notifies": "/admin/notifies",
        "providers": "/admin/providers",
    }
    return pages, checkout_id, public_id


def log_in(live_app: LiveApp, page: Any, name: str) -> None:
    page.goto(f"{live_app.url}/admin/login")
    page.locator('input[name="name"]').fill(name)
    page.locator('input[name="password"]').fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    expect(page.locator("#operator-name")).to_have_text(name)


def axe_violations(page: Any) -> list[str]:
    """Every axe violation, of any impact."""
    axe_sync = pytest.importorskip("axe_playwright_python.sync_playwright")
    results = axe_sync.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n.get("target")) for n in v["nodes"][:3])
        for v in results.response["violations"]
    ]


def small_targets(page: Any) -> list[str]:
    """The visible controls smaller than 44 x 44 px (checkboxes: their label row)."""
    found = []
    for control in page.locator(TAPPABLE).all():
        if not control.is_visible():
            continue
        box = control.bounding_box()
        if control.get_attribute("type") == "checkbox":
            box = control.locator("xpath=..").bounding_box()
        if box["height"] < 44 or box["width"] < 44:
            found.append(f"{control.evaluate('e => e.outerHTML')[:80]} {box}")
    return found


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_every_console_page_fits_is_tappable_and_passes_axe(
    live_app: LiveApp, browser: Any, viewport: str
) -> None:
    pages, _checkout_id, _public_id = console_pages(live_app)
    context = browser.new_context(
        viewport=VIEWPORTS[viewport], has_touch=viewport == "phone", locale=LOCALES[viewport]
    )
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        page.goto(f"{live_app.url}/admin/login")
        problems = {"login": axe_violations(page)}
        log_in(live_app, page, "alice")
        for name, path in pages.items():
            page.goto(live_app.url + path)
            page.wait_for_load_state("load")
            found = axe_violations(page)
            sideways = page.evaluate(SIDEWAYS)
            if sideways > 0:
                found.append(f"the page scrolls {sideways} px sideways")
            found += [f"tap target under 44 px: {t}" for t in small_targets(page)]
            problems[name] = found
        # The refund form sent with an amount of too many decimals: shown again, the error
        # beside the amount.
        page.goto(live_app.url + pages["checkout-mexican-refund-link"])
        page.locator("#refund-amount").fill("1.005")
        page.locator("#refund-reason").fill("goodwill")
        page.locator("#refund-form button[type=submit]").click()
        expect(page.locator("#refund-amount-error")).to_contain_text("at most 2 decimals")
        expect(page.locator("#refund-amount")).to_have_value("1.005")
        found = axe_violations(page)
        if page.evaluate(SIDEWAYS) > 0:
            found.append("the page scrolls sideways")
        problems["refund-form-error"] = found
    finally:
        context.close()
    problems = {name: found for name, found in problems.items() if found}
    assert not problems, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in problems.items())


def test_a_second_operator_approves_from_the_queue_on_a_phone(
    live_app: LiveApp, browser: Any
) -> None:
    _pages, checkout_id, public_id = console_pages(live_app)
    context = browser.new_context(viewport=VIEWPORTS["phone"], has_touch=True)
    context.set_default_timeout(WAIT_MS)
    try:
        page = context.new_page()
        log_in(live_app, page, "alice")
        # The nav says something waits; the queue lists the refund.
        # Two refunds (Korean, Mexican) and a review (the money after a cancel).
        expect(page.locator("#nav-waiting-count")).to_have_text("3")
        page.locator("#nav-waiting").tap()
        page.wait_for_url(re.compile(r"/admin/waiting$"))
        row = page.locator(f"#waiting-{public_id}")
        expect(row).to_contain_text("KRW 15,000")
        expect(row).to_contain_text("carol")
        approve = row.locator("button", has_text="Approve")
        approve.scroll_into_view_if_needed()
        box = approve.bounding_box()
        assert box["height"] >= 44 and box["width"] >= 44, box
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        # What is under the middle of the button is the button (not <main>).
        hit = page.evaluate(
            "([x, y]) => document.elementFromPoint(x, y).closest('button')?.textContent",
            [box["x"] + box["width"] / 2, box["y"] + box["height"] / 2],
        )
        assert hit == "Approve"
        page.touchscreen.tap(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.wait_for_url(re.compile(r"/admin/waiting$"))
        expect(page.locator("ul.flash")).to_contain_text(f"Refund {public_id} approved.")
        expect(page.locator("#waiting-refunds-count")).to_have_text("1")
        expect(page.locator("#nav-waiting-count")).to_have_text("2")
        assert page.evaluate(SIDEWAYS) <= 0
    finally:
        context.close()
    with live_app.session() as session:
        refund = session.scalars(select(Refund).where(Refund.public_id == public_id)).one()
        assert (refund.status, refund.approved_by) == ("approved", "alice")
    assert get_checkout(live_app.url, checkout_id)["status"] == "cancelled"


def test_the_console_checks_catch_what_they_should(page: Any) -> None:
    """The checks above can fail: axe flags an empty table header (minor impact: every
    impact counts here), the tap-target check a 20 px button, the width check a wide table."""
    page.set_viewport_size(VIEWPORTS["phone"])
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
        "<table><tr><th>a</th><th></th></tr><tr><td>1</td><td>2</td></tr></table>"
        '<button style="height:20px">Go</button><div style="width:900px">wide</div>'
        "</main></body></html>"
    )
    assert any(v.startswith("empty-table-header (minor)") for v in axe_violations(page))
    assert len(small_targets(page)) == 1
    assert page.evaluate(SIDEWAYS) > 0
