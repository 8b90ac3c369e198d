"""The Diamond Pay provider: transport, signing and error handling around `mapping`."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
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
from checkout.providers.diamondpay import mapping, signing
from checkout.providers.errors import InvalidSignature, MalformedNotify
from checkout.providers.http import ProviderHttp, TransportMessages, decode_json

log = logging.getLogger(__name__)

CLAIMED = "payment_cl_id"  # the key naming the trade (mapping.claimed_trade_no)
CREATE_PATH = "/gateway/api/v2/payments"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"
# Every transport failure (refused, reset, DNS, TLS, ...) is one `connection_error`.
TRANSPORT_MESSAGES = TransportMessages(other_code="connection_error")


class DiamondPayProvider:
    """One Diamond Pay platform (platform_id + key), KRW deposits."""

    currency = mapping.CURRENCY
    notify_ack = Ack('{"error_code": "0000"}', content_type="application/json")
    money_reporting = MoneyReporting.TOTAL  # real_amount: what the order received

    def __init__(
        self,
        config: ProviderConfig,
        *,
        platform_id: str,
        key: str,
        sign_type: str,
        api_token: str,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.platform_id = platform_id
        self._key = key
        self.sign_type = sign_type
        self._api_token = api_token
        self._clock = clock  # request_time; replaceable in tests
        self._http = ProviderHttp.for_config(
            config, messages=TRANSPORT_MESSAGES, json_content_type=JSON_CONTENT_TYPE
        )

    # ------------------------------------------------------------ shopper rules
    def payer_rules(self, method: MethodConfig) -> PayerRules:
        # Diamond Pay takes no payer data; name and email are for the shop's records.
        return PayerRules(
            name=Need.REQUIRED,
            email=Need.REQUIRED,
            mobile=Need.OPTIONAL,
            birth_date=Need.HIDDEN,
            mobile_country="KR",
            timezone="Asia/Seoul",
        )

    def supports_amount(self, amount: Money) -> bool:
        if amount.currency != self.currency or amount.amount <= 0:
            return False
        return mapping.to_hundredths(amount) <= mapping.MAX_WIRE_AMOUNT

    def refusal_created_nothing(self, code: str, message: str) -> bool:
        return mapping.refusal_created_nothing(code)

    # ------------------------------------------------------------ create
    def create_payment(self, request: PaymentRequest) -> CreateResult:
        body = mapping.create_body(
            request,
            platform_id=self.platform_id,
            service_id=str(request.method.options["service_id"]),
            sign_type=self.sign_type,
            request_time=int(self._clock()),
        )
        body["sign"] = signing.sign(body, self._key, self.sign_type)
        response = self._call("POST", CREATE_PATH, json_body=body)
        result = mapping.create_result(response, request, self.config.name)
        log.info(
            "diamondpay created trade_no=%s payment_id=%s",
            request.trade_no,
            result.platform_trade_no,
        )
        return result

    # ------------------------------------------------------------ notify
    def claimed_trade_no(self, headers: Mapping[str, str], body: bytes) -> str | None:
        return mapping.claimed_trade_no(body)

    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentUpdate:
        name = self.config.name
        try:
            data = mapping.parse_json(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedNotify(name, "body is not JSON").claims(None) from exc
        if not isinstance(data, dict):
            raise MalformedNotify(name, "body is not a JSON object").claims(data)
        # Signature first: nothing in an unsigned body is trusted, not even its shape.
        if not signing.verify(data, self._key, self.sign_type):
            raise InvalidSignature(
                name, f"signature does not match ({self.sign_type} only)"
            ).claims(data, CLAIMED)
        if data.get("platform_id") != self.platform_id:
            raise InvalidSignature(name, "notify is for another platform_id").claims(data, CLAIMED)
        return after_signature(lambda: mapping.notify_update(data, name))

    # ------------------------------------------------------------ query
    def query_payment(self, trade_no: str, platform_trade_no: str | None) -> PaymentUpdate:
        response = self._call(
            "GET", mapping.query_path(trade_no), headers={"Authorization": self._api_token}
        )
        return mapping.query_update(response, trade_no, self.config.name)

    # ------------------------------------------------------------ transport
    def _call(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Mapping[str, Any]:
        """One HTTP call; answers the parsed JSON object or raises ProviderError."""
        resp = self._http.request(method, path, json_body=json_body, headers=headers)
        if resp.status_code >= 500:
            raise self._http.status_error(resp, f"{method} {path} answered HTTP {resp.status_code}")
        parsed = decode_json(resp)
        if not isinstance(parsed, dict) or "error_code" not in parsed:
            # HTML error pages, proxies, truncated bodies: not Diamond Pay's word.
            code = "bad_response" if resp.ok else f"http_{resp.status_code}"
            raise self._http.error(
                resp,
                code,
                f"{method} {path} answered HTTP {resp.status_code} without a Diamond Pay body",
            )
        return parsed
