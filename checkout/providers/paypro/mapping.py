"""Pure mapping between our types and PayPro's JSON (no I/O, no signing).

One package serves three wire variants: Korea paymentLink, Mexico paymentLink and
Mexico payInApi. Their differences (field names, `message` vs `desc`, `paymentLink` vs
`paymentUrl`, `platFormTradeNo` vs `payproTradeNo`) are all handled here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from checkout.domain.errors import MoneyError
from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.providers.base import (
    CreateResult,
    InstructionKind,
    MethodConfig,
    PaymentInstructions,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
    claimed_field,
)
from checkout.providers.errors import (
    MalformedNotify,
    OrderNotFound,
    ProviderError,
    UnknownProviderStatus,
)
from checkout.providers.paypro.signing import field_text

# ---------------------------------------------------------------- wire constants
API_PAYMENT_LINK = "paymentLink"
API_PAY_IN = "payInApi"
PATHS = {
    API_PAYMENT_LINK: "/v1/paypro/paymentLink",
    API_PAY_IN: "/v1/paypro/payInApi",
}
QUERY_PATH = "/v1/paypro/queryPayInResult"

COUNTRY_CURRENCY = {"KR": "KRW", "MX": "MXN"}
COUNTRY_TIMEZONE = {"KR": "Asia/Seoul", "MX": "America/Mexico_City"}
KR_VA_WAY_CODE = "VA"
MX_WAY_CODES = frozenset({"store", "va"})
REMARK_MAX = 64  # PayPro gives no limit; keep the echo short

ACCEPTED = "0000"  # outer `code`: the request was accepted, nothing more
SYSTEM_ERROR = "5000"  # outer `code`: PayPro's own failure, worth retrying

# data.status / notify status. Every other digit code is an error code: a failure.
STATUS_TABLE: dict[str, AttemptStatus] = {
    "0000": AttemptStatus.PAID,
    "0001": AttemptStatus.PARTIALLY_PAID,
    "0015": AttemptStatus.PENDING,
}


# ---------------------------------------------------------------- configuration
@dataclass(frozen=True)
class PayProSettings:
    instance: str
    country: str  # "KR" | "MX"
    api: str  # "paymentLink" | "payInApi"
    merchant_no: str
    app_secret: str
    sub_merchant_no: str | None

    @property
    def currency(self) -> str:
        return COUNTRY_CURRENCY[self.country]

    @property
    def timezone(self) -> str:
        return COUNTRY_TIMEZONE[self.country]


def settings_from_config(config: ProviderConfig) -> PayProSettings:
    """Validate an instance's settings and methods; ValueError names what is wrong."""
    where = f"provider {config.name!r}"
    s = config.settings

    def text(key: str) -> str:
        value = s.get(key)
        return str(value).strip() if value is not None else ""

    country = text("country").upper()
    if country not in COUNTRY_CURRENCY:
        raise ValueError(f"{where}: settings.country must be KR or MX, got {s.get('country')!r}")
    api = text("api") or API_PAYMENT_LINK
    if api not in PATHS:
        raise ValueError(f"{where}: settings.api must be paymentLink or payInApi, got {api!r}")
    if api == API_PAY_IN and country != "MX":
        raise ValueError(f"{where}: settings.api payInApi exists for country MX only")
    for key in ("merchant_no", "app_secret"):
        if not text(key):
            raise ValueError(f"{where}: settings.{key} is required")
    if country == "KR" and not text("sub_merchant_no"):
        raise ValueError(f"{where}: settings.sub_merchant_no is required for country KR")
    if not config.base_url:
        raise ValueError(f"{where}: base_url is required")
    settings = PayProSettings(
        instance=config.name,
        country=country,
        api=api,
        merchant_no=text("merchant_no"),
        app_secret=text("app_secret"),
        sub_merchant_no=text("sub_merchant_no") or None,
    )
    for method in config.methods:
        check_method(settings, method)
    return settings


