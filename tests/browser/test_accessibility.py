"""axe-core (axe-playwright-python, pinned) on every shopper page, in ko, es and en, at
390x844 and 1280x800: no violation of any impact (issue 23; minor and moderate included).

The pages: the form, the form with errors, each kind of payment details (CLABE, cash
reference, bank account, bank card, bank direct), the waiting page, the return page in each
status (pending, paid, partially paid, failed, open, expired, cancelled, paid after a
cancel), the link opened again while the cashier waits, a part-paid account, Diamond Pay's
QR code, the refund-account page (Korea, Mexico, with errors, given), and the message pages
(unknown page, bad pay link, the cashier interstitial). States are made over HTTP as a shop,
a shopper and the provider would.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import update

from checkout.store.models import Checkout
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, KR_PAYER, Shopper, create_checkout, get_checkout

axe_sync = pytest.importorskip("axe_playwright_python.sync_playwright")

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1280, "height": 800}}
LOCALES = ("ko", "es", "en")
BLOCKING = ("minor", "moderate", "serious", "critical")  # any impact
FLOW = {f.name: f for f in FLOWS}
WAIT_S = 20


def _wait_status(live_app: LiveApp, checkout_id: str, statuses: set[str]) -> None:
    deadline = time.monotonic() + WAIT_S
    while get_checkout(live_app.url, checkout_id)["status"] not in statuses:
        assert time.monotonic() < deadline, f"{checkout_id} never reached {statuses}"
        time.sleep(0.2)


def _submitted(live_app: LiveApp, flow_name: str, locale: str, method: str | None = None) -> Any:
    flow = FLOW[flow_name]
    checkout = create_checkout(
        live_app.url, amount=flow.amount, currency=flow.currency, locale=locale
    )
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(method or flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    return checkout, shopper, resp


def _sandbox_act(live_app: LiveApp, checkout: dict[str, Any], action: str) -> None:
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    order = next(
        o for o in live_app.sandbox.state.orders.values() if o.trade_no == attempt["trade_no"]
    )
    url = f"{live_app.sandbox.url}/cashier/{order.provider}/{order.id}"
    assert requests.post(url, data={"action": action}, timeout=10, allow_redirects=False).ok


def shopper_pages(live_app: LiveApp, locale: str) -> dict[str, str]:
    """name -> URL of every shopper page, its state made for this locale."""
    base = live_app.url
    pages: dict[str, str] = {}
    form = create_checkout(base, locale=locale, description="Two mugs")
    pages["form"] = f"{form['url']}?method=kakaopay"
    pages["form-errors"] = "POST"  # made in the browser (a posted form with errors)
    for kind, flow_name, method in (
        ("clabe", "paypro_mx_api", "mx_spei"),
        ("cash-reference", "paypro_mx_api", "mx_cash"),
        ("bank-account", "teemopay_kr", None),
        ("bank-card", "diamondpay_kr", "diamond_card"),
        ("bank-direct", "diamondpay_kr", "diamond_bank"),
        ("qr", "diamondpay_kr", "diamond_qr"),
    ):
        checkout, _shopper, _resp = _submitted(live_app, flow_name, locale, method)
        pages[f"details-{kind}"] = f"{checkout['url']}/pay"
    waiting, _s, _resp = _submitted(live_app, "paypro_kr_link", locale)
    pages["return-pending"] = f"{waiting['url']}/return"
    pages["continue"] = f"{waiting['url']}/continue"
    pages["resume"] = waiting["url"]  # the link opened again: continue there or another way
    part, _s, _r = _submitted(live_app, "teemopay_kr", locale)
    _sandbox_act(live_app, part, "part")
    _wait_status(live_app, part["id"], {"partially_paid"})
    pages["details-part-paid"] = f"{part['url']}/pay"
    pages["return-cancelled-paid"] = _paid_after_cancel(live_app, locale)
    pages["refund-account"] = _refund_link(live_app, locale, "teemopay_kr")
    pages["refund-account-mx"] = _refund_link(live_app, locale, "paypro_mx_api")
    pages["refund-account-errors"] = "POST-REFUND-ERRORS"
    pages["refund-account-given"] = "POST-REFUND-GIVEN"
    for status, action in (("paid", "pay"), ("partially_paid", "part"), ("failed", "fail")):
        checkout, _s, _r = _submitted(live_app, "paypro_kr_link", locale)
        _sandbox_act(live_app, checkout, action)
        target = {"paid": {"paid"}, "partially_paid": {"partially_paid"}, "failed": {"open"}}
        _wait_status(live_app, checkout["id"], target[status])
        pages[f"return-{status}"] = f"{checkout['url']}/return"
    open_checkout = create_checkout(base, locale=locale)
    pages["return-open"] = f"{open_checkout['url']}/return"
    cancelled = create_checkout(base, locale=locale)
    requests.post(
        f"{base}/api/v1/checkouts/{cancelled['id']}/cancel",
        headers={"Authorization": "Bearer sk_test_shop_0001"},
        timeout=10,
    ).raise_for_status()
    pages["return-cancelled"] = f"{cancelled['url']}/return"
    expired = create_checkout(base, locale=locale)
    with live_app.session() as session:
        session.execute(
            update(Checkout)
            .where(Checkout.id == expired["id"])
            .values(expires_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        session.commit()
    pages["return-expired"] = f"{expired['url']}/return"
    pages["message-not-found"] = f"{base}/c/co_does_not_exist"
    pages["message-bad-pay-link"] = f"{base}/pay/shop?order_id=x&amount=1&currency=KRW"
    return pages


def _paid_after_cancel(live_app: LiveApp, locale: str) -> str:
    """A checkout cancelled after the shopper chose another way, then paid to the account
    first given (TeemoPay: PayPro's per-IP rule allows three payments a day)."""
    checkout, shopper, _resp = _submitted(live_app, "teemopay_kr", locale)
    page = shopper.http.get(f"{checkout['url']}/pay", timeout=10)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text)
    assert token is not None, page.text
    shopper.http.post(
        f"{checkout['url']}/another-way", data={"csrf_token": token.group(1)}, timeout=10
    ).raise_for_status()
    requests.post(
        f"{live_app.url}/api/v1/checkouts/{checkout['id']}/cancel",
        headers={"Authorization": "Bearer sk_test_shop_0001"},
        timeout=10,
    ).raise_for_status()
    _sandbox_act(live_app, checkout, "pay")
    deadline = time.monotonic() + WAIT_S
    while not get_checkout(live_app.url, checkout["id"])["amount_paid"]:
        assert time.monotonic() < deadline, "the payment after the cancel never arrived"
        time.sleep(0.2)
    return f"{checkout['url']}/return"


