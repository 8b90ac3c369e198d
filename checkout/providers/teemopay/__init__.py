"""TeemoPay Korea: virtual account pay-in (paymentType 801), SHA1withRSA signatures."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from cryptography.exceptions import UnsupportedAlgorithm

from checkout.providers.base import ProviderConfig
from checkout.providers.spec import ProviderSpec
from checkout.providers.teemopay import mapping, signing
from checkout.providers.teemopay.client import TeemoPayProvider
from checkout.providers.teemopay.payout_client import TeemoPayPayouts

__all__ = ["SPEC", "TeemoPayProvider", "build"]

SUPPORTED_COUNTRIES = ("KR",)  # KRW is the only currency this package maps
# The inbox flags a callback whose header timestamp is further than this from its arrival.
DEFAULT_CALLBACK_MAX_AGE = 300

_Key = TypeVar("_Key")


def _required_text(config: ProviderConfig, key: str) -> str:
    value = config.settings.get(key)
    if value is None or not str(value).strip():
        raise ValueError(f"provider {config.name!r} (teemopay): settings.{key} is required")
    return str(value).strip()


def _load_key(config: ProviderConfig, key: str, loader: Callable[[bytes], _Key]) -> _Key:
    """Read a PEM key once, at build time, so a bad file fails at start-up, not at pay time."""
    path = Path(_required_text(config, key))
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ValueError(
            f"provider {config.name!r} (teemopay): settings.{key} = {str(path)!r} "
            f"cannot be read ({exc.strerror or type(exc).__name__})"
        ) from exc
    try:
        return loader(pem)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        # Never echo the key material itself, only what is wrong with it.
        raise ValueError(
            f"provider {config.name!r} (teemopay): settings.{key} = {str(path)!r} "
            f"is not a usable RSA PEM key ({type(exc).__name__})"
        ) from exc


def _payment_type(config: ProviderConfig, code: str, options: Any) -> int:
    raw = options.get("payment_type", mapping.PAYMENT_TYPE_VA)
    try:
        value = int(raw)
    except (TypeError, ValueError):
        value = None
    if isinstance(raw, bool) or value not in mapping.SUPPORTED_PAYMENT_TYPES:
        raise ValueError(
            f"provider {config.name!r} (teemopay): method {code!r} has payment_type {raw!r}; "
            f"supported: {', '.join(str(t) for t in sorted(mapping.SUPPORTED_PAYMENT_TYPES))}"
        )
    return int(raw)


def build(config: ProviderConfig) -> TeemoPayProvider:
    """Validate the settings and method options, load both keys, return the provider."""
    app_code = _required_text(config, "app_code")
    merchant_name = _required_text(config, "merchant_name")
    country = str(config.settings.get("country") or "KR").strip().upper()
    if country not in SUPPORTED_COUNTRIES:
        raise ValueError(
            f"provider {config.name!r} (teemopay): settings.country {country!r} is not "
            f"supported (expected {', '.join(SUPPORTED_COUNTRIES)})"
        )
    private_key = _load_key(config, "private_key_file", signing.load_private_key)
    platform_public_key = _load_key(config, "platform_public_key_file", signing.load_public_key)
    payment_types = {m.code: _payment_type(config, m.code, m.options) for m in config.methods}
    max_age = config.settings.get("callback_max_age_seconds", DEFAULT_CALLBACK_MAX_AGE)
    if isinstance(max_age, bool) or not isinstance(max_age, int) or max_age <= 0:
        raise ValueError(
            f"provider {config.name!r} (teemopay): settings.callback_max_age_seconds must be "
            f"a positive number of seconds, got {max_age!r}"
        )
    return TeemoPayProvider(
        config,
        app_code=app_code,
        merchant_name=merchant_name,
        country=country,
        private_key=private_key,
        platform_public_key=platform_public_key,
        payment_types=payment_types,
        callback_max_age=max_age,
    )


SPEC = ProviderSpec(
    type="teemopay",
    display_name="TeemoPay",
    build=build,
    payouts=TeemoPayPayouts,  # type: ignore[arg-type]
    required_settings=("app_code", "merchant_name", "private_key_file", "platform_public_key_file"),
    sandbox_module="checkout.sandbox.teemopay",
    holder_name_max=40,  # payout `realName` 40 [doc] (more/teemopay.md section 9.1)
    twin_identity="app_code",
    # One key pair for every TeemoPay twin: the simulator has one platform key.
    twin_key_files={
        "private_key_file": "merchant_private.pem",
        "platform_public_key_file": "teemopay_public.pem",
    },
)
