"""Pure mapping between our types and Diamond Pay's JSON. No I/O here.

Amounts on the wire are hundredths of a won (KRW x 100); KRW has no minor unit,
so a wire amount that is not a multiple of 100 cannot be real money and is refused.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

from checkout import jsonsafe
from checkout.domain.errors import MoneyError
from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import (
    CreateResult,
    InstructionKind,
    PaymentInstructions,
    PaymentRequest,
    PaymentUpdate,
    claimed_field,
)
from checkout.providers.errors import (
    MalformedNotify,
    OrderNotFound,
    ProviderError,
    UnknownProviderStatus,
)

PROVIDER = "diamondpay"
CURRENCY = "KRW"

OK = "0000"
SIGNATURE_FAILED = "0004"
ORDER_NOT_FOUND = "0050"

SERVICE_IDS: dict[str, str] = {
    "SVC0015": "bank card",
    "SVC0016": "bank direct",
    "SVC0017": "QR code",
}

# `amount` is Integer(10) on the wire: at most 10 digits of hundredths.
MAX_WIRE_AMOUNT = 9_999_999_999

# Notify `status`: 2 paid, 3 cancelled, "others pending" (0 and 1 are the others the
# query table documents). Anything outside this table is refused as malformed.
NOTIFY_STATUS: dict[str, AttemptStatus] = {
    "0": AttemptStatus.PENDING,
    "1": AttemptStatus.PENDING,
    "2": AttemptStatus.PAID,
    "3": AttemptStatus.FAILED,
}

# Query `status`: 0 pending, 1 processing, 2 paid, 3 cancelled.
QUERY_STATUS: dict[str, AttemptStatus] = {
    "0": AttemptStatus.PENDING,
    "1": AttemptStatus.PENDING,
    "2": AttemptStatus.PAID,
    "3": AttemptStatus.FAILED,
}

NOTIFY_REQUIRED = ("payment_id", "payment_cl_id", "platform_id", "amount", "real_amount", "status")

_DIGITS = re.compile(r"[0-9]+")
MAX_WIRE_DIGITS = 18  # bounds any wire integer before it is converted


# ---------------------------------------------------------------- values
def parse_json(body: bytes | str) -> Any:
    """Parse a Diamond Pay body; fractional numbers stay Decimal so signatures keep their text."""
    return jsonsafe.loads(body)


def wire_int(value: Any) -> int:
    """A non-negative wire integer: a JSON integer or a string of digits.

    Raises ValueError otherwise (booleans, fractions, signs, blanks).
    """
    if isinstance(value, bool):
        raise ValueError(f"not an integer: {value!r}")
    if isinstance(value, int):
        if value < 0 or value >= 10**MAX_WIRE_DIGITS:
            raise ValueError(f"negative: {value!r}")
        return value
    if isinstance(value, str) and len(value) <= MAX_WIRE_DIGITS and _DIGITS.fullmatch(value):
        return int(value)
    raise ValueError(f"not an integer: {value!r}")


def to_hundredths(money: Money) -> int:
    """Our amount as Diamond Pay's: KRW x 100."""
    if money.currency != CURRENCY:
        raise MoneyError(f"Diamond Pay takes {CURRENCY}, not {money.currency}")
    return int(money.to_decimal().scaleb(2))


def from_hundredths(value: Any) -> Money:
    """A wire amount (hundredths) as KRW; raises ValueError if it is not whole won."""
    hundredths = wire_int(value)
    try:
        return Money.from_major(Decimal(hundredths).scaleb(-2), CURRENCY)
    except (MoneyError, InvalidOperation) as exc:
        raise ValueError(f"{value!r} hundredths is not a whole number of won") from exc


