"""The provider types, registered once: one ProviderSpec each (checkout/providers/spec.py).

Adding a provider is its package providers/<type>/ (whose `SPEC` says everything the rest of
the app needs), its simulator sandbox/<type>.py, and one line in SPECS below.
"""

from __future__ import annotations

from checkout.providers import diamondpay, paypro, teemopay
from checkout.providers.base import PaymentProvider, ProviderConfig
from checkout.providers.payouts import PayoutProvider
from checkout.providers.spec import DEFAULT_HOLDER_NAME_MAX, DEFAULT_TIMEZONE, ProviderSpec

SPECS: dict[str, ProviderSpec] = {s.type: s for s in (paypro.SPEC, teemopay.SPEC, diamondpay.SPEC)}
PROVIDER_TYPES = tuple(SPECS)


def spec_of(provider_type: str) -> ProviderSpec:
    """The spec of a provider type; ValueError for a type no package registers."""
    try:
        return SPECS[provider_type]
    except KeyError:
        raise ValueError(
            f"unknown provider type {provider_type!r} (expected one of {', '.join(SPECS)})"
        ) from None


def holder_name_max_of(provider_type: str) -> int:
    """The longest account holder name the type's payouts take."""
    spec = SPECS.get(provider_type)
    return spec.holder_name_max if spec is not None else DEFAULT_HOLDER_NAME_MAX


def timezone_of(config: ProviderConfig) -> str:
    """Where an instance's day starts (the spec's; the default zone for a type no package
    registers, such as a test's fake)."""
    spec = SPECS.get(config.type)
    return spec.timezone(config) if spec is not None else DEFAULT_TIMEZONE


def build_provider(config: ProviderConfig) -> PaymentProvider:
    try:
        spec = SPECS[config.type]
    except KeyError:
        raise ValueError(
            f"provider {config.name!r}: unknown type {config.type!r} "
            f"(expected one of {', '.join(PROVIDER_TYPES)})"
        ) from None
    return spec.build(config)


def payouts_of(provider: PaymentProvider) -> PayoutProvider:
    """The payout side of a built instance, on its transport."""
    return spec_of(provider.config.type).payouts(provider)


def build_payout_provider(config: ProviderConfig) -> PayoutProvider:
    """The payout side of a configured instance, with a pay-in client of its own (tools and
    tests; the app builds both once, checkout/services/catalog.py)."""
    return payouts_of(build_provider(config))
