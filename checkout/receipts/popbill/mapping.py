"""Popbill's cash-receipt wire format, pure: bodies we send, answers we read, errors.

Facts are from Popbill's SDKs and pages (psp-docs/more/popbill-cashbill.md); each fact that
is our reading is marked INFERRED and lives in one named function.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from checkout.domain.receipts import (
    SELF_ISSUED_NUMBER,
    CancelPlan,
    IssuePlan,
    ReceiptError,
    ReceiptState,
    mask_identity,
    normalize_brn,
    state_of_popbill,
)
from checkout.receipts.errors import (
    IssuerAuthError,
    IssuerError,
    MgtKeyInUse,
    OriginalNotFiled,
    ReceiptNotFound,
    UnexpectedAnswer,
)

AUTH_URL = "https://auth.linkhub.co.kr"  # test bed and production alike
API_URLS = {True: "https://popbill-test.linkhub.co.kr", False: "https://popbill.linkhub.co.kr"}
SERVICE_IDS = {True: "POPBILL_TEST", False: "POPBILL"}  # the token path picks the mode
SCOPE = ("member", "140")  # 140: the cash-receipt service
CASHBILL_PATH = "/Cashbill"
SUCCESS_CODE = 1
TRADE_TYPE_ISSUE = "승인거래"
TRADE_OPT_GENERAL = "일반"
TAXATION = {True: "과세", False: "비과세"}
CANCEL_TYPE_DEAL_CANCELLED = 1  # 거래취소: the refund undoes (part of) the sale
JSON_CONTENT_TYPE = "application/json; charset=utf8"  # py-popbill's spelling
AUTH_CONTENT_TYPE = "Application/json"  # py-linkhub's spelling (sic)

# Popbill's codes (docs.popbill.com/en/cashbill/exception, .../closedown/exception).
KEY_IN_USE_CODES = frozenset({-14001019, -14000004})
NOT_FOUND_CODE = -14000003
NOT_FILED_CODE = -14001021
TOKEN_UNREADABLE_CODE = -10000033  # "Token Interpretation failed": fetch a new one
AUTH_CODES = frozenset(
    {
        -10000010,  # partner (link id) does not exist
        -10000012,  # no member user for this link id and business number
        -10000029,  # no IP information to access
        -10000032,  # token generation failed
        TOKEN_UNREADABLE_CODE,
        -10000034,  # auth token not entered
    }
)
_MGT_KEY = re.compile(r"[A-Za-z0-9_-]{1,24}")


@dataclass(frozen=True)
class PopbillSettings:
    """One store's Popbill member: its business number, the partner's link id and secret
    key, the mode, and what is printed on its receipts."""

    name: str  # the issuer instance name in errors and logs, e.g. "popbill:<store>"
    corp_num: str  # the member's business number (franchiseCorpNum and token access_id)
    link_id: str
    secret_key: str = field(repr=False)  # base64 text, as Linkhub gives it; never logged
    test: bool = True  # test bed (POPBILL_TEST) or production (POPBILL)
    corp_name: str | None = None
    ceo_name: str | None = None
    addr: str | None = None
    tel: str | None = None
    ip_restrict: bool = True  # Popbill's default: the token carries our egress IP
    auth_url: str | None = None  # only to point at a sandbox
    api_url: str | None = None

    def __post_init__(self) -> None:
        try:
            normalize_brn(self.corp_num)
        except ReceiptError as exc:
            raise ValueError(f"{self.name}: corp_num: {exc.message}") from None
        if not self.link_id or not self.secret_key:
            raise ValueError(f"{self.name}: link_id and secret_key are required")

    @property
    def service_id(self) -> str:
        return SERVICE_IDS[self.test]

    @property
    def auth_base(self) -> str:
        return (self.auth_url or AUTH_URL).rstrip("/")

    @property
    def api_base(self) -> str:
        return (self.api_url or API_URLS[self.test]).rstrip("/")


# ---------------------------------------------------------------- token
def token_body(corp_num: str) -> bytes:
    """The token request body: py-linkhub's `json.dumps` bytes (with its spaces), which is
    what the signature's body hash covers."""
    return json.dumps({"access_id": corp_num, "scope": list(SCOPE)}).encode("utf-8")


def forwarded_value(ip_restrict: bool) -> str | None:
    """x-lh-forwarded: absent with IP restriction (Popbill's default), `*` without."""
    return None if ip_restrict else "*"


@dataclass(frozen=True)
class Token:
    session_token: str
    expires_at: datetime  # aware UTC

    def __repr__(self) -> str:  # the token is a credential: never in logs or tracebacks
        return f"Token(expires_at={self.expires_at.isoformat()})"


