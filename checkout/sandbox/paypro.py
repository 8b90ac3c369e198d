"""PayPro simulator: paymentLink (Korea and Mexico), payInApi (Mexico), the query, notifies.

Answers follow PayPro's documented shapes, key order included. Errors use PayPro's
error shape with HTTP 200, as PayPro does. Korea vs Mexico: a real PayPro merchant
account belongs to one country, but the sandbox may know one merchantNo for several
instances, so the country is read from the body: Korea's fields (`subMerchantNo`,
`channelCode`, `firstname`, `lastname`, `ipAddress`, `dateOfBirth`) exist only there;
Mexico sends `payer` instead. payInApi is Mexico only.
"""

from __future__ import annotations

import ipaddress
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import requests
from flask import Blueprint, Response, request

from checkout.domain.money import Money
from checkout.providers.base import ProviderConfig
from checkout.providers.paypro import signing
from checkout.sandbox import faults
from checkout.sandbox.core import OrderStatus, SandboxConfig, SandboxOrder, SandboxState
from checkout.sandbox.payouts import (
    KOREA_BANK_CODES,
    MEXICO_WAY_CODES,
    PayoutRefusal,
    PayoutState,
    SandboxPayout,
)

NAME = "paypro"

# Outer `code` values. "0000", "5000" and "0100019" are PayPro's; the rest are not
# documented, so they are INFERRED placeholders, named so they are easy to correct.
CODE_ACCEPTED = "0000"
# The names PayPro gives its refusal codes (its error code page; 5000 from its overview).
REFUSAL_NAMES = {
    "0100019": "PAYEE_DAILY_CUMULATIVE_AMT_REACHED",
    "00029": "REJECTED_TRANSACTION",
    "00032": "UNKNOWN_ERROR",
    "5000": "SYSTEM_ERROR",
}
CODE_DAILY_LIMIT = "0100019"  # PAYEE_DAILY_CUMULATIVE_AMT_REACHED
CODE_PARAM_ERROR = "0100001"  # INFERRED: PARAMETER_ERROR
CODE_SIGN_ERROR_INFERRED = "0100002"  # INFERRED: SIGN_ERROR (PayPro does not document it)
CODE_MERCHANT_UNKNOWN = "0100003"  # INFERRED: MERCHANT_NOT_EXIST
CODE_DUPLICATE_TRADE_NO = "0100004"  # INFERRED: DUPLICATE_TRADE_NO
CODE_ORDER_NOT_FOUND = "0100005"  # INFERRED: ORDER_NOT_EXIST

# data.status values.
STATUS_PAID = "0000"
STATUS_PARTIAL = "0001"
STATUS_PROCESSING = "0015"
STATUS_FAILED = "00029"  # REJECTED_TRANSACTION, one of PayPro's business codes

KST = ZoneInfo("Asia/Seoul")
MEXICO = ZoneInfo("America/Mexico_City")
VA_VALIDITY = timedelta(hours=1)
KR_FIELDS = frozenset(
    {"subMerchantNo", "channelCode", "firstname", "lastname", "ipAddress", "dateOfBirth"}
)
KR_MOBILE = re.compile(r"0\d{10}")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
WHOLE_AMOUNT = re.compile(r"[1-9]\d{0,15}")
MX_WAY_CODES = ("store", "va")
KR_BANK = "KB Kookmin Bank"
KR_ACCOUNT_HOLDER = "PAYPRO"
CLABE_WEIGHTS = (3, 7, 1) * 6


class Refused(Exception):
    """A request PayPro answers with its error shape."""

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


# ---------------------------------------------------------------- helpers
def now_ms() -> int:
    return int(time.time() * 1000)


def local_text(moment: datetime, zone: ZoneInfo) -> str:
    """PayPro's "YYYY-MM-DD HH:MM:SS" in the country's local time."""
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M:%S")


def answer(code: str, msg: str, data: Mapping[str, Any] | None) -> Response:
    """PayPro's envelope, keys in its order; always HTTP 200."""
    payload = {
        "msg": msg,
        "code": code,
        "timestamp": now_ms(),
        "success": code == CODE_ACCEPTED,
        "data": data,
    }
    return Response(json.dumps(payload, ensure_ascii=False), 200, mimetype="application/json")


def digits(count: int) -> str:
    return "".join(secrets.choice("0123456789") for _ in range(count))


