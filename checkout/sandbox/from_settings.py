"""A sandbox that knows the merchants of the app's sandbox-mode provider instances."""

from __future__ import annotations

from pathlib import Path

from checkout.config import Settings
from checkout.providers.diamondpay.signing import DEFAULT_SIGN_TYPE
from checkout.sandbox.core import DiamondPlatform, SandboxConfig
from checkout.sandbox.keys import ensure_teemopay_keys, public_pem_of


def sandbox_config_from_settings(settings: Settings) -> SandboxConfig:
    config = SandboxConfig()
    for cfg in settings.providers.values():
        if not cfg.sandbox:
            continue
        s = cfg.settings
        if cfg.type == "paypro":
            config.paypro_merchants[str(s["merchant_no"])] = str(s["app_secret"])
        elif cfg.type == "teemopay":
            private = Path(str(s["private_key_file"]))
            files = ensure_teemopay_keys(private.parent)
            config.teemopay_apps[str(s["app_code"])] = public_pem_of(private.read_bytes())
            # TeemoPay's own key pair lives beside its public key in sandbox mode.
            platform_private = Path(str(s["platform_public_key_file"])).with_name(
                files.platform_private.name
            )
            config.teemopay_private_key = platform_private.read_bytes()
        elif cfg.type == "diamondpay":
            config.diamond_platforms[str(s["platform_id"])] = DiamondPlatform(
                str(s["key"]),
                str(s["api_token"]),
                str(s.get("sign_type") or DEFAULT_SIGN_TYPE).upper(),
            )
    for store in settings.stores.values():
        receipts = store.cash_receipts
        if receipts is None:
            continue
        # A sandbox deployment's own members, and every live store's test twin.
        sandboxed = receipts if receipts.sandboxed else receipts.twin(settings.sandbox_url)
        config.popbill_partners[sandboxed.link_id] = sandboxed.secret_key
        config.popbill_members.add(sandboxed.corp_num)
    return config
