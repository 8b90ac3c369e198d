"""The shopper's side in a real Chromium: each integration end to end, the bank-details page
turning to paid by itself, a Korean validation error, a keyboard-only form, and screenshots.

Texts and amount formats are being translated, so nothing here reads a visible text: the
pages are found by their element ids (`#status[data-status]`, `#account-number`,
`#sandbox-deposit`, `#mobile-error`...), the sandbox cashier by its `button.pay`. Every wait
is bounded (WAIT_MS); the pages' own refresh and polling (every 3 s) do the rest.

Screenshots go to test-artifacts/screenshots/ (not committed). `UPDATE_DOC_SCREENSHOTS=1`
also copies the few the README shows into docs/screenshots/.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, Flow, create_checkout, get_checkout

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
expect = sync_api.expect

WAIT_MS = 20_000  # every wait is bounded (as in conftest.py)
expect.set_options(timeout=WAIT_MS)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
# (locale, page) -> the file under docs/screenshots/ that the README shows.
DOC_PICKS = {
    ("ko", "checkout"): "checkout-form-ko.png",
    ("es", "details"): "bank-details-es.png",
    ("en", "return-paid"): "return-paid-en.png",
}
MOBILE = {"width": 390, "height": 844}
MAX_PNG_BYTES = 150_000
HANGUL = re.compile("[\uac00-\ud7a3]")

FLOW = {f.name: f for f in FLOWS}


def checkout_for(live_app: LiveApp, flow: Flow, **overrides: Any) -> dict[str, Any]:
    return create_checkout(live_app.url, amount=flow.amount, currency=flow.currency, **overrides)


def open_form(page: Any, checkout: dict[str, Any], flow: Flow) -> None:
    page.goto(f"{checkout['url']}?method={flow.method}")
    page.locator("form button[type=submit]").wait_for()


def fill_form(page: Any, payer: dict[str, str]) -> None:
    """Fill the fields the form shows, by name, from the payer (date inputs take ISO dates)."""
    for name, value in payer.items():
        field = page.locator(f'form [name="{name}"]:not([type=hidden])')
        if value and field.count():
            field.fill(value)


def submit(page: Any) -> None:
    page.locator("form button[type=submit]").click()


def return_url_re(checkout: dict[str, Any]) -> re.Pattern[str]:
    return re.compile(rf"/c/{re.escape(checkout['id'])}/return(\?.*)?$")


def wait_until_paid(page: Any, checkout: dict[str, Any]) -> None:
    """On the return page, which reloads itself every 3 s until the status is final."""
    page.wait_for_url(return_url_re(checkout))
    page.locator('#status[data-status="paid"]').wait_for()


def details_page(page: Any, checkout: dict[str, Any]) -> str:
    """After the submit: our payment-details page with the bank details; its URL."""
    page.wait_for_url(re.compile(rf"/c/{re.escape(checkout['id'])}/pay$"))
    page.locator("#sandbox-deposit").wait_for(state="attached")
    expect(page.locator("#account-number, #reference").first).to_be_visible()
    return page.url


def deposit_out_of_band(live_app: LiveApp, page: Any) -> None:
    """The sandbox bank receives the transfer; the shopper's page is not touched."""
    href = page.locator("#sandbox-deposit").get_attribute("href")
    assert href and href.startswith(live_app.sandbox.url), href
    resp = requests.post(href, data={"action": "pay"}, allow_redirects=False, timeout=10)
    assert resp.status_code in (200, 303), resp.text


# ------------------------------------------------------------------ 1. end to end