def _text(value: Any) -> str | None:
    """Optional response text: blanks become None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


# ---------------------------------------------------------------- create
def create_body(
    request: PaymentRequest,
    *,
    platform_id: str,
    service_id: str,
    sign_type: str,
    request_time: int,
) -> dict[str, Any]:
    """The create body before `sign`; integers go as JSON integers, per the parameter table."""
    body: dict[str, Any] = {
        "platform_id": platform_id,
        "service_id": service_id,
        "payment_cl_id": request.trade_no,
        "amount": to_hundredths(request.amount),
        "notify_url": request.notify_url,
        "request_time": request_time,
    }
    # Sent on every request (psp-docs, Corrections): absent means MD5 at Diamond Pay.
    body["sign_type"] = sign_type
    return body


# Diamond Pay's page says `error_code` 0000 means created; its documented refusals of a
# create [doc, deposit and balance pages; 0012 and 0018 from third-party code, inferred]:
# 0004 signature failed, 0006 invalid Authorization, 0012 unsupported bank, 0018 merchant
# balance insufficient. Each refuses the request whole: nothing exists at Diamond Pay, so the
# payment may go to another provider. Codes we made up ourselves ("bad_response",
# "amount_mismatch", ...) are never in this set: they come with or after a creation.
CREATED_NOTHING_CODES = frozenset({"0004", "0006", "0012", "0018"})


def refusal_created_nothing(code: str) -> bool:
    """Whether a create refused with `error_code` `code` proves nothing was created."""
    return code in CREATED_NOTHING_CODES


def error_from_response(response: Mapping[str, Any], provider: str = PROVIDER) -> ProviderError:
    """A refusal (`error_code` other than 0000) as a non-retryable ProviderError."""
    code = _text(response.get("error_code")) or "unknown"
    message = _text(response.get("error_msg")) or "Diamond Pay refused the request"
    return ProviderError(provider, code, message, retryable=False)


# What each deposit service gives the shopper to pay with [doc: the deposit page's service
# list: SVC0015 Bank Card, SVC0016 Bank Direct, SVC0017 QR code]. Another service is an error.
SERVICE_INSTRUCTIONS = {
    "SVC0015": InstructionKind.BANK_CARD,
    "SVC0016": InstructionKind.BANK_DIRECT,
    "SVC0017": InstructionKind.QR_CODE,
}


def instruction_kind_of(service_id: str, provider: str = PROVIDER) -> InstructionKind:
    try:
        return SERVICE_INSTRUCTIONS[service_id]
    except KeyError:
        raise ProviderError(
            provider, "unknown_service", f"no deposit service {service_id!r}", retryable=False
        ) from None


def create_result(
    response: Mapping[str, Any], request: PaymentRequest, provider: str = PROVIDER
) -> CreateResult:
    """Map a create answer: deposit instructions, or raise ProviderError."""
    if response.get("error_code") != OK:
        raise error_from_response(response, provider)
    data = response.get("data")
    payment_id = _text(data.get("payment_id")) if isinstance(data, Mapping) else None
    if not isinstance(data, Mapping) or payment_id is None:
        # Accepted but unusable: nothing to show the shopper; a new attempt may work.
        raise ProviderError(provider, "bad_response", "created without data", retryable=True)
    echoed = _text(data.get("payment_cl_id"))
    if echoed is not None and echoed != request.trade_no:
        raise ProviderError(
            provider, "trade_no_mismatch", f"answer is for {echoed!r}", retryable=False
        )
    try:
        amount = from_hundredths(data.get("amount"))
    except ValueError as exc:
        raise ProviderError(provider, "amount_mismatch", str(exc), retryable=False) from exc
    if amount != request.amount:
        # The shopper would be told to transfer a different sum than the order's.
        raise ProviderError(
            provider,
            "amount_mismatch",
            f"Diamond Pay created {amount} for {request.amount}",
            retryable=False,
        )
    instructions = PaymentInstructions(
        kind=instruction_kind_of(
            str(request.method.options.get("service_id", "SVC0015")), provider
        ),
        amount=request.amount,
        bank_name=_text(data.get("bank_name")),
        bank_code=_text(data.get("bank_code")),
        account_number=_text(data.get("card_number")),
        account_holder=_text(data.get("card_name")),
        reference=_text(data.get("token")),
        qr_content=_text(data.get("qr_code_content")),
        cashier_url=_text(data.get("link")),
    )
    return CreateResult(
        status=AttemptStatus.PENDING,
        platform_trade_no=payment_id,
        redirect_url=None,
        instructions=instructions,
        provider_status=OK,
        raw=dict(response),
    )


# ---------------------------------------------------------------- notify
def claimed_trade_no(body: bytes) -> str | None:
    """The trade number an unverified notify body names (`payment_cl_id`), for the inbox only."""
    return claimed_field(body, "payment_cl_id")


def notify_update(body: Mapping[str, Any], provider: str = PROVIDER) -> PaymentUpdate:
    """Map a notify whose signature and platform_id were already checked."""
    missing = [k for k in NOTIFY_REQUIRED if _text(body.get(k)) is None]
    if missing:
        raise MalformedNotify(provider, f"missing {', '.join(missing)}")
    status_text = _status_text(body["status"])
    status = NOTIFY_STATUS.get(status_text) if status_text is not None else None
    if status is None:
        raise MalformedNotify(provider, f"unknown status {body['status']!r}")
    try:
        from_hundredths(body["amount"])
        paid = from_hundredths(body["real_amount"])
    except ValueError as exc:
        raise MalformedNotify(provider, f"bad amount: {exc}") from exc
    # Diamond Pay has no partial status: PAID carries what arrived; services compare.
    return PaymentUpdate(
        trade_no=str(body["payment_cl_id"]),
        status=status,
        provider_status=status_text,
        amount_paid=paid,
        platform_trade_no=str(body["payment_id"]),
        failure_message="cancelled" if status == AttemptStatus.FAILED else None,
        raw=dict(body),
    )


def _status_text(value: Any) -> str | None:
    """A status as its digits ("2"), from a JSON integer or string; None if not one."""
    try:
        return str(wire_int(value))
    except ValueError:
        return None


# ---------------------------------------------------------------- query
def query_path(trade_no: str) -> str:
    """The query URL path, relative to base_url."""
    return f"/gateway/api/v2/payments/{quote(trade_no, safe='')}"


def query_update(
    response: Mapping[str, Any], trade_no: str, provider: str = PROVIDER
) -> PaymentUpdate:
    """Map a query answer. INFERRED shape (README names the fields, not their nesting):

    {"error_code": "0000", "data": {"payment_id", "payment_cl_id", "status", "amount",
    "real_amount", "fee", "success_time"}}. Unknown status -> UnknownProviderStatus.
    """
    if response.get("error_code") == ORDER_NOT_FOUND:
        raise OrderNotFound(provider, ORDER_NOT_FOUND, "order not found")
    if response.get("error_code") != OK:
        raise error_from_response(response, provider)
    data = response.get("data")
    if not isinstance(data, Mapping):
        raise ProviderError(provider, "bad_response", "query answer without data", retryable=True)
    echoed = _text(data.get("payment_cl_id"))
    if echoed is not None and echoed != trade_no:
        raise ProviderError(
            provider, "trade_no_mismatch", f"answer is for {echoed!r}", retryable=False
        )
    status_text = _status_text(data.get("status"))
    status = QUERY_STATUS.get(status_text) if status_text is not None else None
    if status is None:
        raise UnknownProviderStatus(
            provider, "unknown_status", f"unknown status {data.get('status')!r}"
        )
    paid: Money | None = None
    if _text(data.get("real_amount")) is not None:
        try:
            paid = from_hundredths(data["real_amount"])
        except ValueError as exc:
            raise ProviderError(provider, "bad_response", str(exc), retryable=True) from exc
    if status == AttemptStatus.PAID and paid is None:
        # Never call an attempt paid without knowing how much arrived.
        raise ProviderError(provider, "bad_response", "paid without real_amount", retryable=True)
    return PaymentUpdate(
        trade_no=trade_no,
        status=status,
        provider_status=status_text or "",
        amount_paid=paid,
        platform_trade_no=_text(data.get("payment_id")),
        failure_message="cancelled" if status == AttemptStatus.FAILED else None,
        raw=dict(response),
    )
