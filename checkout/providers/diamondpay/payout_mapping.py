"""Pure mapping of Diamond Pay payouts (withdrawals, `SVC0004`): create, query, notify, balance.

Source: psp-docs/more/diamondpay.md sections 1-3, 6, 8. Amounts are hundredths of a won.
Payout statuses are not the deposit ones (1 pending, 2 processing, 3 success, 4 cancelled).
No I/O, no signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from checkout.domain.money import Money
from checkout.providers.base import claimed_field
from checkout.providers.diamondpay.mapping import (
    CURRENCY,
    MAX_WIRE_AMOUNT,
    OK,
    ORDER_NOT_FOUND,
    _status_text,
    _text,
    error_from_response,
    from_hundredths,
    to_hundredths,
)
from checkout.providers.diamondpay.signing import HMAC_SHA256
from checkout.providers.errors import (
    MalformedNotify,
    OrderNotFound,
    ProviderError,
    UnknownProviderStatus,
)
from checkout.providers.payouts import (
    AccountType,
    Balance,
    InvalidPayout,
    NotifyKind,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PayoutUpdate,
    RefusalReason,
    refusal,
)

PAYOUT_PATH = "/gateway/api/v2/payouts"
BALANCE_PATH = "/gateway/api/v2/platforms/balance"
SERVICE_BANK_CARD_WITHDRAWAL = "SVC0004"
WIRE_CURRENCY = "krw"  # fixed, lower case [doc]
INVALID_AUTHORIZATION = "0006"  # [doc], balance pages

# Field lengths from the Korea withdrawal page [doc].
PAYOUT_CL_ID_MAX = 64
BANK_CODE_MAX = 16
NAME_MAX = 16
NUMBER_MAX = 32
PHONE_MAX = 11

# Query (and notify) `status` [doc, query pages]: 1 pending, 2 processing, 3 success,
# 4 cancelled. The notify's own status page was not found: see notify_status_table().
PAYOUT_STATUS: dict[str, PayoutStatus] = {
    "1": PayoutStatus.ACCEPTED,
    "2": PayoutStatus.PROCESSING,
    "3": PayoutStatus.SUCCEEDED,
    "4": PayoutStatus.FAILED,
}

# Refusal codes: see payout_refusal_reason().
CODE_UNSUPPORTED_BANK = "0012"
CODE_INSUFFICIENT_BALANCE = "0018"
CODE_DUPLICATE_ORDER = "0005"
PAYOUT_REFUSALS: dict[str, RefusalReason] = {
    CODE_UNSUPPORTED_BANK: RefusalReason.UNSUPPORTED_BANK,
    CODE_INSUFFICIENT_BALANCE: RefusalReason.INSUFFICIENT_BALANCE,
    CODE_DUPLICATE_ORDER: RefusalReason.DUPLICATE_ORDER,
}


# ---------------------------------------------------------------- inferred facts
def payout_refusal_reason(code: str | None) -> RefusalReason | None:
    """INFERRED (more/diamondpay.md sections 1 and 8): `0012` unsupported bank and `0018`
    merchant balance too low come from a third-party integration's logs, not from Diamond
    Pay's pages; the duplicate `payout_cl_id` code is documented nowhere and `0005` is the
    sandbox's deposit guess, reused so that both agree."""
    return PAYOUT_REFUSALS.get(code or "")


def notify_status_table() -> Mapping[str, PayoutStatus]:
    """INFERRED from a [conflict] (more/diamondpay.md section 3): notify examples show
    `status` 3 (apayasia, kuipay) and 2 with `real_amount` = `amount` (ppayasia Vietnam, v1).
    We read the notify with the query's table, so a 2 is PROCESSING (not paid out): only a 3
    is success, and anything unclear is confirmed with the query API."""
    return PAYOUT_STATUS


def available_balance(total: Money, frozen: Money) -> Money:
    """INFERRED (more/diamondpay.md section 6): the v2 balance gives `total_balance` and
    `total_frozen_balance` only; what can be paid out is taken as total minus frozen."""
    return Money(max(total.amount - frozen.amount, 0), total.currency)


def payout_query_path(payout_no: str) -> str:
    """INFERRED path shape from other countries' pages (more/diamondpay.md section 2)."""
    return f"{PAYOUT_PATH}/{quote(payout_no, safe='')}"


# ---------------------------------------------------------------- create
def payout_body(
    request: PayoutRequest,
    *,
    platform_id: str,
    sign_type: str,
    request_time: int,
    instance: str,
) -> dict[str, Any]:
    """The unsigned create body; InvalidPayout when a value breaks the page's limits."""
    amount = request.amount
    if amount.currency != CURRENCY or amount.amount <= 0:
        raise InvalidPayout(instance, f"Diamond Pay pays out KRW only, not {amount}")
    hundredths = to_hundredths(amount)
    if hundredths > MAX_WIRE_AMOUNT:
        raise InvalidPayout(instance, "amount above Diamond Pay's Integer(10)")
    dest = request.destination
    if dest.account_type != AccountType.BANK_ACCOUNT:
        raise InvalidPayout(instance, "Diamond Pay Korea pays out to bank accounts only")
    if not request.mobile:
        raise InvalidPayout(instance, "Diamond Pay needs the beneficiary's phone number")
    for label, value, limit in (
        ("payout number", request.payout_no, PAYOUT_CL_ID_MAX),
        ("bank code", dest.bank_code, BANK_CODE_MAX),
        ("holder name", dest.holder_name, NAME_MAX),
        ("account number", dest.account_number, NUMBER_MAX),
        ("phone number", request.mobile, PHONE_MAX),
    ):
        if not value or len(value) > limit:
            raise InvalidPayout(instance, f"{label} must be 1 to {limit} characters")
    body: dict[str, Any] = {
        "platform_id": platform_id,
        "service_id": SERVICE_BANK_CARD_WITHDRAWAL,
        "payout_cl_id": request.payout_no,
        "amount": hundredths,
        "notify_url": request.notify_url,
        "bank_name": dest.bank_code,  # named bank_name, described as the bank code [doc]
        "name": dest.holder_name,
        "number": dest.account_number,
        "phone_number": request.mobile,
        "currency": WIRE_CURRENCY,
        "request_time": request_time,
    }
    if sign_type == HMAC_SHA256:
        body["sign_type"] = HMAC_SHA256
    return body


