"""Diamond Pay payouts: transport and signing around `payout_mapping`.

The transport (one session, timeouts, HTTP-status handling) is the deposit client's,
so both sides of a platform answer errors alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from checkout.providers.base import Ack, ProviderConfig, after_signature
from checkout.providers.diamondpay import mapping, payout_mapping, signing
from checkout.providers.diamondpay.client import DiamondPayProvider
from checkout.providers.errors import InvalidSignature, MalformedNotify
from checkout.providers.payouts import (
    Balance,
    Bank,
    NotifyKind,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
    configured_banks,
)

log = logging.getLogger(__name__)


class DiamondPayPayouts:
    """The payout side of one Diamond Pay platform.

    `settings.payout_banks` (optional, code -> name) is the bank list: Diamond Pay's Korea
    bank codes were not found (more/diamondpay.md section 9).
    """

    currency = mapping.CURRENCY
    notify_ack = Ack('{"error_code": "0000"}', content_type="application/json")

    def __init__(self, provider: DiamondPayProvider) -> None:
        self.config: ProviderConfig = provider.config
        self._provider = provider
        self._banks = configured_banks(provider.config)

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        p = self._provider
        body = payout_mapping.payout_body(
            request,
            platform_id=p.platform_id,
            sign_type=p.sign_type,
            request_time=int(p._clock()),  # same package
            instance=self.config.name,
        )
        body["sign"] = signing.sign(body, p._key, p.sign_type)  # same package
        response = p._call("POST", payout_mapping.PAYOUT_PATH, json_body=body)
        result = payout_mapping.payout_result(response, request, self.config.name)
        log.info(
            "diamondpay payout instance=%s payout_no=%s payout_id=%s to=%s",
            self.config.name,
            request.payout_no,
            result.platform_payout_no,
            request.destination.masked(),
        )
        return result

    def query_payout(self, payout_no: str) -> PayoutUpdate:
        response = self._get(payout_mapping.payout_query_path(payout_no))
        return payout_mapping.payout_query_update(response, payout_no, self.config.name)

    def balance(self) -> Balance:
        response = self._get(payout_mapping.BALANCE_PATH)
        return payout_mapping.balance_from(response, self.config.name)

    def banks(self) -> tuple[Bank, ...] | None:
        return self._banks

    def notify_kind(self, headers: Mapping[str, str], body: bytes) -> NotifyKind:
        return payout_mapping.notify_kind(body)

    def parse_payout_notify(self, headers: Mapping[str, str], body: bytes) -> PayoutUpdate:
        name = self.config.name
        p = self._provider
        try:
            data = mapping.parse_json(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep JSON
            raise MalformedNotify(name, "body is not JSON") from exc
        if not isinstance(data, dict):
            raise MalformedNotify(name, "body is not a JSON object")
        # Only the configured sign type verifies: an HMAC platform refuses MD5 (no downgrade).
        if not signing.verify(data, p._key, p.sign_type):  # same package
            raise InvalidSignature(name, "signature does not match")
        if data.get("platform_id") != p.platform_id:
            raise InvalidSignature(name, "notify is for another platform_id")
        return after_signature(lambda: payout_mapping.payout_notify_update(data, name))

    def _get(self, path: str) -> Mapping[str, object]:
        return self._provider._call(
            "GET", path, headers={"Authorization": self._provider._api_token}
        )
