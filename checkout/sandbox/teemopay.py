"""TeemoPay simulator: create and query a VA pay-in order, signed callbacks.

Wire-exact where TeemoPay documents it (headers, signing, success shapes, error
messages); every guess is marked **inferred** and kept in one place.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import requests
from flask import Blueprint, Response, request

from checkout.domain.money import Money
from checkout.providers.base import ProviderConfig
from checkout.providers.teemopay import signing
from checkout.providers.teemopay.payout_mapping import BANK_NAMES as KOREA_PAYOUT_BANK_NAMES
from checkout.sandbox import faults
from checkout.sandbox.core import (
    OrderStatus,
    SandboxConfig,
    SandboxOrder,
    SandboxState,
    headers_lower,
)
from checkout.sandbox.keys import ensure_teemopay_keys, public_pem_of
from checkout.sandbox.payouts import KOREA_BANK_CODES, PayoutRefusal, PayoutState, SandboxPayout

log = logging.getLogger(__name__)

PROVIDER = "teemopay"
COUNTRY = "KR"
CURRENCY = "KRW"
PAYMENT_TYPE_VA = 801
TIMESTAMP_SKEW_MS = 30_000
KST = ZoneInfo("Asia/Seoul")
NONCE_LENGTH = 32
NONCE_TTL = 86_400.0
MAX_EXPIRY_MS = 2 * 3600 * 1000
ACK = "SUCCESS"

# Documented error messages (the create page's error table).
MSG_AMOUNT_LIMIT = "Transaction amount exceeds limit, kindly retry within allowed range."
MSG_CHANNEL = "Channel request error, technicians will fix ASAP."
MSG_NETWORK = "Unstable network, kindly retry later."
MSG_INVALID = "Parameter validation error, kindly verify and retry."
# Top-level refusal codes of the Korea error code page, with their messages.
REFUSAL_MESSAGES = {
    "412": "Please try again later",
    "423": "This payment method is not supported",
    "426": "merchant order duplicate",
    "500": "Business Error",
}
# **Inferred** messages: TeemoPay names these cases but not their text.
MSG_DUPLICATE = "Duplicate merchant order, kindly verify and retry."
MSG_SIGNATURE = "Signature verification failed."
MSG_BAD_HEADERS = "Request header validation failed."
MSG_NONCE_USED = "Duplicate nonce, kindly use a new nonce."
MSG_STALE = "Request timestamp expired."
MSG_UNKNOWN_APP = "Application does not exist."
MSG_NO_ORDER = "Order does not exist."

# Banks a VA is opened at: (bankCode, bankName) as the documented example writes them.
BANKS: tuple[tuple[str, str], ...] = (
    ("IBK", "기업은행"),
    ("KBSTAR", "국민은행"),
    ("SHINHAN", "신한은행"),
    ("WOORI", "우리은행"),
)

# Callback / query status numbers.
STATUS_IN_PROGRESS = 1
STATUS_PAID = 2
STATUS_FAILED = 3
_WIRE_STATUS = {
    OrderStatus.PENDING: STATUS_IN_PROGRESS,
    OrderStatus.PAID: STATUS_PAID,
    OrderStatus.PARTIAL: STATUS_PAID,  # TeemoPay has no partial status: 2, smaller amount
    OrderStatus.FAILED: STATUS_FAILED,
}

REAL_NAME = re.compile(r"^[^\W\d_]+( [^\W\d_]+)*$")  # letters (any script), single spaces
PHONE = re.compile(r"^010\d{8}$")
EMAIL = re.compile(r"^[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}$")
AMOUNT = re.compile(r"^[1-9]\d*$")
URL = re.compile(r"^https?://\S+$")


class Refusal(Exception):
    """A request TeemoPay would answer with an error body."""

    def __init__(self, message: str, code: int | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else error_code_for(message)
        self.detail = detail  # logged only: TeemoPay's messages do not name the field


# ---------------------------------------------------------------- wire shapes
def trace_id() -> str:
    # Shaped like the documented one: 32 hex, a small number, a long digit string.
    return f"{secrets.token_hex(16)}.{secrets.randbelow(100)}.{time.time_ns() // 100}"


def to_json(payload: Mapping[str, Any]) -> bytes:
    # Keys in the documented order and Korean text unescaped, as TeemoPay writes them.
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str).encode()


def json_response(payload: Mapping[str, Any]) -> Response:
    return Response(to_json(payload), status=200, mimetype="application/json")


def success_body(data: Mapping[str, Any]) -> dict[str, Any]:
    return {"msg": "success", "traceId": trace_id(), "code": 200, "data": dict(data)}


def error_body(message: str, code: int) -> dict[str, Any]:
    """**Inferred** error shape: the success envelope with a non-200 `code` and null data.

    TeemoPay documents the error messages but not the body that carries them. The
    HTTP status stays 200 (**inferred** too): the outer `code` is what says no.
    """
    return {"msg": message, "traceId": trace_id(), "code": code, "data": None}


def error_code_for(message: str) -> int:
    """**Inferred** outer `code` per refusal (any non-200 value is a refusal)."""
    if message in (MSG_INVALID, MSG_BAD_HEADERS, MSG_STALE, MSG_NONCE_USED):
        return 400
    if message in (MSG_SIGNATURE, MSG_UNKNOWN_APP):
        return 401
    return 500


def amount_text(money: Money) -> str:
    """TeemoPay writes amounts with two decimals: '1000.00'."""
    return f"{money.to_decimal():.2f}"


def new_trade_no(now: datetime) -> str:
    # 30 characters like the example TS2501010001KR0000000000000000.
    digits = "".join(str(secrets.randbelow(10)) for _ in range(16))
    return f"TS{now:%y%m%d}{secrets.randbelow(10_000):04d}{COUNTRY}{digits}"


def new_va_number() -> str:
    # 14 digits like the example 29900000000000.
    return "299" + "".join(str(secrets.randbelow(10)) for _ in range(11))


def now_ms() -> int:
    return int(time.time() * 1000)


def ms_to_datetime(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


# ---------------------------------------------------------------- request checks
def check_headers(state: SandboxState, headers: Mapping[str, str]) -> tuple[str, str]:
    """Return (app_code, nonce) or raise Refusal; the nonce is recorded later, once signed."""
    # WSGI cannot tell `app_code` from `app-code`: werkzeug hands it back as App-Code.
    h = {k.replace("-", "_"): v for k, v in headers_lower(headers).items()}
    app_code = h.get("app_code", "")
    nonce = h.get("nonce", "")
    stamp = h.get("timestamp", "")
    if h.get("country") != COUNTRY or not app_code:
        raise Refusal(MSG_BAD_HEADERS, detail="country/app_code")
    if app_code not in state.config.teemopay_apps:
        raise Refusal(MSG_UNKNOWN_APP, detail=app_code)
    if len(nonce) != NONCE_LENGTH:
        raise Refusal(MSG_BAD_HEADERS, detail="nonce length")
    if not (len(stamp) == 13 and stamp.isdigit()):
        raise Refusal(MSG_BAD_HEADERS, detail="timestamp format")
    if abs(now_ms() - int(stamp)) > TIMESTAMP_SKEW_MS:
        raise Refusal(MSG_STALE)
    return app_code, nonce


def read_signed_body(state: SandboxState, app_code: str, nonce: str) -> dict[str, Any]:
    """Parse the JSON body, verify it with the app's public key, then spend the nonce."""
    try:
        body = json.loads(request.get_data(), parse_float=Decimal)
    except ValueError as exc:
        raise Refusal(MSG_INVALID, detail="body is not JSON") from exc
    if not isinstance(body, dict):
        raise Refusal(MSG_INVALID, detail="body is not an object")
    signature = body.get("sign")
    public_key = signing.load_public_key(state.config.teemopay_apps[app_code])
    if not isinstance(signature, str) or not signing.verify(body, nonce, signature, public_key):
        raise Refusal(MSG_SIGNATURE)
    # Scoped to the provider and app: the sandbox shares one nonce table.
    if state.nonce_seen(f"{PROVIDER}:{app_code}:{nonce}", ttl=NONCE_TTL):
        raise Refusal(MSG_NONCE_USED)
    return body