@pytest.mark.parametrize("flow", FLOWS, ids=[f.name for f in FLOWS])
def test_pay_end_to_end(live_app: LiveApp, page: Any, flow: Flow) -> None:
    checkout = checkout_for(live_app, flow)
    open_form(page, checkout, flow)
    expect(page.locator(f'input[name=method][value="{flow.method}"]')).to_be_checked()
    fill_form(page, flow.payer)
    submit(page)

    if flow.shows_details:
        # The shopper "goes to the bank": the sandbox's deposit page, in this tab.
        details_url = details_page(page, checkout)
        deposit = page.locator("#sandbox-deposit").get_attribute("href")
        assert deposit and deposit.startswith(live_app.sandbox.url), deposit
        page.goto(deposit)
        page.locator("button.pay").click()
        expect(page.locator("dd#status")).to_have_text(re.compile(r"^paid"))
        # Back on our details page: "I have paid: check the status" leads to the return page
        # (the page may also move there by itself once it sees the payment).
        page.goto(details_url)
        page.locator(f'main a[href$="/c/{checkout["id"]}/return"]').last.click()
    else:
        # The provider's cashier, in the whole tab; Pay sends the shopper back to us.
        page.wait_for_url(f"{live_app.sandbox.url}/cashier/**")
        page.locator("button.pay").click()

    wait_until_paid(page, checkout)
    expect(page.locator("#back-to-shop")).to_be_visible()
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"


# ------------------------------------------------------ 2. the details page moves on


def test_details_page_turns_paid_by_itself(live_app: LiveApp, page: Any) -> None:
    flow = FLOW["teemopay_kr"]
    checkout = checkout_for(live_app, flow)
    open_form(page, checkout, flow)
    fill_form(page, flow.payer)
    submit(page)
    details_url = details_page(page, checkout)
    assert page.locator("#live-status").get_attribute("data-status") == "pending"

    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    deposit_out_of_band(live_app, page)
    # No reload from here: the page polls /c/<id>/status and goes to the return page.
    wait_until_paid(page, checkout)
    assert navigations and navigations[0] != details_url
    assert return_url_re(checkout).search(navigations[0]), navigations


# ------------------------------------------------------- 3. errors in the locale


def test_validation_error_in_korean(live_app: LiveApp, page: Any) -> None:
    catalog = ROOT / "checkout" / "translations" / "ko" / "LC_MESSAGES" / "messages.mo"
    if not catalog.exists():
        pytest.skip(
            f"the Korean catalog is not compiled yet ({catalog.relative_to(ROOT)} is missing)"
        )
    flow = FLOW["paypro_kr_link"]
    checkout = checkout_for(live_app, flow, locale="ko")
    open_form(page, checkout, flow)
    fill_form(page, {**flow.payer, "mobile": "0101234"})  # 7 digits: not a Korean mobile
    submit(page)

    error = page.locator("#mobile-error")
    error.wait_for()
    text = error.inner_text()
    assert HANGUL.search(text), f"#mobile-error is not in Korean: {text!r}"
    mobile = page.locator('form [name="mobile"]')
    assert mobile.get_attribute("aria-invalid") == "true"
    assert mobile.input_value() == "0101234"  # what was typed is kept
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []


# ------------------------------------------------------------ 4. keyboard only

ACTIVE = """() => {
  const e = document.activeElement;
  const r = e.getBoundingClientRect();
  return {tag: e.tagName.toLowerCase(), name: e.getAttribute("name"),
          method: e.name === "method" ? e.value : null, type: e.getAttribute("type"),
          top: r.top + window.scrollY, left: r.left + window.scrollX, height: r.height};
}"""

FOCUSABLE = """() => [
  // A radio group is one tab stop: its checked method.
  ...[...document.querySelectorAll("input[name=method]:checked")].map(a => "method:" + a.value),
  ...[...document.querySelectorAll("form input, form select, form textarea")]
      .filter(e => e.type !== "hidden" && e.name !== "method").map(e => "field:" + e.name),
  "submit",
]"""


def describe(active: dict[str, Any]) -> str:
    if active["method"]:
        return "method:" + active["method"]
    if active["tag"] in ("input", "select", "textarea"):
        return "field:" + (active["name"] or "?")
    if active["tag"] == "button" and active["type"] == "submit":
        return "submit"
    return f"{active['tag']}:{active['name']}"


