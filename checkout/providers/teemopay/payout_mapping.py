"""Pure mapping of TeemoPay Korea payouts: create, query, callback, balance, bank list.

Source: psp-docs/more/teemopay.md sections 2-5 and 9.1. No I/O, no signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checkout.domain.errors import MoneyError
from checkout.domain.money import Money
from checkout.providers.errors import (
    MalformedNotify,
    OrderNotFound,
    ProviderError,
    UnknownProviderStatus,
)
from checkout.providers.http import parse_json
from checkout.providers.payouts import (
    AccountType,
    Balance,
    Bank,
    IdType,
    InvalidPayout,
    NotifyKind,
    PayoutRefused,
    PayoutRequest,
    PayoutResult,
    PayoutStatus,
    PayoutUpdate,
    RefusalReason,
    refusal,
)
from checkout.providers.teemopay.mapping import (
    CURRENCY,
    SUCCESS_CODE,
    _status_key,
    _text,
    accepted_data,
)

PAYOUT_PATH = "/api/pay/payout/create/v1"
PAYOUT_QUERY_PATH = "/api/pay/payout/query/v1"
BALANCE_PATH = "/api/pay/merchant/balance"

ACCOUNT_TYPE_BANK_TRANSFER = 801  # 802 BANKTRANSFER_KYC is not explained [doc]: not used
ID_TYPES = {IdType.INDIVIDUAL: "RRN", IdType.COMPANY: "CO"}  # current en and zh pages [doc]
ORDER_NO_MAX = 32
REAL_NAME_MAX = 40

# Create: data.status 1 in progress, 3 failed (may be submitted again) [doc].
CREATE_STATUS: dict[str, PayoutStatus] = {"1": PayoutStatus.PROCESSING, "3": PayoutStatus.FAILED}
# Query: 1 in progress, 2 success, 3 failed [doc]. No 4 on the query page [doc].
QUERY_STATUS: dict[str, PayoutStatus] = {
    "1": PayoutStatus.PROCESSING,
    "2": PayoutStatus.SUCCEEDED,
    "3": PayoutStatus.FAILED,
}
# Callback: 2 success, 3 failure, and 4 refunded (Chinese page only [conflict]): see
# callback_status_table().
CALLBACK_STATUS: dict[str, PayoutStatus] = {
    "2": PayoutStatus.SUCCEEDED,
    "3": PayoutStatus.FAILED,
    "4": PayoutStatus.RETURNED,
}

# Create refusals with their documented top-level codes (Chinese Korea page) [doc].
CODE_INSUFFICIENT_BALANCE = "425"
CODE_DUPLICATE_ORDER = "426"
CODE_UNSUPPORTED_BANK = "431"
PAYOUT_REFUSALS: dict[str, RefusalReason] = {
    CODE_INSUFFICIENT_BALANCE: RefusalReason.INSUFFICIENT_BALANCE,
    CODE_DUPLICATE_ORDER: RefusalReason.DUPLICATE_ORDER,
    CODE_UNSUPPORTED_BANK: RefusalReason.UNSUPPORTED_BANK,
}
RETRY_LATER = "412"  # "Please try again later" [doc]
ORDER_NOT_FOUND_CODES = frozenset({"400", "434"})  # see is_payout_not_found()

# The Korea payout bank list, 32 entries, as published (more/teemopay.md section 9.1) [doc].
KOREA_PAYOUT_BANKS: tuple[Bank, ...] = tuple(
    Bank(code, name)
    for code, name in (
        ("088", "Shinhan Bank"),
        ("020", "Woori Bank"),
        ("004", "Kookmin Bank"),
        ("011", "National Agricultural Cooperative Federation"),
        ("081", "KEB Hana Bank"),
        ("027", "Citibank Korea"),
        ("045", "Korea Federation of Community Credit Cooperative"),
        ("048", "National Credit Union Federation of Korea"),
        ("071", "Korea Post Office"),
        ("003", "Industrial Bank of Korea"),
        ("002", "Korea Development Bank"),
        ("090", "Kakao Bank"),
        ("089", "KBank"),
        ("092", "Toss Bank"),
        ("023", "Standard Chartered First Bank Korea"),
        ("007", "Suhyup Bank"),
        ("031", "Daegu Bank"),
        ("032", "BNK Busan Bank"),
        ("034", "Gwangju Bank"),
        ("035", "Jeju Bank"),
        ("037", "Jeonbuk Bank"),
        ("039", "Kyongnam Bank"),
        ("050", "Saving Bank"),
        ("054", "HSBC Bank"),
        ("055", "Deutsche Bank"),
        ("057", "JPMorgan Chase Bank"),
        ("060", "BOA Bank"),
        ("061", "BNP Paribas Bank"),
        ("062", "Industrial and Commercial Bank of China"),
        ("063", "Bank of China"),
        ("064", "National Forestry Cooperative Federation"),
        ("067", "China Construction Bank"),
    )
)
BANK_NAMES: dict[str, str] = {bank.code: bank.name for bank in KOREA_PAYOUT_BANKS}


# ---------------------------------------------------------------- inferred facts
def callback_status_table() -> Mapping[str, PayoutStatus]:
    """INFERRED from a [conflict] (more/teemopay.md section 4): the English Korea callback
    page lists 2 and 3, the Chinese one adds 4 "refunded" (a payout that succeeded and came
    back). We take 4 as RETURNED, never as a success: the money is back with the merchant."""
    return CALLBACK_STATUS


def unwrap_payout_answer(body: Any) -> Any:
    """INFERRED from a [conflict] (more/teemopay.md section 2): the Chinese create example is
    the usual envelope `{code, msg, data{...}}`, the English one a flat
    `{merchantOrderNo, tradeNo, status, sign}`. A flat answer is read as an accepted
    envelope around itself."""
    if isinstance(body, Mapping) and "code" not in body and "merchantOrderNo" in body:
        return {"code": int(SUCCESS_CODE), "msg": "success", "data": dict(body)}
    return body


def is_payout_not_found(code: str) -> bool:
    """INFERRED from a [conflict] (more/teemopay.md section 3): an unknown merchantOrderNo is
    `{"code": 400, "msg": "Order not found"}` on the English page and `434 Merchant order
    not exist` on the Chinese one; both are read as "no such payout"."""
    return code in ORDER_NOT_FOUND_CODES


def is_payout_callback(body: Mapping[str, Any]) -> bool:
    """INFERRED: a payout callback has neither `paymentOrderNo` nor `paymentType`, which every
    pay-in callback carries (more/teemopay.md sections 4 and 7.2)."""
    return "paymentOrderNo" not in body and "paymentType" not in body


# ---------------------------------------------------------------- values
def bank_name(bank_code: str) -> str | None:
    return BANK_NAMES.get(bank_code)


def parse_fee(value: Any) -> Money | None:
    """The fee (`serviceAmount`) as KRW, or None when absent or not whole won.

    The documented refund callback carries `"serviceAmount": "10.50"` (more/teemopay.md
    section 4): fees are computed with a rate and may have fractions KRW cannot hold. A fee
    moves no money of ours, so its exact text stays in `raw` and the notify is still read.
    """
    try:
        return parse_amount(value)
    except MoneyError:
        return None


def parse_amount(value: Any) -> Money | None:
    """An amount string such as "1000.00" as KRW; None when absent or null."""
    if value is None or value == "":
        return None
    return Money.from_major(value, CURRENCY)


# ---------------------------------------------------------------- create
def payout_body(request: PayoutRequest, instance: str) -> dict[str, Any]:
    """The unsigned create body; InvalidPayout for what TeemoPay Korea cannot take."""
    amount = request.amount
    if amount.currency != CURRENCY or amount.amount <= 0:
        raise InvalidPayout(instance, f"TeemoPay Korea pays out KRW only, not {amount}")
    if len(request.payout_no) > ORDER_NO_MAX:
        raise InvalidPayout(instance, f"payout number longer than {ORDER_NO_MAX}")
    dest = request.destination
    if dest.account_type != AccountType.BANK_ACCOUNT:
        raise InvalidPayout(instance, "TeemoPay Korea pays out to bank accounts only")
    name = bank_name(dest.bank_code)
    if name is None:
        raise InvalidPayout(instance, "bank code not in TeemoPay's Korea payout bank list")
    if not 2 <= len(dest.holder_name) <= REAL_NAME_MAX:
        raise InvalidPayout(instance, f"holder name must be 2 to {REAL_NAME_MAX} characters")
    body: dict[str, Any] = {
        "merchantOrderNo": request.payout_no,
        "amount": str(amount.whole_units()),
        "bankCode": dest.bank_code,
        "bankName": name,
        "accountType": ACCOUNT_TYPE_BANK_TRANSFER,  # a JSON integer [doc]
        "bankAccount": dest.account_number,
        # "upper case recommended" [doc]: Latin names are sent upper-cased; Hangul is as is.
        "realName": dest.holder_name.upper(),
        "idType": ID_TYPES[request.id_type],
        "callbackUrl": request.notify_url,
    }
    return {k: v for k, v in body.items() if v not in (None, "")}


def payout_error(exc: ProviderError) -> ProviderError:
    """A refusal as its typed kind where TeemoPay documents it (425, 426, 431)."""
    if isinstance(exc, PayoutRefused):
        return exc
    reason = PAYOUT_REFUSALS.get(exc.code)
    if reason is not None:
        return refusal(reason, exc.provider, exc.code, exc.message, http_status=exc.http_status)
    if exc.code == RETRY_LATER:
        exc.retryable = True
    return exc


def accepted_payout_data(body: Any, instance: str) -> Mapping[str, Any]:
    """`data` of an accepted answer, or a (typed) ProviderError."""

    try:
        return accepted_data(unwrap_payout_answer(body), instance)
    except ProviderError as exc:
        raise payout_error(exc) from exc


def _check_order_no(instance: str, data: Mapping[str, Any], payout_no: str) -> None:
    echoed = _text(data, "merchantOrderNo")
    if echoed is not None and echoed != payout_no:
        raise ProviderError(
            instance, "bad_response", f"answer is for another order ({echoed})", retryable=True
        )


def payout_result(body: Any, request: PayoutRequest, instance: str) -> PayoutResult:
    data = accepted_payout_data(body, instance)
    _check_order_no(instance, data, request.payout_no)
    key = _status_key(data.get("status"))
    status = CREATE_STATUS.get(key)
    if status is None:
        raise UnknownProviderStatus(instance, key, "unknown payout create status")
    failed = status == PayoutStatus.FAILED
    return PayoutResult(
        payout_no=request.payout_no,
        status=status,
        platform_payout_no=_text(data, "tradeNo"),
        provider_status=key,
        failure_code=key if failed else None,
        failure_message=(_text(data, "errorMsg") or _text(data, "errorMessage"))
        if failed
        else None,
        raw=dict(body) if isinstance(body, Mapping) else {},
    )


# ---------------------------------------------------------------- query
def payout_query_body(payout_no: str) -> dict[str, Any]:
    return {"merchantOrderNo": payout_no}


def _update(
    data: Mapping[str, Any],
    payout_no: str,
    key: str,
    status: PayoutStatus,
    instance: str,
    raw: Mapping[str, Any],
    *,
    malformed: type[Exception] | None = None,
) -> PayoutUpdate:
    try:
        amount = parse_amount(data.get("amount"))
        fee = parse_fee(data.get("serviceAmount"))
    except MoneyError as exc:
        if malformed is not None:
            raise MalformedNotify(instance, f"bad amount: {exc}") from exc
        raise ProviderError(instance, "bad_response", f"bad amount: {exc}", retryable=True) from exc
    ended_badly = status in (PayoutStatus.FAILED, PayoutStatus.RETURNED)
    return PayoutUpdate(
        payout_no=payout_no,
        status=status,
        provider_status=key,
        platform_payout_no=_text(data, "tradeNo"),
        amount=amount,
        amount_sent=amount if status == PayoutStatus.SUCCEEDED else None,
        fee=fee,
        failure_code=_text(data, "errorCode") if ended_badly else None,
        failure_message=_text(data, "errorMessage") if ended_badly else None,
        raw=dict(raw),
    )


def payout_query_update(body: Any, payout_no: str, instance: str) -> PayoutUpdate:
    try:
        data = accepted_payout_data(body, instance)
    except ProviderError as exc:
        if is_payout_not_found(exc.code):
            raise OrderNotFound(instance, exc.code, exc.message) from exc
        raise
    _check_order_no(instance, data, payout_no)
    key = _status_key(data.get("status"))
    status = QUERY_STATUS.get(key)
    if status is None:
        raise UnknownProviderStatus(instance, key, "unknown payout query status")
    return _update(data, payout_no, key, status, instance, body)


# ---------------------------------------------------------------- callback
def notify_kind(body: bytes) -> NotifyKind:
    """Pay-in or payout, read from the unverified body (routing only)."""

    try:
        data = parse_json(body)
    except (ValueError, RecursionError):
        return "payin"
    if isinstance(data, Mapping) and is_payout_callback(data):
        return "payout"
    return "payin"


def payout_notify_update(body: Mapping[str, Any], instance: str) -> PayoutUpdate:
    """Map a payout callback whose signature was already checked."""
    payout_no = _text(body, "merchantOrderNo")
    if payout_no is None:
        raise MalformedNotify(instance, "callback without merchantOrderNo")
    if not is_payout_callback(body):
        raise MalformedNotify(instance, "not a payout callback")
    key = _status_key(body.get("status"))
    status = callback_status_table().get(key)
    if status is None:
        raise MalformedNotify(instance, f"unknown payout callback status {key[:20]}")
    update = _update(body, payout_no, key, status, instance, body, malformed=MalformedNotify)
    if status == PayoutStatus.SUCCEEDED and update.amount is None:
        raise MalformedNotify(instance, "successful payout callback without amount")
    return update


# ---------------------------------------------------------------- balance
def balance_from(body: Any, instance: str) -> Balance:
    """`data.availAmount`, `frozenAmount`, `totalAmount` (strings, 2 decimals) [doc]."""
    data = accepted_payout_data(body, instance)
    try:
        available = parse_amount(data.get("availAmount"))
        frozen = parse_amount(data.get("frozenAmount"))
        total = parse_amount(data.get("totalAmount"))
    except MoneyError as exc:
        raise ProviderError(instance, "bad_response", f"bad amount: {exc}", retryable=True) from exc
    if available is None:
        raise ProviderError(instance, "bad_response", "balance without availAmount", retryable=True)
    return Balance(available=available, frozen=frozen, total=total, raw=dict(body))