def _text_field(body: Mapping[str, Any], key: str, max_len: int, *, required: bool) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        if required:
            raise Refusal(MSG_INVALID, detail=f"{key} missing")
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise Refusal(MSG_INVALID, detail=f"{key} type/length")
    return value


def validate_create(body: Mapping[str, Any]) -> dict[str, Any]:
    """The create fields, checked as the API page describes; raises Refusal."""
    order_no = _text_field(body, "merchantOrderNo", 32, required=True)
    payment_type = body.get("paymentType")
    if isinstance(payment_type, bool) or payment_type != PAYMENT_TYPE_VA:
        raise Refusal(MSG_INVALID, detail="paymentType")
    real_name = _text_field(body, "realName", 64, required=True) or ""
    if len(real_name) > 20 or not REAL_NAME.match(real_name):
        raise Refusal(MSG_INVALID, detail="realName")
    merchant_name = _text_field(body, "merchantName", 64, required=True)
    amount = _text_field(body, "amount", 20, required=True) or ""
    if not AMOUNT.match(amount):
        raise Refusal(MSG_INVALID, detail="amount")
    email = _text_field(body, "email", 50, required=False)
    if email is not None and not EMAIL.match(email):
        raise Refusal(MSG_INVALID, detail="email")
    phone = _text_field(body, "phone", 20, required=False)
    if phone is not None and not PHONE.match(phone):
        raise Refusal(MSG_INVALID, detail="phone")
    callback = _text_field(body, "callbackUrl", 200, required=False)
    if callback is not None and not URL.match(callback):
        raise Refusal(MSG_INVALID, detail="callbackUrl")
    now = now_ms()
    expiration = body.get("expirationTime")
    if expiration is None or expiration == "":
        expiration = now + MAX_EXPIRY_MS  # documented default: 2 h
    elif (
        isinstance(expiration, bool)
        or not isinstance(expiration, int)
        or not now < expiration <= now + MAX_EXPIRY_MS
    ):
        raise Refusal(MSG_INVALID, detail="expirationTime")
    return {
        "merchantOrderNo": order_no,
        "realName": real_name,
        "merchantName": merchant_name,
        "amount": int(amount),
        "email": email,
        "phone": phone,
        "callbackUrl": callback,
        "expirationTime": expiration,
    }


