"""A Popbill (Linkhub) cash-receipt simulator speaking Popbill's wire protocol.

Served under `/popbill`: the Linkhub token service at `/popbill/auth/{ServiceID}/Token` and
the cash-receipt API at `/popbill/Cashbill` (point a store's `auth_url` at
`<sandbox>/popbill/auth` and its `api_url` at `<sandbox>/popbill`). The signature is
checked over the path as signed, `/{ServiceID}/Token`, as on Linkhub's own host.

What it does, as Popbill does (psp-docs/more/popbill-cashbill.md):
- a token only for a known link id whose HMAC-SHA256 signature verifies, for a member
  (business number) of that partner; a call without a live token is refused;
- RegistIssue (`X-HTTP-Method-Override: ISSUE`) keeps the receipt in state 300; a used
  management key is refused with -14001019;
- RevokeRegistIssue (`REVOKEISSUE`): -14001020 when the original is unknown, -14001021 while
  it is not filed (state 304), -14001023 when the cancels would exceed it;
- GetInfo (`GET /Cashbill/{MgtKey}`), -14000003 when there is no such receipt;
- test bed (POPBILL_TEST) and production (POPBILL) receipts never see each other.

Filing to the NTS happens when told: `POST /_sandbox/popbill/file` with `{"mgtKey": ...}`
(or nothing: every receipt in 300), optionally `"stateCode": 305`; a receipt whose amounts
do not add up is filed as 305 with ntsresultCode TS4, as the NTS would. `GET
/_sandbox/popbill/receipts` lists the receipts.

Faults (checkout/sandbox/faults.py), provider `popbill`: endpoint `token`, `issue` (every
`POST /Cashbill`: issues and cancels) or `receipt_query`; `refuse` answers Popbill's
`{"code": -<code>, "message": ...}` for the digits given (e.g. `14001021`).

Not documented by Popbill and chosen here: the HTTP status of an error (400; 401 for
token errors), the accepted clock skew of x-lh-date (5 minutes), -99999999 for a field
this simulator cannot read (Popbill's code for malformed fields: not found).
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from flask import Blueprint, Flask, Response, jsonify, request

from checkout.domain.errors import ReceiptError
from checkout.domain.receipts import SELF_ISSUED_NUMBER, normalize_brn
from checkout.receipts.popbill import signing
from checkout.sandbox import faults

if TYPE_CHECKING:
    from checkout.sandbox.core import SandboxState

NAME = "popbill"
SERVICES = ("POPBILL", "POPBILL_TEST")
SCOPE = ("member", "140")
KST = ZoneInfo("Asia/Seoul")
CLOCK_SKEW = timedelta(minutes=5)
ISSUED, FILED, FILING_FAILED = 300, 304, 305
USAGES = ("소득공제용", "지출증빙용")
_MGT_KEY = re.compile(r"[A-Za-z0-9_-]{1,24}")
_AMOUNT = re.compile(r"-?[0-9]{1,9}")

# Popbill's codes (docs.popbill.com/en/cashbill/exception, .../closedown/exception).
PARTNER_UNKNOWN = -10000010
MEMBER_UNKNOWN = -10000012
TOKEN_FAILED = -10000032
TOKEN_UNREADABLE = -10000033
TOKEN_MISSING = -10000034
NOT_FOUND = -14000003
SELLER_MISSING = -14001001
SELLER_INVALID = -14001002
IDENTITY_MISSING = -14001004
KEY_IN_USE = -14001019
ORIGINAL_UNKNOWN = -14001020
ORIGINAL_NOT_FILED = -14001021
SELLER_NOT_ORIGINAL = -14001022
CANCEL_EXCEEDS = -14001023
UNREADABLE = -99999999
# (missing, negative) per amount field
AMOUNT_CODES = {
    "serviceFee": (-14001008, -14001009),
    "supplyCost": (-14001010, -14001011),
    "tax": (-14001012, -14001013),
    "totalAmount": (-14001014, -14001015),
}


class Refused(Exception):
    def __init__(self, code: int, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


def error_answer(code: int, message: str, status: int = 400) -> Response:
    body = json.dumps({"code": code, "message": message}, ensure_ascii=False)
    return Response(body, status, mimetype="application/json")


def ok_answer(payload: dict[str, Any]) -> Response:
    return Response(json.dumps(payload, ensure_ascii=False), 200, mimetype="application/json")


@dataclass
class SandboxToken:
    service_id: str
    link_id: str
    corp_num: str
    expires_at: datetime


@dataclass
class SandboxReceipt:
    service_id: str
    corp_num: str
    fields: dict[str, Any]  # the Cashbill as sent, amounts as strings
    item_key: str
    confirm_num: str
    trade_date: str  # yyyyMMdd (KST)
    trade_dt: str
    issued_at: datetime
    state_code: int = ISSUED
    state_dt: str = ""
    nts_result_code: str | None = None
    cancel_of: SandboxReceipt | None = None  # the original, for a cancel receipt
    cancelled: int = 0  # for an original: the total of its cancel receipts

    @property
    def mgt_key(self) -> str:
        return str(self.fields["mgtKey"])

    @property
    def total(self) -> int:
        return int(self.fields["totalAmount"])

    def info(self) -> dict[str, Any]:
        """GetInfo's CashbillInfo."""
        f = self.fields
        original = self.cancel_of
        return {
            "itemKey": self.item_key,
            "mgtKey": self.mgt_key,
            "tradeDate": self.trade_date,
            "tradeDT": self.trade_dt,
            "tradeType": "취소거래" if original else "승인거래",
            "tradeUsage": f.get("tradeUsage"),
            "tradeOpt": f.get("tradeOpt", "일반"),
            "taxationType": f.get("taxationType"),
            "totalAmount": f["totalAmount"],
            "supplyCost": f["supplyCost"],
            "tax": f["tax"],
            "serviceFee": f["serviceFee"],
            "issueDT": self.trade_dt,
            "regDT": self.trade_dt,
            "stateCode": self.state_code,
            "stateDT": self.state_dt or self.trade_dt,
            "identityNum": f.get("identityNum"),
            "itemName": f.get("itemName"),
            "orderNumber": f.get("orderNumber"),
            "email": f.get("email"),
            "hp": f.get("hp"),
            "customerName": f.get("customerName"),
            "confirmNum": self.confirm_num,
            "orgConfirmNum": original.confirm_num if original else "",
            "orgTradeDate": original.trade_date if original else "",
            "ntssendDT": self.state_dt if self.state_code != ISSUED else "",
            "ntsresultDT": self.state_dt if self.state_code != ISSUED else "",
            "ntsresultCode": self.nts_result_code or "",
            "ntsresultMessage": "" if self.nts_result_code in (None, "0000") else "TS4",
            "printYN": False,
            "interOPYN": False,
        }


