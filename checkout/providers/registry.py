"""Builds provider instances from their configuration."""

from __future__ import annotations

from collections.abc import Callable

from checkout.providers.base import PaymentProvider, ProviderConfig
from checkout.providers.payouts import PayoutProvider


def _builders() -> dict[str, Callable[[ProviderConfig], PaymentProvider]]:
    from checkout.providers import diamondpay, paypro, teemopay

    return {"paypro": paypro.build, "teemopay": teemopay.build, "diamondpay": diamondpay.build}


PROVIDER_TYPES = ("paypro", "teemopay", "diamondpay")


def build_provider(config: ProviderConfig) -> PaymentProvider:
    try:
        builder = _builders()[config.type]
    except KeyError:
        raise ValueError(
            f"provider {config.name!r}: unknown type {config.type!r} "
            f"(expected one of {', '.join(PROVIDER_TYPES)})"
        ) from None
    return builder(config)


def build_payout_provider(config: ProviderConfig) -> PayoutProvider:
    """The payout side of a configured instance (checkout.providers.payouts)."""
    from checkout.providers.diamondpay.payout_client import DiamondPayPayouts
    from checkout.providers.paypro.payout_client import PayProPayouts
    from checkout.providers.teemopay.payout_client import TeemoPayPayouts

    builders: dict[str, Callable[[ProviderConfig], PayoutProvider]] = {
        "paypro": PayProPayouts,
        "teemopay": TeemoPayPayouts.from_config,
        "diamondpay": DiamondPayPayouts.from_config,
    }
    try:
        builder = builders[config.type]
    except KeyError:
        raise ValueError(f"provider {config.name!r}: no payouts for type {config.type!r}") from None
    return builder(config)
