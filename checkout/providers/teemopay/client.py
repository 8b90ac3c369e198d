"""The TeemoPay provider: transport, headers and signatures around the pure mapping."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric import rsa

from checkout.domain.errors import MoneyError
from checkout.domain.ledger import MoneyReporting
from checkout.domain.money import Money
from checkout.providers.base import (
    Ack,
    CreateResult,
    MethodConfig,
    Need,
    NotifyFreshness,
    PayerRules,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
    after_signature,
)
from checkout.providers.errors import InvalidSignature, MalformedNotify, ProviderError
from checkout.providers.http import ProviderHttp, TransportMessages, decode_json
from checkout.providers.teemopay import mapping, signing

log = logging.getLogger(__name__)

CLAIMED = "merchantOrderNo"  # the key naming the trade (mapping.claimed_trade_no)
CREATE_PATH = "/api/pay/payment/create/v1"
QUERY_PATH = "/api/pay/payment/query/v1"
TRANSPORT_MESSAGES = TransportMessages(
    timeout="no answer from {path}",
    unreachable="cannot reach {path}",
    other="{error}",
)


def new_nonce() -> str:
    """32 characters, fresh per call (TeemoPay refuses a nonce seen in the last 24 h)."""
    return secrets.token_hex(16)


def timestamp_ms() -> str:
    return str(int(time.time() * 1000))


def ascii_json(body: Any) -> bytes:
    # The bytes `requests`' json= produced before the shared transport: kept so
    # TeemoPay receives exactly what it did (escaped non-ASCII, default spacing).
    return json.dumps(body, allow_nan=False).encode("utf-8")


def header_time(value: str | None) -> datetime | None:
    """A `timestamp` header (Unix milliseconds, 13 digits) as an aware UTC time; None for
    anything else (absent, not digits, out of any plausible range)."""
    if not value or not value.isascii() or not value.isdigit() or len(value) > 15:
        return None
    try:
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    except (OverflowError, OSError, ValueError):
        return None


class TeemoPayProvider:
    """TeemoPay Korea, virtual account (paymentType 801)."""

    currency = mapping.CURRENCY
    notify_ack = Ack("SUCCESS")  # exactly this, upper case, or TeemoPay retries
    # One callback per transfer into the VA (paymentOrderNo, paymentAmount): Corrections.
    money_reporting = MoneyReporting.TRANSFERS

    def __init__(
        self,
        config: ProviderConfig,
        *,
        app_code: str,
        merchant_name: str,
        country: str,
        private_key: rsa.RSAPrivateKey,
        platform_public_key: rsa.RSAPublicKey,
        payment_types: Mapping[str, int],
        callback_max_age: int = 300,
    ) -> None:
        self.config = config
        # Seconds a callback's header timestamp may be from its arrival before the inbox
        # flags it (it is not signed: a flag for operators, never a reason to drop money).
        self.callback_max_age = callback_max_age
        self.app_code = app_code
        self.merchant_name = merchant_name
        self.country = country
        self._private_key = private_key
        self._platform_public_key = platform_public_key
        self._payment_types = dict(payment_types)  # method code -> paymentType
        self._http = ProviderHttp.for_config(
            config, messages=TRANSPORT_MESSAGES, encode_json=ascii_json
        )

    # ------------------------------------------------------------ shopper rules
    def payer_rules(self, method: MethodConfig) -> PayerRules:
        # realName: at most 20 letters or Korean characters; phone optional, 010 + 8 digits.
        return PayerRules(
            name=Need.REQUIRED,
            email=Need.OPTIONAL,
            mobile=Need.OPTIONAL,
            birth_date=Need.HIDDEN,
            mobile_country="KR",
            name_max_length=20,
            name_letters_only=True,
            timezone="Asia/Seoul",
        )

    def supports_amount(self, amount: Money) -> bool:
        return amount.currency == self.currency and amount.amount > 0 and amount.is_whole()

    def refusal_created_nothing(self, code: str, message: str) -> bool:
        return mapping.refusal_created_nothing(code, message)

    # ------------------------------------------------------------ calls
    def create_payment(self, request: PaymentRequest) -> CreateResult:
        name = self.config.name
        payment_type = self._payment_types.get(request.method.code, mapping.PAYMENT_TYPE_VA)
        try:
            body = mapping.build_create_body(
                request,
                merchant_name=self.merchant_name,
                payment_type=payment_type,
                now=datetime.now(UTC),
            )
        except mapping.ExpiredRequest as exc:
            raise ProviderError(name, "expired", str(exc)) from exc
        except MoneyError as exc:  # not whole KRW: supports_amount should have said so
            raise ProviderError(name, "unsupported_amount", str(exc)) from exc
        answer = self._post(CREATE_PATH, body)
        return mapping.parse_create_response(answer, name)

    def query_payment(self, trade_no: str, platform_trade_no: str | None) -> PaymentUpdate:
        # TeemoPay queries by our order number only; platform_trade_no is not needed.
        answer = self._post(QUERY_PATH, mapping.build_query_body(trade_no))
        return mapping.parse_query_response(answer, trade_no, self.config.name)

    def claimed_trade_no(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return mapping.claimed_trade_no(body)

    def notify_freshness(self, headers: Mapping[str, str]) -> NotifyFreshness:
        """The callback's `timestamp` (13-digit ms) and `nonce` headers, as received."""
        lowered = {str(k).lower(): str(v) for k, v in headers.items()}
        return NotifyFreshness(
            sent_at=header_time(lowered.get("timestamp")),
            nonce=(lowered.get("nonce") or "").replace("\x00", "")[:64] or None,
        )

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentUpdate:
        name = self.config.name
        lowered = {str(k).lower(): v for k, v in headers.items()}
        try:
            data = mapping.parse_json(body)
        except ValueError as exc:
            raise MalformedNotify(name, "callback body is not JSON").claims(None) from exc
        if not isinstance(data, dict):
            raise MalformedNotify(name, "callback body is not a JSON object").claims(data)
        # The callback names the app `appCode` (camelCase), unlike our `app_code`.
        if lowered.get("appcode") != self.app_code:
            raise InvalidSignature(name, "callback for another appCode").claims(data, CLAIMED)
        nonce = lowered.get("nonce") or ""
        signature = data.get(signing.SIGN_FIELD)
        if not isinstance(signature, str) or not signature:
            raise InvalidSignature(name, "callback without sign").claims(data, CLAIMED)
        if not signing.verify(data, nonce, signature, self._platform_public_key):
            raise InvalidSignature(name, "callback signature does not verify").claims(data, CLAIMED)
        return after_signature(lambda: mapping.parse_notify_body(data, name))

    # ------------------------------------------------------------ transport
    def _headers(self, nonce: str) -> dict[str, str]:
        return {
            "timestamp": timestamp_ms(),
            "nonce": nonce,
            "country": self.country,
            "app_code": self.app_code,
        }

    def _post(self, path: str, body: dict[str, Any]) -> Any:
        """Sign and send `body`; return the decoded answer or raise ProviderError."""
        nonce = new_nonce()
        signed = {**body, signing.SIGN_FIELD: signing.sign(body, nonce, self._private_key)}
        resp = self._http.request("POST", path, json_body=signed, headers=self._headers(nonce))
        answer = decode_json(resp)
        if resp.status_code != 200:
            # A JSON refusal is a business answer whatever the HTTP status; anything
            # else (a proxy's HTML page, an empty 502) is a transport fault.
            if (
                isinstance(answer, Mapping)
                and "msg" in answer
                and str(answer.get("code")) != mapping.SUCCESS_CODE
            ):
                raise mapping.error_for(
                    answer["code"], str(answer["msg"] or ""), resp.status_code, self.config.name
                )
            raise self._http.status_error(resp, f"HTTP {resp.status_code} from {path}")
        if answer is None:
            raise self._http.error(resp, "bad_response", f"unreadable answer from {path}")
        log.debug("teemopay %s answered code=%s", path, _outer_code(answer))
        return answer


def _outer_code(answer: Any) -> Any:
    return answer.get("code") if isinstance(answer, Mapping) else None