@dataclass
class PopbillBook:
    """The simulator's members, tokens and receipts. Thread-safe (the server is threaded)."""

    partners: dict[str, str] = field(default_factory=dict)  # link id -> secret key (base64)
    members: set[str] = field(default_factory=set)  # business numbers that joined Popbill
    token_lifetime: timedelta = timedelta(hours=1)
    tokens: dict[str, SandboxToken] = field(default_factory=dict)
    receipts: dict[tuple[str, str, str], SandboxReceipt] = field(default_factory=dict)
    token_requests: int = 0  # how many tokens were handed out (tests check the cache)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _confirm_seq: int = 0

    # -- tokens
    def grant(
        self,
        service_id: str,
        authorization: str,
        date: str,
        version: str,
        forwarded: str | None,
        body: bytes,
        now: datetime,
        remote: str,
    ) -> dict[str, Any]:
        if version != signing.API_VERSION:
            raise Refused(TOKEN_FAILED, "x-lh-version must be 2.0", 401)
        parsed = signing.parse_authorization(authorization)
        if parsed is None:
            raise Refused(TOKEN_FAILED, "Authorization must be LINKHUB <LinkID> <Signature>", 401)
        link_id, signature = parsed
        secret = self.partners.get(link_id)
        if secret is None:
            raise Refused(PARTNER_UNKNOWN, "Partner information does not exist.", 401)
        try:
            when = datetime.fromisoformat(date.replace("Z", "+00:00"))
        except ValueError:
            raise Refused(TOKEN_FAILED, "x-lh-date is no time", 401) from None
        if when.tzinfo is None or abs(now - when) > CLOCK_SKEW:
            raise Refused(TOKEN_FAILED, "x-lh-date is too far from the server's time", 401)
        if not signing.verify(secret, body, date, forwarded, service_id, signature):
            raise Refused(TOKEN_FAILED, "Token Generation failed.", 401)
        try:
            data = json.loads(body)
            corp_num = str(data["access_id"])
            scope = list(data["scope"])
        except (ValueError, KeyError, TypeError):
            raise Refused(TOKEN_FAILED, "the body must be {access_id, scope}", 401) from None
        if not set(SCOPE) <= set(scope):
            raise Refused(TOKEN_FAILED, "scope must hold member and 140", 401)
        if corp_num not in self.members:
            raise Refused(
                MEMBER_UNKNOWN,
                "Master(user) corresponds to the entered information of LinkID and BRN "
                "does not exist.",
                401,
            )
        token = secrets.token_urlsafe(24)
        expires = now + self.token_lifetime
        with self._lock:
            self.tokens[token] = SandboxToken(service_id, link_id, corp_num, expires)
            self.token_requests += 1
        return {
            "session_token": token,
            "serviceID": service_id,
            "linkID": link_id,
            "usercode": "",
            "ipaddress": "*" if forwarded == "*" else remote,
            "expiration": expires.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
            "scope": scope,
        }

    def holder(self, authorization: str | None, now: datetime) -> SandboxToken:
        if not authorization or not authorization.startswith("Bearer "):
            raise Refused(TOKEN_MISSING, "Auth token is not entered", 401)
        with self._lock:
            token = self.tokens.get(authorization[len("Bearer ") :])
        if token is None or token.expires_at <= now:
            raise Refused(TOKEN_UNREADABLE, "Token Interpretation failed.", 401)
        return token

    def expire_tokens(self) -> None:
        """Every token handed out stops working (as after its expiration)."""
        with self._lock:
            self.tokens.clear()

    # -- receipts
    def _key(self, token: SandboxToken, mgt_key: str) -> tuple[str, str, str]:
        return (token.service_id, token.corp_num, mgt_key)

    def _new_receipt(
        self, token: SandboxToken, fields: dict[str, Any], now: datetime
    ) -> SandboxReceipt:
        self._confirm_seq += 1
        local = now.astimezone(KST)
        prefix = "TB" if token.service_id == "POPBILL_TEST" else "T"
        return SandboxReceipt(
            token.service_id,
            token.corp_num,
            fields,
            item_key=local.strftime("%y%m%d%H%M%S") + f"{self._confirm_seq:06d}",
            confirm_num=prefix + f"{self._confirm_seq:07d}"[-(9 - len(prefix)) :],
            trade_date=local.strftime("%Y%m%d"),
            trade_dt=local.strftime("%Y%m%d%H%M%S"),
            issued_at=now,
        )

    def issue(self, token: SandboxToken, body: Any, now: datetime) -> SandboxReceipt:
        fields = _cashbill_fields(body)
        seller = fields.get("franchiseCorpNum")
        if not seller:
            raise Refused(SELLER_MISSING, "Seller's business registration number is not entered.")
        if seller != token.corp_num:
            raise Refused(SELLER_INVALID, "Invalid seller's business registration number")
        identity = fields.get("identityNum")
        if not identity:
            raise Refused(IDENTITY_MISSING, "The Identification number is not entered.")
        if identity == SELF_ISSUED_NUMBER and fields.get("tradeUsage") != "소득공제용":
            raise Refused(UNREADABLE, "010-000-1234 is for 소득공제용 only")
        with self._lock:
            key = self._key(token, fields["mgtKey"])
            if key in self.receipts:
                raise Refused(KEY_IN_USE, "The entered Document ID is in use.")
            receipt = self._new_receipt(token, fields, now)
            self.receipts[key] = receipt
        return receipt

    def revoke(self, token: SandboxToken, body: Any, now: datetime) -> SandboxReceipt:
        if not isinstance(body, dict):
            raise Refused(UNREADABLE, "the body must be a JSON object")
        mgt_key = body.get("mgtKey")
        if not isinstance(mgt_key, str) or not _MGT_KEY.fullmatch(mgt_key):
            raise Refused(UNREADABLE, "mgtKey: 1 to 24 letters, digits, '-' or '_'")
        partial = body.get("isPartCancel") is True
        with self._lock:
            if self._key(token, mgt_key) in self.receipts:
                raise Refused(KEY_IN_USE, "The entered Document ID is in use.")
            original = next(
                (
                    r
                    for r in self.receipts.values()
                    if (r.service_id, r.confirm_num, r.trade_date)
                    == (token.service_id, body.get("orgConfirmNum"), body.get("orgTradeDate"))
                    and r.cancel_of is None
                ),
                None,
            )
            if original is None:
                raise Refused(ORIGINAL_UNKNOWN, "The original cash receipt does not exist.")
            if original.corp_num != token.corp_num:
                raise Refused(
                    SELLER_NOT_ORIGINAL,
                    "Seller's business registration number is not the same with the original.",
                )
            if original.state_code != FILED:
                raise Refused(
                    ORIGINAL_NOT_FILED,
                    "Not allowed to issue a cash receipt for revocvation : the original cash "
                    "receipt is not filed to the NTS.",
                )
            if partial:
                amounts = {k: _amount(body, k) for k in AMOUNT_CODES}
                total = amounts["totalAmount"]
            else:
                amounts = {k: int(original.fields[k]) for k in AMOUNT_CODES}
                total = original.total
            if original.cancelled + total > original.total:
                raise Refused(
                    CANCEL_EXCEEDS,
                    "Supply value of the cash receipt for revocation cannot exceed the original.",
                )
            fields = {
                **{k: v for k, v in original.fields.items() if k not in AMOUNT_CODES},
                **{k: str(v) for k, v in amounts.items()},
                "mgtKey": mgt_key,
                "memo": body.get("memo"),
            }
            receipt = self._new_receipt(token, fields, now)
            receipt.cancel_of = original
            original.cancelled += total
            self.receipts[self._key(token, mgt_key)] = receipt
        return receipt

    def get(self, token: SandboxToken, mgt_key: str) -> SandboxReceipt:
        with self._lock:
            receipt = self.receipts.get(self._key(token, mgt_key))
        if receipt is None:
            raise Refused(
                NOT_FOUND, "The cash receipt does not exist for the provided Document ID."
            )
        return receipt

    def file(
        self, mgt_key: str | None = None, state_code: int = FILED, now: datetime | None = None
    ) -> list[SandboxReceipt]:
        """The NTS takes receipts in 300: the one named (or all), 304 or 305; a receipt whose
        amounts do not add up is refused (305, TS4) whatever was asked."""
        if state_code not in (FILED, FILING_FAILED):
            raise ValueError("stateCode must be 304 or 305")
        when = (now or datetime.now(UTC)).astimezone(KST).strftime("%Y%m%d%H%M%S")
        filed = []
        with self._lock:
            for receipt in self.receipts.values():
                if receipt.state_code != ISSUED or mgt_key not in (None, receipt.mgt_key):
                    continue
                f = receipt.fields
                adds_up = int(f["supplyCost"]) + int(f["tax"]) + int(f["serviceFee"]) == int(
                    f["totalAmount"]
                )
                receipt.state_code = state_code if adds_up else FILING_FAILED
                receipt.nts_result_code = "0000" if receipt.state_code == FILED else "TS4"
                receipt.state_dt = when
                filed.append(receipt)
        return filed

    def all(self) -> list[SandboxReceipt]:
        with self._lock:
            return list(self.receipts.values())


