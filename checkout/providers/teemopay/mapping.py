"""TeemoPay wire format <-> our types. Pure functions, no I/O."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from checkout import jsonsafe
from checkout.domain.errors import MoneyError
from checkout.domain.ledger import Transfer
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

PROVIDER = "teemopay"
CURRENCY = "KRW"
PAYMENT_TYPE_VA = 801
SUPPORTED_PAYMENT_TYPES = frozenset({PAYMENT_TYPE_VA})
SUCCESS_CODE = "200"  # outer `code`: the request was accepted
MAX_EXPIRY = timedelta(hours=2)
# Taken off the expiry we send so latency and clock skew (TeemoPay allows 30 s)
# never push it past TeemoPay's 2 h maximum.
EXPIRY_SAFETY_MARGIN = timedelta(seconds=60)
MERCHANT_ORDER_NO_MAX = 32

# data.status on create: 1 in progress, 3 failed (2 cannot happen before a deposit).
CREATE_STATUS: dict[str, AttemptStatus] = {
    "1": AttemptStatus.PENDING,
    "3": AttemptStatus.FAILED,
}
# data.status on query and callbacks. No partial status: a short deposit comes as 2
# with the smaller amount; the services compare amounts.
PAYMENT_STATUS: dict[str, AttemptStatus] = {
    "1": AttemptStatus.PENDING,
    "2": AttemptStatus.PAID,
    "3": AttemptStatus.FAILED,
}

# The documented error messages, matched by their start (case-insensitive), and
# whether trying again later may work. Anything else is a non-retryable refusal.
KNOWN_ERRORS: tuple[tuple[str, bool], ...] = (
    ("transaction amount exceeds limit", False),
    ("channel request error", True),  # channel under maintenance
    ("unstable network", True),
    ("parameter validation error", False),
    ("duplicate merchant order", False),
)


class ExpiredRequest(ValueError):
    """The attempt would already be expired when it reaches TeemoPay."""


def parse_json(body: bytes | str) -> Any:
    """Decode a TeemoPay body, keeping decimals' text exact for signatures and amounts."""
    return jsonsafe.loads(body)


def ms_to_datetime(ms: Any) -> datetime:
    return datetime.fromtimestamp(int(ms) / 1000, tz=UTC)


def datetime_to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def expiration_ms(expires_at: datetime | None, now: datetime) -> int | None:
    """`expirationTime` to send: our expiry capped at 2 h ahead, minus a safety margin.

    None means omit the field (TeemoPay then uses its 2 h default). Raises
    ExpiredRequest if nothing would be left of the window.
    """
    if expires_at is None:
        return None
    until = min(expires_at, now + MAX_EXPIRY) - EXPIRY_SAFETY_MARGIN
    if until <= now:
        raise ExpiredRequest("the payment window has already closed")
    return datetime_to_ms(until)


def amount_text(amount: Money) -> str:
    """Whole won as a string, as `amount` must be."""
    if amount.currency != CURRENCY:
        raise MoneyError(f"TeemoPay takes {CURRENCY}, not {amount.currency}")
    return str(amount.whole_units())


def build_create_body(
    request: PaymentRequest, *, merchant_name: str, payment_type: int, now: datetime
) -> dict[str, Any]:
    """The create body before signing. Empty optional fields are left out entirely."""
    body: dict[str, Any] = {
        "merchantOrderNo": request.trade_no,
        "paymentType": payment_type,  # a JSON integer
        "realName": request.payer.full_name,
        "merchantName": merchant_name,
        "email": request.payer.email,
        "amount": amount_text(request.amount),
        "expirationTime": expiration_ms(request.expires_at, now),
        "phone": request.payer.mobile,
        "callbackUrl": request.notify_url,
    }
    return {k: v for k, v in body.items() if v is not None and v != ""}


def build_query_body(trade_no: str) -> dict[str, Any]:
    return {"merchantOrderNo": trade_no}


def error_for(
    code: Any, message: str, http_status: int | None = None, provider: str = PROVIDER
) -> ProviderError:
    """A refusal (outer `code` not 200) as a ProviderError; retryable per KNOWN_ERRORS."""
    text = message.strip().lower()
    retryable = any(text.startswith(prefix) and again for prefix, again in KNOWN_ERRORS)
    if http_status is not None and http_status >= 500:
        retryable = True  # a server fault, whatever the message says
    return ProviderError(
        provider,
        str(code),
        message or "no message",
        retryable=retryable,
        http_status=http_status,
    )