def clabe() -> str:
    """An 18-digit CLABE with a valid check digit (bank 646, a SPEI participant)."""
    body = "646" + "180" + digits(11)
    total = sum(int(d) * w % 10 for d, w in zip(body, CLABE_WEIGHTS, strict=False))
    return body + str((10 - total % 10) % 10)


def age_on(birth: date, today: date) -> int:
    return today.year - birth.year - ((today.month, today.day) < (birth.month, birth.day))


def whole_units(amount: Money | None) -> str:
    if amount is None:
        return "0"
    return str(amount.whole_units()) if amount.is_whole() else amount.format_plain()


def _text(body: Mapping[str, Any], key: str) -> str:
    return signing.field_text(body.get(key)) or ""


def _require(body: Mapping[str, Any], *keys: str) -> None:
    for key in keys:
        if not _text(body, key):
            raise Refused(CODE_PARAM_ERROR, f"{key} is required")


def _check_url(body: Mapping[str, Any], key: str) -> None:
    value = _text(body, key)
    if value and urlsplit(value).scheme not in ("http", "https"):
        raise Refused(CODE_PARAM_ERROR, f"{key} must be an http(s) URL")


# ---------------------------------------------------------------- request checks
def authenticate(state: SandboxState) -> tuple[str, str, dict[str, Any]]:
    """(merchantNo, its secret, the body) once the header, JSON and sign are good."""
    merchant = (request.headers.get("merchantNo") or "").strip()
    secret = state.config.paypro_merchants.get(merchant)
    if not merchant or secret is None:
        raise Refused(CODE_MERCHANT_UNKNOWN, "merchant does not exist")
    try:
        body = json.loads(request.get_data(), parse_float=Decimal)
    except ValueError:
        raise Refused(CODE_PARAM_ERROR, "body must be JSON") from None
    if not isinstance(body, dict):
        raise Refused(CODE_PARAM_ERROR, "body must be a JSON object")
    if not signing.verify(body, secret, body.get(signing.SIGN_FIELD)):
        raise Refused(CODE_SIGN_ERROR_INFERRED, "sign error")
    stamp = _text(body, "timestamp")
    if not stamp.isdigit():
        raise Refused(CODE_PARAM_ERROR, "timestamp is required (milliseconds)")
    return merchant, secret, body


def check_amount(body: Mapping[str, Any], currency: str, state: SandboxState) -> Money:
    value = body.get("amount")
    # Whole units as a string: the KR page's numeric example is a known defect.
    if not isinstance(value, str) or not WHOLE_AMOUNT.fullmatch(value):
        raise Refused(CODE_PARAM_ERROR, "amount must be a whole number string")
    if int(value) > state.config.max_amount:
        raise Refused(CODE_DAILY_LIMIT, "PAYEE_DAILY_CUMULATIVE_AMT_REACHED")
    return Money.from_major(value, currency)


def check_korea(body: Mapping[str, Any]) -> None:
    _require(
        body,
        "tradeNo",
        "subMerchantNo",
        "amount",
        "mobile",
        "firstname",
        "lastname",
        "email",
        "channelCode",
        "wayCode",
        "ipAddress",
        "notifyUrl",
        "returnUrl",
    )
    if not KR_MOBILE.fullmatch(_text(body, "mobile")):
        raise Refused(CODE_PARAM_ERROR, "mobile must be 11 digits starting with 0")
    if not EMAIL.fullmatch(_text(body, "email")):
        raise Refused(CODE_PARAM_ERROR, "email is invalid")
    try:
        ipaddress.ip_address(_text(body, "ipAddress"))
    except ValueError:
        raise Refused(CODE_PARAM_ERROR, "ipAddress is invalid") from None
    if _text(body, "wayCode") == "VA":
        _require(body, "dateOfBirth")
        try:
            birth = date.fromisoformat(_text(body, "dateOfBirth"))
        except ValueError:
            raise Refused(CODE_PARAM_ERROR, "dateOfBirth must be YYYY-MM-DD") from None
        if not 18 <= age_on(birth, datetime.now(KST).date()) <= 59:
            raise Refused(CODE_PARAM_ERROR, "payer must be 18 to 59 years old")
    _check_url(body, "notifyUrl")
    _check_url(body, "returnUrl")


