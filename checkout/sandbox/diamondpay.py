"""Diamond Pay simulator: create deposit, notify, query, as the wire protocol has them.

Every answer is HTTP 200 with `error_code`/`error_msg` (INFERRED: the page shows only
bodies); codes other than 0000, 0004 and 0050 are INFERRED and kept in ERRORS below.
"""

from __future__ import annotations

import hmac
import json
import secrets
import string
import time
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Blueprint, Response, request, url_for

from checkout.domain.money import Money
from checkout.providers.base import ProviderConfig
from checkout.providers.diamondpay import signing
from checkout.providers.diamondpay.mapping import SERVICE_IDS
from checkout.providers.diamondpay.signing import DEFAULT_SIGN_TYPE
from checkout.sandbox import faults
from checkout.sandbox.core import (
    DiamondPlatform,
    OrderStatus,
    SandboxConfig,
    SandboxOrder,
    SandboxState,
)
from checkout.sandbox.payouts import KOREA_BANK_CODES, PayoutRefusal, PayoutState, SandboxPayout

NAME = "diamondpay"

# error_code -> error_msg. 0000, 0004 and 0050 are documented; the rest are INFERRED.
OK = "0000"
PARAM_ERROR = "0001"  # inferred: missing or invalid parameter
UNKNOWN_PLATFORM = "0002"  # inferred: platform_id not known
SERVICE_UNAVAILABLE = "0003"  # inferred: service_id not one of the platform's services
SIGNATURE_FAILED = "0004"
DUPLICATE_ORDER = "0005"  # inferred: payment_cl_id already used by this platform
AMOUNT_LIMIT = "0006"  # inferred: amount above the platform's limit
REQUEST_EXPIRED = "0007"  # inferred: request_time too far from now
UNAUTHORIZED = "0008"  # inferred: query Authorization token not valid
ORDER_NOT_FOUND = "0050"
# Documented refusals and their messages (more/diamondpay.md section 8).
REFUSAL_MESSAGES = {
    "0004": "Signature verification failed!",
    "0006": "Invalid Authorization!",
    "0012": "Unsupported bank!",
    "0018": "Insufficient merchant balance!",
}

ERRORS: dict[str, str] = {
    PARAM_ERROR: "Parameter error",
    UNKNOWN_PLATFORM: "Platform does not exist",
    SERVICE_UNAVAILABLE: "Service not available",
    SIGNATURE_FAILED: "Signature verification failed!",
    DUPLICATE_ORDER: "Duplicate merchant order number",
    AMOUNT_LIMIT: "Amount exceeds the limit",
    REQUEST_EXPIRED: "Request time expired",
    UNAUTHORIZED: "Unauthorized",
    ORDER_NOT_FOUND: "Order not found",
}

REQUIRED = ("platform_id", "service_id", "payment_cl_id", "amount", "notify_url", "request_time")
REQUEST_TIME_SKEW = 300  # seconds either side of now (inferred: "a few minutes")

# Notify / query `status` values.
STATUS_PENDING = 0
STATUS_PAID = 2
STATUS_CANCELLED = 3

# The receiving account the sandbox hands out (a Korean bank, as in production).
BANK_NAME = "KB Kookmin Bank"
BANK_CODE = "KB"
PAYEE_NAME = "DIAMOND PAY KOREA"


class CreateRefused(Exception):
    def __init__(self, code: str, detail: str | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.detail = detail


def _answer(body: dict[str, Any], status: int = 200) -> Response:
    return Response(
        json.dumps(body, ensure_ascii=False), status=status, content_type="application/json"
    )


def _error(code: str, detail: str | None = None) -> Response:
    message = ERRORS.get(code, "Error")
    return _answer({"error_code": code, "error_msg": f"{message}: {detail}" if detail else message})


def _wire_int(value: Any, max_digits: int) -> int:
    """A JSON integer or digit string of at most `max_digits` digits."""
    if isinstance(value, bool):
        raise CreateRefused(PARAM_ERROR, "not an integer")
    if isinstance(value, int) and value >= 0:
        text = str(value)
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        text = value
    else:
        raise CreateRefused(PARAM_ERROR, "not an integer")
    if len(text.lstrip("0") or "0") > max_digits:
        raise CreateRefused(PARAM_ERROR, f"more than {max_digits} digits")
    return int(text)


def _text_field(body: dict[str, Any], key: str, max_length: int) -> str:
    value = body[key]
    if not isinstance(value, str) or not value or len(value) > max_length:
        raise CreateRefused(PARAM_ERROR, f"{key} must be a string of 1 to {max_length} characters")
    return value


def _random_letters(n: int) -> str:
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(n))


