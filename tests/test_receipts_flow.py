"""Cash receipts end to end (issue 24): asked for through the API, issued by the worker's
receipts step against our Popbill sandbox over real HTTP once the checkout is paid, never
twice (a crash between the call and our write), cancelled for every sent refund (partial,
then the rest), a cancel refused before the NTS filing retried later; the shop hears
`receipt.*`; identities masked everywhere. Mexican invoice data through the API."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
import requests
from sqlalchemy import event, select

from checkout.services.receipts import run_receipts
from checkout.services.refunds import send_refunds
from checkout.store.models import (
    CashReceipt,
    ReceiptRequest,
    Refund,
    StateEvent,
    WebhookEvent,
    utcnow,
)
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, Shopper, api_headers, create_checkout, get_checkout
from tests.test_flows import cashier_url, settle
from tests.test_refunds_api import REFUND_KEY, body, post_refund

MEMBER = "1248100998"
VA = next(f for f in FLOWS if f.name == "teemopay_kr")  # a KRW virtual account: cash
WALLET = next(f for f in FLOWS if f.name == "paypro_kr_link")  # KakaoPay: not cash
BRN = "2208162517"

pytestmark = [
    pytest.mark.store_config(
        shop={
            "refund_api_keys": [REFUND_KEY],
            "cash_receipts": {"corp_num": MEMBER, "designated_industry": True},
        }
    ),
    pytest.mark.app_config(refunds={"approval_thresholds": {"KRW": 100_000}}),
]


def settings(live_app: LiveApp) -> Any:
    return live_app.app.extensions["settings"]


@pytest.fixture(autouse=True)
def popbill_member(live_app: LiveApp) -> None:
    """The sandbox's Popbill knows our store's partner and member (as `flask sandbox` does)."""
    config = settings(live_app).stores["shop"].cash_receipts
    if config is None:
        return
    book = live_app.sandbox.state.popbill
    book.partners[config.link_id] = config.secret_key
    book.members.add(MEMBER)


def run_round(live_app: LiveApp, **kwargs: Any):  # type: ignore[no-untyped-def]
    catalog = live_app.app.extensions["test_catalog"]
    return run_receipts(live_app.session, settings(live_app), catalog, **kwargs)


def paid(live_app: LiveApp, flow: Any = VA, **create: Any) -> dict[str, Any]:
    checkout = create_checkout(live_app.url, amount=flow.amount, currency=flow.currency, **create)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(flow.method, flow.payer)
    assert resp.status_code == 303, resp.text
    settle(live_app, cashier_url(live_app, flow, resp, shopper), "pay")
    return checkout


def receipts(live_app: LiveApp, checkout_id: str) -> list[CashReceipt]:
    with live_app.session() as session:
        rows = session.scalars(
            select(CashReceipt)
            .where(CashReceipt.checkout_id == checkout_id)
            .order_by(CashReceipt.id)
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def at_popbill(live_app: LiveApp) -> list[Any]:
    return live_app.sandbox.state.popbill.all()


def shop_events(live_app: LiveApp, checkout_id: str) -> list[WebhookEvent]:
    with live_app.session() as session:
        rows = session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.checkout_id == checkout_id)
            .order_by(WebhookEvent.id)
        ).all()
        for row in rows:
            session.expunge(row)
        return list(rows)


def timeline(live_app: LiveApp, checkout_id: str) -> list[str]:
    with live_app.session() as session:
        return [
            f"{e.to_status}: {e.detail}"
            for e in session.scalars(
                select(StateEvent)
                .where(StateEvent.checkout_id == checkout_id, StateEvent.kind == "receipt")
                .order_by(StateEvent.id)
            )
        ]


def file_all(live_app: LiveApp) -> None:
    resp = requests.post(f"{live_app.sandbox.url}/_sandbox/popbill/file", json={}, timeout=5)
    assert resp.status_code == 200, resp.text


def due_now(live_app: LiveApp) -> None:
    """Make every waiting row due (the retry schedule is hours; no timed tests)."""
    with live_app.session() as session:
        for row in session.scalars(select(CashReceipt).where(CashReceipt.next_try_at.is_not(None))):
            row.next_try_at = utcnow() - timedelta(seconds=1)
        session.commit()


# ---------------------------------------------------------------- the request
def test_the_choice_is_taken_through_the_api_sealed_and_masked(live_app: LiveApp) -> None:
    checkout = create_checkout(
        live_app.url, cash_receipt={"type": "income_deduction", "identity": "010-1234-5678"}
    )
    assert checkout["cash_receipt"]["type"] == "income_deduction"
    assert checkout["cash_receipt"]["identity"] == "*******5678"
    assert checkout["cash_receipt"]["state"] == "requested"
    assert checkout["invoice_data"] is None
    with live_app.session() as session:
        row = session.get(ReceiptRequest, checkout["id"])
        assert row is not None and row.identity_token and "5678" not in row.identity_token
    assert (
        "01012345678"
        not in requests.get(
            f"{live_app.url}/api/v1/checkouts/{checkout['id']}", headers=api_headers(), timeout=10
        ).text
    )


def test_the_choice_is_written_with_the_checkout_or_not_at_all(
    live_app: LiveApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The create's receipt request is part of the checkout's own transaction: a crash while
    it is written leaves no checkout behind (before, the checkout was committed first and
    the choice was lost), and a create that succeeds has both."""
    from checkout.domain import receipts as receipt_rules
    from checkout.extensions import catalog_of
    from checkout.services.checkouts import create_checkout as create_use_case
    from checkout.services.checkouts import parse_new_checkout
    from checkout.store.models import Checkout

    app_settings = settings(live_app)
    store = app_settings.stores["shop"]
    body = {
        "order_id": "receipt-atomic-1",
        "amount": 15000,
        "currency": "KRW",
        "return_url": "https://shop.example/done",
        "cash_receipt": {"type": "income_deduction", "identity": "010-1234-5678"},
    }

    def crash(_identity: str) -> str:
        raise RuntimeError("the process died here")

    def nothing_written() -> None:
        with live_app.session() as session:
            found = session.scalars(select(Checkout).where(Checkout.order_id == body["order_id"]))
            assert found.all() == []
            assert session.scalars(select(ReceiptRequest)).all() == []

    with live_app.app.app_context():
        new = parse_new_checkout(body, store, catalog_of(live_app.app))
    with monkeypatch.context() as patch, live_app.session() as session:
        patch.setattr(receipt_rules, "mask_identity", crash)
        with pytest.raises(RuntimeError):
            create_use_case(
                session, store, new, timedelta(hours=1), True, app_settings.account_cipher
            )
        session.rollback()
    nothing_written()

    # The checkout's INSERT has gone to the database when the request's fails: the
    # transaction takes both back.
    def refuse_insert(*_args: Any) -> None:
        raise RuntimeError("the database refused the request's row")

    event.listen(ReceiptRequest, "before_insert", refuse_insert)
    try:
        with live_app.session() as session:
            with pytest.raises(RuntimeError):
                create_use_case(
                    session, store, new, timedelta(hours=1), True, app_settings.account_cipher
                )
            session.rollback()
    finally:
        event.remove(ReceiptRequest, "before_insert", refuse_insert)
    nothing_written()

    with live_app.session() as session:
        checkout, created = create_use_case(
            session, store, new, timedelta(hours=1), True, app_settings.account_cipher
        )
        assert created
        checkout_id = checkout.id
    with live_app.session() as session:
        row = session.get(ReceiptRequest, checkout_id)
        assert row is not None and row.identity_masked == "*******5678"


