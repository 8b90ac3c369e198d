"""Pure mapping of PayPro payouts (`payOut`, `queryPayOutResult`, `queryBalance`, notify).

Source: psp-docs/more/paypro.md sections 3-5, 7-9. Korea and Mexico payout bodies differ
(Korea: `bankCode`/`bankAccountNo`/`mobile`/`email`; Mexico: `wayCode`/`customerAccount`/
`customerAccountType`); both are built here. No I/O, no signing.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from checkout.domain.errors import MoneyError
from checkout.domain.money import Money
from checkout.providers.base import claimed_field
from checkout.providers.errors import (
    MalformedNotify,
    OrderNotFound,
    ProviderError,
    UnknownProviderStatus,
)
from checkout.providers.payouts import (
    PAYOUT_NO_PREFIX,
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
from checkout.providers.paypro.mapping import (
    ACCEPTED,
    SYSTEM_ERROR,
    PayProSettings,
    description,
    is_order_not_found,
    platform_trade_no,
)
from checkout.providers.paypro.signing import field_text

PAYOUT_PATH = "/v1/paypro/payOut"  # KR/MX spelling, case as documented
PAYOUT_QUERY_PATH = "/v1/paypro/queryPayOutResult"
BALANCE_PATH = "/v1/paypro/queryBalance"

# data.status of a payout: "0000" success, "0015" processing, other codes failure [doc].
# "0001" (partial payment) is a pay-in status: on a payout it is outside the table.
PAYOUT_STATUS_TABLE: dict[str, PayoutStatus] = {
    "0000": PayoutStatus.SUCCEEDED,
    "0015": PayoutStatus.PROCESSING,
}
NOT_A_PAYOUT_STATUS = frozenset({"0001"})

# Refusal codes. PayPro documents none of these three (more/paypro.md section 8 lists only
# 0000, 0001, 0015, 0100019, 00029, 00032): INFERRED, see payout_refusal_reason().
CODE_DUPLICATE_TRADE_NO = "0100004"
CODE_INSUFFICIENT_BALANCE = "0100006"
CODE_BANK_NOT_SUPPORTED = "0100007"
PAYOUT_REFUSALS: dict[str, RefusalReason] = {
    CODE_DUPLICATE_TRADE_NO: RefusalReason.DUPLICATE_ORDER,
    CODE_INSUFFICIENT_BALANCE: RefusalReason.INSUFFICIENT_BALANCE,
    CODE_BANK_NOT_SUPPORTED: RefusalReason.UNSUPPORTED_BANK,
}

MX_ACCOUNT_TYPES = {AccountType.CLABE: "CLABE", AccountType.DEBIT_CARD: "DebitCard"}
REMARK_MAX = 64


# ---------------------------------------------------------------- inferred facts
def payout_refusal_reason(code: str | None) -> RefusalReason | None:
    """INFERRED: the codes PayPro answers for a duplicate `tradeNo`, a short balance and an
    unsupported bank. more/paypro.md section 8: the KR error-code page was not found and the
    Mexico list names none of these; the numbers follow the sandbox's `01000xx` family."""
    return PAYOUT_REFUSALS.get(code or "")


def is_payout_trade_no(trade_no: str | None) -> bool:
    """INFERRED (more/paypro.md section 7): pay-in and payout notifies look the same and come
    to one URL, so they are told apart by our own number: payout numbers start with `PO`,
    pay-in trade numbers with a digit (checkout.services.payments.new_trade_no)."""
    return bool(trade_no) and str(trade_no).startswith(PAYOUT_NO_PREFIX)


def accepted_without_data(data: object) -> bool:
    """INFERRED (more/paypro.md section 3): the payOut response's table is not visible past
    `msg`/`code`. An accepted outer code with no `data` is taken as "accepted, result to
    come" (the query and the notify tell); it is never taken as a success."""
    return data is None or (isinstance(data, Mapping) and not data.get("status"))


def parse_amount(value: object, currency: str) -> Money | None:
    """A PayPro amount (number or decimal string, e.g. "9998989.0000") as Money, strictly;
    None when absent. Raises MoneyError for anything not exact in the currency."""
    text = field_text(value)
    if text is None:
        return None
    if isinstance(value, float):
        raise MoneyError("amounts must be parsed as decimals, not floats")
    return Money.from_major(Decimal(text), currency)