def check_mexico(body: Mapping[str, Any], api: str) -> None:
    _require(body, "tradeNo", "amount", "notifyUrl")
    way = _text(body, "wayCode")
    if api == "payInApi" and not way:
        raise Refused(CODE_PARAM_ERROR, "wayCode is required")
    if way and way not in MX_WAY_CODES:
        raise Refused(CODE_PARAM_ERROR, "wayCode must be store or va")
    _check_url(body, "notifyUrl")
    _check_url(body, "returnUrl")


def cashier_url(order_id: str) -> str:
    # The sandbox root is whatever precedes /paypro; url_root carries any script root.
    return f"{request.url_root.rstrip('/')}/cashier/{NAME}/{order_id}"


# ---------------------------------------------------------------- create
def create(state: SandboxState, api: str) -> Response:
    merchant, _secret, body = authenticate(state)
    korea = api == "paymentLink" and any(key in body for key in KR_FIELDS)
    if korea:
        check_korea(body)
    else:
        check_mexico(body, api)
    amount = check_amount(body, "KRW" if korea else "MXN", state)
    trade_no = _text(body, "tradeNo")
    way = _text(body, "wayCode")
    remark = body.get("remark")

    with state.lock:  # uniqueness check and insert as one step: the server is threaded
        if state.find_by_trade_no(NAME, merchant, trade_no) is not None:
            raise Refused(CODE_DUPLICATE_TRADE_NO, "tradeNo already exists")
        injected = state.take_injected_error(NAME)
        if injected is not None:
            raise Refused(*injected)
        order = SandboxOrder(
            provider=NAME,
            id=state.new_id(""),  # 16 characters, like PayPro's platFormTradeNo
            merchant=merchant,
            trade_no=trade_no,
            amount=amount,
            notify_url=_text(body, "notifyUrl") or None,
            return_url=_text(body, "returnUrl") or None,
            is_va=(korea and way == "VA") or api == "payInApi",
            extra={
                "country": "KR" if korea else "MX",
                "api": api,
                "channel_code": _text(body, "channelCode") or None,
                "way_code": way or None,
                "ip_address": _text(body, "ipAddress") or None,  # lets tests see what we sent
            },
        )
        # Details (VA, CLABE, display) are filled before the order becomes visible.
        if korea:
            data = korea_data(order, remark)
        elif api == "paymentLink":
            data = mexico_link_data(order, remark)
        else:
            data = pay_in_data(order, remark, way)
        state.add(order)
    return answer(CODE_ACCEPTED, "success", data)


def korea_data(order: SandboxOrder, remark: Any) -> dict[str, Any]:
    channel, way = order.extra["channel_code"], order.extra["way_code"]
    order.extra["display"] = {"Method": f"{channel} / {way}"}
    data: dict[str, Any] = {
        "tradeNo": order.trade_no,
        "platFormTradeNo": order.id,
        "status": STATUS_PROCESSING,
        "message": "PAYING",
        "paymentLink": cashier_url(order.id),
    }
    if order.is_va:
        created = datetime.now(UTC).replace(microsecond=0)
        order.expires_at = created + VA_VALIDITY
        account = "1" + digits(13)
        data["payInfo"] = {
            "bankName": KR_BANK,
            "virtualAccountNumber": account,
            "virtualAccountHolder": KR_ACCOUNT_HOLDER,
            "registrationTimestamp": local_text(created, KST),
            "expirationTimestamp": local_text(order.expires_at, KST),
        }
        order.extra["display"].update(
            {
                "Bank": KR_BANK,
                "Account": account,
                "Holder": KR_ACCOUNT_HOLDER,
                "Expires (KST)": local_text(order.expires_at, KST),
            }
        )
    data["remark"] = remark
    return data


def mexico_link_data(order: SandboxOrder, remark: Any) -> dict[str, Any]:
    order.extra["display"] = {"Method": order.extra["way_code"] or "any"}
    return {
        "tradeNo": order.trade_no,
        "platFormTradeNo": order.id,
        "status": STATUS_PROCESSING,
        "desc": "Create",
        "remark": remark,
        "paymentUrl": cashier_url(order.id),
    }


