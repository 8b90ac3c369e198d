"""Popbill's token signature and wire mapping (checkout/receipts/popbill): pure tests.

The signature vectors were computed by the linkhub SDK's own code (PyPI linkhub 1.6.0):
`linkhub.Token().get(...)` run with a fixed x-lh-date and a connection that records the
request instead of sending it; the Authorization headers it built are the vectors below.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from checkout.domain import receipts as r
from checkout.domain.money import Money
from checkout.receipts.errors import (
    IssuerAuthError,
    IssuerError,
    MgtKeyInUse,
    OriginalNotFiled,
    ReceiptNotFound,
    UnexpectedAnswer,
)
from checkout.receipts.popbill import mapping as m
from checkout.receipts.popbill import signing

DATE = "2025-01-02T03:04:05Z"
SECRET = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
SDK_BODY = b'{"access_id": "1234567890", "scope": ["member", "140"]}'
# (link id, secret, service id, member, forwarded, Authorization as the SDK built it)
SDK_VECTORS = [
    (
        "TESTER", SECRET, "POPBILL_TEST", "1234567890", None,
        "LINKHUB TESTER tc7u/kAHlfu1s1rLn4br9PxrS/tCbggrUpffM53U0yA=",
    ),
    (
        "TESTER", SECRET, "POPBILL_TEST", "1234567890", "*",
        "LINKHUB TESTER pRkhkBMa8Ay3RUPDq8iqoyWYoCKr5x9WGv8zCBMEt4g=",
    ),
    (
        "SHOPLINK", "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3OA==", "POPBILL", "1248100998",
        None, "LINKHUB SHOPLINK NqK6sM5pRKiCBB+1RN3pXk2NWWi+c/WZCrIPc6Hz4FA=",
    ),
]  # fmt: skip


def test_the_token_body_is_the_sdks_bytes() -> None:
    assert m.token_body("1234567890") == SDK_BODY
    assert signing.body_hash(SDK_BODY) == "pXEJi5r0A1RZnYraBrmNInrTgf7tcp2BqPKI6JTn7xA="


@pytest.mark.parametrize(("link", "secret", "service", "corp", "fwd", "header"), SDK_VECTORS)
def test_signatures_match_the_sdk(
    link: str, secret: str, service: str, corp: str, fwd: str | None, header: str
) -> None:
    body = m.token_body(corp)
    signature = signing.sign(secret, body, DATE, fwd, service)
    assert signing.authorization(link, signature) == header
    assert signing.parse_authorization(header) == (link, signature)
    assert signing.verify(secret, body, DATE, fwd, service, signature)


def test_any_change_breaks_the_signature() -> None:
    body = m.token_body("1234567890")
    good = signing.sign(SECRET, body, DATE, None, "POPBILL_TEST")
    assert not signing.verify(SECRET, body + b" ", DATE, None, "POPBILL_TEST", good)
    assert not signing.verify(SECRET, body, "2025-01-02T03:04:06Z", None, "POPBILL_TEST", good)
    assert not signing.verify(SECRET, body, DATE, "*", "POPBILL_TEST", good)
    assert not signing.verify(SECRET, body, DATE, None, "POPBILL", good)
    other = "c2VjcmV0LWtleS1mb3ItdGVzdHMtb25seS0xMjM0NTY3OA=="
    assert not signing.verify(other, body, DATE, None, "POPBILL_TEST", good)
    assert not signing.verify(SECRET, body, DATE, None, "POPBILL_TEST", "ключ")


def test_the_date_and_string_to_sign() -> None:
    assert signing.lh_date(datetime(2025, 1, 2, 3, 4, 5, 678, tzinfo=UTC)) == DATE
    assert signing.string_to_sign(SDK_BODY, DATE, None, "POPBILL_TEST") == (
        "POST\npXEJi5r0A1RZnYraBrmNInrTgf7tcp2BqPKI6JTn7xA=\n"
        "2025-01-02T03:04:05Z\n2.0\n/POPBILL_TEST/Token"
    )
    with pytest.raises(signing.BadSecretKey):
        signing.sign("not base64!", SDK_BODY, DATE, None, "POPBILL")
    assert signing.parse_authorization("Bearer x") is None
    assert signing.parse_authorization("LINKHUB  sig") is None


# ---------------------------------------------------------------- settings and token
def _settings(**changes: object) -> m.PopbillSettings:
    fields: dict = {
        "name": "popbill:shop",
        "corp_num": "1248100998",
        "link_id": "SHOPLINK",
        "secret_key": SECRET,
        "corp_name": "상호",
    }
    fields.update(changes)
    return m.PopbillSettings(**fields)


def test_the_mode_picks_service_and_host() -> None:
    test = _settings()
    assert (test.service_id, test.api_base) == (
        "POPBILL_TEST",
        "https://popbill-test.linkhub.co.kr",
    )
    prod = _settings(test=False)
    assert (prod.service_id, prod.api_base) == ("POPBILL", "https://popbill.linkhub.co.kr")
    assert test.auth_base == prod.auth_base == "https://auth.linkhub.co.kr"
    assert SECRET not in repr(test)  # settings reach tracebacks and logs: no secret there
    with pytest.raises(ValueError, match="check digit"):
        _settings(corp_num="1248100997")
    with pytest.raises(ValueError, match="required"):
        _settings(secret_key="")


def test_tokens_expire_by_their_expiration_and_refresh_a_minute_early() -> None:
    token = m.parse_token(
        "p", {"session_token": "SECRET-TOKEN", "expiration": "2025-01-02T03:34:05.000Z"}
    )
    assert token.expires_at == datetime(2025, 1, 2, 3, 34, 5, tzinfo=UTC)
    assert "SECRET-TOKEN" not in repr(token)
    assert not m.refresh_due(token, datetime(2025, 1, 2, 3, 33, 4, tzinfo=UTC))
    assert m.refresh_due(token, datetime(2025, 1, 2, 3, 33, 5, tzinfo=UTC))
    for bad in ({}, {"session_token": "t"}, {"session_token": "t", "expiration": "soon"}, []):
        with pytest.raises(UnexpectedAnswer):
            m.parse_token("p", bad)


# ---------------------------------------------------------------- bodies
CHOICE = r.ReceiptChoice(r.IdentityKind.INCOME_DEDUCTION, "01012345678")
DETAILS = m.ReceiptDetails("ORD-1", "상품명", "홍길동", "buyer@example.com", "checkout co_1")


def _issue_plan(choice: r.ReceiptChoice = CHOICE, amount: int = 55_000, **policy: object):
    plan = r.receipt_for_payment(
        checkout_id="co_1",
        choice=choice,
        received=Money(amount, "KRW"),
        cash_method=True,
        policy=r.ReceiptPolicy(**policy),  # type: ignore[arg-type]
    )
    assert isinstance(plan, r.IssuePlan)
    return plan


def test_the_issue_body_is_popbills_cashbill() -> None:
    body = m.issue_body(_settings(test=False), _issue_plan(), DETAILS)
    assert body == {
        "mgtKey": r.issue_mgt_key("co_1"),
        "tradeType": "승인거래",
        "tradeUsage": "소득공제용",
        "tradeOpt": "일반",
        "taxationType": "과세",
        "totalAmount": "55000",
        "supplyCost": "50000",
        "tax": "5000",
        "serviceFee": "0",
        "franchiseCorpNum": "1248100998",
        "franchiseCorpName": "상호",
        "identityNum": "01012345678",
        "customerName": "홍길동",
        "itemName": "상품명",
        "orderNumber": "ORD-1",
        "email": "buyer@example.com",
        "smssendYN": False,
        "memo": "checkout co_1",
    }


def test_the_test_bed_never_gets_the_buyers_mail() -> None:
    assert "email" not in m.issue_body(_settings(), _issue_plan(), DETAILS)


def test_self_issued_and_exempt_receipts() -> None:
    none = r.ReceiptChoice(r.IdentityKind.NONE)
    plan = _issue_plan(none, 100_000, designated_industry=True, taxable=False)
    body = m.issue_body(_settings(), plan, DETAILS)
    assert body["identityNum"] == "010-000-1234" and body["tradeUsage"] == "소득공제용"
    assert (body["taxationType"], body["tax"], body["supplyCost"]) == ("비과세", "0", "100000")
    expense = r.ReceiptChoice(r.IdentityKind.EXPENSE_PROOF, "1248100998")
    assert m.issue_body(_settings(), _issue_plan(expense), DETAILS)["tradeUsage"] == "지출증빙용"


ORIGINAL = r.IssuedReceipt("RI-X", "TB0000253", "20250102", r.vat_split(55_000, taxable=True))


def test_cancel_bodies_reference_the_original() -> None:
    part = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_1", original=ORIGINAL, refund=Money(20_000, "KRW"),
        taxable=True,
    )  # fmt: skip
    assert m.cancel_body(part, "partial refund") == {
        "mgtKey": r.cancel_mgt_key("co_1", "re_1"),
        "orgConfirmNum": "TB0000253",
        "orgTradeDate": "20250102",
        "smssendYN": False,
        "memo": "partial refund",
        "isPartCancel": True,
        "cancelType": 1,
        "supplyCost": "18182",
        "tax": "1818",
        "serviceFee": "0",
        "totalAmount": "20000",
    }
    full = r.cancel_for_refund(
        checkout_id="co_1", refund_id="re_1", original=ORIGINAL, refund=Money(55_000, "KRW"),
        taxable=True,
    )  # fmt: skip
    body = m.cancel_body(full)
    assert body["isPartCancel"] is False and "totalAmount" not in body and "memo" not in body


# ---------------------------------------------------------------- answers
def test_issue_answers() -> None:
    ok = {"code": 1, "message": "ok", "confirmNum": "TB0000253", "tradeDate": "20250102"}
    assert m.issue_result("p", ok) == m.IssueResult("TB0000253", "20250102", None)
    for bad in ({**ok, "code": 0}, {**ok, "confirmNum": ""}, {**ok, "tradeDate": "2025-01-02"}):
        with pytest.raises(UnexpectedAnswer):
            m.issue_result("p", bad)


INFO = {
    "itemKey": "020010215000000001",
    "mgtKey": "RI-X",
    "tradeDate": "20250102",
    "tradeType": "승인거래",
    "tradeUsage": "소득공제용",
    "totalAmount": "55000",
    "stateCode": 304,
    "identityNum": "01012345678",
    "confirmNum": "TB0000253",
    "ntsresultCode": "0000",
}


def test_receipt_info_is_read_once_and_masked() -> None:
    info = m.receipt_info("p", INFO)
    assert info.state is r.ReceiptState.FILED and info.total == 55_000
    assert info.masked_identity == "*******5678" and not info.cancel
    assert "01012345678" not in repr(info)
    assert m.is_same_receipt(info, 55_000) and not m.is_same_receipt(info, 55_001)
    cancel = m.receipt_info("p", {**INFO, "tradeType": "취소거래", "orgConfirmNum": "TB1"})
    assert cancel.cancel and cancel.org_confirm_num == "TB1"


@pytest.mark.parametrize(
    "change", [{"stateCode": 100}, {"stateCode": None}, {"itemKey": ""}, {"totalAmount": "x"}]
)
def test_an_unknown_receipt_answer_is_an_error(change: dict) -> None:
    with pytest.raises(UnexpectedAnswer):
        m.receipt_info("p", {**INFO, **change})


@pytest.mark.parametrize(
    ("status", "payload", "kind", "retryable"),
    [
        (400, {"code": -14001019, "message": "in use"}, MgtKeyInUse, False),
        (400, {"code": -14000004, "message": "in use"}, MgtKeyInUse, False),
        (400, {"code": -14000003, "message": "none"}, ReceiptNotFound, False),
        (400, {"code": -14001021, "message": "not filed"}, OriginalNotFiled, True),
        (401, {"code": -10000033, "message": "token"}, IssuerAuthError, True),
        (401, {"code": -10000032, "message": "token"}, IssuerAuthError, False),
        (400, {"code": -14001023, "message": "exceeds"}, IssuerError, False),
        (500, {"code": -99999999, "message": "down"}, IssuerError, True),
        (502, None, IssuerError, True),
        (404, "html", IssuerError, False),
    ],
)
def test_errors_are_typed(status: int, payload: object, kind: type, retryable: bool) -> None:
    error = m.error_for("popbill:shop", status, payload)
    assert type(error) is kind and error.retryable is retryable
    if isinstance(payload, dict):
        assert error.code == str(payload["code"])
    else:
        assert error.code == f"http_{status}"


def test_management_key_paths_are_checked() -> None:
    assert m.mgt_key_path("RI-ABC") == "/Cashbill/RI-ABC"
    with pytest.raises(ValueError):
        m.mgt_key_path("../States")