@pytest.mark.parametrize(
    ("cash_receipt", "code", "field"),
    [
        ({"type": "income_deduction", "identity": "02-123-4567"}, "invalid_mobile", "identity"),
        ({"type": "income_deduction"}, "identity_required", "identity"),
        (
            {"type": "expense_proof", "identity": "220-81-62518"},
            "invalid_business_number",
            "identity",
        ),
        ({"type": "expense_proof", "identity": "22081625"}, "invalid_business_number", "identity"),
        ({"type": "paper"}, "invalid_receipt_type", "type"),
        ({"type": 3}, "invalid_receipt_type", "type"),
    ],
)
def test_a_bad_choice_is_refused_and_creates_nothing(
    live_app: LiveApp, cash_receipt: dict, code: str, field: str
) -> None:
    resp = requests.post(
        f"{live_app.url}/api/v1/checkouts",
        json={
            "order_id": "bad-receipt",
            "amount": 15000,
            "currency": "KRW",
            "return_url": "https://shop.example/done",
            "cash_receipt": cash_receipt,
        },
        headers=api_headers(),
        timeout=10,
    )
    assert resp.status_code == 400, resp.text
    error = resp.json()["error"]
    assert error["code"] == code and error["field"] == f"cash_receipt.{field}"
    listed = requests.get(
        f"{live_app.url}/api/v1/checkouts?order_id=bad-receipt", headers=api_headers(), timeout=10
    )
    assert listed.json()["data"] == []


