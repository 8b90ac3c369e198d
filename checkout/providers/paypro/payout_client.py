"""PayPro payouts: transport and signing around `payout_mapping` (Korea and Mexico)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from checkout.providers.base import Ack, ProviderConfig, after_signature
from checkout.providers.payouts import (
    Balance,
    Bank,
    NotifyKind,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
    configured_banks,
)
from checkout.providers.paypro import payout_mapping, signing
from checkout.providers.paypro.client import (
    RETRYABLE_4XX,
    PayProProvider,
    now_ms,
    signed_notify_fields,
)

log = logging.getLogger(__name__)


class PayProPayouts:
    """The payout side of one configured PayPro instance.

    `settings.payout_banks` (optional, a table of bank code -> name) is the bank list:
    PayPro's "Disbursement Bank Codes" page was not found (more/paypro.md section 0).
    """

    notify_ack = Ack("OK")  # the same plain-text OK as pay-in notifies [doc]

    def __init__(self, provider: PayProProvider) -> None:
        self.config: ProviderConfig = provider.config
        self.settings = provider.settings
        self.currency = self.settings.currency
        self._banks = configured_banks(provider.config)
        # The pay-in client's transport: one session and one set of timeouts per instance.
        self._http = provider._http  # same package

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        body = payout_mapping.payout_body(self.settings, request, now_ms())
        payload = self._post(payout_mapping.PAYOUT_PATH, body)
        result = payout_mapping.payout_result(self.settings, request, payload)
        log.info(
            "paypro payout instance=%s payout_no=%s status=%s to=%s",
            self.config.name,
            request.payout_no,
            result.status,
            request.destination.masked(),
        )
        return result

    def query_payout(self, payout_no: str) -> PayoutUpdate:
        payload = self._post(
            payout_mapping.PAYOUT_QUERY_PATH, payout_mapping.payout_query_body(payout_no, now_ms())
        )
        return payout_mapping.payout_query_update(self.settings, payout_no, payload)

    def balance(self) -> Balance:
        payload = self._post(payout_mapping.BALANCE_PATH, payout_mapping.balance_body(now_ms()))
        return payout_mapping.balance_from(self.settings, payload)

    def banks(self) -> tuple[Bank, ...] | None:
        return self._banks

    def notify_kind(self, headers: Mapping[str, str], body: bytes) -> NotifyKind:
        return payout_mapping.notify_kind(body)

    def parse_payout_notify(self, headers: Mapping[str, str], body: bytes) -> PayoutUpdate:
        name = self.config.name
        fields = signed_notify_fields(body, self.settings.app_secret, name)
        return after_signature(
            lambda: payout_mapping.payout_notify_update(fields, self.currency, name)
        )

    def _post(self, path: str, body: Mapping[str, Any]) -> Any:
        """Sign and POST `body` with the `merchantNo` header; the parsed JSON answer."""
        signed = dict(body)
        signed[signing.SIGN_FIELD] = signing.sign(body, self.settings.app_secret)
        resp = self._http.request(
            "POST", path, json_body=signed, headers={"merchantNo": self.settings.merchant_no}
        )
        status = resp.status_code
        if status != 200:
            raise self._http.status_error(
                resp,
                f"PayPro answered HTTP {status}",
                retryable=status >= 500 or status in RETRYABLE_4XX,
            )
        return self._http.read_json(
            resp, code="invalid_response", message="PayPro answered non-JSON"
        )