def _amount(body: dict[str, Any], name: str) -> int:
    missing, negative = AMOUNT_CODES[name]
    value = body.get(name)
    if value is None or value == "":
        raise Refused(missing, f"{name} is not entered.")
    text = str(value)
    if not _AMOUNT.fullmatch(text):
        raise Refused(UNREADABLE, f"{name} must be an integer of at most 9 digits")
    if int(text) < 0:
        raise Refused(negative, f"Negative(-) amount cannot be entered on {name}.")
    return int(text)


def _cashbill_fields(body: Any) -> dict[str, Any]:
    """The Cashbill of an ISSUE, checked as Popbill checks it (codes from its list)."""
    if not isinstance(body, dict):
        raise Refused(UNREADABLE, "the body must be a JSON object")
    mgt_key = body.get("mgtKey")
    if not isinstance(mgt_key, str) or not _MGT_KEY.fullmatch(mgt_key):
        raise Refused(UNREADABLE, "mgtKey: 1 to 24 letters, digits, '-' or '_'")
    if not body.get("tradeType"):
        raise Refused(-14001017, "Document type(approved/revocation) is not entered.")
    if body.get("tradeUsage") not in USAGES:
        raise Refused(
            -14001018, "Issuance purpose(tax deduction/proof of purchase) is not entered."
        )
    amounts = {k: _amount(body, k) for k in AMOUNT_CODES}
    if amounts["totalAmount"] <= 0:
        raise Refused(AMOUNT_CODES["totalAmount"][0], "totalAmount must be positive")
    fields = dict(body)
    fields.update({k: str(v) for k, v in amounts.items()})
    return fields


