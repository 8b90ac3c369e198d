"""Diamond Pay mapping: create body and answer, notify and query, amounts x100."""

from __future__ import annotations

from datetime import date

import pytest

from checkout.domain.errors import MoneyError
from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import InstructionKind, MethodConfig, Payer, PaymentRequest
from checkout.providers.diamondpay import mapping
from checkout.providers.errors import MalformedNotify, ProviderError, UnknownProviderStatus

# The documented success response, with its trailing comma removed (the page's defect).
DOC_SUCCESS = b"""{
"error_code": "0000",
"data": {
"link": "https://pay.example.com/cashier/DEMOPM0123456",
"payment_id": "DEMOPM0123456",
"payment_cl_id": "order_20260112001",
"amount": 5001000,
"qr_code_content": "00020101021238600010A000000727013000069704480",
"token": "fabdzannfa",
"card_name": "NGUYEN VAN A",
"card_number": "0110100007725008",
"bank_name": "Asia Commercial Bank",
"bank_code": "ACB"
}
}"""

DOC_ERROR = b'{"error_code": "0004", "error_msg": "Signature verification failed!"}'


def make_request(trade_no: str = "order_20260112001", won: int = 50010) -> PaymentRequest:
    method = MethodConfig("diamond_card", "diamondpay_kr", "Card", {"service_id": "SVC0015"})
    payer = Payer("Minji", "Kim", "minji@example.com", None, date(1990, 1, 1), "127.0.0.1")
    return PaymentRequest(
        trade_no=trade_no,
        amount=Money(won, "KRW"),
        method=method,
        payer=payer,
        notify_url="https://shop.example/notify/diamondpay_kr",
        return_url="https://shop.example/return",
    )


# ---------------------------------------------------------------- amounts
@pytest.mark.parametrize(
    ("won", "wire"), [(1, 100), (10000, 1000000), (50010, 5001000), (99_999_999, 9_999_999_900)]
)
def test_amount_round_trip(won: int, wire: int) -> None:
    assert mapping.to_hundredths(Money(won, "KRW")) == wire
    assert mapping.from_hundredths(wire) == Money(won, "KRW")
    assert mapping.from_hundredths(str(wire)) == Money(won, "KRW")


@pytest.mark.parametrize("bad", [150, "1050", -100, "1e3", "", None, True, 100.0, "+100"])
def test_from_hundredths_refuses_non_whole_won(bad: object) -> None:
    with pytest.raises(ValueError):
        mapping.from_hundredths(bad)


def test_to_hundredths_refuses_other_currencies() -> None:
    with pytest.raises(MoneyError):
        mapping.to_hundredths(Money(1000, "MXN"))


# ---------------------------------------------------------------- create
def test_create_body_md5_names_its_sign_type() -> None:
    body = mapping.create_body(
        make_request(),
        platform_id="PF0002",
        service_id="SVC0016",
        sign_type="MD5",
        request_time=1595504136,
    )
    assert body == {
        "platform_id": "PF0002",
        "service_id": "SVC0016",
        "payment_cl_id": "order_20260112001",
        "amount": 5001000,
        "notify_url": "https://shop.example/notify/diamondpay_kr",
        "request_time": 1595504136,
        "sign_type": "MD5",  # sent on every request, MD5 too (psp-docs, Corrections)
    }
    assert type(body["amount"]) is int and type(body["request_time"]) is int


def test_create_body_hmac_names_its_sign_type() -> None:
    body = mapping.create_body(
        make_request(),
        platform_id="PF0002",
        service_id="SVC0015",
        sign_type="HMAC-SHA256",
        request_time=1,
    )
    assert body["sign_type"] == "HMAC-SHA256"


def test_documented_success_maps_to_instructions() -> None:
    request = make_request()
    result = mapping.create_result(mapping.parse_json(DOC_SUCCESS), request)
    assert result.status == AttemptStatus.PENDING
    assert result.platform_trade_no == "DEMOPM0123456"
    assert result.redirect_url is None
    ins = result.instructions
    assert ins is not None
    assert ins.kind == InstructionKind.BANK_CARD
    assert ins.amount == Money(50010, "KRW")
    assert ins.bank_name == "Asia Commercial Bank"
    assert ins.bank_code == "ACB"
    assert ins.account_number == "0110100007725008"
    assert ins.account_holder == "NGUYEN VAN A"
    assert ins.reference == "fabdzannfa"
    assert ins.qr_content == "00020101021238600010A000000727013000069704480"
    assert ins.cashier_url == "https://pay.example.com/cashier/DEMOPM0123456"


def test_published_example_with_trailing_comma_is_not_json() -> None:
    # Real answers are valid JSON; the parser stays strict.
    broken = DOC_SUCCESS.replace(b'"ACB"\n', b'"ACB",\n')
    with pytest.raises(ValueError):
        mapping.parse_json(broken)


def test_amount_mismatch_in_create_answer() -> None:
    with pytest.raises(ProviderError) as info:
        mapping.create_result(mapping.parse_json(DOC_SUCCESS), make_request(won=50000))
    assert info.value.code == "amount_mismatch"
    assert not info.value.retryable


def test_other_trade_no_in_create_answer() -> None:
    with pytest.raises(ProviderError) as info:
        mapping.create_result(mapping.parse_json(DOC_SUCCESS), make_request(trade_no="other"))
    assert info.value.code == "trade_no_mismatch"