def token_expiry(expiration: str) -> datetime:
    """INFERRED: `expiration` is ISO-8601 UTC, with or without milliseconds
    (py-popbill cuts 5 characters, ".000Z", before comparing it with the time)."""
    text = expiration.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


TOKEN_REFRESH_MARGIN = timedelta(seconds=60)


def refresh_due(token: Token, now: datetime) -> bool:
    """INFERRED: a token is replaced a minute before it expires, so no call carries a token
    that expires on the way (the SDKs wait for the expiry itself)."""
    return now >= token.expires_at - TOKEN_REFRESH_MARGIN


def parse_token(name: str, payload: Any) -> Token:
    if not isinstance(payload, Mapping):
        raise UnexpectedAnswer(name, "invalid_token_answer", "the token answer is no object")
    session_token = payload.get("session_token")
    expiration = payload.get("expiration")
    if not isinstance(session_token, str) or not session_token or not isinstance(expiration, str):
        raise UnexpectedAnswer(name, "invalid_token_answer", "no session_token or expiration")
    try:
        return Token(session_token, token_expiry(expiration))
    except ValueError:
        raise UnexpectedAnswer(
            name, "invalid_token_answer", f"unreadable expiration {expiration[:40]!r}"
        ) from None


# ---------------------------------------------------------------- issue and cancel
@dataclass(frozen=True)
class ReceiptDetails:
    """What the buyer's receipt shows besides the money, from the checkout."""

    order_number: str
    item_name: str
    customer_name: str | None = None
    email: str | None = None  # Popbill mails the buyer here
    memo: str | None = None


def identity_on_wire(identity: str) -> str:
    """INFERRED: numbers are sent as digits only; the self-issue number keeps the hyphens
    the NTS and Popbill write it with (whether the server strips hyphens: not found)."""
    if identity == SELF_ISSUED_NUMBER:
        return identity
    return re.sub(r"[^0-9]", "", identity)


def buyer_mail_allowed(settings: PopbillSettings) -> bool:
    """The test bed mails the buyer for real (Popbill's RegistIssue notes): never send a
    shopper's address there."""
    return not settings.test


def _present(fields: Mapping[str, object]) -> dict[str, object]:
    """Empty members are left out, as node-popbill does (py-popbill sends nulls; both go)."""
    return {k: v for k, v in fields.items() if v is not None and v != ""}


def issue_body(settings: PopbillSettings, plan: IssuePlan, details: ReceiptDetails) -> dict:
    """RegistIssue's Cashbill. Amounts are strings (the SDKs' type); no tradeDT: Popbill
    takes the issue time, which is within the today-or-yesterday window by construction."""
    a = plan.amounts
    return _present(
        {
            "mgtKey": plan.mgt_key,
            "tradeType": TRADE_TYPE_ISSUE,
            "tradeUsage": plan.usage.value,
            "tradeOpt": TRADE_OPT_GENERAL,
            "taxationType": TAXATION[plan.taxable],
            "totalAmount": str(a.total),
            "supplyCost": str(a.supply_cost),
            "tax": str(a.tax),
            "serviceFee": str(a.service_fee),
            "franchiseCorpNum": settings.corp_num,
            "franchiseCorpName": settings.corp_name,
            "franchiseCEOName": settings.ceo_name,
            "franchiseAddr": settings.addr,
            "franchiseTEL": settings.tel,
            "identityNum": identity_on_wire(plan.identity),
            "customerName": details.customer_name,
            "itemName": details.item_name,
            "orderNumber": details.order_number,
            "email": details.email if buyer_mail_allowed(settings) else None,
            "smssendYN": False,
            "memo": (details.memo or "")[:200],
        }
    )


def full_cancel_sends_amounts() -> bool:
    """INFERRED: a full cancel omits the amounts and Popbill copies the original's (the
    SDKs' short overloads send none)."""
    return False


def cancel_body(plan: CancelPlan, memo: str | None = None) -> dict:
    """RevokeRegistIssue's body: a new management key referencing the original."""
    a = plan.amounts
    amounts = (
        {
            "supplyCost": str(a.supply_cost),
            "tax": str(a.tax),
            "serviceFee": str(a.service_fee),
            "totalAmount": str(a.total),
        }
        if plan.partial or full_cancel_sends_amounts()
        else {}
    )
    return _present(
        {
            "mgtKey": plan.mgt_key,
            "orgConfirmNum": plan.org_confirm_num,
            "orgTradeDate": plan.org_trade_date,
            "smssendYN": False,
            "memo": (memo or "")[:200],
            "isPartCancel": plan.partial,
            "cancelType": CANCEL_TYPE_DEAL_CANCELLED,
            **amounts,
        }
    )


@dataclass(frozen=True)
class IssueResult:
    """Popbill's answer to an issue or a cancel: what a later cancel must reference."""

    confirm_num: str  # the NTS confirmation number (9 characters)
    trade_date: str  # yyyyMMdd
    trade_dt: str | None  # yyyyMMddHHmmss