def pay_in_data(order: SandboxOrder, remark: Any, way: str) -> dict[str, Any]:
    if way == "va":
        info = clabe()
        order.extra["display"] = {"Method": "SPEI", "CLABE": info}
    else:
        info = "93" + digits(12)  # a store payment reference
        order.extra["display"] = {"Method": "Convenience store", "Reference": info}
    order.extra["payment_info"] = info
    return {
        "tradeNo": order.trade_no,
        "payproTradeNo": order.id,  # sic: the documented example's key
        "status": STATUS_PROCESSING,
        "desc": "Create",
        "remark": remark,
        "paymentInfo": info,
    }


# ---------------------------------------------------------------- status, query
def status_of(order: SandboxOrder) -> tuple[str, str]:
    """(status code, message) as PayPro reports an order."""
    return {
        OrderStatus.PAID: (STATUS_PAID, "SUCCESS"),
        OrderStatus.PARTIAL: (STATUS_PARTIAL, "PARTIAL_PAYMENT"),
        OrderStatus.FAILED: (STATUS_FAILED, "REJECTED_TRANSACTION"),
    }.get(order.status, (STATUS_PROCESSING, "PAYING"))


def success_time(order: SandboxOrder) -> str | None:
    done = order.extra.get("completed_at")
    if order.status not in (OrderStatus.PAID, OrderStatus.PARTIAL) or done is None:
        return None
    return local_text(done, KST if order.extra.get("country") == "KR" else MEXICO)


def query(state: SandboxState) -> Response:
    merchant, _secret, body = authenticate(state)
    _require(body, "tradeNo")
    order = state.find_by_trade_no(NAME, merchant, _text(body, "tradeNo"))
    if order is None:
        raise Refused(CODE_ORDER_NOT_FOUND, "order does not exist")
    code, message = status_of(order)
    settled = order.status in (OrderStatus.PAID, OrderStatus.PARTIAL)
    data = {
        "tradeNo": order.trade_no,
        "platFormTradeNo": order.id,
        "status": code,
        "message": message,
        "successTime": success_time(order),
        "channelCode": order.extra.get("channel_code"),
        "wayCode": order.extra.get("way_code"),
    }
    data.update(query_amounts(order, settled))
    return answer(CODE_ACCEPTED, "success", {k: v for k, v in data.items() if v is not None})


def query_amounts(order: SandboxOrder, settled: bool) -> dict[str, Any]:
    """Korea's query answers `orderAmount` and `payAmount` (money received; Corrections), in
    a decimal string as PayPro sends them ("9998989.0000"); Mexico's pages use `amount`
    (paid orders what came in, open or failed ones what was asked)."""
    if order.extra.get("country") == "KR":
        paid = whole_units(order.paid) if settled and order.paid is not None else "0"
        return {"orderAmount": f"{whole_units(order.amount)}.0000", "payAmount": f"{paid}.0000"}
    return {"amount": whole_units(order.paid if settled else order.amount)}


# ---------------------------------------------------------------- notify
def notify_body(order: SandboxOrder, secret: str) -> dict[str, Any]:
    code, message = status_of(order)
    body: dict[str, Any] = {
        "status": code,
        "message": message,
        "platFormTradeNo": order.id,
        "tradeNo": order.trade_no,
        "amount": whole_units(order.paid),
        "successTime": success_time(order),
        "channelCode": order.extra.get("channel_code"),
        "wayCode": order.extra.get("way_code"),
        # A JSON number, as PayPro's own timestamps are: merchants must sign its text.
        "timestamp": now_ms(),
    }
    body = {k: v for k, v in body.items() if v is not None}  # PayPro sends no nulls
    body[signing.SIGN_FIELD] = signing.sign(body, secret)
    return body


def notify_accepted(resp: requests.Response) -> bool:
    # PayPro stops only on the exact plain-text body OK.
    return resp.status_code == 200 and resp.text == "OK"


# ---------------------------------------------------------------- payouts
# Refusal codes: not documented by PayPro, INFERRED (the client's payout_refusal_reason).
PAYOUT_REFUSAL_CODES = {
    PayoutRefusal.DUPLICATE: (CODE_DUPLICATE_TRADE_NO, "tradeNo already exists"),
    PayoutRefusal.INSUFFICIENT_BALANCE: ("0100006", "INSUFFICIENT_BALANCE"),
    PayoutRefusal.UNSUPPORTED_BANK: ("0100007", "BANK_NOT_SUPPORTED"),
}
MX_ACCOUNT_TYPES = ("DebitCard", "CLABE")