def test_success_without_data_is_retryable() -> None:
    with pytest.raises(ProviderError) as info:
        mapping.create_result({"error_code": "0000"}, make_request())
    assert info.value.retryable


def test_error_0004() -> None:
    with pytest.raises(ProviderError) as info:
        mapping.create_result(mapping.parse_json(DOC_ERROR), make_request())
    assert info.value.code == "0004"
    assert info.value.message == "Signature verification failed!"
    assert not info.value.retryable


# ---------------------------------------------------------------- notify
def notify(**changes: object) -> dict[str, object]:
    body: dict[str, object] = {
        "payment_id": "DEMOPM0123456",
        "payment_cl_id": "order_20260112001",
        "platform_id": "PF0002",
        "amount": 5001000,
        "real_amount": 5001000,
        "fee": 0,
        "status": 2,
        "create_time": 1595504136,
        "update_time": 1595504236,
        "sign": "checked elsewhere",
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, AttemptStatus.PENDING),
        (1, AttemptStatus.PENDING),
        (2, AttemptStatus.PAID),
        (3, AttemptStatus.FAILED),
        ("2", AttemptStatus.PAID),
        ("3", AttemptStatus.FAILED),
    ],
)
def test_notify_status_table(status: object, expected: AttemptStatus) -> None:
    update = mapping.notify_update(notify(status=status))
    assert update.status == expected
    assert update.provider_status == str(status)
    assert update.trade_no == "order_20260112001"
    assert update.platform_trade_no == "DEMOPM0123456"


@pytest.mark.parametrize("status", [4, 9, "paid", "2.0", True, "", -1])
def test_notify_unknown_status_is_malformed(status: object) -> None:
    with pytest.raises(MalformedNotify):
        mapping.notify_update(notify(status=status))


def test_notify_paid_less_than_asked_keeps_the_real_amount() -> None:
    update = mapping.notify_update(notify(real_amount=2500000))
    # No partial status at Diamond Pay: PAID with what arrived; services compare.
    assert update.status == AttemptStatus.PAID
    assert update.amount_paid == Money(25000, "KRW")


def test_notify_fee_is_not_subtracted() -> None:
    update = mapping.notify_update(notify(fee=50000))
    assert update.amount_paid == Money(50010, "KRW")


@pytest.mark.parametrize(
    "changes",
    [
        {"real_amount": 5001050},  # not whole won
        {"real_amount": "abc"},
        {"amount": 12.5},
        {"real_amount": None},
        {"payment_cl_id": None},
        {"payment_id": ""},
        {"status": None},
    ],
)
def test_notify_malformed(changes: dict[str, object]) -> None:
    with pytest.raises(MalformedNotify):
        mapping.notify_update(notify(**changes))


# ---------------------------------------------------------------- query
def query_answer(**data: object) -> dict[str, object]:
    base: dict[str, object] = {
        "payment_id": "DEMOPM0123456",
        "payment_cl_id": "order_20260112001",
        "status": 2,
        "amount": 5001000,
        "real_amount": 5001000,
        "fee": 0,
        "success_time": 1595504236,
    }
    base.update(data)
    return {"error_code": "0000", "data": base}


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (0, AttemptStatus.PENDING),
        (1, AttemptStatus.PENDING),
        (2, AttemptStatus.PAID),
        (3, AttemptStatus.FAILED),
    ],
)
def test_query_status_table(status: int, expected: AttemptStatus) -> None:
    update = mapping.query_update(query_answer(status=status), "order_20260112001")
    assert update.status == expected
    assert update.platform_trade_no == "DEMOPM0123456"


def test_query_partial_real_amount() -> None:
    update = mapping.query_update(query_answer(real_amount=100), "order_20260112001")
    assert update.status == AttemptStatus.PAID
    assert update.amount_paid == Money(1, "KRW")


@pytest.mark.parametrize("status", [4, "x", None])
def test_query_unknown_status_raises(status: object) -> None:
    with pytest.raises(UnknownProviderStatus):
        mapping.query_update(query_answer(status=status), "order_20260112001")


def test_query_paid_without_real_amount_is_refused() -> None:
    with pytest.raises(ProviderError):
        mapping.query_update(query_answer(real_amount=None), "order_20260112001")


def test_query_order_not_found() -> None:
    with pytest.raises(ProviderError) as info:
        mapping.query_update(
            {"error_code": "0050", "error_msg": "Order not found"}, "order_20260112001"
        )
    assert info.value.code == "0050"
    assert not info.value.retryable


def test_query_path_quotes_the_trade_no() -> None:
    assert mapping.query_path("A1") == "/gateway/api/v2/payments/A1"
    assert mapping.query_path("a/b c") == "/gateway/api/v2/payments/a%2Fb%20c"


@pytest.mark.parametrize(
    ("service_id", "kind"),
    [
        ("SVC0015", InstructionKind.BANK_CARD),
        ("SVC0016", InstructionKind.BANK_DIRECT),
        ("SVC0017", InstructionKind.QR_CODE),
    ],
)
def test_each_deposit_service_says_what_the_shopper_pays_with(
    service_id: str, kind: InstructionKind
) -> None:
    assert mapping.instruction_kind_of(service_id) == kind


def test_an_unknown_deposit_service_is_an_error() -> None:
    with pytest.raises(ProviderError):
        mapping.instruction_kind_of("SVC9999")
