"""PayPro mapping: documented examples in, our types out; our requests out as PayPro wants."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import (
    InstructionKind,
    MethodConfig,
    Need,
    Payer,
    PaymentRequest,
    ProviderConfig,
)
from checkout.providers.errors import (
    InvalidSignature,
    MalformedNotify,
    ProviderError,
    UnknownProviderStatus,
)
from checkout.providers.paypro import build, mapping, signing
from checkout.providers.paypro.client import PayProProvider

SECRET = "paypro-test-secret-0001"
BASE_URL = "http://127.0.0.1:9/paypro"  # never called in this file

KAKAOPAY = MethodConfig(
    "kakaopay", "paypro_kr", "KakaoPay", {"channel_code": "EWALLET", "way_code": "KAKAOPAY"}
)
KR_VA = MethodConfig("kr_va", "paypro_kr", "VA", {"channel_code": "VA", "way_code": "VA"})
MX_VA = MethodConfig("mx_va", "paypro_mx", "SPEI", {"way_code": "va"})
MX_STORE = MethodConfig("mx_store", "paypro_mx", "Store", {"way_code": "store"})


def config(
    name: str, country: str, api: str, methods: tuple[MethodConfig, ...], **extra: Any
) -> ProviderConfig:
    settings: dict[str, Any] = {
        "country": country,
        "api": api,
        "merchant_no": "M1000001",
        "app_secret": SECRET,
    }
    if country == "KR":
        settings["sub_merchant_no"] = "982773727848278231"
    settings.update(extra)
    return ProviderConfig(name, "paypro", BASE_URL, settings, methods)


KR = build(config("paypro_kr", "KR", "paymentLink", (KAKAOPAY, KR_VA)))
MX = build(config("paypro_mx", "MX", "paymentLink", (MX_VA, MX_STORE)))
MX_API = build(config("paypro_mx_api", "MX", "payInApi", (MX_VA, MX_STORE)))

KR_PAYER = Payer("Kevin", "Kim", "kevin@163.com", "01012459077", date(1992, 8, 15), "192.168.0.1")
MX_PAYER = Payer("Kevin", "Zhang", None, None, None, "203.0.113.9")


def request(
    trade_no: str,
    amount: Money,
    method: MethodConfig,
    payer: Payer = KR_PAYER,
    description: str | None = "test",
) -> PaymentRequest:
    return PaymentRequest(
        trade_no=trade_no,
        amount=amount,
        method=method,
        payer=payer,
        notify_url="https://shop.example/notify/paypro",
        return_url="https://shop.example/return",
        description=description,
    )


# ---------------------------------------------------------------- documented responses
KR_RESPONSE = json.loads("""{
"msg": "success",
"code": "0000",
"timestamp": 1748247675703,
"success": true,
"data": {
"tradeNo": "pSPqrzJJ3MHkdyzS",
"platFormTradeNo": "7gwtljttc64lu4e2",
"status": "0015",
"message": "PAYING",
"paymentLink": "https://sandbox-casher-sk.paypro.com/sk/f024b03c653aa1b3d7c257cf37d9ae92",
"payInfo": {
"bankName": "KB Kookmin Bank",
"virtualAccountNumber": "12345678900000",
"virtualAccountHolder": "PAYPRO",
"registrationTimestamp": "2026-04-09 17:00:50",
"expirationTimestamp": "2026-04-09 18:00:00"
},
"remark": "test"
}
}""")

MX_LINK_RESPONSE = json.loads("""{
    "msg": "success",
    "code": "0000",
    "timestamp": 1728609277476,
    "success": true,
    "data": {
        "tradeNo": "test_00000008",
        "platFormTradeNo": "68o0uwogz7mnzutt",
        "status": "0015",
        "desc": "Create",
        "remark": "test",
        "paymentUrl": "https://checkout.tpservice.vip/#/order/bd/P1844547116046675970"
    }
}""")

PAY_IN_RESPONSE = json.loads("""{
"msg": "success",
"code": "0000",
"timestamp": 1728609277476,
"success": true,
"data": {
"tradeNo": "test_00000008",
"payproTradeNo": "68o0uwogz7mnzutt",
"status": "0015",
"desc": "Create",
"remark": "test",
"paymentInfo": "6841800930023213210"
}
}""")


def test_kr_va_response_maps_to_bank_transfer_instructions() -> None:
    req = request("pSPqrzJJ3MHkdyzS", Money(1000000, "KRW"), KR_VA)
    result = mapping.create_result(KR.settings, req, KR_RESPONSE)
    assert result.status == AttemptStatus.PENDING
    assert result.platform_trade_no == "7gwtljttc64lu4e2"
    assert result.provider_status == "0015"
    assert result.redirect_url is None
    ins = result.instructions
    assert ins is not None
    assert ins.kind == InstructionKind.BANK_TRANSFER
    assert ins.amount == Money(1000000, "KRW")
    assert ins.bank_name == "KB Kookmin Bank"
    assert ins.account_number == "12345678900000"
    assert ins.account_holder == "PAYPRO"
    assert ins.qr_content == "12345678900000"
    assert ins.cashier_url == KR_RESPONSE["data"]["paymentLink"]
    # 18:00 in Seoul (UTC+9) is 09:00 UTC.
    assert ins.expires_at == datetime(2026, 4, 9, 9, 0, 0, tzinfo=UTC)


def test_kr_response_without_pay_info_redirects() -> None:
    payload = json.loads(json.dumps(KR_RESPONSE))
    del payload["data"]["payInfo"]
    req = request("pSPqrzJJ3MHkdyzS", Money(1000000, "KRW"), KAKAOPAY)
    result = mapping.create_result(KR.settings, req, payload)
    assert result.redirect_url == payload["data"]["paymentLink"]
    assert result.instructions is None


def test_mx_payment_url_response_redirects() -> None:
    req = request("test_00000008", Money(30000, "MXN"), MX_VA, MX_PAYER)
    result = mapping.create_result(MX.settings, req, MX_LINK_RESPONSE)
    assert result.status == AttemptStatus.PENDING
    assert result.platform_trade_no == "68o0uwogz7mnzutt"
    assert result.redirect_url == MX_LINK_RESPONSE["data"]["paymentUrl"]
    assert result.instructions is None


def test_pay_in_va_response_gives_clabe_with_paypro_trade_no() -> None:
    req = request("test_00000008", Money(30000, "MXN"), MX_VA, MX_PAYER)
    result = mapping.create_result(MX_API.settings, req, PAY_IN_RESPONSE)
    assert result.platform_trade_no == "68o0uwogz7mnzutt"  # from payproTradeNo
    assert result.redirect_url is None
    ins = result.instructions
    assert ins is not None
    assert ins.kind == InstructionKind.BANK_TRANSFER
    assert ins.account_number == "6841800930023213210"
    assert ins.qr_content == "6841800930023213210"
    assert ins.amount == Money(30000, "MXN")


def test_pay_in_store_response_gives_reference() -> None:
    req = request("test_00000008", Money(30000, "MXN"), MX_STORE, MX_PAYER)
    ins = mapping.create_result(MX_API.settings, req, PAY_IN_RESPONSE).instructions
    assert ins is not None
    assert ins.kind == InstructionKind.STORE_REFERENCE
    assert ins.reference == "6841800930023213210"
    assert ins.account_number is None


def test_business_failure_in_data_status_is_failed_result() -> None:
    payload = json.loads(json.dumps(MX_LINK_RESPONSE))
    payload["data"].update(status="00029", desc="REJECTED_TRANSACTION")
    req = request("test_00000008", Money(30000, "MXN"), MX_VA, MX_PAYER)
    result = mapping.create_result(MX.settings, req, payload)
    assert result.status == AttemptStatus.FAILED
    assert result.failure_code == "00029"
    assert result.failure_message == "REJECTED_TRANSACTION"


@pytest.mark.parametrize(("code", "retryable"), [("0100019", False), ("5000", True)])
def test_outer_error_code_raises(code: str, retryable: bool) -> None:
    payload = {"msg": "nope", "code": code, "timestamp": 1, "success": False, "data": None}
    req = request("t1", Money(300, "KRW"), KAKAOPAY)
    with pytest.raises(ProviderError) as info:
        mapping.create_result(KR.settings, req, payload)
    assert (info.value.code, info.value.message, info.value.retryable) == (code, "nope", retryable)
    assert info.value.provider == "paypro_kr"


def test_create_with_unknown_status_raises() -> None:
    payload = json.loads(json.dumps(MX_LINK_RESPONSE))
    payload["data"]["status"] = "PAYING"
    req = request("test_00000008", Money(30000, "MXN"), MX_VA, MX_PAYER)
    with pytest.raises(UnknownProviderStatus):
        mapping.create_result(MX.settings, req, payload)


def test_response_for_another_trade_no_is_refused() -> None:
    req = request("someone_else", Money(30000, "MXN"), MX_VA, MX_PAYER)
    with pytest.raises(ProviderError, match="another trade number"):
        mapping.create_result(MX.settings, req, MX_LINK_RESPONSE)


# ---------------------------------------------------------------- query
def query_payload(status: Any, amount: Any = "1000.00") -> dict[str, Any]:
    return {
        "msg": "success",
        "code": "0000",
        "timestamp": 1,
        "success": True,
        "data": {"tradeNo": "t1", "platFormTradeNo": "p1", "status": status, "amount": amount},
    }


@pytest.mark.parametrize(
    ("status", "expected", "paid"),
    [
        ("0000", AttemptStatus.PAID, Money(100000, "MXN")),
        ("0001", AttemptStatus.PARTIALLY_PAID, Money(100000, "MXN")),
        ("0015", AttemptStatus.PENDING, None),
        ("00029", AttemptStatus.FAILED, None),
    ],
)
def test_query_status_table(status: str, expected: AttemptStatus, paid: Money | None) -> None:
    update = mapping.query_update(MX.settings, "t1", query_payload(status))
    assert update.status == expected
    assert update.provider_status == status
    assert update.amount_paid == paid
    assert update.platform_trade_no == "p1"


@pytest.mark.parametrize("status", ["PAID", "", None, 15])
def test_query_unknown_status_raises(status: Any) -> None:
    with pytest.raises(UnknownProviderStatus):
        mapping.query_update(MX.settings, "t1", query_payload(status))


def test_query_ignores_outer_message_and_needs_amount_when_paid() -> None:
    with pytest.raises(ProviderError, match="paid status without an amount"):
        mapping.query_update(MX.settings, "t1", query_payload("0000", None))


# ---------------------------------------------------------------- notify
def notify_bytes(status: str, amount: Any = "1000.00", secret: str = SECRET) -> bytes:
    body: dict[str, Any] = {
        "status": status,
        "message": "SUCCESS" if status == "0000" else "REJECTED_TRANSACTION",
        "platFormTradeNo": "p1",
        "tradeNo": "t1",
        "amount": amount,
        "successTime": "2026-04-09 17:30:00",
        "channelCode": "EWALLET",
        "wayCode": "KAKAOPAY",
        "timestamp": "1748247675703",
    }
    body["sign"] = signing.sign(body, secret)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        ("0000", AttemptStatus.PAID),
        ("0001", AttemptStatus.PARTIALLY_PAID),
        ("0015", AttemptStatus.PENDING),
        ("00032", AttemptStatus.FAILED),
        ("0100019", AttemptStatus.FAILED),
        ("9999", AttemptStatus.FAILED),  # undocumented code: "anything else failed"
    ],
)
def test_notify_status_table(status: str, expected: AttemptStatus) -> None:
    update = MX.parse_notify({}, notify_bytes(status))
    assert update.status == expected
    assert update.trade_no == "t1"
    assert update.platform_trade_no == "p1"
    assert update.provider_status == status
    if expected == AttemptStatus.FAILED:
        assert update.failure_message == "REJECTED_TRANSACTION"


def test_notify_amount_with_decimals_is_exact() -> None:
    assert MX.parse_notify({}, notify_bytes("0000", "1000.00")).amount_paid == Money(100000, "MXN")
    assert MX.parse_notify({}, notify_bytes("0000", "1000")).amount_paid == Money(100000, "MXN")
    assert KR.parse_notify({}, notify_bytes("0000", "1000.00")).amount_paid == Money(1000, "KRW")


def test_notify_numeric_amount_is_signed_as_its_text() -> None:
    # A JSON number 1000.00: the sender signed "1000.00", which float parsing would lose.
    fields = {"status": "0000", "tradeNo": "t1", "timestamp": 1748247675703}
    signed = signing.sign({**fields, "amount": "1000.00"}, SECRET)
    raw = json.dumps({**fields, "sign": signed})[:-1] + ', "amount": 1000.00}'
    update = MX.parse_notify({}, raw.encode())
    assert update.amount_paid == Money(100000, "MXN")


def test_notify_bad_amount_for_paid_is_malformed() -> None:
    with pytest.raises(MalformedNotify):
        KR.parse_notify({}, notify_bytes("0000", "1000.50"))  # KRW has no decimals


def test_notify_signature_checks() -> None:
    with pytest.raises(InvalidSignature):
        MX.parse_notify({}, notify_bytes("0000", secret="wrong-secret"))
    body = json.loads(notify_bytes("0000"))
    body["amount"] = "99999"
    with pytest.raises(InvalidSignature):
        MX.parse_notify({}, json.dumps(body).encode())
    del body["sign"]
    with pytest.raises(InvalidSignature):
        MX.parse_notify({}, json.dumps(body).encode())


@pytest.mark.parametrize("raw", [b"not json", b"[1, 2]", b"\xff\xfe", b'{"status": "0000"'])
def test_notify_not_json_is_malformed(raw: bytes) -> None:
    with pytest.raises(MalformedNotify):
        MX.parse_notify({}, raw)


def test_notify_missing_fields_or_junk_status_is_malformed() -> None:
    for fields in ({"status": "0000"}, {"tradeNo": "t1"}, {"tradeNo": "t1", "status": "PAID"}):
        body = {**fields, "sign": signing.sign(fields, SECRET)}
        with pytest.raises(MalformedNotify):
            MX.parse_notify({}, json.dumps(body).encode())


# ---------------------------------------------------------------- request bodies
def test_kr_body_all_strings_no_empty_fields_no_birth_date_outside_va() -> None:
    req = request("t1", Money(1000000, "KRW"), KAKAOPAY, description=None)
    body = mapping.create_body(KR.settings, req, 1732988442913)
    assert body == {
        "timestamp": "1732988442913",
        "tradeNo": "t1",
        "amount": "1000000",
        "subMerchantNo": "982773727848278231",
        "mobile": "01012459077",
        "firstname": "Kevin",
        "lastname": "Kim",
        "email": "kevin@163.com",
        "channelCode": "EWALLET",
        "wayCode": "KAKAOPAY",
        "ipAddress": "192.168.0.1",
        "notifyUrl": "https://shop.example/notify/paypro",
        "returnUrl": "https://shop.example/return",
    }
    assert all(isinstance(v, str) and v for v in body.values())


def test_kr_va_body_has_date_of_birth_and_remark() -> None:
    req = request("t1", Money(1000000, "KRW"), KR_VA, description="  Order   #42 " + "x" * 200)
    body = mapping.create_body(KR.settings, req, 1)
    assert body["dateOfBirth"] == "1992-08-15"
    assert body["wayCode"] == "VA"
    assert body["remark"].startswith("Order #42 x")
    assert len(body["remark"]) == mapping.REMARK_MAX


@pytest.mark.parametrize("provider", [MX, MX_API])
def test_mx_body(provider: PayProProvider) -> None:
    req = request("t1", Money(15000, "MXN"), MX_STORE, MX_PAYER)
    body = mapping.create_body(provider.settings, req, 1)
    assert body == {
        "timestamp": "1",
        "tradeNo": "t1",
        "amount": "150",  # 150.00 MXN in whole pesos
        "payer": "Kevin Zhang",
        "wayCode": "store",
        "notifyUrl": "https://shop.example/notify/paypro",
        "returnUrl": "https://shop.example/return",
        "remark": "test",
    }


# ---------------------------------------------------------------- rules and config
def test_payer_rules() -> None:
    kakao = KR.payer_rules(KAKAOPAY)
    assert (kakao.name, kakao.email, kakao.mobile) == (Need.REQUIRED,) * 3
    assert kakao.birth_date == Need.HIDDEN
    assert (kakao.mobile_country, kakao.timezone) == ("KR", "Asia/Seoul")
    va = KR.payer_rules(KR_VA)
    assert va.birth_date == Need.REQUIRED
    assert (va.min_age, va.max_age) == (18, 59)
    mx = MX.payer_rules(MX_VA)
    assert (mx.name, mx.email, mx.mobile, mx.birth_date) == (
        Need.REQUIRED,
        Need.OPTIONAL,
        Need.OPTIONAL,
        Need.HIDDEN,
    )
    assert (mx.mobile_country, mx.timezone) == ("MX", "America/Mexico_City")


def test_supports_amount() -> None:
    assert (KR.currency, MX.currency) == ("KRW", "MXN")
    assert KR.supports_amount(Money(1000, "KRW"))
    assert not KR.supports_amount(Money(1000, "MXN"))
    assert MX.supports_amount(Money(15000, "MXN"))
    assert not MX.supports_amount(Money(15050, "MXN"))  # 150.50: PayPro has no centavos
    with pytest.raises(ProviderError, match="cannot take"):
        MX.create_payment(request("t1", Money(15050, "MXN"), MX_VA, MX_PAYER))
    assert KR.notify_ack.body == "OK"
    assert KR.notify_ack.content_type.startswith("text/plain")


@pytest.mark.parametrize(
    ("country", "api", "methods", "extra", "message"),
    [
        ("KR", "paymentLink", (), {"sub_merchant_no": ""}, "sub_merchant_no"),
        ("KR", "payInApi", (), {}, "payInApi exists for country MX only"),
        ("BR", "paymentLink", (), {}, "country must be KR or MX"),
        ("MX", "paymentLink", (), {"app_secret": ""}, "app_secret"),
        (
            "KR",
            "paymentLink",
            (MethodConfig("x", "p", "X", {"way_code": "KAKAOPAY"}),),
            {},
            "method 'x': options.channel_code",
        ),
        (
            "MX",
            "payInApi",
            (MethodConfig("oxxo", "p", "OXXO", {"way_code": "oxxo"}),),
            {},
            "method 'oxxo': options.way_code",
        ),
    ],
)
def test_build_validates_settings(
    country: str,
    api: str,
    methods: tuple[MethodConfig, ...],
    extra: dict[str, Any],
    message: str,
) -> None:
    with pytest.raises(ValueError, match="provider 'bad'") as info:
        build(config("bad", country, api, methods, **extra))
    assert message in str(info.value)


def test_korea_time_is_inferred_in_one_place() -> None:
    assert mapping.korea_time_to_utc("2026-01-01 00:00:00") == datetime(
        2025, 12, 31, 15, 0, tzinfo=UTC
    )
    assert mapping.korea_time_to_utc("tomorrow") is None