def check_method(settings: PayProSettings, method: MethodConfig) -> None:
    where = f"provider {settings.instance!r} method {method.code!r}"
    options = method.options
    if settings.country == "KR":
        for key in ("channel_code", "way_code"):
            if not str(options.get(key) or "").strip():
                raise ValueError(f"{where}: options.{key} is required for PayPro Korea")
    elif str(options.get("way_code") or "") not in MX_WAY_CODES:
        raise ValueError(
            f"{where}: options.way_code must be one of {', '.join(sorted(MX_WAY_CODES))}"
        )


def way_code(method: MethodConfig) -> str:
    return str(method.options.get("way_code") or "").strip()


def channel_code(method: MethodConfig) -> str:
    return str(method.options.get("channel_code") or "").strip()


def is_kr_va(settings: PayProSettings, method: MethodConfig) -> bool:
    return settings.country == "KR" and way_code(method) == KR_VA_WAY_CODE


# ---------------------------------------------------------------- create request
def amount_text(amount: Money) -> str:
    """Whole units as a string ('1000'); raises MoneyError for centavos."""
    return str(amount.whole_units())


def create_body(
    settings: PayProSettings, request: PaymentRequest, timestamp_ms: int
) -> dict[str, str]:
    """The unsigned create body: every value a string, empty values left out."""
    payer = request.payer
    method = request.method
    body: dict[str, str | None] = {
        "timestamp": str(timestamp_ms),
        "tradeNo": request.trade_no,
        "amount": amount_text(request.amount),
    }
    if settings.country == "KR":
        body.update(
            subMerchantNo=settings.sub_merchant_no,
            mobile=payer.mobile,
            firstname=payer.first_name.strip(),
            lastname=payer.last_name.strip(),
            email=payer.email,
            channelCode=channel_code(method),
            wayCode=way_code(method),
            ipAddress=payer.ip_address,
        )
        if is_kr_va(settings, method) and payer.birth_date is not None:
            body["dateOfBirth"] = payer.birth_date.isoformat()
    else:
        body.update(
            mobile=payer.mobile,
            email=payer.email,
            payer=payer.full_name,
            wayCode=way_code(method),
        )
    body.update(
        notifyUrl=request.notify_url,
        returnUrl=request.return_url,
        remark=remark_text(request.description),
    )
    return {k: v for k, v in body.items() if v}


def remark_text(description: str | None) -> str | None:
    if not description:
        return None
    return " ".join(description.split())[:REMARK_MAX] or None


# ---------------------------------------------------------------- responses
def check_accepted(instance: str, payload: Any) -> Mapping[str, Any]:
    """The response's `data` if the outer `code` says accepted; ProviderError otherwise."""
    if not isinstance(payload, Mapping):
        raise ProviderError(
            instance, "invalid_response", "response is not a JSON object", retryable=True
        )
    code = field_text(payload.get("code"))
    if code != ACCEPTED:
        message = field_text(payload.get("msg")) or "request refused"
        raise ProviderError(
            instance, code or "missing_code", message, retryable=code == SYSTEM_ERROR
        )
    data = payload.get("data")
    if not isinstance(data, Mapping):
        raise ProviderError(instance, "invalid_response", "accepted without data", retryable=True)
    return data


def classify_status(code: str | None) -> AttemptStatus | None:
    """Our status for a PayPro status code; None if it is not a code at all.

    PayPro: "0000" paid, "0001" partially paid, "0015" processing, other codes are
    error codes (failures). A value that is not a digit code (missing, "PAID", ...) is
    outside the table, so it is never guessed at.
    """
    if code is None:
        return None
    if code in STATUS_TABLE:
        return STATUS_TABLE[code]
    if code.isascii() and code.isdigit() and 4 <= len(code) <= 10:
        return AttemptStatus.FAILED
    return None


def platform_trade_no(data: Mapping[str, Any]) -> str | None:
    # payInApi's example says payproTradeNo where every table says platFormTradeNo.
    return field_text(data.get("platFormTradeNo")) or field_text(data.get("payproTradeNo"))