def payout_error(response: Mapping[str, Any], instance: str) -> ProviderError:
    code = _text(response.get("error_code")) or "unknown"
    reason = payout_refusal_reason(code)
    if reason is not None:
        message = _text(response.get("error_msg")) or reason.value
        return refusal(reason, instance, code, message)
    return error_from_response(response, instance)


def payout_result(
    response: Mapping[str, Any], request: PayoutRequest, instance: str
) -> PayoutResult:
    """`{"error_code": "0000", "data": {"payout_id"}}`: accepted, result to be queried [doc]."""
    if response.get("error_code") != OK:
        raise payout_error(response, instance)
    data = response.get("data")
    payout_id = _text(data.get("payout_id")) if isinstance(data, Mapping) else None
    return PayoutResult(
        payout_no=request.payout_no,
        status=PayoutStatus.ACCEPTED,
        platform_payout_no=payout_id,
        provider_status=OK,
        raw=dict(response),
    )


# ---------------------------------------------------------------- query and notify
def _map(
    data: Mapping[str, Any],
    payout_no: str,
    status: PayoutStatus,
    status_text: str,
    raw: Mapping[str, Any],
) -> PayoutUpdate:
    """Raises ValueError on amounts that are not whole won."""
    amount = from_hundredths(data["amount"]) if _text(data.get("amount")) else None
    fee = from_hundredths(data["fee"]) if _text(data.get("fee")) else None
    real = from_hundredths(data["real_amount"]) if _text(data.get("real_amount")) else None
    failed = status == PayoutStatus.FAILED
    return PayoutUpdate(
        payout_no=payout_no,
        status=status,
        provider_status=status_text,
        platform_payout_no=_text(data.get("payout_id")),
        amount=amount,
        amount_sent=(real or amount) if status == PayoutStatus.SUCCEEDED else None,
        fee=fee,
        failure_code=status_text if failed else None,
        failure_message=(_text(data.get("error_msg")) or "cancelled") if failed else None,
        raw=dict(raw),
    )


def payout_query_update(response: Mapping[str, Any], payout_no: str, instance: str) -> PayoutUpdate:
    if response.get("error_code") == ORDER_NOT_FOUND:
        raise OrderNotFound(instance, ORDER_NOT_FOUND, "payout not found")
    if response.get("error_code") != OK:
        raise payout_error(response, instance)
    data = response.get("data")
    if not isinstance(data, Mapping):
        raise ProviderError(instance, "bad_response", "query answer without data", retryable=True)
    echoed = _text(data.get("payout_cl_id"))
    if echoed is not None and echoed != payout_no:
        raise ProviderError(instance, "trade_no_mismatch", f"answer is for {echoed!r}")
    status_text = _status_text(data.get("status"))
    status = PAYOUT_STATUS.get(status_text or "")
    if status is None:
        raise UnknownProviderStatus(
            instance, "unknown_status", f"unknown status {data.get('status')!r}"
        )
    try:
        update = _map(data, payout_no, status, status_text or "", response)
    except ValueError as exc:
        raise ProviderError(instance, "bad_response", str(exc), retryable=True) from exc
    if status == PayoutStatus.SUCCEEDED and update.amount_sent is None:
        raise ProviderError(instance, "bad_response", "success without amount", retryable=True)
    return update


NOTIFY_REQUIRED = ("payout_id", "payout_cl_id", "platform_id", "amount", "status")


def notify_kind(body: bytes) -> NotifyKind:
    """A payout notify names `payout_cl_id`, a deposit notify `payment_cl_id` [doc]."""
    return "payout" if claimed_field(body, "payout_cl_id") is not None else "payin"


def payout_notify_update(body: Mapping[str, Any], instance: str) -> PayoutUpdate:
    """Map a payout notify whose signature and platform_id were already checked."""
    missing = [k for k in NOTIFY_REQUIRED if _text(body.get(k)) is None]
    if missing:
        raise MalformedNotify(instance, f"missing {', '.join(missing)}")
    status_text = _status_text(body["status"])
    status = notify_status_table().get(status_text or "")
    if status is None:
        raise MalformedNotify(instance, f"unknown payout status {body['status']!r}")
    try:
        return _map(body, str(body["payout_cl_id"]), status, status_text or "", body)
    except ValueError as exc:
        raise MalformedNotify(instance, f"bad amount: {exc}") from exc


# ---------------------------------------------------------------- balance
def balance_from(response: Mapping[str, Any], instance: str) -> Balance:
    """`data.total_balance`, `data.total_frozen_balance` (hundredths) [doc]."""
    if response.get("error_code") != OK:
        raise error_from_response(response, instance)
    data = response.get("data")
    if not isinstance(data, Mapping):
        raise ProviderError(instance, "bad_response", "balance without data", retryable=True)
    try:
        total = from_hundredths(data.get("total_balance"))
        frozen = from_hundredths(data.get("total_frozen_balance", 0))
    except ValueError as exc:
        raise ProviderError(instance, "bad_response", str(exc), retryable=True) from exc
    return Balance(
        available=available_balance(total, frozen), frozen=frozen, total=total, raw=dict(response)
    )