def payout_create(state: SandboxState) -> Response:
    """`POST /v1/paypro/payOut`: Korea (`bankCode`) or Mexico (`wayCode`) fields."""
    merchant, _secret, body = authenticate(state)
    korea = "bankCode" in body or "bankAccountNo" in body
    if korea:
        _require(
            body,
            "tradeNo",
            "amount",
            "bankCode",
            "bankAccountNo",
            "customerName",
            "mobile",
            "email",
            "notifyUrl",
        )
        if not EMAIL.fullmatch(_text(body, "email")):
            raise Refused(CODE_PARAM_ERROR, "email is invalid")
        bank, account, banks = (
            _text(body, "bankCode"),
            _text(body, "bankAccountNo"),
            KOREA_BANK_CODES,
        )
    else:
        _require(
            body,
            "tradeNo",
            "wayCode",
            "amount",
            "customerName",
            "customerAccountType",
            "customerAccount",
            "notifyUrl",
        )
        if _text(body, "customerAccountType") not in MX_ACCOUNT_TYPES:
            raise Refused(CODE_PARAM_ERROR, "customerAccountType must be DebitCard or CLABE")
        bank, account, banks = (
            _text(body, "wayCode"),
            _text(body, "customerAccount"),
            MEXICO_WAY_CODES,
        )
    if not account.isdigit():
        raise Refused(CODE_PARAM_ERROR, "account must be digits")
    _check_url(body, "notifyUrl")
    amount = check_amount(body, "KRW" if korea else "MXN", state)
    try:
        payout = state.payouts.open(
            NAME,
            merchant,
            _text(body, "tradeNo"),
            amount,
            bank_code=bank,
            account_number=account,
            holder_name=_text(body, "customerName"),
            notify_url=_text(body, "notifyUrl"),
            banks=frozenset(banks),
            id_prefix="PO",
            extra={"country": "KR" if korea else "MX", "remark": body.get("remark")},
        )
    except PayoutRefusal as refusal:
        raise Refused(*PAYOUT_REFUSAL_CODES[refusal.reason]) from None
    # INFERRED answer (the page's response table is not visible): PayPro's usual data.
    data = {
        "tradeNo": payout.payout_no,
        "platFormTradeNo": payout.id,
        "status": STATUS_PROCESSING,
        "message": "PROCESSING",
        "remark": body.get("remark"),
    }
    return answer(CODE_ACCEPTED, "success", {k: v for k, v in data.items() if v is not None})


def payout_status_of(payout: SandboxPayout) -> tuple[str, str]:
    return {
        PayoutState.SUCCEEDED: (STATUS_PAID, "SUCCESS"),
        PayoutState.FAILED: (STATUS_FAILED, payout.failure_message or "REJECTED_TRANSACTION"),
        PayoutState.RETURNED: (STATUS_FAILED, payout.failure_message or "REJECTED_TRANSACTION"),
    }.get(payout.status, (STATUS_PROCESSING, "PROCESSING"))


def _float_units(amount: Money) -> float:
    # The query table types these as float: whole units, exact as a float.
    return float(amount.to_decimal())


def payout_query(state: SandboxState) -> Response:
    merchant, _secret, body = authenticate(state)
    _require(body, "tradeNo")
    payout = state.payouts.find(NAME, merchant, _text(body, "tradeNo"))
    if payout is None:
        raise Refused(CODE_ORDER_NOT_FOUND, "order does not exist")
    code, message = payout_status_of(payout)
    sent = (
        payout.amount
        if payout.status == PayoutState.SUCCEEDED
        else Money(0, payout.amount.currency)
    )
    data: dict[str, Any] = {
        "platFormTradeNo": payout.id,
        "tradeNo": payout.payout_no,
        "orderAmount": _float_units(payout.amount),
        "payAmount": _float_units(sent),
        "status": code,
        "message": message,
    }
    if payout.extra.get("country") == "MX" and payout.completed_at and code == STATUS_PAID:
        data["successTime"] = local_text(payout.completed_at, MEXICO)
    return answer(CODE_ACCEPTED, "success", data)