# ---------------------------------------------------------------- the simulator
# ---------------------------------------------------------------- payouts
# Payout create errors, top-level `code` and `msg` as the Chinese Korea page lists them [doc].
PAYOUT_ERRORS: dict[str, tuple[int, str]] = {
    "field": (414, "Parameter validation error"),  # the page's `*`: field-specific
    PayoutRefusal.INSUFFICIENT_BALANCE: (425, "Insufficient merchant balance"),
    PayoutRefusal.DUPLICATE: (426, "merchant order duplicate"),
    "no_callback": (427, "The callback notification address for collection must not be empty."),
    "card_length": (430, "The card number length is incorrect."),
    PayoutRefusal.UNSUPPORTED_BANK: (431, "The bank code does not supported."),
    "account_type": (455, "The account type error."),
    "id_type": (475, "The id card type is error"),
}
PAYOUT_NOT_FOUND = (434, "Merchant order not exist")  # zh page; en says 400 [conflict]
PAYOUT_ACCOUNT_TYPE = 801
PAYOUT_ID_TYPES = ("RRN", "CO")
PAYOUT_STATUS = {
    PayoutState.PROCESSING: 1,
    PayoutState.SUCCEEDED: 2,
    PayoutState.FAILED: 3,
    PayoutState.RETURNED: 4,
}
PAYOUT_REAL_NAME = re.compile(r"^[^\W\d_]+([ .][^\W\d_]+)*$")  # no special characters
ACCOUNT_DIGITS = re.compile(r"^\d{6,20}$")  # INFERRED bounds behind error 430


