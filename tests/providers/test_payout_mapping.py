"""Payout mapping of each provider on the documented examples (psp-docs/more/*.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from checkout.domain.money import Money
from checkout.providers.base import ProviderConfig
from checkout.providers.diamondpay import payout_mapping as dp
from checkout.providers.diamondpay import signing as dp_signing
from checkout.providers.errors import (
    InvalidSignature,
    MalformedNotify,
    OrderNotFound,
    ProviderError,
    UnknownProviderStatus,
)
from checkout.providers.http import parse_json
from checkout.providers.payouts import (
    AccountType,
    BankAccount,
    DuplicatePayout,
    IdType,
    InsufficientBalance,
    InvalidPayout,
    PayoutRequest,
    PayoutStatus,
    UnsupportedBank,
    new_payout_no,
)
from checkout.providers.paypro import payout_mapping as pp
from checkout.providers.paypro import signing as pp_signing
from checkout.providers.paypro.mapping import settings_from_config
from checkout.providers.registry import build_payout_provider
from checkout.providers.teemopay import payout_mapping as tp

PAYPRO_KR = settings_from_config(
    ProviderConfig(
        "paypro_kr",
        "paypro",
        "https://paypro.example",
        {"country": "KR", "merchant_no": "M1", "app_secret": "s", "sub_merchant_no": "S1"},
    )
)
PAYPRO_MX = settings_from_config(
    ProviderConfig(
        "paypro_mx",
        "paypro",
        "https://paypro.example",
        {"country": "MX", "merchant_no": "M1", "app_secret": "s"},
    )
)


def kr_request(**overrides: Any) -> PayoutRequest:
    values: dict[str, Any] = {
        "payout_no": "rgB36f2n9AElhTeY",
        "amount": Money(500, "KRW"),
        "destination": BankAccount("0001", "123456789", "kevin"),
        "notify_url": "http://www.google.com",
        "mobile": "15875595997",
        "email": "kevin@gmail.com",
        "remark": "remark",
    }
    values.update(overrides)
    return PayoutRequest(**values)


def test_payout_numbers_are_32_characters_and_prefixed() -> None:
    number = new_payout_no()
    assert len(number) == 32 and number.startswith("PO")
    assert new_payout_no() != number


def test_bank_account_never_prints_in_full() -> None:
    account = BankAccount("088", "110123456789", "홍길동")
    assert "110123456789" not in repr(account) and "홍길동" not in repr(account)
    assert account.masked() == "088 ****6789"
    assert "110123456789" not in repr(kr_request(destination=account))


# ---------------------------------------------------------------- PayPro
def test_paypro_kr_payout_sign_string_is_the_documented_one() -> None:
    body = pp.payout_body(PAYPRO_KR, kr_request(), 1748248240605)
    assert pp_signing.sign_string(body) == (
        "amount=500bankAccountNo=123456789bankCode=0001customerName=kevin"
        "email=kevin@gmail.commobile=15875595997notifyUrl=http://www.google.com"
        "remark=remarktimestamp=1748248240605tradeNo=rgB36f2n9AElhTeY"
    )
    assert body["timestamp"] == 1748248240605  # typed integer on the payOut page
    assert body["amount"] == "500"  # typed string


def test_paypro_kr_payout_needs_mobile_and_email() -> None:
    with pytest.raises(InvalidPayout):
        pp.payout_body(PAYPRO_KR, kr_request(mobile=None), 1)
    with pytest.raises(InvalidPayout):
        pp.payout_body(PAYPRO_KR, kr_request(amount=Money(500, "MXN")), 1)


def test_paypro_mx_payout_body_uses_way_code_and_clabe() -> None:
    request = kr_request(
        amount=Money(20000, "MXN"),
        destination=BankAccount("BANXICO", "646180110400000007", "kevin zhang", AccountType.CLABE),
        mobile=None,
        email=None,
        id_number="58452586558",
    )
    body = pp.payout_body(PAYPRO_MX, request, 1728611780130)
    assert body["wayCode"] == "BANXICO"
    assert body["customerAccountType"] == "CLABE"
    assert body["customerAccount"] == "646180110400000007"
    assert body["amount"] == "200"
    assert body["identity"] == "58452586558"
    assert "customerMobile" not in body and "bankCode" not in body
    with pytest.raises(InvalidPayout):  # centavos cannot be sent
        pp.payout_body(PAYPRO_MX, kr_request(amount=Money(20050, "MXN")), 1)


def envelope(data: Any, code: str = "0000", msg: str = "success") -> dict[str, Any]:
    return {
        "msg": msg,
        "code": code,
        "timestamp": 1729156267022,
        "success": code == "0000",
        "data": data,
    }


def test_paypro_payout_answers() -> None:
    req = kr_request()
    processing = pp.payout_result(
        PAYPRO_KR,
        req,
        envelope({"tradeNo": req.payout_no, "platFormTradeNo": "P1", "status": "0015"}),
    )
    assert (processing.status, processing.platform_payout_no) == (PayoutStatus.PROCESSING, "P1")
    accepted = pp.payout_result(
        PAYPRO_KR, req, envelope(None)
    )  # the answer's data is not documented
    assert accepted.status == PayoutStatus.ACCEPTED
    failed = pp.payout_result(
        PAYPRO_KR,
        req,
        envelope({"tradeNo": req.payout_no, "status": "00029", "message": "REJECTED"}),
    )
    assert (failed.status, failed.failure_code) == (PayoutStatus.FAILED, "00029")
    no_status = envelope({"tradeNo": req.payout_no, "status": ""})
    assert pp.payout_result(PAYPRO_KR, req, no_status).status == PayoutStatus.ACCEPTED
    for status in ("0001", "PAID"):
        with pytest.raises(UnknownProviderStatus):
            pp.payout_result(PAYPRO_KR, req, envelope({"tradeNo": req.payout_no, "status": status}))
    with pytest.raises(ProviderError, match="another payout"):
        pp.payout_result(PAYPRO_KR, req, envelope({"tradeNo": "other", "status": "0015"}))


@pytest.mark.parametrize(
    ("code", "kind"),
    [("0100004", DuplicatePayout), ("0100006", InsufficientBalance), ("0100007", UnsupportedBank)],
)
def test_paypro_payout_refusals_are_typed(code: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as info:
        pp.payout_result(PAYPRO_KR, kr_request(), envelope(None, code=code, msg="no"))
    assert info.value.code == code  # type: ignore[attr-defined]
    with pytest.raises(ProviderError) as other:
        pp.payout_result(PAYPRO_KR, kr_request(), envelope(None, code="5000", msg="system"))
    assert other.value.retryable and not isinstance(other.value, kind)


def test_paypro_payout_query_reads_order_and_pay_amounts() -> None:
    # The documented minimal shape, floats as the table types them.
    text = (
        '{"msg":"success","code":"0000","timestamp":1729156267022,"success":true,'
        '"data":{"platFormTradeNo":"P9","tradeNo":"133323392","orderAmount":500.00,'
        '"payAmount":500.00,"status":"0000","message":"SUCCESS"}}'
    )
    update = pp.payout_query_update(PAYPRO_KR, "133323392", parse_json(text))
    assert update.status == PayoutStatus.SUCCEEDED
    assert update.amount == update.amount_sent == Money(500, "KRW")
    processing = pp.payout_query_update(
        PAYPRO_KR, "133323392", parse_json(text.replace('"0000","message"', '"0015","message"'))
    )
    assert processing.status == PayoutStatus.PROCESSING and processing.amount_sent is None
    with pytest.raises(ProviderError, match="decimals"):
        pp.payout_query_update(
            PAYPRO_KR, "133323392", parse_json(text.replace("500.00,", "500.50,", 1))
        )
    with pytest.raises(OrderNotFound):
        pp.payout_query_update(
            PAYPRO_KR, "x", envelope(None, code="0100005", msg="order does not exist")
        )


def test_paypro_balance_example() -> None:
    balance = pp.balance_from(
        PAYPRO_KR,
        envelope(
            {
                "availableAmount": "9998989.0000",
                "unsettledAmount": "0.0000",
                "freezeAmount": "0.0000",
            }
        ),
    )
    assert balance.available == Money(9998989, "KRW")
    assert balance.frozen == balance.unsettled == Money(0, "KRW")
    with pytest.raises(ProviderError):
        pp.balance_from(PAYPRO_KR, envelope({"availableAmount": "12.5000"}))


def test_paypro_notify_kind_and_payout_notify() -> None:
    example = {
        "platFormTradeNo": "5286e98841194687a95d25b5f3be346d",
        "tradeNo": "00000020",
        "amount": 30000,
        "status": "0000",
        "message": "SUCCESS",
        "utr": "111111111111",
        "successTime": "2024-07-01 18:34:31",
        "timestamp": "1724740395968",
    }
    assert pp.notify_kind(json.dumps(example).encode()) == "payin"
    payout = {**example, "tradeNo": "PO20240701183431abcdef0123456789"}
    assert pp.notify_kind(json.dumps(payout).encode()) == "payout"
    assert pp.notify_kind(b"not json") == "payin"
    update = pp.payout_notify_update(payout, "KRW", "paypro_kr")
    assert update.status == PayoutStatus.SUCCEEDED and update.amount_sent == Money(30000, "KRW")
    with pytest.raises(MalformedNotify):
        pp.payout_notify_update(example, "KRW", "paypro_kr")  # a pay-in's number
    with pytest.raises(MalformedNotify):
        pp.payout_notify_update({**payout, "status": "0001"}, "KRW", "paypro_kr")
    failed = pp.payout_notify_update(
        {**payout, "status": "00029", "amount": "0"}, "KRW", "paypro_kr"
    )
    assert failed.status == PayoutStatus.FAILED and failed.amount_sent is None


# ---------------------------------------------------------------- TeemoPay
def tp_request(**overrides: Any) -> PayoutRequest:
    values: dict[str, Any] = {
        "payout_no": "OrderNoExample",
        "amount": Money(1000, "KRW"),
        "destination": BankAccount("088", "12345678998765", "TeemoPay"),
        "notify_url": "https://www.callbackexample.com",
    }
    values.update(overrides)
    return PayoutRequest(**values)


def test_teemopay_payout_body_is_the_documented_example() -> None:
    assert tp.payout_body(tp_request(), "teemopay_kr") == {
        "merchantOrderNo": "OrderNoExample",
        "amount": "1000",
        "bankCode": "088",
        "bankName": "Shinhan Bank",
        "accountType": 801,
        "bankAccount": "12345678998765",
        "realName": "TEEMOPAY",  # upper case recommended
        "idType": "RRN",
        "callbackUrl": "https://www.callbackexample.com",
    }
    assert tp.payout_body(tp_request(id_type=IdType.COMPANY), "t")["idType"] == "CO"
    with pytest.raises(InvalidPayout, match="bank list"):
        tp.payout_body(tp_request(destination=BankAccount("999", "1234567890", "KIM")), "t")
    with pytest.raises(InvalidPayout):
        tp.payout_body(tp_request(payout_no="x" * 33), "t")


def test_teemopay_bank_list_is_the_published_one() -> None:
    assert len(tp.KOREA_PAYOUT_BANKS) == 32
    assert len({b.code for b in tp.KOREA_PAYOUT_BANKS}) == 32
    assert tp.bank_name("092") == "Toss Bank"


def test_teemopay_create_answers_both_documented_shapes() -> None:
    zh = {
        "msg": "success",
        "traceId": "t",
        "code": 200,
        "data": {
            "amount": "1000.00",
            "merchantOrderNo": "OrderNoExample",
            "status": 1,
            "tradeNo": "TF2501010001KR0000000000000000",
        },
    }
    result = tp.payout_result(zh, tp_request(), "t")
    assert (result.status, result.platform_payout_no) == (
        PayoutStatus.PROCESSING,
        "TF2501010001KR0000000000000000",
    )
    en = {"merchantOrderNo": "OrderNoExample", "tradeNo": "TF1", "status": 1, "sign": "YOUR_SIGN"}
    assert tp.payout_result(en, tp_request(), "t").status == PayoutStatus.PROCESSING
    failed = {**zh, "data": {**zh["data"], "status": 3, "errorMsg": "channel"}}
    assert tp.payout_result(failed, tp_request(), "t").status == PayoutStatus.FAILED
    with pytest.raises(UnknownProviderStatus):
        tp.payout_result({**zh, "data": {**zh["data"], "status": 2}}, tp_request(), "t")


@pytest.mark.parametrize(
    ("code", "msg", "kind"),
    [
        (425, "Insufficient merchant balance", InsufficientBalance),
        (426, "merchant order duplicate", DuplicatePayout),
        (431, "The bank code does not supported.", UnsupportedBank),
    ],
)
def test_teemopay_refusals_are_typed(code: int, msg: str, kind: type[Exception]) -> None:
    with pytest.raises(kind) as info:
        tp.payout_result(
            {"msg": msg, "traceId": "t", "code": code, "data": None}, tp_request(), "t"
        )
    assert info.value.code == str(code)  # type: ignore[attr-defined]


def test_teemopay_try_again_later_is_retryable() -> None:
    with pytest.raises(ProviderError) as info:
        tp.payout_result(
            {"msg": "Please try again later", "code": 412, "data": None}, tp_request(), "t"
        )
    assert info.value.retryable


def test_teemopay_query_example() -> None:
    text = (
        '{"code":200,"data":{"merchantOrderNo":"OrderNoExample","tradeNo":"TF2501010001KR",'
        '"amount":"1000.00","status":2,"serviceAmount":"15.00","immService":"5.00",'
        '"serviceRate":"0.010","errorCode":null,"errorMessage":null,'
        '"completeTime":"2025-05-01 00:00:00"},"msg":"success","traceId":"t"}'
    )
    update = tp.payout_query_update(parse_json(text), "OrderNoExample", "t")
    assert update.status == PayoutStatus.SUCCEEDED
    assert update.amount_sent == Money(1000, "KRW") and update.fee == Money(15, "KRW")
    for not_found in (
        {"code": 400, "msg": "Order not found"},
        {"code": 434, "msg": "Merchant order not exist"},
    ):
        with pytest.raises(OrderNotFound):
            tp.payout_query_update(not_found, "OrderNoExample", "t")


def test_teemopay_refund_callback_example_is_returned_not_success() -> None:
    example = {
        "merchantOrderNo": "OrderNoExample",
        "tradeNo": "TF2501010001KR0000000000000000",
        "amount": "1000.00",
        "serviceAmount": "10.50",
        "status": 4,
        "errorCode": 1000,
        "errorMessage": "The account does not exist or is restricted",
        "completeTime": "2025-05-01 00:00:00",
        "sign": "x",
    }
    update = tp.payout_notify_update(parse_json(json.dumps(example)), "t")
    assert update.status == PayoutStatus.RETURNED
    assert (update.failure_code, update.amount_sent) == ("1000", None)
    assert update.fee is None  # "10.50" won cannot be Money; the text stays in raw
    assert str(update.raw["serviceAmount"]) == "10.50"
    with pytest.raises(MalformedNotify):
        tp.payout_notify_update({**example, "status": 5}, "t")
    with pytest.raises(MalformedNotify):  # a pay-in callback is not a payout's
        tp.payout_notify_update({**example, "status": 2, "paymentOrderNo": "P1"}, "t")
    assert tp.notify_kind(json.dumps(example).encode()) == "payout"
    assert tp.notify_kind(json.dumps({**example, "paymentType": 801}).encode()) == "payin"


def test_teemopay_amount_with_fraction_is_refused_not_rounded() -> None:
    # "1000.50" won cannot exist (KRW has no minor unit): never rounded into an amount.
    with pytest.raises(MalformedNotify):
        tp.payout_notify_update({"merchantOrderNo": "O", "status": 2, "amount": "1000.50"}, "t")


def test_teemopay_balance_example() -> None:
    body = {
        "code": 200,
        "msg": "success",
        "data": {"totalAmount": "10000.00", "frozenAmount": "0.00", "availAmount": "10000.00"},
    }
    balance = tp.balance_from(body, "t")
    assert balance.available == balance.total == Money(10000, "KRW")


# ---------------------------------------------------------------- Diamond Pay
def dp_request(**overrides: Any) -> PayoutRequest:
    values: dict[str, Any] = {
        "payout_no": "REFUND-000123",
        "amount": Money(15000, "KRW"),
        "destination": BankAccount("088", "12345678901234", "홍길동"),
        "notify_url": "https://merchant.example/dp/payout-notify",
        "mobile": "01012345678",
    }
    values.update(overrides)
    return PayoutRequest(**values)


def test_diamondpay_payout_body_is_the_documented_shape() -> None:
    body = dp.payout_body(
        dp_request(),
        platform_id="PF0002",
        sign_type="HMAC-SHA256",
        request_time=1767225600,
        instance="d",
    )
    assert body == {
        "platform_id": "PF0002",
        "service_id": "SVC0004",
        "payout_cl_id": "REFUND-000123",
        "amount": 1500000,  # KRW 15,000 in hundredths
        "notify_url": "https://merchant.example/dp/payout-notify",
        "bank_name": "088",  # the bank *code*, in a field named bank_name
        "name": "홍길동",
        "number": "12345678901234",
        "phone_number": "01012345678",
        "currency": "krw",
        "request_time": 1767225600,
        "sign_type": "HMAC-SHA256",
    }
    with pytest.raises(InvalidPayout):
        dp.payout_body(
            dp_request(mobile=None), platform_id="P", sign_type="MD5", request_time=1, instance="d"
        )
    with pytest.raises(InvalidPayout, match="holder name"):
        dp.payout_body(
            dp_request(destination=BankAccount("088", "1234567890", "A" * 17)),
            platform_id="P",
            sign_type="MD5",
            request_time=1,
            instance="d",
        )


def test_diamondpay_create_answers() -> None:
    result = dp.payout_result(
        {"error_code": "0000", "data": {"payout_id": "POT00000001"}}, dp_request(), "d"
    )
    assert (result.status, result.platform_payout_no) == (PayoutStatus.ACCEPTED, "POT00000001")
    for code, kind in (
        ("0012", UnsupportedBank),
        ("0018", InsufficientBalance),
        ("0005", DuplicatePayout),
    ):
        with pytest.raises(kind):
            dp.payout_result({"error_code": code, "error_msg": "x"}, dp_request(), "d")
    with pytest.raises(ProviderError) as info:
        dp.payout_result({"error_code": "0004", "error_msg": "sign"}, dp_request(), "d")
    assert not isinstance(info.value, UnsupportedBank | InsufficientBalance | DuplicatePayout)


def test_diamondpay_query_example_and_statuses() -> None:
    example = {
        "error_code": "0000",
        "data": {
            "payout_id": "DEMOPO0123456",
            "payout_cl_id": "payout_20260112001",
            "amount": 5000000,
            "fee": 50000,
            "status": 3,
            "error_msg": "",
            "create_time": 1737543600,
            "success_time": 1737543700,
        },
    }
    update = dp.payout_query_update(example, "payout_20260112001", "d")
    assert update.status == PayoutStatus.SUCCEEDED
    assert update.amount_sent == Money(50000, "KRW") and update.fee == Money(500, "KRW")
    expected = {1: PayoutStatus.ACCEPTED, 2: PayoutStatus.PROCESSING, 4: PayoutStatus.FAILED}
    for status, ours in expected.items():
        data = {**example["data"], "status": status}
        assert (
            dp.payout_query_update(
                {"error_code": "0000", "data": data}, "payout_20260112001", "d"
            ).status
            == ours
        )
    # Deposit-only status 0 is not a payout status.
    with pytest.raises(UnknownProviderStatus):
        dp.payout_query_update(
            {"error_code": "0000", "data": {**example["data"], "status": 0}},
            "payout_20260112001",
            "d",
        )
    with pytest.raises(OrderNotFound):
        dp.payout_query_update({"error_code": "0050", "error_msg": "Order not found!"}, "x", "d")


def test_diamondpay_notify_example_and_status_2_is_not_paid() -> None:
    example = {
        "payout_id": "POT00000102",
        "payout_cl_id": "97a968b4a9db497c8c03198e395a38c6",
        "platform_id": "PF0014",
        "amount": 400000,
        "fee": 3200,
        "status": 3,
        "create_time": 1567614049,
        "update_time": 1567614111,
        "sign": "d2e4534fce8c1d1053bbf59fd8ae4464",
    }
    update = dp.payout_notify_update(example, "d")
    assert update.status == PayoutStatus.SUCCEEDED and update.amount_sent == Money(4000, "KRW")
    vietnam = {**example, "status": 2, "real_amount": 400000}
    assert dp.payout_notify_update(vietnam, "d").status == PayoutStatus.PROCESSING
    assert dp.notify_kind(json.dumps(example).encode()) == "payout"
    assert dp.notify_kind(b'{"payment_cl_id": "T1"}') == "payin"
    with pytest.raises(MalformedNotify):
        dp.payout_notify_update({**example, "status": 7}, "d")


def test_diamondpay_balance_is_total_minus_frozen() -> None:
    balance = dp.balance_from(
        {
            "error_code": "0000",
            "data": {
                "platform_id": "PF0002",
                "total_balance": 1000000,
                "total_frozen_balance": 250000,
            },
        },
        "d",
    )
    assert balance.available == Money(7500, "KRW")
    assert balance.total == Money(10000, "KRW") and balance.frozen == Money(2500, "KRW")
    with pytest.raises(ProviderError):
        dp.balance_from({"error_code": "0006", "error_msg": "Invalid Authorization!"}, "d")


def test_diamondpay_hmac_platform_refuses_md5_notify() -> None:
    payouts = build_payout_provider(
        ProviderConfig(
            "diamondpay_kr",
            "diamondpay",
            "https://dp.example",
            {"platform_id": "PF0002", "key": "k", "api_token": "t", "sign_type": "HMAC-SHA256"},
        )
    )
    fields = {
        "payout_id": "P",
        "payout_cl_id": "PO1",
        "platform_id": "PF0002",
        "amount": 100,
        "status": 3,
    }
    md5 = {**fields, "sign": dp_signing.sign(fields, "k", "MD5")}
    with pytest.raises(InvalidSignature):
        payouts.parse_payout_notify({}, json.dumps(md5).encode())
    hmac_signed = {**fields, "sign_type": "HMAC-SHA256"}
    hmac_signed["sign"] = dp_signing.sign(hmac_signed, "k", "HMAC-SHA256")
    assert (
        payouts.parse_payout_notify({}, json.dumps(hmac_signed).encode()).status
        == PayoutStatus.SUCCEEDED
    )


# ---------------------------------------------------------------- hostile notifies
def _all_payout_clients(tmp_path: Any) -> list[Any]:
    from checkout.sandbox.keys import ensure_teemopay_keys

    keys = ensure_teemopay_keys(tmp_path)
    return [
        build_payout_provider(
            ProviderConfig(
                "paypro_kr",
                "paypro",
                "https://p.example",
                {"country": "KR", "merchant_no": "M1", "app_secret": "s", "sub_merchant_no": "S"},
            )
        ),
        build_payout_provider(
            ProviderConfig(
                "teemopay_kr",
                "teemopay",
                "https://t.example",
                {
                    "app_code": "APP1",
                    "merchant_name": "Shop",
                    "private_key_file": str(keys.merchant_private),
                    "platform_public_key_file": str(keys.platform_public),
                },
            )
        ),
        build_payout_provider(
            ProviderConfig(
                "diamondpay_kr",
                "diamondpay",
                "https://d.example",
                {"platform_id": "PF0002", "key": "k", "api_token": "t"},
            )
        ),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"null",
        b"[1, 2]",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"a":' * 50_000 + b"1" + b"}" * 50_000,
        b'{"tradeNo": "PO1", "status": "0000", "sign": "' + b"a" * 1_000_000 + b'"}',
    ],
)
def test_hostile_notifies_are_refused_cleanly(tmp_path: Any, body: bytes) -> None:
    headers = {"appCode": "APP1", "nonce": "n" * 32}
    for client in _all_payout_clients(tmp_path):
        with pytest.raises((MalformedNotify, InvalidSignature)):
            client.parse_payout_notify(headers, body)
        assert client.notify_kind(headers, body) in ("payin", "payout")