def _bad_response(message: str, provider: str = PROVIDER) -> ProviderError:
    # A 200 answer we cannot read: treat as a transport fault (the services may retry).
    return ProviderError(provider, "bad_response", message, retryable=True)


def accepted_data(body: Any, provider: str = PROVIDER) -> Mapping[str, Any]:
    """The `data` object of an accepted answer; raises ProviderError otherwise."""
    if not isinstance(body, Mapping):
        raise _bad_response("response is not a JSON object", provider)
    code = body.get("code")
    if isinstance(code, bool) or str(code) != SUCCESS_CODE:
        raise error_for(code, str(body.get("msg") or ""), provider=provider)
    data = body.get("data")
    if not isinstance(data, Mapping):
        raise _bad_response("accepted response without a data object", provider)
    return data


def _text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, str):
        return value
    return str(value)


def _status_key(value: Any) -> str:
    # Statuses are JSON integers; accept their string form too, never booleans.
    if isinstance(value, bool) or value is None:
        return repr(value)
    return str(value).strip()


def parse_create_response(body: Any, provider: str = PROVIDER) -> CreateResult:
    """Map a create answer. Raises ProviderError (refusal, unreadable) or UnknownProviderStatus."""
    data = accepted_data(body, provider)
    raw = dict(body)
    key = _status_key(data.get("status"))
    status = CREATE_STATUS.get(key)
    if status is None:
        raise UnknownProviderStatus(provider, key, "unknown create status")
    platform_trade_no = _text(data, "tradeNo")
    if status == AttemptStatus.FAILED:
        return CreateResult(
            status=status,
            platform_trade_no=platform_trade_no,
            provider_status=key,
            failure_code=key,
            failure_message=_failure_text(data),
            raw=raw,
        )
    account = _text(data, "paymentInfo")
    if account is None:
        raise _bad_response("accepted order without paymentInfo", provider)
    try:
        amount = Money.from_major(data.get("amount"), CURRENCY)
    except MoneyError as exc:
        raise _bad_response(f"unreadable amount: {exc}", provider) from exc
    extra = data.get("additionalInfo")
    extra = extra if isinstance(extra, Mapping) else {}
    expires_at = None
    if extra.get("expiredTime") not in (None, ""):
        try:
            expires_at = ms_to_datetime(extra["expiredTime"])
        except (TypeError, ValueError, OverflowError) as exc:
            raise _bad_response("unreadable additionalInfo.expiredTime", provider) from exc
    instructions = PaymentInstructions(
        kind=InstructionKind.BANK_TRANSFER,
        amount=amount,
        bank_name=_text(extra, "bankName"),
        bank_code=_text(extra, "bankCode"),
        account_number=account,
        expires_at=expires_at,
        qr_content=account,
    )
    return CreateResult(
        status=status,
        platform_trade_no=platform_trade_no,
        instructions=instructions,
        provider_status=key,
        raw=raw,
    )


def _failure_text(data: Mapping[str, Any]) -> str:
    # Create and query say `errorMsg`, callbacks `errorMessage`: accept either.
    return _text(data, "errorMsg") or _text(data, "errorMessage") or "payment failed"


def claimed_trade_no(body: bytes) -> str | None:
    """The trade number an unverified notify body names (`merchantOrderNo`), for the inbox only."""
    return claimed_field(body, "merchantOrderNo")


def parse_notify_body(body: Mapping[str, Any], provider: str = PROVIDER) -> PaymentUpdate:
    """Map a callback body whose signature was already checked. Raises MalformedNotify."""
    trade_no = _text(body, "merchantOrderNo")
    if trade_no is None:
        raise MalformedNotify(provider, "callback without merchantOrderNo")
    key = _status_key(body.get("status"))
    status = PAYMENT_STATUS.get(key)
    if status is None:
        raise MalformedNotify(provider, f"unknown callback status {key}")
    amount_paid = None
    if status == AttemptStatus.PAID:
        if body.get("paymentAmount") in (None, ""):
            raise MalformedNotify(provider, "paid callback without paymentAmount")
        try:
            amount_paid = Money.from_major(body["paymentAmount"], CURRENCY)
        except MoneyError as exc:
            raise MalformedNotify(provider, f"unreadable paymentAmount: {exc}") from exc
    transfer_id = _text(body, "paymentOrderNo")
    transfers = (
        (Transfer(transfer_id, amount_paid),)
        if amount_paid is not None and transfer_id is not None
        else ()
    )
    return PaymentUpdate(
        trade_no=trade_no,
        status=status,
        provider_status=key,
        amount_paid=amount_paid,
        platform_trade_no=_text(body, "tradeNo"),
        failure_message=_failure_text(body) if status == AttemptStatus.FAILED else None,
        raw=dict(body),
        transfers=transfers,
    )