def description(data: Mapping[str, Any]) -> str | None:
    # KR calls it `message`, MX `desc`.
    return field_text(data.get("message")) or field_text(data.get("desc"))


def _check_trade_no(instance: str, data: Mapping[str, Any], trade_no: str) -> None:
    echoed = field_text(data.get("tradeNo"))
    if echoed is not None and echoed != trade_no:
        raise ProviderError(
            instance, "trade_no_mismatch", "response is for another trade number", retryable=False
        )


def create_result(settings: PayProSettings, request: PaymentRequest, payload: Any) -> CreateResult:
    """Map a create response (already parsed JSON) to a CreateResult."""
    instance = settings.instance
    data = check_accepted(instance, payload)
    _check_trade_no(instance, data, request.trade_no)
    code = field_text(data.get("status"))
    status = classify_status(code)
    if status is None:
        raise UnknownProviderStatus(instance, code or "missing_status", "unknown data.status")
    raw = dict(payload)
    platform_no = platform_trade_no(data)
    if status == AttemptStatus.FAILED:
        return CreateResult(
            status=status,
            platform_trade_no=platform_no,
            provider_status=code,
            failure_code=code,
            failure_message=description(data),
            raw=raw,
        )

    redirect_url: str | None = None
    instructions: PaymentInstructions | None = None
    if settings.api == API_PAY_IN:
        instructions = pay_in_instructions(data, request)
    elif settings.country == "KR":
        link = field_text(data.get("paymentLink"))
        pay_info = data.get("payInfo")
        if isinstance(pay_info, Mapping) and pay_info:
            instructions = kr_va_instructions(pay_info, request.amount, link)
        else:
            redirect_url = link
    else:
        redirect_url = field_text(data.get("paymentUrl"))
    if status == AttemptStatus.PENDING and redirect_url is None and instructions is None:
        raise ProviderError(
            instance, "invalid_response", "no payment link or payment details", retryable=True
        )
    return CreateResult(
        status=status,
        platform_trade_no=platform_no,
        redirect_url=redirect_url,
        instructions=instructions,
        provider_status=code,
        raw=raw,
    )


def korea_time_to_utc(text: str | None) -> datetime | None:
    """INFERRED: payInfo timestamps ("YYYY-MM-DD HH:MM:SS") are Korea time."""
    if not text:
        return None
    try:
        local = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None
    return local.replace(tzinfo=ZoneInfo("Asia/Seoul")).astimezone(UTC)


def kr_va_instructions(
    pay_info: Mapping[str, Any], amount: Money, cashier_url: str | None
) -> PaymentInstructions:
    account = field_text(pay_info.get("virtualAccountNumber"))
    return PaymentInstructions(
        kind=InstructionKind.BANK_TRANSFER,
        amount=amount,
        bank_name=field_text(pay_info.get("bankName")),
        account_number=account,
        account_holder=field_text(pay_info.get("virtualAccountHolder")),
        expires_at=korea_time_to_utc(field_text(pay_info.get("expirationTimestamp"))),
        qr_content=account,
        cashier_url=cashier_url,
    )


def pay_in_instructions(
    data: Mapping[str, Any], request: PaymentRequest
) -> PaymentInstructions | None:
    info = field_text(data.get("paymentInfo"))
    if info is None:
        return None
    if way_code(request.method) == "va":
        # paymentInfo is the CLABE to send a SPEI transfer to.
        return PaymentInstructions(
            kind=InstructionKind.BANK_TRANSFER,
            amount=request.amount,
            account_number=info,
            qr_content=info,
        )
    return PaymentInstructions(
        kind=InstructionKind.STORE_REFERENCE,
        amount=request.amount,
        reference=info,
        qr_content=info,
    )


# ---------------------------------------------------------------- query
def query_body(trade_no: str, timestamp_ms: int) -> dict[str, str]:
    return {"tradeNo": trade_no, "timestamp": str(timestamp_ms)}


