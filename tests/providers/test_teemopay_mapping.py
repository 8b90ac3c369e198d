"""TeemoPay mapping: request body, create/query answers, callbacks. Pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import InstructionKind, MethodConfig, Payer, PaymentRequest
from checkout.providers.errors import MalformedNotify, ProviderError, UnknownProviderStatus
from checkout.providers.teemopay import mapping

# The response example from teemopay-kr-payin.txt, as published.
DOC_RESPONSE = (
    '{ "msg": "success", "traceId": "747bbf80261844ed85b809212aab0d81.85.17422898158610299", '
    '"code": 200, "data": { "amount": "1000.00", "tradeNo": "TS2501010001KR0000000000000000", '
    '"additionalInfo": {"bankCode":"IBK","bankName":"기업은행","expiredTime":1761022567000}, '
    '"merchantOrderNo": "OrderNoExample", "paymentInfo": "29900000000000", "paymentType": 801, '
    '"status": 1 }}'
).encode()

NOW = datetime(2025, 10, 21, 3, 0, tzinfo=UTC)


def _request(**overrides: object) -> PaymentRequest:
    values: dict[str, object] = {
        "trade_no": "20251021030000aabbccddeeff001122",
        "amount": Money(15000, "KRW"),
        "method": MethodConfig("teemopay_va", "teemopay_kr", "VA", {"payment_type": 801}),
        "payer": Payer("길동", "홍", None, None, None, "127.0.0.1"),
        "notify_url": "https://pay.example/notify/teemopay_kr",
        "return_url": "https://shop.example/done",
        "expires_at": None,
    }
    values.update(overrides)
    return PaymentRequest(**values)  # type: ignore[arg-type]


# ---------------------------------------------------------------- create body
def test_create_body_minimal_leaves_out_empty_fields() -> None:
    body = mapping.build_create_body(
        _request(), merchant_name="Test Shop", payment_type=801, now=NOW
    )
    assert body == {
        "merchantOrderNo": "20251021030000aabbccddeeff001122",
        "paymentType": 801,
        "realName": "홍길동",  # Korean order: family name first, no space
        "merchantName": "Test Shop",
        "amount": "15000",
        "callbackUrl": "https://pay.example/notify/teemopay_kr",
    }


def test_create_body_with_optional_fields() -> None:
    payer = Payer("Jane", "Doe", "jane@example.com", "01012345678", None, "127.0.0.1")
    body = mapping.build_create_body(
        _request(payer=payer, expires_at=NOW + timedelta(minutes=30)),
        merchant_name="Test Shop",
        payment_type=801,
        now=NOW,
    )
    assert body["realName"] == "Jane Doe"
    assert body["email"] == "jane@example.com"
    assert body["phone"] == "01012345678"
    assert body["expirationTime"] == mapping.datetime_to_ms(NOW + timedelta(minutes=29))


def test_expiration_is_clamped_to_two_hours() -> None:
    far = NOW + timedelta(hours=24)
    sent = mapping.expiration_ms(far, NOW)
    assert sent is not None
    limit = mapping.datetime_to_ms(NOW + timedelta(hours=2))
    assert limit - 5 * 60_000 < sent <= limit
    assert mapping.expiration_ms(None, NOW) is None
    with pytest.raises(mapping.ExpiredRequest):
        mapping.expiration_ms(NOW + timedelta(seconds=10), NOW)


def test_amount_must_be_whole_krw() -> None:
    assert mapping.amount_text(Money(1000, "KRW")) == "1000"
    with pytest.raises(ValueError):
        mapping.amount_text(Money(1000, "MXN"))


# ---------------------------------------------------------------- create answer
def test_documented_response_maps_to_pending_instructions() -> None:
    result = mapping.parse_create_response(mapping.parse_json(DOC_RESPONSE))
    assert result.status == AttemptStatus.PENDING
    assert result.platform_trade_no == "TS2501010001KR0000000000000000"
    assert result.provider_status == "1"
    ins = result.instructions
    assert ins is not None
    assert ins.kind == InstructionKind.BANK_TRANSFER
    assert ins.amount == Money(1000, "KRW")
    assert ins.bank_name == "기업은행"
    assert ins.bank_code == "IBK"
    assert ins.account_number == "29900000000000"
    assert ins.qr_content == "29900000000000"
    assert ins.expires_at == datetime(2025, 10, 21, 4, 56, 7, tzinfo=UTC)
    assert ins.expires_at == datetime.fromtimestamp(1761022567, tz=UTC)


def _answer(**data: object) -> dict[str, object]:
    return {"msg": "success", "traceId": "t", "code": 200, "data": data}


def test_create_status_3_is_failed_with_error_message() -> None:
    result = mapping.parse_create_response(
        _answer(status=3, tradeNo="TS1", merchantOrderNo="o", errorMsg="Account frozen")
    )
    assert result.status == AttemptStatus.FAILED
    assert result.failure_message == "Account frozen"
    assert result.instructions is None
    assert result.platform_trade_no == "TS1"


@pytest.mark.parametrize("status", [2, 0, 9, None, "x", True])
def test_create_unknown_status_raises(status: object) -> None:
    with pytest.raises(UnknownProviderStatus):
        mapping.parse_create_response(_answer(status=status, paymentInfo="1", amount="1"))


@pytest.mark.parametrize(
    ("message", "retryable"),
    [
        ("Transaction amount exceeds limit, kindly retry within allowed range.", False),
        ("Channel request error, technicians will fix ASAP.", True),
        ("Unstable network, kindly retry later.", True),
        ("Parameter validation error, kindly verify and retry.", False),
        ("Duplicate merchant order, kindly verify and retry.", False),
        ("Something new", False),
    ],
)
def test_refusals_map_to_provider_errors(message: str, retryable: bool) -> None:
    with pytest.raises(ProviderError) as info:
        mapping.parse_create_response({"msg": message, "traceId": "t", "code": 500, "data": None})
    assert info.value.code == "500"
    assert info.value.message == message
    assert info.value.retryable is retryable
    assert not isinstance(info.value, UnknownProviderStatus)


def test_accepted_answer_without_data_is_a_retryable_fault() -> None:
    with pytest.raises(ProviderError) as info:
        mapping.parse_create_response({"msg": "success", "code": 200, "data": None})
    assert info.value.retryable
    with pytest.raises(ProviderError):
        mapping.parse_create_response(["not", "an", "object"])


def test_create_amount_with_won_fraction_is_refused() -> None:
    with pytest.raises(ProviderError):
        mapping.parse_create_response(_answer(status=1, paymentInfo="1", amount="1000.50"))


# ---------------------------------------------------------------- callbacks
def _callback(**fields: object) -> dict[str, object]:
    body: dict[str, object] = {
        "merchantOrderNo": "order-1",
        "tradeNo": "TS1",
        "paymentOrderNo": "P1",
        "paymentAmount": "1000.00",
        "serviceAmount": "10.00",
        "paymentInfo": "29900000000000",
        "paymentType": 801,
        "completeTime": 1761022567000,
        "sign": "s",
    }
    body.update(fields)
    return body


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (1, AttemptStatus.PENDING),
        (2, AttemptStatus.PAID),
        ("2", AttemptStatus.PAID),
        (3, AttemptStatus.FAILED),
    ],
)
def test_callback_status_table(status: object, expected: AttemptStatus) -> None:
    update = mapping.parse_notify_body(_callback(status=status, errorMessage="Expired"))
    assert update.status == expected
    assert update.trade_no == "order-1"
    assert update.platform_trade_no == "TS1"
    if expected == AttemptStatus.PAID:
        assert update.amount_paid == Money(1000, "KRW")
    else:
        assert update.amount_paid is None
    if expected == AttemptStatus.FAILED:
        assert update.failure_message == "Expired"


def test_callback_short_deposit_is_paid_with_actual_amount() -> None:
    # No partial status at TeemoPay: the services compare the amount to the order.
    update = mapping.parse_notify_body(_callback(status=2, paymentAmount="400.00"))
    assert update.status == AttemptStatus.PAID
    assert update.amount_paid == Money(400, "KRW")


@pytest.mark.parametrize("status", [0, 4, None, "paid"])
def test_callback_unknown_status_is_malformed(status: object) -> None:
    with pytest.raises(MalformedNotify):
        mapping.parse_notify_body(_callback(status=status))


def test_callback_paid_without_amount_is_malformed() -> None:
    with pytest.raises(MalformedNotify):
        mapping.parse_notify_body(_callback(status=2, paymentAmount=""))
    with pytest.raises(MalformedNotify):
        mapping.parse_notify_body(_callback(status=2, merchantOrderNo=None))


# ---------------------------------------------------------------- query
@pytest.mark.parametrize(
    ("status", "expected", "paid"),
    [
        (1, AttemptStatus.PENDING, None),
        (2, AttemptStatus.PAID, Money(1000, "KRW")),
        (3, AttemptStatus.FAILED, None),
    ],
)
def test_query_status_table(status: int, expected: AttemptStatus, paid: Money | None) -> None:
    update = mapping.parse_query_response(
        _answer(merchantOrderNo="order-1", tradeNo="TS1", status=status, amount="1000.00"),
        "order-1",
    )
    assert (update.status, update.amount_paid, update.trade_no) == (expected, paid, "order-1")


def test_query_unknown_status_and_wrong_order() -> None:
    with pytest.raises(UnknownProviderStatus):
        mapping.parse_query_response(_answer(merchantOrderNo="o", status=7), "o")
    with pytest.raises(ProviderError):
        mapping.parse_query_response(_answer(merchantOrderNo="other", status=2), "o")