def test_each_identity_kind_is_accepted(live_app: LiveApp) -> None:
    for choice, masked in (
        ({"type": "expense_proof", "identity": "220-81-62517"}, "******2517"),
        ({"type": "income_deduction", "identity": "+82 10 9876 5432"}, "*******5432"),
        ({"type": "none"}, None),
    ):
        checkout = create_checkout(live_app.url, cash_receipt=choice)
        assert checkout["cash_receipt"]["type"] == choice["type"]
        assert checkout["cash_receipt"]["identity"] == masked


def test_mexican_invoice_data_through_the_api(live_app: LiveApp) -> None:
    invoice = {
        "rfc": "XAXX010101000",
        "name": "Público en general",
        "regimen_fiscal": "616",
        "uso_cfdi": "S01",
        "postal_code": "06000",
        "email": "factura@example.mx",
    }
    checkout = create_checkout(live_app.url, currency="MXN", amount=25000, invoice_data=invoice)
    assert checkout["invoice_data"]["rfc"] == "XAXX010101000"
    assert checkout["invoice_data"]["uso_cfdi"] == "S01"
    assert checkout["cash_receipt"] is None
    bad = requests.post(
        f"{live_app.url}/api/v1/checkouts",
        json={
            "order_id": "bad-factura",
            "amount": 25000,
            "currency": "MXN",
            "return_url": "https://shop.example/done",
            "invoice_data": {**invoice, "uso_cfdi": "G03"},
        },
        headers=api_headers(),
        timeout=10,
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["field"] == "invoice_data.uso_cfdi"
    krw = requests.post(
        f"{live_app.url}/api/v1/checkouts",
        json={
            "order_id": "krw-factura",
            "amount": 25000,
            "currency": "KRW",
            "return_url": "https://shop.example/done",
            "invoice_data": invoice,
        },
        headers=api_headers(),
        timeout=10,
    )
    assert krw.status_code == 400 and krw.json()["error"]["code"] == "invoice_data_not_mxn"


# ---------------------------------------------------------------- issue
def test_a_paid_virtual_account_gets_its_receipt_once(live_app: LiveApp) -> None:
    checkout = paid(live_app, cash_receipt={"type": "expense_proof", "identity": "220-81-62517"})
    report = run_round(live_app)
    assert report.decided == 1 and report.issued == 1, report
    [row] = receipts(live_app, checkout["id"])
    assert row.state == "issued" and row.confirm_num and row.total == VA.amount
    assert row.usage == "지출증빙용" and row.identity_masked == "******2517"
    [sent] = at_popbill(live_app)
    assert sent.mgt_key == row.mgt_key and sent.fields["identityNum"] == BRN
    # Another round issues nothing more.
    assert run_round(live_app).issued == 0
    assert len(at_popbill(live_app)) == 1
    data = get_checkout(live_app.url, checkout["id"])
    assert data["cash_receipt"]["state"] == "issued"
    assert data["cash_receipt"]["confirmation_number"] == row.confirm_num
    assert data["cash_receipt"]["identity"] == "******2517"
    [event] = [e for e in shop_events(live_app, checkout["id"]) if e.type.startswith("receipt.")]
    assert event.type == "receipt.issued"
    assert event.payload["data"]["cash_receipt"]["confirmation_number"] == row.confirm_num
    lines = timeline(live_app, checkout["id"])
    assert any(line.startswith("issued:") for line in lines), lines
    assert all(BRN not in line for line in lines)
    # Filed by the NTS: the follow-up query moves it forward.
    file_all(live_app)
    due_now(live_app)
    run_round(live_app)
    assert receipts(live_app, checkout["id"])[0].state == "filed"


def test_no_second_issue_after_a_crash_between_the_call_and_the_write(live_app: LiveApp) -> None:
    checkout = paid(live_app)  # asked for nothing; ₩30,000 is below the threshold
    assert run_round(live_app).decided == 0
    assert timeline(live_app, checkout["id"]) == ["none: no cash receipt: not_asked"]
    big = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})

    class Crash(Exception):
        pass

    def crash(_key: str) -> None:
        raise Crash

    report = run_round(live_app, after_call=crash)
    assert report.issued == 0 and report.errors, report
    [row] = receipts(live_app, big["id"])
    assert row.state == "pending" and row.confirm_num is None  # our write never happened
    assert len(at_popbill(live_app)) == 1  # but Popbill has it
    due_now(live_app)  # the lease of the crashed claim ends
    report = run_round(live_app)
    assert report.issued == 1, report
    assert len(at_popbill(live_app)) == 1  # queried first: no second receipt
    [row] = receipts(live_app, big["id"])
    assert row.state == "issued" and row.confirm_num == at_popbill(live_app)[0].confirm_num