def payout_refusal(key: str, detail: str = "") -> Refusal:
    code, message = PAYOUT_ERRORS[key]
    return Refusal(message, code, detail)


def validate_payout(body: Mapping[str, Any]) -> dict[str, Any]:
    """The payout create fields, checked as the Korea payout page describes."""
    try:
        order_no = _text_field(body, "merchantOrderNo", 32, required=True)
        amount = _text_field(body, "amount", 20, required=True) or ""
        bank_code = _text_field(body, "bankCode", 50, required=True) or ""
        bank_name = _text_field(body, "bankName", 50, required=True) or ""
        account = _text_field(body, "bankAccount", 50, required=True) or ""
        real_name = _text_field(body, "realName", 40, required=True) or ""
        id_type = _text_field(body, "idType", 50, required=True) or ""
        callback = _text_field(body, "callbackUrl", 200, required=False)
    except Refusal as refusal:
        raise payout_refusal("field", refusal.detail) from None
    if not AMOUNT.match(amount):
        raise payout_refusal("field", "amount")
    account_type = body.get("accountType")
    if isinstance(account_type, bool) or account_type != PAYOUT_ACCOUNT_TYPE:
        raise payout_refusal("account_type")
    if not ACCOUNT_DIGITS.match(account):
        raise payout_refusal("card_length")
    if len(real_name) < 2 or not PAYOUT_REAL_NAME.match(real_name):
        raise payout_refusal("field", "realName")
    if id_type not in PAYOUT_ID_TYPES:
        raise payout_refusal("id_type")
    if callback is None:
        raise payout_refusal("no_callback")  # the sandbox has no dashboard URL to fall back on
    if not URL.match(callback):
        raise payout_refusal("field", "callbackUrl")
    if KOREA_PAYOUT_BANK_NAMES.get(bank_code, bank_name) != bank_name:
        raise payout_refusal("field", "bankName does not match bankCode")
    return {
        "merchantOrderNo": order_no,
        "amount": int(amount),
        "bankCode": bank_code,
        "bankAccount": account,
        "realName": real_name,
        "callbackUrl": callback,
    }


