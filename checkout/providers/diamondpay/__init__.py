"""Diamond Pay (Korea, KRW deposits): bank card, bank direct and QR code services."""

from __future__ import annotations

from checkout.providers.base import ProviderConfig
from checkout.providers.diamondpay.client import DiamondPayProvider
from checkout.providers.diamondpay.mapping import SERVICE_IDS
from checkout.providers.diamondpay.payout_client import DiamondPayPayouts
from checkout.providers.diamondpay.signing import DEFAULT_SIGN_TYPE, SIGN_TYPES
from checkout.providers.spec import ProviderSpec

__all__ = ["SPEC", "DiamondPayProvider", "build"]

# platform_id is String(6) in Diamond Pay's parameter table.
PLATFORM_ID_MAX = 6


def build(config: ProviderConfig) -> DiamondPayProvider:
    """A provider from its config; ValueError names the instance and the bad key."""
    where = f"provider {config.name!r} (diamondpay)"
    settings = config.settings
    values: dict[str, str] = {}
    for key in ("platform_id", "key", "api_token"):
        value = settings.get(key)
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: settings.{key} is missing or empty")
        values[key] = value  # kept as given: a secret's spaces are part of it
    if len(values["platform_id"]) > PLATFORM_ID_MAX:
        raise ValueError(f"{where}: settings.platform_id is longer than {PLATFORM_ID_MAX}")
    sign_type = settings.get("sign_type") or DEFAULT_SIGN_TYPE
    if not isinstance(sign_type, str) or sign_type.upper() not in SIGN_TYPES:
        raise ValueError(
            f"{where}: settings.sign_type must be one of {', '.join(SIGN_TYPES)}, got {sign_type!r}"
        )
    for method in config.methods:
        service_id = method.options.get("service_id")
        if service_id not in SERVICE_IDS:
            raise ValueError(
                f"{where}: method {method.code!r} needs options.service_id, one of "
                f"{', '.join(SERVICE_IDS)} (got {service_id!r})"
            )
    return DiamondPayProvider(
        config,
        platform_id=values["platform_id"],
        key=values["key"],
        sign_type=sign_type.upper(),
        api_token=values["api_token"],
    )


SPEC = ProviderSpec(
    type="diamondpay",
    display_name="Diamond Pay",
    build=build,
    payouts=DiamondPayPayouts,  # type: ignore[arg-type]
    required_settings=("platform_id", "key", "api_token"),
    sandbox_module="checkout.sandbox.diamondpay",
    holder_name_max=16,  # payout `name` String(16) [doc] (more/diamondpay.md section 10)
    twin_identity="platform_id",
    twin_secrets=("key", "api_token"),
)
