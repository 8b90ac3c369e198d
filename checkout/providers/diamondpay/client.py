"""The Diamond Pay provider: transport, signing and error handling around `mapping`."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from checkout.domain.money import Money
from checkout.providers.base import (
    Ack,
    CreateResult,
    InvalidSignature,
    MalformedNotify,
    MethodConfig,
    Need,
    PayerRules,
    PaymentRequest,
    PaymentUpdate,
    ProviderConfig,
    ProviderError,
    ProviderTimeout,
)
from checkout.providers.diamondpay import mapping, signing

log = logging.getLogger(__name__)

CREATE_PATH = "/gateway/api/v2/payments"
JSON_CONTENT_TYPE = "application/json;charset=utf-8"


class DiamondPayProvider:
    """One Diamond Pay platform (platform_id + key), KRW deposits."""

    currency = mapping.CURRENCY
    notify_ack = Ack('{"error_code": "0000"}', content_type="application/json")

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
        self._session = requests.Session()
        self._base_url = config.base_url.rstrip("/")
        self._timeout = (config.connect_timeout, config.read_timeout)

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
    def parse_notify(self, headers: Mapping[str, str], body: bytes) -> PaymentUpdate:
        name = self.config.name
        try:
            data = mapping.parse_json(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise MalformedNotify(name, "body is not JSON") from exc
        if not isinstance(data, dict):
            raise MalformedNotify(name, "body is not a JSON object")
        # Signature first: nothing in an unsigned body is trusted, not even its shape.
        if not signing.verify(data, self._key):
            raise InvalidSignature(name, "signature does not match")
        if data.get("platform_id") != self.platform_id:
            raise InvalidSignature(name, "notify is for another platform_id")
        return mapping.notify_update(data, name)

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
        name = self.config.name
        send_headers = {"Accept": "application/json", **(headers or {})}
        data: bytes | None = None
        if json_body is not None:
            send_headers["Content-Type"] = JSON_CONTENT_TYPE
            data = json.dumps(json_body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            resp = self._session.request(
                method,
                self._base_url + path,
                data=data,
                headers=send_headers,
                timeout=self._timeout,
            )
        except requests.Timeout as exc:
            raise ProviderTimeout(
                name, "timeout", f"{method} {path} timed out", retryable=True
            ) from exc
        except requests.RequestException as exc:
            # Refused, reset, DNS or TLS failures: transport, not a business answer.
            raise ProviderError(
                name, "connection_error", f"{method} {path}: {type(exc).__name__}", retryable=True
            ) from exc
        if resp.status_code >= 500:
            raise ProviderError(
                name,
                f"http_{resp.status_code}",
                f"{method} {path} answered HTTP {resp.status_code}",
                retryable=True,
                http_status=resp.status_code,
            )
        try:
            parsed = mapping.parse_json(resp.content)
        except (ValueError, UnicodeDecodeError):
            parsed = None
        if not isinstance(parsed, dict) or "error_code" not in parsed:
            # HTML error pages, proxies, truncated bodies: not Diamond Pay's word.
            code = "bad_response" if resp.ok else f"http_{resp.status_code}"
            raise ProviderError(
                name,
                code,
                f"{method} {path} answered HTTP {resp.status_code} without a Diamond Pay body",
                retryable=True,
                http_status=resp.status_code,
            )
        return parsed