def _unix(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def _find_platform(state: SandboxState, token: str) -> str | None:
    """The platform_id whose api_token is `token` (constant-time per platform)."""
    found = None
    for platform_id, platform in state.config.diamond_platforms.items():
        if hmac.compare_digest(platform.api_token.encode(), token.encode()):
            found = platform_id
    return found


def _status_code(order: SandboxOrder) -> int:
    if order.status in (OrderStatus.PAID, OrderStatus.PARTIAL):
        return STATUS_PAID  # Diamond Pay has no partial status: real_amount tells
    if order.status == OrderStatus.FAILED:
        return STATUS_CANCELLED
    return STATUS_PENDING


def _hundredths(money: Money | None) -> int:
    return money.amount * 100 if money else 0  # KRW has no minor unit


# ---------------------------------------------------------------- payouts
PAYOUT_SERVICE = "SVC0004"
INVALID_AUTHORIZATION = "0006"  # [doc] balance pages
UNSUPPORTED_BANK = "0012"  # INFERRED: third-party integration logs
INSUFFICIENT_BALANCE = "0018"  # INFERRED: third-party integration logs
PAYOUT_ERRORS: dict[str, str] = {
    INVALID_AUTHORIZATION: "Invalid Authorization!",
    UNSUPPORTED_BANK: "Unsupported bank!",
    INSUFFICIENT_BALANCE: "Merchant balance insufficient!",
    ORDER_NOT_FOUND: "Order not found!",
}
PAYOUT_REFUSALS = {
    PayoutRefusal.DUPLICATE: DUPLICATE_ORDER,
    PayoutRefusal.UNSUPPORTED_BANK: UNSUPPORTED_BANK,
    PayoutRefusal.INSUFFICIENT_BALANCE: INSUFFICIENT_BALANCE,
}
PAYOUT_REQUIRED = (
    "platform_id",
    "service_id",
    "payout_cl_id",
    "amount",
    "bank_name",
    "name",
    "number",
    "phone_number",
    "currency",
    "request_time",
    "sign",
)
# Query and notify `status` [doc]: 1 pending, 2 processing, 3 success, 4 cancelled.
PAYOUT_STATUS = {
    PayoutState.PROCESSING: 2,
    PayoutState.SUCCEEDED: 3,
    PayoutState.FAILED: 4,
    PayoutState.RETURNED: 4,
}


def _payout_error(code: str, detail: str | None = None) -> Response:
    message = PAYOUT_ERRORS.get(code) or ERRORS.get(code, "Error")
    return _answer({"error_code": code, "error_msg": f"{message}: {detail}" if detail else message})


def _payout_create(state: SandboxState) -> Response:
    try:
        body = json.loads(request.get_data(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise CreateRefused(PARAM_ERROR, "body is not JSON") from None
    if not isinstance(body, dict):
        raise CreateRefused(PARAM_ERROR, "body is not a JSON object")
    missing = [k for k in PAYOUT_REQUIRED if signing.value_text(body.get(k)) == ""]
    if missing:
        raise CreateRefused(PARAM_ERROR, f"missing {', '.join(missing)}")
    platform_id = _text_field(body, "platform_id", 6)
    platform = state.config.diamond_platforms.get(platform_id)
    if platform is None:
        raise CreateRefused(UNKNOWN_PLATFORM)
    try:
        sign_type = signing.normalise_sign_type(body.get("sign_type"))
    except ValueError:
        raise CreateRefused(PARAM_ERROR, "sign_type must be MD5 or HMAC-SHA256") from None
    if not signing.verify(body, platform.key, platform.sign_type):
        raise CreateRefused(SIGNATURE_FAILED)
    if body["service_id"] != PAYOUT_SERVICE:
        raise CreateRefused(SERVICE_UNAVAILABLE)
    if body["currency"] != "krw":
        raise CreateRefused(PARAM_ERROR, "currency must be krw")
    payout_no = _text_field(body, "payout_cl_id", 64)
    bank_code = _text_field(body, "bank_name", 16)
    name = _text_field(body, "name", 16)
    number = _text_field(body, "number", 32)
    phone = _text_field(body, "phone_number", 11)
    if not number.isdigit() or not phone.isdigit():
        raise CreateRefused(PARAM_ERROR, "number and phone_number must be digits")
    amount = _wire_int(body["amount"], 10)
    if amount <= 0 or amount % 100:
        raise CreateRefused(PARAM_ERROR, "amount must be a positive multiple of 100")
    notify_url = body.get("notify_url") or None
    if notify_url is not None:
        notify_url = _text_field(body, "notify_url", 256)
        parts = urlsplit(notify_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise CreateRefused(PARAM_ERROR, "notify_url must be an http or https URL")
    request_time = _wire_int(body["request_time"], 10)
    if abs(time.time() - request_time) > REQUEST_TIME_SKEW:
        raise CreateRefused(REQUEST_EXPIRED)
    try:
        payout = state.payouts.open(
            NAME,
            platform_id,
            payout_no,
            Money(amount // 100, "KRW"),
            bank_code=bank_code,
            account_number=number,
            holder_name=name,
            notify_url=notify_url,
            banks=KOREA_BANK_CODES,
            id_prefix="POT",
            extra={"sign_type": sign_type if body.get("sign_type") else None},
        )
    except PayoutRefusal as refusal:
        return _payout_error(PAYOUT_REFUSALS[refusal.reason])
    return _answer({"error_code": OK, "data": {"payout_id": payout.id}})


def _payout_data(payout: SandboxPayout) -> dict[str, Any]:
    status = PAYOUT_STATUS[payout.status]
    return {
        "payout_id": payout.id,
        "payout_cl_id": payout.payout_no,
        "amount": _hundredths(payout.amount),
        "fee": 0,
        "status": status,
        "error_msg": payout.failure_message if status == 4 else "",
        "create_time": _unix(payout.created_at),
        "success_time": _unix(payout.completed_at) if status == 3 else None,
    }


def _payout_notify_body(payout: SandboxPayout, platform: DiamondPlatform) -> dict[str, Any]:
    data = _payout_data(payout)
    body: dict[str, Any] = {
        "payout_id": payout.id,
        "payout_cl_id": payout.payout_no,
        "platform_id": payout.merchant,
        "amount": data["amount"],
        "fee": 0,
        "status": data["status"],
        "error_msg": data["error_msg"] or None,
        "create_time": data["create_time"],
        "update_time": _unix(payout.completed_at) or int(time.time()),
    }
    body = {k: v for k, v in body.items() if v is not None}
    sign_type = payout.extra.get("sign_type")
    if sign_type:
        body["sign_type"] = sign_type
    body["sign"] = signing.sign(body, platform.key, sign_type or signing.MD5)
    return body


class Simulator:
    name = NAME

    def send_payout_notify(self, state: SandboxState, payout: SandboxPayout) -> None:
        """POST the signed payout result until `{"error_code": "0000"}` [doc]."""
        if not payout.notify_url:
            return
        platform = state.config.diamond_platforms[payout.merchant]

        def build() -> tuple[dict[str, str], bytes]:
            body = _payout_notify_body(payout, platform)
            return {"Content-Type": "application/json;charset=utf-8"}, json.dumps(body).encode()

        state.notifier.deliver(payout.id, payout.notify_url, build, acknowledged)

    def send_notify(self, state: SandboxState, order: SandboxOrder) -> None:
        """POST the result to notify_url until the merchant answers error_code 0000."""
        if not order.notify_url:
            return
        platform = state.config.diamond_platforms[order.merchant]
        sign_type = signing.normalise_sign_type(platform.sign_type)  # the platform's own

        def build() -> tuple[dict[str, str], bytes]:
            body: dict[str, Any] = {
                "payment_id": order.id,
                "payment_cl_id": order.trade_no,
                "platform_id": order.merchant,
                "amount": _hundredths(order.amount),
                "real_amount": _hundredths(order.paid),
                "fee": 0,
                "status": _status_code(order),
                "create_time": _unix(order.created_at),
                "update_time": _unix(order.extra.get("completed_at")) or int(time.time()),
            }
            # sign_type only when HMAC-signed, as Diamond Pay's notifies (psp-docs, Corrections).
            if sign_type == signing.HMAC_SHA256:
                body["sign_type"] = sign_type
            body["sign"] = signing.sign(body, platform.key, sign_type)
            headers = {"Content-Type": "application/json;charset=utf-8"}
            return headers, json.dumps(body).encode()

        state.notifier.deliver(order.id, order.notify_url, build, acknowledged)


def acknowledged(resp: requests.Response) -> bool:
    """Only HTTP 200 with a JSON body whose error_code is "0000" stops the retries."""
    if resp.status_code != 200:
        return False
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and body.get("error_code") == OK


def blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint(NAME, __name__)

    @bp.post("/gateway/api/v2/payments")
    def create() -> Response:
        try:
            return _create(state)
        except CreateRefused as refused:
            return _error(refused.code, refused.detail)

    @bp.get("/gateway/api/v2/payments/<payment_cl_id>")
    def query(payment_cl_id: str) -> Response:
        platform_id = _find_platform(state, request.headers.get("Authorization", ""))
        if platform_id is None:
            return _error(UNAUTHORIZED)
        order = state.find_by_trade_no(NAME, platform_id, payment_cl_id)
        if order is None:
            return _error(ORDER_NOT_FOUND)
        status = _status_code(order)
        return _answer(
            {
                "error_code": OK,
                "data": {
                    "payment_id": order.id,
                    "payment_cl_id": order.trade_no,
                    "status": status,
                    "amount": _hundredths(order.amount),
                    "real_amount": _hundredths(order.paid),
                    "fee": 0,
                    "success_time": (
                        _unix(order.extra.get("completed_at")) if status == STATUS_PAID else None
                    ),
                },
            }
        )

    @bp.post("/gateway/api/v2/payouts")
    def payout_create() -> Response:
        try:
            return _payout_create(state)
        except CreateRefused as refused:
            return _error(refused.code, refused.detail)

    @bp.get("/gateway/api/v2/payouts/<payout_cl_id>")
    def payout_query(payout_cl_id: str) -> Response:
        platform_id = _find_platform(state, request.headers.get("Authorization", ""))
        if platform_id is None:
            return _payout_error(INVALID_AUTHORIZATION)
        payout = state.payouts.find(NAME, platform_id, payout_cl_id)
        if payout is None:
            return _payout_error(ORDER_NOT_FOUND)
        return _answer({"error_code": OK, "data": _payout_data(payout)})

    @bp.get("/gateway/api/v2/platforms/balance")
    def balance() -> Response:
        platform_id = _find_platform(state, request.headers.get("Authorization", ""))
        if platform_id is None:
            return _payout_error(INVALID_AUTHORIZATION)
        available, frozen = state.payouts.balance(NAME, platform_id, "KRW")
        total = _hundredths(available) + _hundredths(frozen)
        return _answer(
            {
                "error_code": OK,
                "data": {
                    "platform_id": platform_id,
                    "total_balance": total,
                    "total_frozen_balance": _hundredths(frozen),
                },
            }
        )

    faults.install(
        bp,
        state,
        NAME,
        {
            "create": "create",
            "query": "query",
            "payout_create": "payout",
            "payout_query": "payout_query",
            "balance": "balance",
        },
        lambda code, message: _answer(
            {"error_code": code, "error_msg": message or REFUSAL_MESSAGES.get(code, "Failed!")}
        ),
    )
    return bp


def _create(state: SandboxState) -> Response:
    try:
        body = json.loads(request.get_data(), parse_float=Decimal)
    except (ValueError, UnicodeDecodeError):
        raise CreateRefused(PARAM_ERROR, "body is not JSON") from None
    if not isinstance(body, dict):
        raise CreateRefused(PARAM_ERROR, "body is not a JSON object")
    missing = [k for k in (*REQUIRED, "sign") if signing.value_text(body.get(k)) == ""]
    if missing:
        raise CreateRefused(PARAM_ERROR, f"missing {', '.join(missing)}")

    platform_id = _text_field(body, "platform_id", 6)
    platform: DiamondPlatform | None = state.config.diamond_platforms.get(platform_id)
    if platform is None:
        raise CreateRefused(UNKNOWN_PLATFORM)
    try:
        sign_type = signing.normalise_sign_type(body.get("sign_type"))
    except ValueError:
        raise CreateRefused(PARAM_ERROR, "sign_type must be MD5 or HMAC-SHA256") from None
    # Only the platform's sign type verifies (an MD5 request to an HMAC platform fails).
    if not signing.verify(body, platform.key, platform.sign_type):
        raise CreateRefused(SIGNATURE_FAILED)

    service_id = _text_field(body, "service_id", 7)
    if service_id not in SERVICE_IDS:
        raise CreateRefused(SERVICE_UNAVAILABLE)
    trade_no = _text_field(body, "payment_cl_id", 64)
    amount = _wire_int(body["amount"], 10)
    if amount <= 0 or amount % 100:
        # Hundredths of a won: KRW has no minor unit, so only whole won exist.
        raise CreateRefused(PARAM_ERROR, "amount must be a positive multiple of 100")
    notify_url = _text_field(body, "notify_url", 256)
    parts = urlsplit(notify_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CreateRefused(PARAM_ERROR, "notify_url must be an http or https URL")
    request_time = _wire_int(body["request_time"], 10)
    if abs(time.time() - request_time) > REQUEST_TIME_SKEW:
        raise CreateRefused(REQUEST_EXPIRED)
    money = Money(amount // 100, "KRW")
    if money.amount > state.config.max_amount:
        raise CreateRefused(AMOUNT_LIMIT)
    injected = state.take_injected_error(NAME)
    if injected is not None:
        return _answer({"error_code": injected[0], "error_msg": injected[1]})

    with state.lock:  # the duplicate check and the insert must not interleave
        if state.find_by_trade_no(NAME, platform_id, trade_no) is not None:
            raise CreateRefused(DUPLICATE_ORDER)
        order = _new_order(state, platform_id, trade_no, money, notify_url, body, sign_type)
    data = order.extra["data"]
    return _answer({"error_code": OK, "data": data})


def _new_order(
    state: SandboxState,
    platform_id: str,
    trade_no: str,
    money: Money,
    notify_url: str,
    body: dict[str, Any],
    sign_type: str,
) -> SandboxOrder:
    payment_id = state.new_id("DEMOPM").upper()
    card_number = f"{secrets.randbelow(10**14):014d}"
    token = _random_letters(10)
    # The cashier page is Diamond Pay's own page: the shopper can deposit there.
    link = url_for("cashier.cashier", provider=NAME, order_id=payment_id, _external=True)
    data = {
        "link": link,
        "payment_id": payment_id,
        "payment_cl_id": trade_no,
        "amount": money.amount * 100,
        "qr_code_content": f"DIAMONDPAY|{BANK_CODE}|{card_number}|{money.amount}|{token}",
        "token": token,
        "card_name": PAYEE_NAME,
        "card_number": card_number,
        "bank_name": BANK_NAME,
        "bank_code": BANK_CODE,
    }
    order = SandboxOrder(
        provider=NAME,
        id=payment_id,
        merchant=platform_id,
        trade_no=trade_no,
        amount=money,
        notify_url=notify_url,
        return_url=None,  # the API has no return URL: the page never redirects
        is_va=True,  # deposit wording on the cashier
        extra={
            "service_id": body["service_id"],
            "sign_type": sign_type,  # what the request declared (absent: MD5)
            "data": data,
            "display": {
                "Bank": f"{BANK_NAME} ({BANK_CODE})",
                "Card number": card_number,
                "Payee": PAYEE_NAME,
                "Reference": token,
            },
        },
    )
    return state.add(order)


# ---------------------------------------------------------------- the app's instances
def prepare_instance(config: ProviderConfig) -> None:
    """Nothing to make before a sandbox-mode Diamond Pay instance is built."""


def configure(sandbox: SandboxConfig, config: ProviderConfig) -> None:
    """Let the simulator know a sandbox-mode instance's platform."""
    s = config.settings
    sandbox.diamond_platforms[str(s["platform_id"])] = DiamondPlatform(
        str(s["key"]), str(s["api_token"]), str(s.get("sign_type") or DEFAULT_SIGN_TYPE).upper()
    )
