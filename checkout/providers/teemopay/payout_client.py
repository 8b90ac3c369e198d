"""TeemoPay Korea payouts: transport and signing around `payout_mapping`.

The signed POST, its headers and its error handling are the pay-in client's (one
`TeemoPayProvider` per instance), so both sides of an instance sign and refuse alike.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from checkout.providers.base import Ack, ProviderConfig, after_signature
from checkout.providers.errors import InvalidSignature, MalformedNotify, ProviderError
from checkout.providers.payouts import (
    Balance,
    Bank,
    NotifyKind,
    PayoutRequest,
    PayoutResult,
    PayoutUpdate,
)
from checkout.providers.teemopay import mapping, payout_mapping, signing
from checkout.providers.teemopay.client import TeemoPayProvider

log = logging.getLogger(__name__)


class TeemoPayPayouts:
    """The payout side of one TeemoPay instance (same app_code, keys and headers)."""

    currency = mapping.CURRENCY
    notify_ack = Ack("SUCCESS")  # upper case, plain text [doc]

    def __init__(self, provider: TeemoPayProvider) -> None:
        self.config: ProviderConfig = provider.config
        self._provider = provider

    def create_payout(self, request: PayoutRequest) -> PayoutResult:
        name = self.config.name
        body = payout_mapping.payout_body(request, name)
        answer = self._post(payout_mapping.PAYOUT_PATH, body)
        result = payout_mapping.payout_result(answer, request, name)
        log.info(
            "teemopay payout instance=%s payout_no=%s status=%s to=%s",
            name,
            request.payout_no,
            result.status,
            request.destination.masked(),
        )
        return result

    def query_payout(self, payout_no: str) -> PayoutUpdate:
        answer = self._post(
            payout_mapping.PAYOUT_QUERY_PATH, payout_mapping.payout_query_body(payout_no)
        )
        return payout_mapping.payout_query_update(answer, payout_no, self.config.name)

    def balance(self) -> Balance:
        # No business fields: the string to sign is just `nonce=<nonce>` (inferred in
        # signing.string_to_sign's rule; more/teemopay.md section 1).
        answer = self._post(payout_mapping.BALANCE_PATH, {})
        return payout_mapping.balance_from(answer, self.config.name)

    def banks(self) -> tuple[Bank, ...]:
        return payout_mapping.KOREA_PAYOUT_BANKS

    def notify_kind(self, headers: Mapping[str, str], body: bytes) -> NotifyKind:
        return payout_mapping.notify_kind(body)

    def parse_payout_notify(self, headers: Mapping[str, str], body: bytes) -> PayoutUpdate:
        name = self.config.name
        lowered = {str(k).lower(): v for k, v in headers.items()}
        try:
            data = mapping.parse_json(body)
        except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep JSON
            raise MalformedNotify(name, "callback body is not JSON") from exc
        if not isinstance(data, dict):
            raise MalformedNotify(name, "callback body is not a JSON object")
        if lowered.get("appcode") != self._provider.app_code:
            raise InvalidSignature(name, "callback for another appCode")
        signature = data.get(signing.SIGN_FIELD)
        if not isinstance(signature, str) or not signature:
            raise InvalidSignature(name, "callback without sign")
        public_key = self._provider._platform_public_key  # same package
        if not signing.verify(data, lowered.get("nonce") or "", signature, public_key):
            raise InvalidSignature(name, "callback signature does not verify")
        return after_signature(lambda: payout_mapping.payout_notify_update(data, name))

    def _post(self, path: str, body: dict[str, object]) -> object:
        try:
            return self._provider._post(path, body)  # same package
        except ProviderError as exc:
            raise payout_mapping.payout_error(exc) from exc
