"""Cash receipts and ¿Necesita factura? in a real Chromium (issue 24), ko and es, on a phone
(390px) and a laptop (1280px): the Korean choice prefilled from the payer's mobile, a wrong
business number refused in Korean with nothing started, then a receipt issued by the worker
after the payment and named (masked) on the paid page; the factura section in Spanish."""

from __future__ import annotations

import re
from typing import Any

import pytest

from checkout.services.receipts import run_receipts
from tests.browser.test_shopper import (
    FLOW,
    checkout_for,
    details_page,
    fill_form,
    open_form,
    submit,
    wait_until_paid,
)
from tests.conftest import LiveApp
from tests.support.shopper import get_checkout

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is in the dev extras")
expect = sync_api.expect

MEMBER = "1248100998"
VIEWPORTS = {"phone": {"width": 390, "height": 844}, "laptop": {"width": 1280, "height": 800}}

pytestmark = pytest.mark.store_config(
    shop={"cash_receipts": {"corp_num": MEMBER, "designated_industry": True}}
)


@pytest.fixture(autouse=True)
def popbill_member(live_app: LiveApp) -> None:
    config = live_app.app.extensions["settings"].stores["shop"].cash_receipts
    live_app.sandbox.state.popbill.partners[config.link_id] = config.secret_key
    live_app.sandbox.state.popbill.members.add(MEMBER)


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_korean_cash_receipt_from_form_to_paid_page(
    live_app: LiveApp, page: Any, viewport: str
) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    flow = FLOW["teemopay_kr"]
    checkout = checkout_for(live_app, flow, locale="ko")
    open_form(page, checkout, flow)
    section = page.locator("#cash-receipt")
    expect(section).to_be_visible()
    fill_form(page, flow.payer)
    # No mobile prefilled by the shop: the choice starts at "신청 안 함"; choose 지출증빙.
    page.locator('input[name=cash_receipt_type][value="expense_proof"]').check()
    page.locator("#cash_receipt_brn").fill("220-81-62518")  # wrong check digit
    submit(page)
    error = page.locator("#cash_receipt_brn-error")
    expect(error).to_have_text("올바른 사업자등록번호가 아닙니다.")
    assert page.locator("#cash_receipt_brn").get_attribute("aria-invalid") == "true"
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []
    page.locator('input[name=cash_receipt_type][value="expense_proof"]').check()
    page.locator("#cash_receipt_brn").fill("220-81-62517")
    fill_form(page, flow.payer)
    submit(page)
    details_page(page, checkout)
    href = page.locator("#sandbox-deposit").get_attribute("href")
    page.goto(href)
    page.locator("button.pay").click()
    expect(page.locator("dd#status")).to_have_text(re.compile(r"^paid"))  # at the cashier
    # The sandbox's notify comes in the background: the receipt is due once the checkout
    # is paid, so wait for that (the return page, bounded) before the worker's round.
    page.goto(f"{checkout['url']}/return")
    wait_until_paid(page, checkout)
    report = run_receipts(
        live_app.session,
        live_app.app.extensions["settings"],
        live_app.app.extensions["test_catalog"],
    )
    assert report.issued == 1, report
    page.reload()
    line = page.locator("#cash-receipt-issued")
    expect(line).to_contain_text("******2517")
    expect(line).to_contain_text("지출증빙")
    assert "2208162517" not in page.content()


@pytest.mark.parametrize("viewport", VIEWPORTS, ids=list(VIEWPORTS))
def test_factura_section_in_spanish(live_app: LiveApp, page: Any, viewport: str) -> None:
    page.set_viewport_size(VIEWPORTS[viewport])
    flow = FLOW["paypro_mx_api"]
    checkout = checkout_for(live_app, flow, locale="es")
    open_form(page, checkout, flow)
    expect(page.locator("#cash-receipt")).to_have_count(0)
    page.locator("#factura summary").click()
    expect(page.locator("#factura summary")).to_have_text("¿Necesita factura?")
    fill_form(page, flow.payer)
    page.locator("#factura-wanted").check()
    page.locator("#factura_rfc").fill("XAXX010101000")
    page.locator("#factura_name").fill("Público en general")
    page.locator("#factura_regimen_fiscal").select_option("601")
    page.locator("#factura_uso_cfdi").select_option("S01")
    page.locator("#factura_postal_code").fill("06000")
    submit(page)
    expect(page.locator("#factura_regimen_fiscal-error")).to_have_text(
        "Este régimen fiscal no corresponde a este RFC."
    )
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []
    page.locator("#factura_regimen_fiscal").select_option("616")
    fill_form(page, flow.payer)
    submit(page)
    details_page(page, checkout)
    data = get_checkout(live_app.url, checkout["id"])
    assert data["invoice_data"]["rfc"] == "XAXX010101000"
    assert data["invoice_data"]["regimen_fiscal"] == "616"
