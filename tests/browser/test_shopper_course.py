"""Issue 23 in a real Chromium, in ko, es and en at 390 and 1280 px: the shopper can change
course after the cashier (Back, or the link opened again), and gives a refund's account on a
page as good as the form. Pages are found by element ids."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, KR_PAYER, create_checkout, get_checkout
from tests.test_refunds_api import REFUND_KEY, post_refund

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
expect = sync_api.expect

WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}
LOCALES = ("ko", "es", "en")
FLOW = {f.name: f for f in FLOWS}
PAY_BUTTON = {"ko": "PayPro에서 계속하기", "es": "Continuar en PayPro", "en": "Continue at PayPro"}
ANOTHER_WAY = {"ko": "다른 방법으로 결제", "es": "Pagar de otra forma", "en": "Pay another way"}


@pytest.fixture
def open_page(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []

    def make(viewport: str, locale: str) -> Any:
        phone = viewport == "phone"
        context = browser.new_context(
            viewport=VIEWPORTS[viewport], locale=locale, is_mobile=phone, has_touch=phone
        )
        context.set_default_timeout(WAIT_MS)
        contexts.append(context)
        return context.new_page()

    try:
        yield make
    finally:
        for context in contexts:
            context.close()


def no_sideways_scroll(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], (page.url, width)


@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("locale", LOCALES)
def test_back_from_the_cashier_offers_a_choice(
    live_app: LiveApp, open_page: Any, locale: str, viewport: str
) -> None:
    checkout = create_checkout(live_app.url, locale=locale)
    page = open_page(viewport, locale)
    page.goto(checkout["url"] + "?method=kakaopay")
    for name, value in KR_PAYER.items():
        field = page.locator(f'#payer-fields [name="{name}"]')
        if field.count():
            field.fill(value)
    page.locator("#pay").click()
    page.wait_for_url(f"{live_app.sandbox.url}/**")
    page.go_back()
    page.wait_for_load_state("load")
    # Still ours, after checkout.js ran: not sent straight back to the cashier.
    assert page.url.startswith(live_app.url), page.url
    cashier = page.locator("#continue-to-cashier")
    expect(cashier).to_have_text(PAY_BUTTON[locale])
    expect(page.locator("#another-way")).to_have_text(ANOTHER_WAY[locale])
    assert cashier.get_attribute("href").startswith(live_app.sandbox.url)
    no_sideways_scroll(page)
    # Opening the link again offers the same; "pay another way" gives the form back.
    page.goto(checkout["url"])
    page.wait_for_load_state("load")
    assert page.url.startswith(live_app.url), page.url
    page.locator("#another-way").click()
    page.locator("#pay").wait_for()
    assert len(get_checkout(live_app.url, checkout["id"])["payment_attempts"]) == 1


def refund_link(live_app: LiveApp, flow_name: str, locale: str) -> str:
    from tests.test_flows import cashier_url, settle, start

    flow = FLOW[flow_name]
    checkout, shopper, resp = start(live_app, flow)
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    made = post_refund(
        live_app, checkout["id"], {"amount": 5_000, "currency": flow.currency, "reason": "x"}
    )
    assert made.status_code == 201, made.text
    return f"{made.json()['account_url']}&lang={locale}"


BANK = {"ko": "신한은행", "es": "Shinhan Bank", "en": "Shinhan Bank"}


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.parametrize("viewport", VIEWPORTS)
@pytest.mark.parametrize("locale", LOCALES)
def test_the_refund_account_page_in_the_browser(
    live_app: LiveApp, open_page: Any, locale: str, viewport: str
) -> None:
    page = open_page(viewport, locale)
    page.goto(refund_link(live_app, "teemopay_kr", locale))
    assert page.locator("html").get_attribute("lang") == locale
    assert page.locator("h1").count() == 1
    assert BANK[locale] in page.locator("#bank_code").inner_text()
    no_sideways_scroll(page)
    # Everything wrong at once, in a summary that takes the focus and links to each field.
    page.locator("#account_number").fill("12")
    page.locator("#holder_name").fill("1")
    page.locator("#send-account").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_focused()
    links = summary.locator("a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [
        "#bank_code",
        "#account_number",
        "#holder_name",
    ]
    assert page.locator("#account_number").input_value() == "12"  # what was typed stays
    no_sideways_scroll(page)
    page.locator("#bank_code").select_option("088")
    page.locator("#account_number").fill("110-1234-56789")
    page.locator("#holder_name").fill("김민수")
    page.locator("#send-account").click()
    expect(page.locator("#account-given")).to_be_visible()
    expect(page.locator("#refund-bank")).to_have_text(BANK[locale])
    expect(page.locator("#refund-account-number")).to_have_text("****6789")
    assert "alert ok" in (page.locator("#account-given").get_attribute("class") or "")
    no_sideways_scroll(page)


@pytest.mark.store_config(shop={"refund_api_keys": [REFUND_KEY]})
@pytest.mark.parametrize("viewport", VIEWPORTS)
def test_a_mexican_refund_account_is_only_the_clabe(
    live_app: LiveApp, open_page: Any, viewport: str
) -> None:
    from checkout.domain.accounts import clabe_check_digit

    page = open_page(viewport, "es")
    page.goto(refund_link(live_app, "paypro_mx_api", "es"))
    assert page.locator("#bank_code").count() == 0
    expect(page.locator('label[for="account_number"]')).to_have_text("CLABE")
    expect(page.locator("#account_number-hint")).to_contain_text("18 dígitos")
    no_sideways_scroll(page)
    first = "01218000123456789"
    page.locator("#account_number").fill(first + str(clabe_check_digit(first)))
    page.locator("#holder_name").fill("Ana López")
    page.locator("#send-account").click()
    expect(page.locator("#refund-bank")).to_have_text("BBVA México")
    assert requests.get(page.url, timeout=10).status_code == 409  # given once


@pytest.mark.parametrize("locale", LOCALES)
def test_method_names_and_hints_are_whole_on_a_phone(
    live_app: LiveApp, open_page: Any, locale: str
) -> None:
    page = open_page("phone", locale)
    page.goto(create_checkout(live_app.url, locale=locale)["url"])
    cut = page.evaluate(
        "() => [...document.querySelectorAll('.mname, .mhint')]"
        ".filter(e => e.scrollWidth > e.clientWidth + 1 || e.textContent.includes('…'))"
        ".map(e => e.textContent)"
    )
    assert cut == []
    assert page.locator(".mhint").count() == 8
    if locale == "ko":  # Korean wraps between words, never inside one
        rule = page.evaluate("getComputedStyle(document.querySelector('.mhint')).wordBreak")
        assert rule == "keep-all"
    no_sideways_scroll(page)