def test_an_ewallet_payment_gets_no_receipt(live_app: LiveApp) -> None:
    checkout = paid(
        live_app, WALLET, cash_receipt={"type": "income_deduction", "identity": "01012345678"}
    )
    run_round(live_app)
    assert receipts(live_app, checkout["id"]) == []
    assert timeline(live_app, checkout["id"]) == ["none: no cash receipt: not_cash"]
    assert at_popbill(live_app) == []


def test_a_refused_issue_is_retried_then_fails_and_the_shop_hears(live_app: LiveApp) -> None:
    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    live_app.sandbox.state.inject_fault("popbill", "http_500", endpoint="issue")
    report = run_round(live_app)
    assert report.retrying == 1, report
    [row] = receipts(live_app, checkout["id"])
    assert row.state == "pending" and row.tries == 1 and row.next_try_at is not None
    assert row.next_try_at > utcnow()  # not before its time
    live_app.sandbox.state.inject_fault(
        "popbill", "refuse", endpoint="issue", code="14001002", message="bad identity"
    )
    due_now(live_app)
    report = run_round(live_app)
    assert report.failed == 1, report
    [row] = receipts(live_app, checkout["id"])
    assert row.state == "refused" and row.last_error_code == "-14001002"
    types = [e.type for e in shop_events(live_app, checkout["id"])]
    assert "receipt.failed" in types and "receipt.issued" not in types


# ---------------------------------------------------------------- cancels
def refund(live_app: LiveApp, checkout_id: str, amount: int) -> str:
    live_app.sandbox.state.config.payout_settle_after = 0.1
    resp = post_refund(live_app, checkout_id, body(amount))
    assert resp.status_code == 201, resp.text
    public_id = resp.json()["id"]
    send_refunds(
        live_app.session,
        settings(live_app),
        payouts_for=live_app.app.extensions["catalog"].payouts.__getitem__,
    )
    # The payout settles 0.1 s after its create and its notify marks the refund sent. Wait by
    # the clock (bounded): the notifier is idle until the settle timer fires, so waiting on it
    # alone returned at once and the loop could end before the payout settled.
    deadline = time.monotonic() + 15
    while True:
        with live_app.session() as session:
            status = session.scalars(
                select(Refund.status).where(Refund.public_id == public_id)
            ).one()
        if status == "sent":
            return public_id
        if time.monotonic() > deadline:
            raise AssertionError(f"refund {public_id} is {status}")
        live_app.sandbox.state.notifier.wait_idle(0.05)
        time.sleep(0.02)