def open_payout(state: SandboxState, app_code: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    amount = Money(int(fields["amount"]), CURRENCY)
    try:
        payout = state.payouts.open(
            PROVIDER,
            app_code,
            fields["merchantOrderNo"],
            amount,
            bank_code=fields["bankCode"],
            account_number=fields["bankAccount"],
            holder_name=fields["realName"],
            notify_url=fields["callbackUrl"],
            banks=KOREA_BANK_CODES,
            id_prefix="TF" + datetime.now(UTC).strftime("%y%m%d") + COUNTRY,
            fee=service_fee(amount),
            returns=True,  # TeemoPay reports a bank's return (status 4); the others do not
        )
    except PayoutRefusal as refusal:
        raise payout_refusal(refusal.reason) from None
    return {  # the Chinese page's envelope data, key order as its example
        "amount": amount_text(amount),
        "merchantOrderNo": payout.payout_no,
        "status": PAYOUT_STATUS[PayoutState.PROCESSING],
        "tradeNo": payout.id,
    }


def kst_text(moment: datetime | None) -> str | None:
    """`yyyy-MM-dd HH:mm:ss` in Korea time (UTC+9) [doc]."""
    if moment is None:
        return None
    return moment.astimezone(KST).strftime("%Y-%m-%d %H:%M:%S")


def payout_fields(payout: SandboxPayout, *, for_query: bool) -> dict[str, Any]:
    """Query `data` or callback body (before signing). The query page has no status 4
    [doc]: a returned payout reads 3 there (INFERRED), with error 1016."""
    status = PAYOUT_STATUS[payout.status]
    if for_query and status == 4:
        status = 3
    failed = payout.status in (PayoutState.FAILED, PayoutState.RETURNED)
    fee = payout.fee or Money(0, CURRENCY)
    shows_amount = for_query or payout.status != PayoutState.FAILED
    fields: dict[str, Any] = {
        "merchantOrderNo": payout.payout_no,
        "tradeNo": payout.id,
        # The failure callback example has null amounts [doc].
        "amount": amount_text(payout.amount) if shows_amount else None,
        "serviceAmount": amount_text(fee) if shows_amount else None,
        "status": status,
        "errorCode": int(payout.failure_code) if failed and payout.failure_code else None,
        "errorMessage": payout.failure_message if failed else None,
        "completeTime": kst_text(payout.completed_at),
    }
    if for_query:
        fields["immService"] = "0.00"
        fields["serviceRate"] = "0.010"
    return fields


class Simulator:
    name = PROVIDER

    def send_payout_notify(self, state: SandboxState, payout: SandboxPayout) -> None:
        """The signed payout callback, retried until a plain `SUCCESS` [doc]."""
        private_pem = state.config.teemopay_private_key
        if not payout.notify_url or private_pem is None:
            return
        private_key = signing.load_private_key(private_pem)
        fields = payout_fields(payout, for_query=False)

        def build() -> tuple[dict[str, str], bytes]:
            nonce = secrets.token_hex(16)
            body = {**fields, "sign": signing.sign(fields, nonce, private_key)}
            headers = {
                "Content-Type": "application/json",
                "timestamp": str(now_ms()),
                "nonce": nonce,
                "country": COUNTRY,
                "appCode": payout.merchant,
            }
            return headers, to_json(body)

        def accepted(resp: requests.Response) -> bool:
            return resp.status_code == 200 and resp.text == ACK

        state.notifier.deliver(payout.id, payout.notify_url, build, accepted)

    def send_notify(self, state: SandboxState, order: SandboxOrder) -> None:
        """POST the signed callback to callbackUrl, retrying until a plain `SUCCESS`."""
        if not order.notify_url:
            return  # TeemoPay would use the merchant back-office URL; the sandbox has none
        private_pem = state.config.teemopay_private_key
        if private_pem is None:
            log.warning("teemopay sandbox: no platform private key, callback not sent")
            return
        private_key = signing.load_private_key(private_pem)
        fields = callback_fields(order)

        def build() -> tuple[dict[str, str], bytes]:
            nonce = secrets.token_hex(16)  # fresh per try, like TeemoPay's retries
            body = {**fields, "sign": signing.sign(fields, nonce, private_key)}
            headers = {
                "Content-Type": "application/json",
                "timestamp": str(now_ms()),
                "nonce": nonce,
                "country": COUNTRY,
                "appCode": order.merchant,
            }
            return headers, to_json(body)

        def accepted(resp: requests.Response) -> bool:
            return resp.status_code == 200 and resp.text == ACK

        state.notifier.deliver(order.id, order.notify_url, build, accepted)


def callback_fields(order: SandboxOrder) -> dict[str, Any]:
    """The callback body before signing (same fields for every retry)."""
    paid = order.paid if order.status != OrderStatus.FAILED else None
    paid_amount = paid or Money(0, CURRENCY)
    completed = order.extra.get("completed_at") or datetime.now(UTC)
    # One callback per transfer (Corrections): paymentOrderNo and paymentAmount are the
    # latest transfer's, not the order's.
    transfers = order.extra.get("transfers") or []
    if transfers and order.status != OrderStatus.FAILED:
        payment_order_no, paid_amount = transfers[-1]
    else:
        payment_order_no = order.extra.setdefault(
            "payment_order_no", "P" + "".join(str(secrets.randbelow(10)) for _ in range(19))
        )
    fields: dict[str, Any] = {
        "merchantOrderNo": order.trade_no,
        "tradeNo": order.id,
        "paymentOrderNo": payment_order_no,
        "status": _WIRE_STATUS[order.status],
        "paymentAmount": amount_text(paid_amount),
        "serviceAmount": amount_text(service_fee(paid_amount)),
        "paymentInfo": order.extra.get("payment_info", ""),
        "paymentType": PAYMENT_TYPE_VA,
        "completeTime": int(completed.timestamp() * 1000),  # **inferred**: ms like expiredTime
    }
    if order.status == OrderStatus.FAILED:
        fields["errorMessage"] = order.extra.get("error_message", "Payment failed")
    return fields


def service_fee(paid: Money) -> Money:
    """**Inferred** fee (TeemoPay's is contractual): 1 % of what was paid, in whole won."""
    return Money(paid.amount // 100, paid.currency)


def blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint("teemopay", __name__)

    def refuse(refusal: Refusal, path: str) -> Response:
        log.info("teemopay sandbox %s refused: %s %s", path, refusal.message, refusal.detail)
        return json_response(error_body(refusal.message, refusal.code))

    @bp.post("/api/pay/payment/create/v1")
    def create() -> Response:
        try:
            app_code, nonce = check_headers(state, request.headers)
            body = read_signed_body(state, app_code, nonce)
            fields = validate_create(body)
            injected = state.take_injected_error(PROVIDER)
            if injected is not None:
                code, message = injected
                raise Refusal(message, int(code) if code.isdigit() else 500)
            if fields["amount"] > state.config.max_amount:
                raise Refusal(MSG_AMOUNT_LIMIT)
            return json_response(success_body(open_order(state, app_code, fields)))
        except Refusal as refusal:
            return refuse(refusal, "create")

    @bp.post("/api/pay/payment/query/v1")
    def query() -> Response:
        try:
            app_code, nonce = check_headers(state, request.headers)
            body = read_signed_body(state, app_code, nonce)
            order_no = _text_field(body, "merchantOrderNo", 32, required=True) or ""
            order = state.find_by_trade_no(PROVIDER, app_code, order_no)
            if order is None:
                raise Refusal(MSG_NO_ORDER)
            return json_response(success_body(query_data(order)))
        except Refusal as refusal:
            return refuse(refusal, "query")

    @bp.post("/api/pay/payout/create/v1")
    def payout_create() -> Response:
        try:
            app_code, nonce = check_headers(state, request.headers)
            body = read_signed_body(state, app_code, nonce)
            fields = validate_payout(body)
            return json_response(success_body(open_payout(state, app_code, fields)))
        except Refusal as refusal:
            return refuse(refusal, "payout")

    @bp.post("/api/pay/payout/query/v1")
    def payout_query() -> Response:
        try:
            app_code, nonce = check_headers(state, request.headers)
            body = read_signed_body(state, app_code, nonce)
            order_no = _text_field(body, "merchantOrderNo", 32, required=True) or ""
            payout = state.payouts.find(PROVIDER, app_code, order_no)
            if payout is None:
                raise Refusal(PAYOUT_NOT_FOUND[1], PAYOUT_NOT_FOUND[0])
            return json_response(success_body(payout_fields(payout, for_query=True)))
        except Refusal as refusal:
            return refuse(refusal, "payout_query")

    @bp.post("/api/pay/merchant/balance")
    def balance() -> Response:
        try:
            app_code, nonce = check_headers(state, request.headers)
            read_signed_body(state, app_code, nonce)
            available, frozen = state.payouts.balance(PROVIDER, app_code, CURRENCY)
            total = Money(available.amount + frozen.amount, CURRENCY)
            return json_response(
                success_body(
                    {
                        "totalAmount": amount_text(total),
                        "frozenAmount": amount_text(frozen),
                        "availAmount": amount_text(available),
                    }
                )
            )
        except Refusal as refusal:
            return refuse(refusal, "balance")

    def refusal(code: str, message: str | None) -> Response:
        if code == "3":  # accepted, then failed at once by the channel
            body = request.get_json(silent=True)
            order_no = body.get("merchantOrderNo") if isinstance(body, dict) else None
            data = {"merchantOrderNo": order_no, "status": 3, "errorMsg": message or MSG_CHANNEL}
            return json_response(success_body(data))
        text = message or REFUSAL_MESSAGES.get(code, "Business Error")
        return json_response(error_body(text, int(code) if code.isdigit() else 500))

    faults.install(
        bp,
        state,
        PROVIDER,
        {
            "create": "create",
            "query": "query",
            "payout_create": "payout",
            "payout_query": "payout_query",
            "balance": "balance",
        },
        refusal,
    )
    return bp


def open_order(state: SandboxState, app_code: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Record the VA order and return the documented `data` object; Refusal on a duplicate."""
    now = datetime.now(UTC)
    bank_code, bank_name = BANKS[secrets.randbelow(len(BANKS))]
    va = new_va_number()
    amount = Money(int(fields["amount"]), CURRENCY)
    expired_ms = int(fields["expirationTime"])
    order = SandboxOrder(
        provider=PROVIDER,
        id=new_trade_no(now),
        merchant=app_code,
        trade_no=fields["merchantOrderNo"],
        amount=amount,
        notify_url=fields["callbackUrl"],
        return_url=None,
        is_va=True,
        expires_at=ms_to_datetime(expired_ms),
        extra={
            "payment_info": va,
            "bank_code": bank_code,
            "bank_name": bank_name,
            "display": {
                "Bank": f"{bank_name} ({bank_code})",
                "Account": va,
                "Deposit by": ms_to_datetime(expired_ms).strftime("%Y-%m-%d %H:%M UTC"),
            },
        },
    )
    with state.lock:  # check and add together: concurrent duplicates must not both pass
        if state.find_by_trade_no(PROVIDER, app_code, order.trade_no) is not None:
            raise Refusal(MSG_DUPLICATE)
        state.add(order)
    return {
        "amount": amount_text(amount),
        "tradeNo": order.id,
        "additionalInfo": {"bankCode": bank_code, "bankName": bank_name, "expiredTime": expired_ms},
        "merchantOrderNo": order.trade_no,
        "paymentInfo": va,
        "paymentType": PAYMENT_TYPE_VA,
        "status": STATUS_IN_PROGRESS,
    }


def query_data(order: SandboxOrder) -> dict[str, Any]:
    """The query `data`: status 1/2/3 and `amount` received (**inferred**: '0.00' until paid)."""
    received = order.paid if order.status in (OrderStatus.PAID, OrderStatus.PARTIAL) else None
    data: dict[str, Any] = {
        "merchantOrderNo": order.trade_no,
        "tradeNo": order.id,
        "status": _WIRE_STATUS[order.status],
        "amount": amount_text(received or Money(0, CURRENCY)),
        "paymentType": PAYMENT_TYPE_VA,
        "paymentInfo": order.extra.get("payment_info", ""),
    }
    if order.status == OrderStatus.FAILED:
        data["errorMsg"] = order.extra.get("error_message", "Payment failed")
    data["statementList"] = [
        {
            "paymentSingleOrderNo": transfer_id,
            "paymentStatementAmount": amount_text(amount),
            "paymentStatementStatus": STATUS_PAID,
        }
        for transfer_id, amount in order.extra.get("transfers") or []
    ]
    return data


# ---------------------------------------------------------------- the app's instances
def prepare_instance(config: ProviderConfig) -> None:
    """A sandbox-mode instance's key pairs (ours and TeemoPay's), made once, before the
    instance loads them."""
    key_file = Path(str(config.settings["private_key_file"]))
    if not key_file.exists():
        ensure_teemopay_keys(key_file.parent)


def configure(sandbox: SandboxConfig, config: ProviderConfig) -> None:
    """Let the simulator know a sandbox-mode instance's app and keys."""
    s = config.settings
    private = Path(str(s["private_key_file"]))
    files = ensure_teemopay_keys(private.parent)
    sandbox.teemopay_apps[str(s["app_code"])] = public_pem_of(private.read_bytes())
    # TeemoPay's own key pair lives beside its public key in sandbox mode.
    platform_private = Path(str(s["platform_public_key_file"])).with_name(
        files.platform_private.name
    )
    sandbox.teemopay_private_key = platform_private.read_bytes()