# Create refusals after which no payable order exists at TeemoPay, so the payment may go to
# another provider. Top-level codes [doc, Korea error code page]: 412 "please try again
# later", 423 "payment method not supported", 426 "merchant order duplicate" (our trade
# numbers are new for every attempt and never sent twice, so this request was refused whole;
# the order it collides with is not one we could show the shopper), 500 "business error".
# An accepted create failed at once (`data.status` 3) with a documented channel message
# [doc]: maintenance, unstable network, amount over the channel's limit.
CREATED_NOTHING_CODES = frozenset({"412", "423", "426", "500"})
CREATED_NOTHING_MESSAGES = (
    "channel request error",
    "unstable network",
    "transaction amount exceeds limit",
)
FAILED_STATUS = "3"


def refusal_created_nothing(code: str, message: str) -> bool:
    """Whether a create refused with top-level `code`, or answered with `data.status` 3 and
    `message`, proves that no payable order exists at TeemoPay (see the tables above)."""
    if code in CREATED_NOTHING_CODES:
        return True
    text = message.strip().lower()
    return code == FAILED_STATUS and any(text.startswith(p) for p in CREATED_NOTHING_MESSAGES)


def is_order_not_found(message: str) -> bool:
    """INFERRED: TeemoPay refuses a query for an unknown merchantOrderNo with the message
    "Order does not exist." (no distinct code)."""
    return message.strip().lower().startswith("order does not exist")


def parse_query_response(body: Any, trade_no: str, provider: str = PROVIDER) -> PaymentUpdate:
    """Map a query answer for `trade_no`. Raises ProviderError or UnknownProviderStatus."""
    try:
        data = accepted_data(body, provider)
    except ProviderError as exc:
        if is_order_not_found(exc.message):
            raise OrderNotFound(provider, exc.code, exc.message) from exc
        raise
    answered = _text(data, "merchantOrderNo")
    if answered is not None and answered != trade_no:
        raise _bad_response(f"query answered for another order ({answered})", provider)
    key = _status_key(data.get("status"))
    status = PAYMENT_STATUS.get(key)
    if status is None:
        raise UnknownProviderStatus(provider, key, "unknown query status")
    amount_paid = None
    if status == AttemptStatus.PAID:
        try:
            amount_paid = Money.from_major(data.get("amount"), CURRENCY)
        except MoneyError as exc:
            raise _bad_response(f"unreadable amount: {exc}", provider) from exc
    return PaymentUpdate(
        trade_no=trade_no,
        status=status,
        provider_status=key,
        amount_paid=amount_paid,
        platform_trade_no=_text(data, "tradeNo"),
        failure_message=_failure_text(data) if status == AttemptStatus.FAILED else None,
        raw=dict(body),
        transfers=statement_transfers(data, provider) if status == AttemptStatus.PAID else (),
    )


STATEMENT_PAID = "2"  # paymentStatementStatus of a transfer that succeeded


def statement_transfers(data: Mapping[str, Any], provider: str = PROVIDER) -> tuple[Transfer, ...]:
    """The query's `statementList[]`: each transfer into the order with its own id
    (`paymentSingleOrderNo`) and amount (`paymentStatementAmount`); only successful ones
    (`paymentStatementStatus` 2). Empty when the answer lists none: then `amount` (the
    order's total) is what counts."""
    statements = data.get("statementList")
    if not isinstance(statements, list):
        return ()
    transfers = []
    for item in statements[:100]:
        if (
            not isinstance(item, Mapping)
            or _status_key(item.get("paymentStatementStatus")) != STATEMENT_PAID
        ):
            continue
        transfer_id = _text(item, "paymentSingleOrderNo")
        if transfer_id is None:
            raise _bad_response("statement without paymentSingleOrderNo", provider)
        try:
            transfers.append(
                Transfer(
                    transfer_id, Money.from_major(item.get("paymentStatementAmount"), CURRENCY)
                )
            )
        except MoneyError as exc:
            raise _bad_response(f"unreadable paymentStatementAmount: {exc}", provider) from exc
    return tuple(transfers)