def test_partial_then_full_cancels_follow_the_refunds(live_app: LiveApp) -> None:
    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    run_round(live_app)
    [original] = receipts(live_app, checkout["id"])
    first = refund(live_app, checkout["id"], 10_000)
    # Refused with -14001021 until the original is filed: retried later.
    report = run_round(live_app)
    assert report.retrying == 1, report
    cancel = receipts(live_app, checkout["id"])[1]
    assert cancel.kind == "cancel" and cancel.state == "pending"
    assert cancel.last_error_code == "-14001021" and cancel.next_try_at > utcnow()
    assert len(at_popbill(live_app)) == 1
    file_all(live_app)
    due_now(live_app)
    report = run_round(live_app)
    assert report.cancelled == 1, report
    cancel = receipts(live_app, checkout["id"])[1]
    assert cancel.state == "issued" and cancel.partial and cancel.total == 10_000
    assert cancel.org_confirm_num == original.confirm_num
    # The rest: a second partial cancel for the remaining ₩20,000.
    refund(live_app, checkout["id"], 20_000)
    assert run_round(live_app).cancelled == 1
    rows = receipts(live_app, checkout["id"])
    assert [r.total for r in rows if r.kind == "cancel"] == [10_000, 20_000]
    assert len(at_popbill(live_app)) == 3
    data = get_checkout(live_app.url, checkout["id"])
    assert [c["amount"] for c in data["cash_receipt"]["cancels"]] == [10_000, 20_000]
    assert data["cash_receipt"]["cancels"][0]["refund_id"] == first
    types = [e.type for e in shop_events(live_app, checkout["id"])]
    assert types.count("receipt.cancelled") == 2


def test_a_full_refund_issues_a_full_cancel(live_app: LiveApp) -> None:
    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    run_round(live_app)
    file_all(live_app)
    refund(live_app, checkout["id"], VA.amount)
    assert run_round(live_app).cancelled == 1
    cancel = receipts(live_app, checkout["id"])[1]
    assert cancel.state == "issued" and not cancel.partial and cancel.total == VA.amount


def test_the_one_worker_round_issues_receipts(live_app: LiveApp) -> None:
    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    result = live_app.app.test_cli_runner().invoke(args=["worker", "--once"])
    assert result.exit_code == 0, result.output
    [row] = receipts(live_app, checkout["id"])
    assert row.state == "issued" and len(at_popbill(live_app)) == 1


# ---------------------------------------------------------------- the console
def test_the_console_shows_the_receipt_and_retries_a_refused_one(live_app: LiveApp) -> None:
    from checkout.store.models import OperatorAction
    from tests.test_admin import _post, add_operator, flashes, login

    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    live_app.sandbox.state.inject_fault(
        "popbill", "refuse", endpoint="issue", code="14001002", message="refused"
    )
    run_round(live_app)
    [row] = receipts(live_app, checkout["id"])
    assert row.state == "refused"
    add_operator(live_app)
    http = login(live_app)
    page = http.get(f"{live_app.url}/admin/checkouts/{checkout['id']}", timeout=10).text
    assert 'id="cash-receipt"' in page and "*******5678" in page and "01012345678" not in page
    assert "-14001002" in page and "Retry" in page
    # Without the CSRF token nothing changes.
    bare = http.post(
        f"{live_app.url}/admin/checkouts/{checkout['id']}/receipt/retry",
        data={"target": str(row.id)},
        timeout=10,
    )
    assert bare.status_code == 400
    assert receipts(live_app, checkout["id"])[0].state == "refused"
    resp = _post(http, live_app, checkout["id"], "receipt/retry", target=str(row.id))
    assert any("due again" in f for f in flashes(resp.text)), flashes(resp.text)
    assert run_round(live_app).issued == 1
    assert receipts(live_app, checkout["id"])[0].state == "issued"
    with live_app.session() as session:
        assert session.scalars(
            select(OperatorAction.action).where(OperatorAction.action == "receipt_retry")
        ).all() == ["receipt_retry"]