def balance(state: SandboxState) -> Response:
    """`POST /v1/paypro/queryBalance`: strings with 4 decimals, as the example."""
    merchant, _secret, _body = authenticate(state)
    currency = "MXN" if state.payouts.find_currency(NAME, merchant) == "MXN" else "KRW"
    available, frozen = state.payouts.balance(NAME, merchant, currency)
    return answer(
        CODE_ACCEPTED,
        "success",
        {
            "availableAmount": f"{available.to_decimal():.4f}",
            "unsettledAmount": "0.0000",
            "freezeAmount": f"{frozen.to_decimal():.4f}",
        },
    )


def payout_notify_body(payout: SandboxPayout, secret: str) -> dict[str, Any]:
    """The same notify as pay-ins (one URL carries both [doc]), for the payout."""
    code, message = payout_status_of(payout)
    body: dict[str, Any] = {
        "status": code,
        "message": message,
        "platFormTradeNo": payout.id,
        "tradeNo": payout.payout_no,
        "amount": whole_units(payout.amount) if code == STATUS_PAID else "0",
        "successTime": (
            local_text(payout.completed_at, KST if payout.extra.get("country") == "KR" else MEXICO)
            if code == STATUS_PAID and payout.completed_at
            else None
        ),
        "remark": payout.extra.get("remark"),
        "timestamp": now_ms(),
    }
    body = {k: v for k, v in body.items() if v is not None and v != ""}
    body[signing.SIGN_FIELD] = signing.sign(body, secret)
    return body


class Simulator:
    name = NAME

    def send_payout_notify(self, state: SandboxState, payout: SandboxPayout) -> None:
        if not payout.notify_url:
            return

        def build() -> tuple[dict[str, str], bytes]:
            secret = state.config.paypro_merchants[payout.merchant]
            body = payout_notify_body(payout, secret)
            return {"Content-Type": "application/json"}, json.dumps(body).encode("utf-8")

        state.notifier.deliver(payout.id, payout.notify_url, build, notify_accepted)

    def send_notify(self, state: SandboxState, order: SandboxOrder) -> None:
        if not order.notify_url:
            return
        url = order.notify_url

        def build() -> tuple[dict[str, str], bytes]:
            # Fresh timestamp and sign on every try; the secret as configured now.
            secret = state.config.paypro_merchants[order.merchant]
            body = notify_body(order, secret)
            headers = {"Content-Type": "application/json"}
            return headers, json.dumps(body, ensure_ascii=False).encode("utf-8")

        state.notifier.deliver(order.id, url, build, notify_accepted)


def blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint(NAME, __name__)

    def guarded(handler: Callable[[], Response]) -> Response:
        try:
            return handler()
        except Refused as refusal:
            return answer(refusal.code, refusal.msg, None)

    @bp.post("/v1/paypro/paymentLink")
    def payment_link() -> Response:
        return guarded(lambda: create(state, "paymentLink"))

    @bp.post("/v1/paypro/payInApi")
    def pay_in_api() -> Response:
        return guarded(lambda: create(state, "payInApi"))

    @bp.post("/v1/paypro/queryPayInResult")
    def query_pay_in_result() -> Response:
        return guarded(lambda: query(state))

    @bp.post("/v1/paypro/payOut")
    def pay_out() -> Response:
        return guarded(lambda: payout_create(state))

    @bp.post("/v1/paypro/queryPayOutResult")
    def query_pay_out_result() -> Response:
        return guarded(lambda: payout_query(state))

    @bp.post("/v1/paypro/queryBalance")
    def query_balance() -> Response:
        return guarded(lambda: balance(state))

    faults.install(
        bp,
        state,
        NAME,
        {
            "payment_link": "create",
            "pay_in_api": "create",
            "query_pay_in_result": "query",
            "pay_out": "payout",
            "query_pay_out_result": "payout_query",
            "query_balance": "balance",
        },
        lambda code, message: answer(code, message or REFUSAL_NAMES.get(code, "FAILED"), None),
    )
    return bp


# ---------------------------------------------------------------- the app's instances
def prepare_instance(config: ProviderConfig) -> None:
    """Nothing to make before a sandbox-mode PayPro instance is built: its secret is text."""


def configure(sandbox: SandboxConfig, config: ProviderConfig) -> None:
    """Let the simulator know a sandbox-mode instance's merchant."""
    sandbox.paypro_merchants[str(config.settings["merchant_no"])] = str(
        config.settings["app_secret"]
    )