def _check_member(value: str) -> str:
    try:
        return normalize_brn(value)
    except ReceiptError as exc:
        raise ValueError(exc.message) from None


# ---------------------------------------------------------------- HTTP
def blueprint(state: SandboxState) -> Blueprint:
    bp = Blueprint(NAME, __name__)
    book = state.popbill

    def now() -> datetime:
        return datetime.now(UTC)

    def guarded(handler: Any) -> Response:
        try:
            return handler()
        except Refused as refusal:
            return error_answer(refusal.code, refusal.message, refusal.status)

    @bp.post("/auth/<service_id>/Token")
    def token(service_id: str) -> Response:
        if service_id not in SERVICES:
            return error_answer(TOKEN_FAILED, "unknown ServiceID", 404)
        h = request.headers
        return guarded(
            lambda: ok_answer(
                book.grant(
                    service_id,
                    h.get("Authorization", ""),
                    h.get("x-lh-date", ""),
                    h.get("x-lh-version", ""),
                    h.get("x-lh-forwarded"),
                    request.get_data(),
                    now(),
                    request.remote_addr or "",
                )
            )
        )

    def body() -> Any:
        try:
            return json.loads(request.get_data() or b"null")
        except ValueError:
            raise Refused(UNREADABLE, "the body is not JSON") from None

    def issued(receipt: SandboxReceipt) -> Response:
        return ok_answer(
            {
                "code": 1,
                "message": "발행 완료",
                "confirmNum": receipt.confirm_num,
                "tradeDate": receipt.trade_date,
                "tradeDT": receipt.trade_dt,
            }
        )

    @bp.post("/Cashbill")
    def cashbill() -> Response:
        def handle() -> Response:
            holder = book.holder(request.headers.get("Authorization"), now())
            action = request.headers.get("X-HTTP-Method-Override", "")
            if action == "ISSUE":
                return issued(book.issue(holder, body(), now()))
            if action == "REVOKEISSUE":
                return issued(book.revoke(holder, body(), now()))
            raise Refused(UNREADABLE, f"this simulator does not do {action or 'a plain POST'}")

        return guarded(handle)

    @bp.get("/Cashbill/<mgt_key>")
    def get_info(mgt_key: str) -> Response:
        def handle() -> Response:
            holder = book.holder(request.headers.get("Authorization"), now())
            return ok_answer(book.get(holder, mgt_key).info())

        return guarded(handle)

    faults.install(
        bp,
        state,
        NAME,
        {"token": "token", "cashbill": "issue", "get_info": "receipt_query"},
        lambda code, message: error_answer(-int(code), message or "refused"),
    )
    return bp