@pytest.mark.store_config(shop={"cash_receipts": None})
def test_a_store_without_an_issuer_issues_nothing_and_the_console_says_so(
    live_app: LiveApp,
) -> None:
    from tests.test_admin import add_operator, login

    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    run_round(live_app)
    assert receipts(live_app, checkout["id"]) == [] and at_popbill(live_app) == []
    add_operator(live_app)
    page = login(live_app).get(f"{live_app.url}/admin/checkouts/{checkout['id']}", timeout=10)
    assert 'id="no-issuer"' in page.text and "no cash-receipt issuer" in page.text
    assert "Issue now" not in page.text


# ---------------------------------------------------------------- the shopper's form
def test_the_form_asks_for_the_receipt_on_cash_methods_only(live_app: LiveApp) -> None:
    checkout = create_checkout(
        live_app.url, amount=VA.amount, locale="ko", prefill={"mobile": "010-2222-3333"}
    )
    shopper = Shopper(checkout["url"])
    page = shopper.open(VA.method).text
    assert 'id="cash-receipt"' in page and "현금영수증" in page and "신청 안 함" in page
    assert 'value="income_deduction" checked' in page  # prefilled from the payer's mobile
    assert 'value="01022223333"' in page
    assert 'id="cash-receipt"' not in shopper.open(WALLET.method).text  # KakaoPay: not cash
    mx = create_checkout(live_app.url, amount=25000, currency="MXN", locale="es")
    assert 'id="cash-receipt"' not in Shopper(mx["url"]).open("mx_spei").text


@pytest.mark.parametrize(
    ("locale", "fields", "field", "message"),
    [
        ("ko", {"cash_receipt_type": "expense_proof", "cash_receipt_brn": "220-81-62518"},
         "cash_receipt_brn", "올바른 사업자등록번호가 아닙니다."),
        ("ko", {"cash_receipt_type": "income_deduction", "cash_receipt_mobile": "02-123-4567"},
         "cash_receipt_mobile", "010-1234-5678 형식의 휴대폰 번호를 입력해 주세요."),
        ("en", {"cash_receipt_type": "expense_proof", "cash_receipt_brn": ""},
         "cash_receipt_brn", "Enter the number to issue the receipt to."),
        ("es", {"cash_receipt_type": "paper"},
         "cash_receipt_mobile", "Elija una de las opciones de comprobante."),
    ],
)  # fmt: skip
def test_a_bad_receipt_choice_is_refused_in_the_shoppers_language_and_starts_nothing(
    live_app: LiveApp, locale: str, fields: dict, field: str, message: str
) -> None:
    checkout = create_checkout(live_app.url, amount=VA.amount, locale=locale)
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(VA.method, {**VA.payer, **fields})
    assert resp.status_code == 422, resp.text[:300]
    assert f'id="{field}-error">{message}<' in resp.text
    data = get_checkout(live_app.url, checkout["id"])
    assert data["payment_attempts"] == [] and data["cash_receipt"] is None


def test_the_shoppers_choice_is_kept_issued_and_shown_on_the_paid_page(live_app: LiveApp) -> None:
    checkout = create_checkout(live_app.url, amount=VA.amount, locale="ko")
    shopper = Shopper(checkout["url"])
    resp = shopper.submit(
        VA.method,
        {**VA.payer, "cash_receipt_type": "expense_proof", "cash_receipt_brn": "220-81-62517"},
    )
    assert resp.status_code == 303, resp.text[:300]
    assert get_checkout(live_app.url, checkout["id"])["cash_receipt"]["identity"] == "******2517"
    settle(live_app, cashier_url(live_app, VA, resp, shopper), "pay")
    assert run_round(live_app).issued == 1
    page = shopper.http.get(f"{live_app.url}/c/{checkout['id']}/return", timeout=10).text
    assert 'id="cash-receipt-issued"' in page and "******2517" in page
    assert "2208162517" not in page and "지출증빙" in page


