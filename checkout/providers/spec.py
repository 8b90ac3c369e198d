"""What the rest of the app knows about a provider type: one ProviderSpec per type.

Each provider package defines its `SPEC` in its `__init__.py`; `providers/registry.py` lists
them, once. Nothing outside `providers/<type>/` and `sandbox/<type>.py` switches on a
provider type: config, the app, the services and the sandbox ask the spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from checkout.providers.base import PaymentProvider, ProviderConfig
from checkout.providers.payouts import PayoutProvider

DEFAULT_HOLDER_NAME_MAX = 40
DEFAULT_TIMEZONE = "Asia/Seoul"


def _same_bank_code(currency: str, bank_code: str) -> str:
    return bank_code


def _default_timezone(config: ProviderConfig) -> str:
    return DEFAULT_TIMEZONE


def _no_method_kind(_options: Mapping[str, Any]) -> str | None:
    return None


@dataclass(frozen=True)
class ProviderSpec:
    type: str  # the `type` of a [providers.<name>] table, e.g. "paypro"
    # The pay-in client of a configured instance; ValueError names a bad setting or option.
    build: Callable[[ProviderConfig], PaymentProvider]
    # The payout client of an instance, built on its pay-in client: one transport (HTTP
    # session, timeouts, signing keys) per instance for both.
    payouts: Callable[[PaymentProvider], PayoutProvider]
    # Settings a [providers.<name>] table must give (config.py names the missing ones).
    required_settings: tuple[str, ...]
    # The module serving this provider's simulator (sandbox/<type>.py): a name, so the
    # providers never import the sandbox.
    sandbox_module: str
    # The provider as its own pages name it to a shopper ("Continue at PayPro").
    display_name: str = ""
    # How the form groups a method whose config names no `kind`, read from this provider's
    # own option keys: "ewallet", "bank_transfer" or "cash"; None: no guess (bank transfer).
    method_kind: Callable[[Mapping[str, Any]], str | None] = _no_method_kind
    # True when pay-in and payout notifies arrive at one URL (/notify/<instance>), so a
    # notify there is routed by its body; otherwise payouts come to /notify/<instance>/payout.
    shared_notify_url: bool = False
    # The longest account holder name the provider's payouts take.
    holder_name_max: int = DEFAULT_HOLDER_NAME_MAX
    # True when the provider limits payments per payer IP and day (services/ip_limits.py):
    # every instance of the type counts, as they share the provider's view of the IP.
    per_ip_daily_rule: bool = False
    # Where an instance's day starts (the per-IP rule's day, shown reset times).
    timezone: Callable[[ProviderConfig], str] = _default_timezone
    # The bank code the payout request carries for an account's (currency, bank code).
    payout_bank_code: Callable[[str, str], str] = _same_bank_code
    # Test twins of a live deployment (config.py): the setting naming the merchant (twins
    # of one merchant share one simulator account), the settings that are secrets (each
    # twin gets its own, derived), and key files every twin shares (setting -> file name,
    # under <instance>/sandbox-twin-keys/<type>/).
    twin_identity: str = ""
    twin_secrets: tuple[str, ...] = ()
    twin_key_files: Mapping[str, str] = field(default_factory=dict)