def issue_result(name: str, payload: Any) -> IssueResult:
    if not isinstance(payload, Mapping) or payload.get("code") != SUCCESS_CODE:
        raise UnexpectedAnswer(name, "invalid_answer", "an HTTP 200 answer without code 1")
    confirm = payload.get("confirmNum")
    date = payload.get("tradeDate")
    if not isinstance(confirm, str) or not confirm or not _is_date(date):
        raise UnexpectedAnswer(name, "invalid_answer", "no confirmNum or tradeDate")
    trade_dt = payload.get("tradeDT")
    return IssueResult(confirm, str(date), trade_dt if isinstance(trade_dt, str) else None)


def _is_date(value: object) -> bool:
    return isinstance(value, str) and len(value) == 8 and value.isascii() and value.isdigit()


# ---------------------------------------------------------------- query
@dataclass(frozen=True)
class ReceiptInfo:
    """GetInfo's answer, read once: the identity already masked."""

    mgt_key: str
    state: ReceiptState
    state_code: int
    total: int
    confirm_num: str | None
    trade_date: str | None
    trade_usage: str | None
    cancel: bool  # a cancel receipt (취소거래)
    org_confirm_num: str | None
    masked_identity: str | None
    nts_result_code: str | None
    nts_result_message: str | None


def receipt_info(name: str, payload: Any) -> ReceiptInfo:
    if not isinstance(payload, Mapping):
        raise UnexpectedAnswer(name, "invalid_answer", "the receipt answer is no object")
    mgt_key = payload.get("mgtKey")
    if not isinstance(mgt_key, str) or not payload.get("itemKey"):
        raise UnexpectedAnswer(name, "invalid_answer", "no mgtKey or itemKey")
    try:
        state = state_of_popbill(payload.get("stateCode"))
        total = int(str(payload.get("totalAmount")))
    except ReceiptError as exc:
        raise UnexpectedAnswer(name, exc.code, exc.message) from None
    except ValueError:
        raise UnexpectedAnswer(name, "invalid_answer", "totalAmount is no integer") from None

    def text(key: str) -> str | None:
        value = payload.get(key)
        return value if isinstance(value, str) and value else None

    identity = text("identityNum")
    return ReceiptInfo(
        mgt_key=mgt_key,
        state=state,
        state_code=int(str(payload.get("stateCode"))),
        total=total,
        confirm_num=text("confirmNum"),
        trade_date=text("tradeDate"),
        trade_usage=text("tradeUsage"),
        cancel=text("tradeType") == "취소거래",
        org_confirm_num=text("orgConfirmNum"),
        masked_identity=mask_identity(identity) if identity else None,
        nts_result_code=text("ntsresultCode"),
        nts_result_message=text("ntsresultMessage"),
    )


def is_same_receipt(info: ReceiptInfo, total: int) -> bool:
    """INFERRED: a receipt found under our derived key is ours when its amount matches; the
    key is a digest of our ids, so another document under it would be a configuration
    mistake (two installations sharing one Popbill member)."""
    return info.total == total


def mgt_key_path(mgt_key: str) -> str:
    if not _MGT_KEY.fullmatch(mgt_key):
        raise ValueError("a management key is 1 to 24 letters, digits, '-' or '_'")
    return f"{CASHBILL_PATH}/{mgt_key}"


# ---------------------------------------------------------------- errors
def error_for(name: str, status: int, payload: Any) -> IssuerError:
    """The typed error of a non-200 answer (`{"code": <negative>, "message": ...}`)."""
    code: int | None = None
    message = f"Popbill answered HTTP {status}"
    if isinstance(payload, Mapping):
        raw = payload.get("code")
        if isinstance(raw, int) and not isinstance(raw, bool):
            code = raw
        if isinstance(payload.get("message"), str):
            message = payload["message"][:300]
    if code is None:
        retryable = status >= 500 or status in (408, 429)
        return IssuerError(name, f"http_{status}", message, retryable=retryable, http_status=status)
    text = str(code)
    if code in KEY_IN_USE_CODES:
        return MgtKeyInUse(name, text, message, http_status=status)
    if code == NOT_FOUND_CODE:
        return ReceiptNotFound(name, text, message, http_status=status)
    if code == NOT_FILED_CODE:
        return OriginalNotFiled(name, text, message, retryable=True, http_status=status)
    if code in AUTH_CODES:
        return IssuerAuthError(
            name, text, message, retryable=code == TOKEN_UNREADABLE_CODE, http_status=status
        )
    # Popbill's own failures (5xx) may pass; its refusals (-14001xxx) will not.
    return IssuerError(name, text, message, retryable=status >= 500, http_status=status)
