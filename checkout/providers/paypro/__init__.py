"""PayPro (Korea paymentLink, Mexico paymentLink and payInApi) in one package.

`config.settings`: `country` ("KR" | "MX"), `api` ("paymentLink" | "payInApi", MX only),
`merchant_no`, `app_secret`, and for KR `sub_merchant_no`. Method options: KR
`channel_code` + `way_code` ("VA" is the virtual account); MX `way_code` "store" | "va".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from checkout.domain.accounts import MEXICO_BANK_CODES
from checkout.providers.base import ProviderConfig
from checkout.providers.paypro.client import PayProProvider
from checkout.providers.paypro.mapping import COUNTRY_TIMEZONE
from checkout.providers.paypro.payout_client import PayProPayouts
from checkout.providers.spec import DEFAULT_HOLDER_NAME_MAX, ProviderSpec


def build(config: ProviderConfig) -> PayProProvider:
    """A provider instance; ValueError names the instance and the bad setting or option."""
    return PayProProvider(config)


def timezone(config: ProviderConfig) -> str:
    """The instance's country's time zone (Korea: Asia/Seoul, Mexico: America/Mexico_City)."""
    return COUNTRY_TIMEZONE.get(str(config.settings.get("country", "KR")).upper(), "Asia/Seoul")


def payout_bank_code(currency: str, bank_code: str) -> str:
    """PayPro Mexico names the bank by `wayCode` (only BANXICO is documented); we take the
    bank's short name from the SPEI list (e.g. 40012 -> "BBVA MEXICO") [inferred]."""
    if currency != "MXN":
        return bank_code
    return MEXICO_BANK_CODES.get(bank_code, bank_code)


def method_kind(options: Mapping[str, Any]) -> str | None:
    """A method's kind from PayPro's own keys: an e-wallet channel (or KakaoPay, Naver
    Pay) is an e-wallet, the `store` way is cash; None: a bank transfer."""
    codes = {str(options.get(k, "")).lower() for k in ("channel_code", "way_code")}
    if "ewallet" in codes or codes & {"kakaopay", "naverpay"}:
        return "ewallet"
    if "store" in codes:
        return "cash"
    return None


SPEC = ProviderSpec(
    type="paypro",
    display_name="PayPro",
    method_kind=method_kind,
    build=build,
    payouts=PayProPayouts,  # type: ignore[arg-type]
    required_settings=("merchant_no", "app_secret"),
    sandbox_module="checkout.sandbox.paypro",
    # Pay-in and payout results come to one URL (Corrections in the provider docs).
    shared_notify_url=True,
    # INFERRED: its Korea payout page gives no length for `customerName` (more/paypro.md
    # section 10, "not found"); TeemoPay's 40 is used as the bound.
    holder_name_max=DEFAULT_HOLDER_NAME_MAX,
    # 10 attempts or 3 successful payments per payer IP and day (services/ip_limits.py).
    per_ip_daily_rule=True,
    timezone=timezone,
    payout_bank_code=payout_bank_code,
    twin_identity="merchant_no",
    twin_secrets=("app_secret",),
)

__all__ = ["SPEC", "PayProProvider", "build"]
