"""PayPro (Korea paymentLink, Mexico paymentLink and payInApi) in one package.

`config.settings`: `country` ("KR" | "MX"), `api` ("paymentLink" | "payInApi", MX only),
`merchant_no`, `app_secret`, and for KR `sub_merchant_no`. Method options: KR
`channel_code` + `way_code` ("VA" is the virtual account); MX `way_code` "store" | "va".
"""

from __future__ import annotations

from checkout.providers.base import ProviderConfig
from checkout.providers.paypro.client import PayProProvider


def build(config: ProviderConfig) -> PayProProvider:
    """A provider instance; ValueError names the instance and the bad setting or option."""
    return PayProProvider(config)


__all__ = ["PayProProvider", "build"]