def test_factura_data_from_the_form(live_app: LiveApp) -> None:
    mx_flow = next(f for f in FLOWS if f.name == "paypro_mx_api")
    checkout = create_checkout(live_app.url, amount=mx_flow.amount, currency="MXN", locale="es")
    shopper = Shopper(checkout["url"])
    page = shopper.open(mx_flow.method).text
    assert "¿Necesita factura?" in page and 'value="616"' in page
    factura = {
        "factura": "1",
        "factura_rfc": "XAXX010101000",
        "factura_name": "Público en general",
        "factura_regimen_fiscal": "601",
        "factura_uso_cfdi": "S01",
        "factura_postal_code": "06000",
        "factura_email": "",
    }
    bad = shopper.submit(mx_flow.method, {**mx_flow.payer, **factura})
    assert bad.status_code == 422
    assert "Este régimen fiscal no corresponde a este RFC." in bad.text
    assert get_checkout(live_app.url, checkout["id"])["payment_attempts"] == []
    ok = shopper.submit(
        mx_flow.method, {**mx_flow.payer, **factura, "factura_regimen_fiscal": "616"}
    )
    assert ok.status_code == 303, ok.text[:300]
    data = get_checkout(live_app.url, checkout["id"])
    assert data["invoice_data"]["rfc"] == "XAXX010101000"
    assert data["invoice_data"]["regimen_fiscal"] == "616"
    [told] = [e for e in shop_events(live_app, checkout["id"]) if "invoice" in e.type]
    assert told.type == "checkout.invoice_data_provided"
    assert told.payload["data"]["invoice_data"]["rfc"] == "XAXX010101000"
    # Not asked for: nothing is kept.
    other = create_checkout(live_app.url, amount=mx_flow.amount, currency="MXN")
    resp = Shopper(other["url"]).submit(mx_flow.method, {**mx_flow.payer})
    assert resp.status_code == 303
    assert get_checkout(live_app.url, other["id"])["invoice_data"] is None


def test_old_sales_are_not_issued_by_the_worker_but_an_operator_can(live_app: LiveApp) -> None:
    from checkout.services.receipts import issue_now
    from checkout.store.models import Checkout

    checkout = paid(live_app, cash_receipt={"type": "income_deduction", "identity": "01012345678"})
    with live_app.session() as session:
        row = session.get(Checkout, checkout["id"])
        assert row is not None
        row.updated_at = utcnow() - timedelta(days=30)
        session.commit()
    assert run_round(live_app).decided == 0 and receipts(live_app, checkout["id"]) == []
    with live_app.session() as session:
        issue_now(
            session, settings(live_app), live_app.app.extensions["test_catalog"], checkout["id"]
        )
    assert run_round(live_app).issued == 1


def test_a_designated_store_self_issues_from_its_threshold_and_an_operator_can_issue_now(
    live_app: LiveApp,
) -> None:
    from tests.test_admin import _post, add_operator, flashes, login

    checkout = paid(live_app, VA.__class__(**{**VA.__dict__, "amount": 100_000}))
    assert run_round(live_app).issued == 1
    [row] = receipts(live_app, checkout["id"])
    assert row.self_issued and row.identity_masked == "010-000-1234" and row.total == 100_000
    assert at_popbill(live_app)[0].fields["identityNum"] == "010-000-1234"
    # Below the threshold and asked for nothing: none, and "Issue now" says so.
    small = paid(live_app)
    run_round(live_app)
    add_operator(live_app)
    http = login(live_app)
    resp = _post(http, live_app, small["id"], "receipt/issue")
    assert any("No cash receipt is owed" in f for f in flashes(resp.text)), flashes(resp.text)
    assert receipts(live_app, small["id"]) == []
