"""Builds provider instances from their configuration."""

from __future__ import annotations

from collections.abc import Callable

from checkout.providers.base import PaymentProvider, ProviderConfig


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