# ---------------------------------------------------------------- create
def payout_body(
    settings: PayProSettings, request: PayoutRequest, timestamp_ms: int
) -> dict[str, Any]:
    """The unsigned payOut body; raises InvalidPayout for what PayPro cannot take."""
    instance = settings.instance
    amount = request.amount
    if amount.currency != settings.currency or amount.amount <= 0 or not amount.is_whole():
        # "decimals not recommended" [doc]: whole units only, as for pay-ins.
        raise InvalidPayout(instance, f"PayPro {settings.country} cannot pay out {amount}")
    dest = request.destination
    body: dict[str, Any] = {
        "timestamp": timestamp_ms,  # typed integer on the payOut page [doc]
        "tradeNo": request.payout_no,
        "amount": str(amount.whole_units()),
        "customerName": dest.holder_name,
        "notifyUrl": request.notify_url,
        "remark": _remark(request.remark),
    }
    if settings.country == "KR":
        if dest.account_type != AccountType.BANK_ACCOUNT:
            raise InvalidPayout(instance, "PayPro Korea pays out to bank accounts only")
        if not request.mobile or not request.email:
            raise InvalidPayout(instance, "PayPro Korea needs the beneficiary's mobile and email")
        body.update(
            bankCode=dest.bank_code,
            bankAccountNo=dest.account_number,
            mobile=request.mobile,
            email=request.email,
        )
    else:
        account_type = MX_ACCOUNT_TYPES.get(dest.account_type)
        if account_type is None:
            raise InvalidPayout(instance, "PayPro Mexico pays out to a CLABE or a debit card")
        body.update(
            wayCode=dest.bank_code,
            customerAccountType=account_type,
            customerAccount=dest.account_number,
            customerMobile=request.mobile,
            customerEmail=request.email,
            identity=request.id_number,
        )
    return {k: v for k, v in body.items() if v not in (None, "")}


def _remark(text: str | None) -> str | None:
    if not text:
        return None
    return " ".join(text.split())[:REMARK_MAX] or None


def check_payout_accepted(instance: str, payload: Any) -> Mapping[str, Any] | None:
    """`data` (or None) of an accepted answer; a typed refusal or ProviderError otherwise."""
    if not isinstance(payload, Mapping):
        raise ProviderError(
            instance, "invalid_response", "response is not a JSON object", retryable=True
        )
    code = field_text(payload.get("code"))
    if code != ACCEPTED:
        message = field_text(payload.get("msg")) or "request refused"
        reason = payout_refusal_reason(code)
        if reason is not None:
            raise refusal(reason, instance, code or "", message)
        raise ProviderError(
            instance, code or "missing_code", message, retryable=code == SYSTEM_ERROR
        )
    data = payload.get("data")
    if data is not None and not isinstance(data, Mapping):
        raise ProviderError(instance, "invalid_response", "data is not an object", retryable=True)
    return data


def classify_payout_status(code: str | None) -> PayoutStatus | None:
    """PayPro payout status -> ours: "0000" succeeded, "0015" processing, any other digit
    code a failure [doc]; "0001" (a pay-in's partial payment) and non-codes are None."""
    if code is None or code in NOT_A_PAYOUT_STATUS:
        return None
    if code in PAYOUT_STATUS_TABLE:
        return PAYOUT_STATUS_TABLE[code]
    if code.isascii() and code.isdigit() and 4 <= len(code) <= 10:
        return PayoutStatus.FAILED
    return None


def _check_payout_no(instance: str, data: Mapping[str, Any], payout_no: str) -> None:
    echoed = field_text(data.get("tradeNo"))
    if echoed is not None and echoed != payout_no:
        raise ProviderError(
            instance, "trade_no_mismatch", "answer is for another payout number", retryable=False
        )


def payout_result(settings: PayProSettings, request: PayoutRequest, payload: Any) -> PayoutResult:
    instance = settings.instance
    data = check_payout_accepted(instance, payload)
    raw = _plain(payload)
    if data is None or accepted_without_data(data):
        return PayoutResult(
            payout_no=request.payout_no,
            status=PayoutStatus.ACCEPTED,
            platform_payout_no=platform_trade_no(data) if data else None,
            provider_status=ACCEPTED,
            raw=raw,
        )
    _check_payout_no(instance, data, request.payout_no)
    code = field_text(data.get("status"))
    reason = payout_refusal_reason(code)
    if reason is not None:
        raise refusal(reason, instance, code or "", description(data) or "refused")
    status = classify_payout_status(code)
    if status is None:
        raise UnknownProviderStatus(instance, code or "missing_status", "unknown payout status")
    return PayoutResult(
        payout_no=request.payout_no,
        status=status,
        platform_payout_no=platform_trade_no(data),
        provider_status=code or "",
        failure_code=code if status == PayoutStatus.FAILED else None,
        failure_message=description(data) if status == PayoutStatus.FAILED else None,
        raw=raw,
    )


# ---------------------------------------------------------------- query
def payout_query_body(payout_no: str, timestamp_ms: int) -> dict[str, str]:
    return {"tradeNo": payout_no, "timestamp": str(timestamp_ms)}  # timestamp: string [doc]