def control_blueprint(state: SandboxState) -> Blueprint:
    """`/_sandbox/popbill/...`: file receipts to the simulated NTS, list them."""
    bp = Blueprint("sandbox_popbill", __name__)
    book = state.popbill

    @bp.post("/_sandbox/popbill/file")
    def file() -> Any:
        data = request.get_json(silent=True) or {}
        if not isinstance(data, dict):
            return jsonify(error="the body must be a JSON object"), 400
        try:
            filed = book.file(data.get("mgtKey"), int(data.get("stateCode", FILED)))
        except (TypeError, ValueError) as exc:
            return jsonify(error=str(exc)), 400
        return jsonify(filed=[r.mgt_key for r in filed])

    @bp.get("/_sandbox/popbill/receipts")
    def receipts() -> Any:
        return jsonify(
            receipts=[
                {"service": r.service_id, "corpNum": r.corp_num, **r.info()} for r in book.all()
            ]
        )

    return bp


def register(app: Flask, state: SandboxState) -> None:
    for link_id, secret in state.config.popbill_partners.items():
        signing.secret_bytes(secret)  # a bad key fails here, not on the first token
        state.popbill.partners[link_id] = secret
    state.popbill.members.update(_check_member(m) for m in state.config.popbill_members)
    app.register_blueprint(blueprint(state), url_prefix=f"/{NAME}")
    app.register_blueprint(control_blueprint(state))
