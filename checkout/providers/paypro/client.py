"""The PayPro provider: transport, headers and signing around the pure mapping."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

from checkout.domain.ledger import MoneyReporting
from checkout.domain.money import Money
from checkout.providers.base import (
    Ack,
    CreateResult,
    MethodConfig,
    Need,
    PayerRules,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
    after_signature,
)
from checkout.providers.errors import InvalidSignature, MalformedNotify, ProviderError
from checkout.providers.http import ProviderHttp, TransportMessages, parse_json
from checkout.providers.payouts import PayoutUpdate
from checkout.providers.paypro import mapping, payout_mapping, signing

log = logging.getLogger(__name__)

KR_MIN_AGE = 18  # PayPro Korea VA: payer aged 18 to 59
KR_MAX_AGE = 59
RETRYABLE_4XX = (408, 429)
TRANSPORT_MESSAGES = TransportMessages(
    timeout="PayPro did not answer in time",
    unreachable="PayPro unreachable",
    other="{error}",
)


def now_ms() -> int:
    return int(time.time() * 1000)


def signed_notify_fields(body: bytes, secret: str, instance: str) -> dict[str, Any]:
    """A notify's fields (pay-in or payout), parsed once and verified: InvalidSignature or
    MalformedNotify otherwise, naming the trade number the body claims (the inbox's)."""
    try:
        # Decimal keeps numbers' text ("1000.00"), which is what was signed.
        fields = parse_json(body)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep JSON
        raise MalformedNotify(instance, "body is not JSON").claims(None) from exc
    if not isinstance(fields, dict):
        raise MalformedNotify(instance, "body is not a JSON object").claims(fields)
    if not signing.verify(fields, secret, fields.get(signing.SIGN_FIELD)):
        raise InvalidSignature(instance, "bad or missing sign").claims(fields, "tradeNo")
    return fields


class PayProProvider:
    """One configured PayPro instance (Korea paymentLink, Mexico paymentLink or payInApi)."""

    notify_ack = Ack("OK")  # PayPro stops retrying only on this plain-text body
    money_reporting = MoneyReporting.TOTAL  # amount / payAmount: paid for the order

    def __init__(self, config: ProviderConfig) -> None:
        self.config = config
        self.settings = mapping.settings_from_config(config)
        self.currency = self.settings.currency
        self._http = ProviderHttp.for_config(config, messages=TRANSPORT_MESSAGES)

    # ------------------------------------------------------------ shopper rules
    def payer_rules(self, method: MethodConfig) -> PayerRules:
        if self.settings.country == "KR":
            va = mapping.is_kr_va(self.settings, method)
            return PayerRules(
                name=Need.REQUIRED,
                email=Need.REQUIRED,
                mobile=Need.REQUIRED,
                birth_date=Need.REQUIRED if va else Need.HIDDEN,
                mobile_country="KR",
                min_age=KR_MIN_AGE if va else None,
                max_age=KR_MAX_AGE if va else None,
                timezone=self.settings.timezone,
            )
        return PayerRules(
            name=Need.REQUIRED,
            email=Need.OPTIONAL,
            mobile=Need.OPTIONAL,
            birth_date=Need.HIDDEN,
            mobile_country="MX",
            timezone=self.settings.timezone,
        )

    def supports_amount(self, amount: Money) -> bool:
        # PayPro takes whole units only: MXN amounts with centavos cannot be sent.
        return amount.currency == self.currency and amount.amount > 0 and amount.is_whole()

    def refusal_created_nothing(self, code: str, message: str) -> bool:
        return mapping.refusal_created_nothing(code)

    # ------------------------------------------------------------ calls
    def create_payment(self, request: PaymentRequest) -> CreateResult:
        if not self.supports_amount(request.amount):
            raise ProviderError(
                self.config.name,
                "unsupported_amount",
                f"PayPro {self.settings.country} cannot take {request.amount}",
            )
        body = mapping.create_body(self.settings, request, now_ms())
        payload = self._post(mapping.PATHS[self.settings.api], body)
        result = mapping.create_result(self.settings, request, payload)
        log.info(
            "paypro create instance=%s trade_no=%s status=%s platform_trade_no=%s",
            self.config.name,
            request.trade_no,
            result.provider_status,
            result.platform_trade_no,
        )
        return result

    def query_payment(self, trade_no: str, platform_trade_no: str | None) -> PaymentUpdate:
        # PayPro queries by our tradeNo only; platform_trade_no is not part of the call.
        payload = self._post(mapping.QUERY_PATH, mapping.query_body(trade_no, now_ms()))
        return mapping.query_update(self.settings, trade_no, payload)

    def claimed_trade_no(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return mapping.claimed_trade_no(body)

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentUpdate:
        name = self.config.name
        fields = signed_notify_fields(body, self.settings.app_secret, name)
        return after_signature(lambda: mapping.notify_update(fields, self.currency, name))

    def parse_shared_notify(
        self, headers: Mapping[str, str], body: bytes
    ) -> PaymentUpdate | PayoutUpdate:
        """PayPro's one notify URL carries pay-in and payout results (psp-docs Corrections):
        the body is read and verified once, then mapped as what its verified `tradeNo` is
        (our payout numbers start with `PO`, trade numbers with a digit)."""
        name = self.config.name
        fields = signed_notify_fields(body, self.settings.app_secret, name)
        if payout_mapping.is_payout_trade_no(signing.field_text(fields.get("tradeNo"))):
            return after_signature(
                lambda: payout_mapping.payout_notify_update(fields, self.currency, name)
            )
        return after_signature(lambda: mapping.notify_update(fields, self.currency, name))

    # ------------------------------------------------------------ transport
    def _post(self, path: str, body: Mapping[str, str]) -> Any:
        """Sign and POST `body`; the parsed JSON answer, or ProviderError."""
        signed = dict(body)
        signed[signing.SIGN_FIELD] = signing.sign(body, self.settings.app_secret)
        resp = self._http.request(
            "POST", path, json_body=signed, headers={"merchantNo": self.settings.merchant_no}
        )
        status = resp.status_code
        if status != 200:
            # 5xx, 408 and 429 may pass; other 4xx mean our request or config is wrong.
            raise self._http.status_error(
                resp,
                f"PayPro answered HTTP {status}",
                retryable=status >= 500 or status in RETRYABLE_4XX,
            )
        return self._http.read_json(
            resp, code="invalid_response", message="PayPro answered non-JSON"
        )