def query_update(settings: PayProSettings, trade_no: str, payload: Any) -> PaymentUpdate:
    """Map a query response; only data.status and the money received decide anything."""
    instance = settings.instance
    try:
        data = check_accepted(instance, payload)
    except ProviderError as exc:
        if is_order_not_found(exc.code):
            raise OrderNotFound(instance, exc.code, exc.message) from exc
        raise
    _check_trade_no(instance, data, trade_no)
    code = field_text(data.get("status"))
    status = classify_status(code)
    if status is None:
        raise UnknownProviderStatus(instance, code or "missing_status", "unknown data.status")
    try:
        paid = paid_amount(status, query_paid_field(data), settings.currency)
    except MoneyError as exc:
        raise ProviderError(instance, "invalid_amount", str(exc), retryable=False) from exc
    return PaymentUpdate(
        trade_no=trade_no,
        status=status,
        provider_status=code or "",
        amount_paid=paid,
        platform_trade_no=platform_trade_no(data),
        failure_message=description(data) if status == AttemptStatus.FAILED else None,
        raw=dict(payload),
    )


def query_paid_field(data: Mapping[str, Any]) -> object:
    """Money received in a query answer: `data.payAmount` (the Korea query's field, beside
    `orderAmount`: Corrections), else `data.amount` where a region's page uses that."""
    pay_amount = data.get("payAmount")
    return pay_amount if pay_amount not in (None, "") else data.get("amount")


# Refusals of a create that PayPro documents, after which nothing payable exists at PayPro:
# the payment may go to another provider. 0100019 PAYEE_DAILY_CUMULATIVE_AMT_REACHED (the
# payee's daily cap) and 00029 REJECTED_TRANSACTION are on its error code page [doc]; 5000
# (system error, PayPro down or in maintenance) is named in its overview but on no page read
# [inferred]. 00032 UNKNOWN_ERROR is left out: it does not say what became of the request.
CREATED_NOTHING_CODES = frozenset({"0100019", "00029", SYSTEM_ERROR})


def refusal_created_nothing(code: str) -> bool:
    """Whether a create refused with `code` (outer `code`, or `data.status` of an accepted
    but failed create) proves that no payment exists at PayPro (see CREATED_NOTHING_CODES)."""
    return code in CREATED_NOTHING_CODES


def is_order_not_found(code: str) -> bool:
    """INFERRED: the query's refusal code for an unknown tradeNo (ORDER_NOT_EXIST); the
    pages name the error but not its number."""
    return code == "0100005"


def paid_amount(status: AttemptStatus, value: object, currency: str) -> Money | None:
    """The amount paid, for paid statuses only (elsewhere PayPro's amount is not money in)."""
    if status not in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
        return None
    text = field_text(value)
    if text is None:
        raise MoneyError("paid status without an amount")
    return Money.from_major(text, currency)


# ---------------------------------------------------------------- notify
def claimed_trade_no(body: bytes) -> str | None:
    """The trade number an unverified notify body names (`tradeNo`), for the inbox only."""
    return claimed_field(body, "tradeNo")


def notify_update(fields: Mapping[str, Any], currency: str, instance: str) -> PaymentUpdate:
    """Map a notify body whose signature was already checked."""
    trade_no = field_text(fields.get("tradeNo"))
    code = field_text(fields.get("status"))
    if trade_no is None or code is None:
        raise MalformedNotify(instance, "tradeNo and status are required")
    status = classify_status(code)
    if status is None:
        raise MalformedNotify(instance, f"unknown status {code[:20]!r}")
    try:
        paid = paid_amount(status, fields.get("amount"), currency)
    except MoneyError as exc:
        raise MalformedNotify(instance, f"bad amount: {exc}") from exc
    return PaymentUpdate(
        trade_no=trade_no,
        status=status,
        provider_status=code,
        amount_paid=paid,
        platform_trade_no=platform_trade_no(fields),
        failure_message=field_text(fields.get("message"))
        if status == AttemptStatus.FAILED
        else None,
        raw={k: str(v) if isinstance(v, Decimal) else v for k, v in fields.items()},
    )