def test_keyboard_only_payment(live_app: LiveApp, page: Any) -> None:
    flow = FLOW["paypro_kr_link"]
    checkout = checkout_for(live_app, flow)
    open_form(page, checkout, flow)
    expected = page.evaluate(FOCUSABLE)
    assert expected[-1] == "submit" and any(e.startswith("field:") for e in expected)

    seen: list[dict[str, Any]] = []
    for _ in range(len(expected)):  # from the top of the page, with Tab only
        page.keyboard.press("Tab")
        active = page.evaluate(ACTIVE)
        seen.append(active)
        name = describe(active)
        if name.startswith("field:"):
            value = flow.payer.get(active["name"], "")
            if value:
                page.keyboard.type(value)
    assert [describe(a) for a in seen] == expected

    # Visual order: each stop is below the previous one, or on its line and to its right.
    for before, after in itertools.pairwise(seen):
        same_line = abs(after["top"] - before["top"]) < min(before["height"], after["height"]) / 2
        assert (same_line and after["left"] > before["left"]) or (
            not same_line and after["top"] > before["top"]
        ), (describe(before), describe(after))

    for name, value in flow.payer.items():
        field = page.locator(f'form [name="{name}"]:not([type=hidden])')
        if value and field.count():
            assert field.input_value() == value, name

    page.keyboard.press("Enter")  # on the submit button
    page.wait_for_url(f"{live_app.sandbox.url}/cashier/**")
    page.locator("button.pay").wait_for()
    assert get_checkout(live_app.url, checkout["id"])["status"] == "pending"


# ---------------------------------------------------------------- 5. screenshots

SHOTS = [  # a flow per locale, each with our bank-details page
    ("ko", FLOW["teemopay_kr"]),
    ("es", FLOW["paypro_mx_api"]),
    ("en", FLOW["diamondpay_kr"]),
]


def shoot(page: Any, locale: str, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}-{locale}.png"
    page.screenshot(path=str(path), animations="disabled", caret="hide")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size < MAX_PNG_BYTES, (path.name, path.stat().st_size)
    if os.environ.get("UPDATE_DOC_SCREENSHOTS") == "1" and (locale, name) in DOC_PICKS:
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOC_SCREENSHOTS / DOC_PICKS[locale, name])
    return path


def has_korean_font() -> bool:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return True  # cannot tell
    out = subprocess.run([fc_list, ":lang=ko"], capture_output=True, text=True, timeout=10)
    return bool(out.stdout.strip())


def test_screenshots_in_each_locale(live_app: LiveApp, browser: Any) -> None:
    if not has_korean_font():
        warnings.warn(
            "no Korean font: the ko screenshots show boxes (apt-get install fonts-nanum)",
            stacklevel=1,
        )
    contexts = []
    try:
        pages = []
        for locale, flow in SHOTS:  # one phone per locale, all three at once
            context = browser.new_context(
                viewport=MOBILE, device_scale_factor=1, is_mobile=True, has_touch=True,
                locale=locale,
            )  # fmt: skip
            context.set_default_timeout(WAIT_MS)
            context.set_default_navigation_timeout(WAIT_MS)
            contexts.append(context)
            page = context.new_page()
            checkout = checkout_for(live_app, flow, locale=locale, description="Two mugs")
            open_form(page, checkout, flow)
            assert page.locator("html").get_attribute("lang") == locale
            shoot(page, locale, "checkout")
            fill_form(page, flow.payer)
            submit(page)
            details_page(page, checkout)
            shoot(page, locale, "details")
            pages.append((locale, page, checkout))

        for _locale, page, _checkout in pages:
            deposit_out_of_band(live_app, page)
        for locale, page, checkout in pages:  # each page moves on by itself
            wait_until_paid(page, checkout)
            expect(page.locator("#back-to-shop")).to_be_visible()
            shoot(page, locale, "return-paid")
    finally:
        for context in contexts:
            context.close()
