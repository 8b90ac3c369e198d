"""Issue 14, the second shopper pass: each defect a new shopper hit, in a real Chromium at
390x844 (the phone it was found on). Pages are found by element ids, not visible texts."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import select

from checkout.store.models import PaymentAttempt
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, KR_PAYER, create_checkout, get_checkout

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
expect = sync_api.expect

WAIT_MS = 20_000
expect.set_options(timeout=WAIT_MS)
PHONE = {"width": 390, "height": 844}
FLOW = {f.name: f for f in FLOWS}
HANGUL = re.compile("[\uac00-\ud7a3]")


@pytest.fixture
def phone(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


@pytest.fixture
def phone_without_js(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport=PHONE, java_script_enabled=False)
    context.set_default_timeout(WAIT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def open_form(page: Any, checkout: dict[str, Any], method: str | None = None) -> None:
    page.goto(checkout["url"] + (f"?method={method}" if method else ""))
    page.locator("#pay").wait_for()


def fill(page: Any, values: dict[str, str]) -> None:
    for name, value in values.items():
        field = page.locator(f'#payer-fields [name="{name}"]')
        if value and field.count():
            field.fill(value)


def values_of(page: Any) -> dict[str, str]:
    return page.evaluate(
        "() => Object.fromEntries([...document.querySelectorAll('#payer-fields input')]"
        ".map(i => [i.name, i.value]))"
    )


# ------------------------------------------------------------------ the form


def test_method_change_happens_in_place_and_keeps_what_was_typed(
    live_app: LiveApp, phone: Any
) -> None:
    checkout = create_checkout(live_app.url)
    open_form(phone, checkout, "kakaopay")
    fill(phone, KR_PAYER)
    phone.evaluate("() => { window.notReloaded = true; }")
    phone.locator('label:has(input[value="paypro_kr_va"])').click()  # asks a birth date too
    phone.locator('#payer-fields[data-method="paypro_kr_va"]').wait_for()
    assert phone.evaluate("() => window.notReloaded") is True  # no page load
    assert phone.locator("#birth_date").count() == 1
    kept = values_of(phone)
    assert {k: kept[k] for k in KR_PAYER} == KR_PAYER
    assert phone.url.endswith("?method=paypro_kr_va")
    # ... and paying with the new method works with what was kept.
    phone.locator("#birth_date").fill("1990-05-17")
    phone.locator("#pay").click()
    phone.wait_for_url(re.compile(r"/pay$"))
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    assert attempt["method"] == "paypro_kr_va"


def test_without_javascript_a_posted_method_change_keeps_the_values(
    live_app: LiveApp, phone_without_js: Any
) -> None:
    page = phone_without_js
    checkout = create_checkout(live_app.url)
    open_form(page, checkout, "kakaopay")
    fill(page, KR_PAYER)
    page.locator('input[value="paypro_kr_va"]').check()
    page.locator("button[name=switch]").click()
    page.locator('#payer-fields[data-method="paypro_kr_va"]').wait_for()
    assert page.locator("#birth_date").count() == 1
    kept = values_of(page)
    assert {k: kept[k] for k in KR_PAYER} == KR_PAYER
    assert page.locator("#error-summary").count() == 0  # a change, not a submit
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []


def test_error_summary_takes_focus_and_links_to_each_field(live_app: LiveApp, phone: Any) -> None:
    checkout = create_checkout(live_app.url)
    open_form(phone, checkout, "paypro_kr_va")
    fill(phone, {**KR_PAYER, "email": "not-an-address", "birth_date": "2020-01-01"})  # under 18
    phone.locator("#pay").click()
    summary = phone.locator("#error-summary")
    summary.wait_for()
    phone.wait_for_function("() => document.activeElement.id === 'error-summary'")
    box = summary.bounding_box()
    assert box is not None and box["y"] < PHONE["height"]  # in view, not below the fold
    links = summary.locator("a")
    assert sorted(a.get_attribute("href") for a in links.all()) == ["#birth_date", "#email"]
    for name in ("birth_date", "email"):
        field = phone.locator(f"#{name}")
        assert field.get_attribute("aria-invalid") == "true"
        described = (field.get_attribute("aria-describedby") or "").split()
        assert f"{name}-error" in described
    links.filter(has=phone.locator('xpath=self::*[@href="#birth_date"]')).first.click()
    phone.wait_for_function("() => document.activeElement.id === 'birth_date'")


def test_international_mobile_is_accepted_and_normalised(live_app: LiveApp, phone: Any) -> None:
    checkout = create_checkout(live_app.url)
    open_form(phone, checkout, "kakaopay")
    assert "010-1234-5678" in phone.locator("#mobile-hint").inner_text()
    fill(phone, {**KR_PAYER, "mobile": "+82 10-1234-5678"})
    phone.locator("#pay").click()
    phone.wait_for_url(f"{live_app.sandbox.url}/cashier/**")
    with live_app.session() as session:
        stored = session.scalars(select(PaymentAttempt.payer_mobile)).all()
    assert stored == ["01012345678"]  # the provider's national form


def test_korean_form_asks_the_family_name_first(live_app: LiveApp, phone: Any) -> None:
    for locale, first in (("ko", "last_name"), ("en", "first_name"), ("es", "first_name")):
        checkout = create_checkout(live_app.url, locale=locale)
        open_form(phone, checkout, "kakaopay")
        names = phone.evaluate(
            "() => [...document.querySelectorAll('#payer-fields input')].map(i => i.name)"
        )
        assert names[0] == first, (locale, names)


@pytest.mark.parametrize("locale", ["ko", "es", "en"])
def test_methods_are_grouped_and_the_pay_button_fits_a_phone(
    live_app: LiveApp, phone: Any, locale: str
) -> None:
    checkout = create_checkout(live_app.url, locale=locale, description="Two mugs")
    open_form(phone, checkout, "kakaopay")
    kinds = phone.evaluate(
        "() => [...document.querySelectorAll('.kind')].map(k => k.querySelectorAll("
        "'input[name=method]').length)"
    )
    assert len(kinds) >= 2 and sum(kinds) == 8  # the Korean methods of the sandbox config
    assert phone.locator(".kind-name svg.mark").count() == len(kinds)
    assert phone.locator(".choice .mhint").count() == 8  # a hint per method
    pay = phone.locator("#pay").bounding_box()
    assert pay is not None and pay["y"] + pay["height"] <= PHONE["height"], pay


def test_failed_start_says_nothing_was_charged_and_keeps_the_details(
    live_app: LiveApp, phone: Any
) -> None:
    live_app.sandbox.state.inject_create_error("paypro", "9999", "Channel request error")
    checkout = create_checkout(live_app.url)
    open_form(phone, checkout, "kakaopay")
    fill(phone, KR_PAYER)
    phone.locator("#pay").click()
    phone.locator("#error-summary").wait_for()
    phone.wait_for_function("() => document.activeElement.id === 'error-summary'")
    assert phone.locator("#form-error").count() == 1
    assert phone.locator("#pay.primary").count() == 1  # "Try again" is the primary action
    kept = values_of(phone)
    assert {k: kept[k] for k in KR_PAYER} == KR_PAYER
    phone.locator("#pay").click()  # again: now it goes through
    phone.wait_for_url(f"{live_app.sandbox.url}/cashier/**")


def test_failure_at_the_cashier_offers_try_again_with_the_details(
    live_app: LiveApp, phone: Any
) -> None:
    checkout = create_checkout(live_app.url)
    open_form(phone, checkout, "kakaopay")
    fill(phone, KR_PAYER)
    phone.locator("#pay").click()
    phone.wait_for_url(f"{live_app.sandbox.url}/cashier/**")
    phone.locator("button.fail").click()
    phone.locator("#failure-note").wait_for()
    expect(phone.locator("#try-again")).to_have_class(re.compile(r"\bprimary\b"))
    phone.locator("#try-again").click()
    # The form's page loaded (not only parsed up to #pay): the deferred checkout.js has
    # put back what was typed by then.
    phone.wait_for_url(re.compile(rf"/c/{checkout['id']}$"))
    phone.locator("#pay").wait_for()
    kept = values_of(phone)
    assert {k: kept[k] for k in KR_PAYER} == KR_PAYER


# ---------------------------------------------------------------- payment details


def start_details(live_app: LiveApp, page: Any, flow_name: str, locale: str = "en") -> str:
    flow = FLOW[flow_name]
    checkout = create_checkout(
        live_app.url, amount=flow.amount, currency=flow.currency, locale=locale
    )
    open_form(page, checkout, flow.method)
    fill(page, flow.payer)
    page.locator("#pay").click()
    page.wait_for_url(re.compile(r"/pay$"))
    page.locator("#details").wait_for()
    return checkout["id"]


def one_line(page: Any, selector: str) -> bool:
    return page.evaluate(
        "(s) => { const e = document.querySelector(s); const r = document.createRange();"
        " r.selectNodeContents(e); const lines = new Set([...r.getClientRects()]"
        ".map(x => Math.round(x.top))); return lines.size === 1; }",
        selector,
    )


@pytest.mark.parametrize("flow_name", ["paypro_mx_api", "teemopay_kr", "diamondpay_kr"])
def test_details_put_labels_above_values_and_never_break_numbers(
    live_app: LiveApp, phone: Any, flow_name: str
) -> None:
    start_details(live_app, phone, flow_name, locale="es")
    for selector in ("#account-number", "#pay-amount", "#reference"):
        if phone.locator(selector).count():
            assert one_line(phone, selector), selector
            box = phone.locator(selector).bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"], selector
    label = phone.locator("#details dt").first.bounding_box()
    value = phone.locator("#details dd").first.bounding_box()
    assert label is not None and value is not None and label["y"] + label["height"] <= value["y"]
    # Who receives the money, until when (provider's zone, with a countdown), what to do.
    assert phone.locator("#account-holder").count() == 1, "beneficiary"
    assert phone.locator("#expires-at").count() == 1
    expect(phone.locator("#countdown-line")).to_be_visible()
    assert phone.locator("#steps li").count() >= 2


def test_clabe_shows_beneficiary_bank_and_deadline(live_app: LiveApp, phone: Any) -> None:
    start_details(live_app, phone, "paypro_mx_api", locale="es")
    assert phone.locator("#details").get_attribute("data-kind") == "clabe"
    for element in ("#account-holder", "#bank-name", "#expires-at", "#account-number"):
        assert phone.locator(element).inner_text().strip(), element
    assert re.search(r"-0[56]:00$", phone.locator("#expires-at").get_attribute("datetime") or "")


def test_cash_reference_has_a_barcode_and_where_to_pay(live_app: LiveApp, phone: Any) -> None:
    flow = FLOW["paypro_mx_api"]
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    open_form(phone, checkout, "mx_cash")
    fill(phone, flow.payer)
    phone.locator("#pay").click()
    phone.wait_for_url(re.compile(r"/pay$"))
    reference = phone.locator("#reference").inner_text().strip()
    barcode = phone.locator("#barcode svg.barcode")
    assert barcode.count() == 1 and barcode.get_attribute("aria-label") == reference
    assert phone.locator("#barcode figcaption").inner_text().strip() == reference
    assert phone.locator("#expires-at").count() == 1
    assert "OXXO" in phone.locator("#steps").inner_text()
    box = barcode.bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"]


def test_diamond_transfer_reference_is_explained(live_app: LiveApp, phone: Any) -> None:
    start_details(live_app, phone, "diamondpay_kr")
    assert phone.locator("#reference").count() == 1
    assert phone.locator("#reference-help").inner_text().strip()
    # The explanation sits with the reference it explains (the same <dd>).
    assert phone.locator("dd:has(#reference) #reference-help").count() == 1


def test_diamond_bank_direct_never_says_card_number(live_app: LiveApp, phone: Any) -> None:
    flow = FLOW["diamondpay_kr"]
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency)
    open_form(phone, checkout, "diamond_bank")
    fill(phone, flow.payer)
    phone.locator("#pay").click()
    phone.wait_for_url(re.compile(r"/pay$"))
    assert phone.locator("#details").get_attribute("data-kind") == "bank_direct"
    text = phone.locator("main").inner_text().lower()
    assert "card number" not in text and "card" not in phone.locator("h1").inner_text().lower()
    copy_label = phone.locator("#account-number + button.copy").get_attribute("aria-label")
    assert copy_label and "card" not in copy_label.lower()


KOREAN_BANKS = {"IBK기업은행", "KB국민은행", "신한은행", "우리은행"}
ENGLISH_BANKS = {"IBK Industrial Bank of Korea", "KB Kookmin Bank", "Shinhan Bank", "Woori Bank"}


@pytest.mark.parametrize(
    ("flow_name", "locale", "names"),
    [
        ("teemopay_kr", "ko", KOREAN_BANKS),
        ("teemopay_kr", "en", ENGLISH_BANKS),
        ("diamondpay_kr", "ko", {"KB국민은행"}),
        ("diamondpay_kr", "es", {"KB Kookmin Bank"}),
    ],
)
def test_bank_names_follow_the_page_language(
    live_app: LiveApp, phone: Any, flow_name: str, locale: str, names: set[str]
) -> None:
    start_details(live_app, phone, flow_name, locale=locale)
    assert phone.locator("#bank-name").inner_text().strip() in names


def test_waiting_page_stops_offering_the_payment_page_once_paid(
    live_app: LiveApp, phone: Any
) -> None:
    start_details(live_app, phone, "diamondpay_kr")
    assert phone.locator("#open-cashier").count() == 1  # Diamond Pay's own page, while waiting
    deposit = phone.locator("#sandbox-deposit").get_attribute("href")
    assert deposit
    requests.post(deposit, data={"action": "pay"}, timeout=10)
    details_url = phone.url
    phone.wait_for_url(re.compile(r"/return$"))  # the page moves on by itself
    phone.goto(details_url)  # and the details page, opened again, no longer offers it
    phone.locator("#payment-finished").wait_for()
    assert phone.locator("#open-cashier").count() == 0
    assert phone.locator("#steps").count() == 0


def test_korean_details_page_is_korean(live_app: LiveApp, phone: Any) -> None:
    start_details(live_app, phone, "teemopay_kr", locale="ko")
    assert HANGUL.search(phone.locator("h1").inner_text())
    assert HANGUL.search(phone.locator("#steps").inner_text())