def _refund_link(live_app: LiveApp, locale: str, flow_name: str) -> str:
    """The shopper's refund-account link of a refund of a paid checkout."""
    from tests.test_refunds_api import post_refund

    checkout, _s, _r = _submitted(live_app, flow_name, locale)
    _sandbox_act(live_app, checkout, "pay")
    _wait_status(live_app, checkout["id"], {"paid"})
    flow = FLOW[flow_name]
    made = post_refund(
        live_app, checkout["id"], {"amount": 5_000, "currency": flow.currency, "reason": "x"}
    )
    assert made.status_code == 201, made.text
    return f"{made.json()['account_url']}&lang={locale}"


def _fill_refund_form(page: Any, locale: str, given: bool) -> None:
    if not given:
        page.locator("#holder_name").fill("1")
        page.locator("#send-account").click()
        page.locator("#error-summary").wait_for()
        return
    page.locator("#bank_code").select_option("088")
    page.locator("#account_number").fill("110-1234-56789")
    page.locator("#holder_name").fill("김민수")
    page.locator("#send-account").click()
    page.locator("#account-given").wait_for()


@pytest.fixture
def context_for(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(viewport: dict[str, int], locale: str) -> Any:
        context = browser.new_context(viewport=viewport, locale=locale)
        context.set_default_timeout(WAIT_S * 1000)
        contexts.append(context)
        return context

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def blocking_violations(page: Any) -> list[str]:
    results = axe_sync.Axe().run(page)
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n.get("target")) for n in v["nodes"][:3])
        for v in results.response["violations"]
        if v.get("impact") in BLOCKING
    ]


# Every page in one app: more payments from this one IP than PayPro's rule allows a day.
RELAXED = {"ip_daily_attempts": 1000, "ip_daily_successes": 1000}


@pytest.mark.store_config(shop={"refund_api_keys": ["sk_test_shop_refunds"]})
@pytest.mark.provider_config(paypro_kr=RELAXED, paypro_mx=RELAXED, paypro_mx_api=RELAXED)
@pytest.mark.app_config(rate_limits={"checkout_form": "200/minute"})
@pytest.mark.parametrize("locale", LOCALES)
def test_no_axe_violation_on_any_shopper_page(
    live_app: LiveApp, context_for: Any, locale: str
) -> None:
    pages = shopper_pages(live_app, locale)
    found: dict[str, list[str]] = {}
    checked = 0
    for viewport_name, viewport in VIEWPORTS.items():
        page = context_for(viewport, locale).new_page()
        for name, url in pages.items():
            if url == "POST":
                page.goto(pages["form"])
                for field, value in {**KR_PAYER, "mobile": "0101234", "email": "x"}.items():
                    page.locator(f'#payer-fields [name="{field}"]').fill(value)
                page.locator("#pay").click()
                page.locator("#error-summary").wait_for()
            elif url.startswith("POST-REFUND"):
                page.goto(_refund_link(live_app, locale, "teemopay_kr"))
                _fill_refund_form(page, locale, given=url.endswith("GIVEN"))
            elif name == "continue":
                # The interstitial leaves for the provider's cashier by itself (checkout.js):
                # check it as a browser without JavaScript keeps it.
                script = "**/static/checkout.js"
                page.route(script, lambda r: r.fulfill(body="", content_type="text/javascript"))
                page.goto(url)
                page.unroute(script)
            else:
                page.goto(url)
            page.wait_for_load_state("load")
            assert page.locator("html").get_attribute("lang") == locale or name.startswith(
                "message-"
            ), (name, page.url)
            violations = blocking_violations(page)
            checked += 1
            if violations:
                found[f"{viewport_name} {name} ({page.url})"] = violations
    assert checked == 2 * len(pages)
    assert not found, "\n".join(f"{k}:\n  " + "\n  ".join(v) for k, v in found.items())


def test_axe_finds_what_it_should(context_for: Any) -> None:
    """The check can fail: a page with an unlabelled input and grey-on-grey text."""
    page = context_for(VIEWPORTS["phone"], "en").new_page()
    page.set_content(
        '<html lang="en"><head><title>t</title></head><body><main><input id="x">'
        '<p style="color:#bbb;background:#ccc">faint</p></main></body></html>'
    )
    ids = {re.sub(r" .*", "", v) for v in blocking_violations(page)}
    assert {"label", "color-contrast"} <= ids