def payout_query_update(settings: PayProSettings, payout_no: str, payload: Any) -> PayoutUpdate:
    """Map a queryPayOutResult answer: `data.status`, `orderAmount`, `payAmount` (KR) or
    `amount` (other regions' pages); never the outer code."""
    instance = settings.instance
    try:
        data = check_payout_accepted(instance, payload)
    except ProviderError as exc:
        if is_order_not_found(exc.code):
            raise OrderNotFound(instance, exc.code, exc.message) from exc
        raise
    if data is None:
        raise ProviderError(
            instance, "invalid_response", "query answered without data", retryable=True
        )
    _check_payout_no(instance, data, payout_no)
    code = field_text(data.get("status"))
    status = classify_payout_status(code)
    if status is None:
        raise UnknownProviderStatus(instance, code or "missing_status", "unknown payout status")
    try:
        ordered = parse_amount(data.get("orderAmount"), settings.currency)
        sent = parse_amount(data.get("payAmount", data.get("amount")), settings.currency)
    except MoneyError as exc:
        raise ProviderError(instance, "invalid_amount", str(exc), retryable=False) from exc
    return PayoutUpdate(
        payout_no=payout_no,
        status=status,
        provider_status=code or "",
        platform_payout_no=platform_trade_no(data),
        amount=ordered,
        amount_sent=sent if status == PayoutStatus.SUCCEEDED else None,
        failure_code=code if status == PayoutStatus.FAILED else None,
        failure_message=description(data) if status == PayoutStatus.FAILED else None,
        raw=_plain(payload),
    )


# ---------------------------------------------------------------- balance
def balance_body(timestamp_ms: int) -> dict[str, str]:
    return {"timestamp": str(timestamp_ms)}


def balance_from(settings: PayProSettings, payload: Any) -> Balance:
    """`data.availableAmount`, `freezeAmount`, `unsettledAmount` (strings, 4 decimals) [doc].
    Indonesia's page spells the first `availablAmount`: accepted too."""
    instance = settings.instance
    data = check_payout_accepted(instance, payload)
    if data is None:
        raise ProviderError(instance, "invalid_response", "balance without data", retryable=True)
    currency = settings.currency
    try:
        available = parse_amount(data.get("availableAmount", data.get("availablAmount")), currency)
        frozen = parse_amount(data.get("freezeAmount"), currency)
        unsettled = parse_amount(data.get("unsettledAmount"), currency)
    except MoneyError as exc:
        raise ProviderError(instance, "invalid_amount", str(exc), retryable=False) from exc
    if available is None:
        raise ProviderError(
            instance, "invalid_response", "balance without availableAmount", retryable=True
        )
    return Balance(available=available, frozen=frozen, unsettled=unsettled, raw=_plain(payload))


# ---------------------------------------------------------------- notify
def notify_kind(body: bytes) -> NotifyKind:
    """Which kind an (unverified) notify on PayPro's one URL is: routing only."""
    return "payout" if is_payout_trade_no(claimed_field(body, "tradeNo")) else "payin"


def payout_notify_update(fields: Mapping[str, Any], currency: str, instance: str) -> PayoutUpdate:
    """Map a payout notify whose signature was already checked."""
    payout_no = field_text(fields.get("tradeNo"))
    code = field_text(fields.get("status"))
    if payout_no is None or code is None:
        raise MalformedNotify(instance, "tradeNo and status are required")
    if not is_payout_trade_no(payout_no):
        raise MalformedNotify(instance, "not a payout notify")
    status = classify_payout_status(code)
    if status is None:
        raise MalformedNotify(instance, f"unknown payout status {code[:20]!r}")
    try:
        sent = parse_amount(fields.get("amount"), currency)
    except MoneyError as exc:
        raise MalformedNotify(instance, f"bad amount: {exc}") from exc
    if status == PayoutStatus.SUCCEEDED and sent is None:
        raise MalformedNotify(instance, "successful payout notify without amount")
    return PayoutUpdate(
        payout_no=payout_no,
        status=status,
        provider_status=code,
        platform_payout_no=platform_trade_no(fields),
        amount_sent=sent if status == PayoutStatus.SUCCEEDED else None,
        failure_code=code if status == PayoutStatus.FAILED else None,
        failure_message=field_text(fields.get("message"))
        if status == PayoutStatus.FAILED
        else None,
        raw=_plain(fields),
    )


def _plain(payload: Any) -> dict[str, Any]:
    """The answer for storage: Decimals (exact wire text) as strings, nested too."""
    if not isinstance(payload, Mapping):
        return {}
    return {k: _plain_value(v) for k, v in payload.items()}


def _plain_value(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return _plain(value)
    if isinstance(value, list):
        return [_plain_value(v) for v in value]
    return value
