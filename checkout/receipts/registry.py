"""Which issuer a store's receipts go to, by the checkout's mode.

A store without `[stores.<id>.cash_receipts]` has none: it issues nothing (the console says
so). Live checkouts use the store's configured Popbill (test bed or production); test
checkouts of a live deployment use our sandbox with credentials of its own, so a key of
one mode never sees or changes a receipt of the other.
"""

from __future__ import annotations

from checkout.config import CashReceiptConfig, StoreConfig
from checkout.domain.money import Money
from checkout.domain.receipts import ReceiptPolicy
from checkout.receipts.popbill.client import PopbillIssuer
from checkout.receipts.popbill.mapping import PopbillSettings


def receipt_policy(config: CashReceiptConfig) -> ReceiptPolicy:
    return ReceiptPolicy(
        designated_industry=config.designated_industry,
        threshold=Money(config.threshold, "KRW"),
        taxable=config.taxable,
    )


def popbill_settings(name: str, config: CashReceiptConfig) -> PopbillSettings:
    return PopbillSettings(
        name=name,
        corp_num=config.corp_num,
        link_id=config.link_id,
        secret_key=config.secret_key,
        test=config.test_bed,
        corp_name=config.corp_name,
        ceo_name=config.ceo_name,
        addr=config.addr,
        tel=config.tel,
        ip_restrict=config.ip_restrict,
        auth_url=config.auth_url,
        api_url=config.api_url,
    )


def issuer_config(
    store: StoreConfig, *, livemode: bool, sandbox_url: str
) -> CashReceiptConfig | None:
    """The store's issuer configuration for a checkout of this mode, or None."""
    config = store.cash_receipts
    if config is None:
        return None
    if livemode or config.sandboxed:
        return config
    return config.twin(sandbox_url)


def issuer_for(store: StoreConfig, *, livemode: bool, sandbox_url: str) -> PopbillIssuer | None:
    """The issuer of a checkout's receipts, or None when the store has none."""
    config = issuer_config(store, livemode=livemode, sandbox_url=sandbox_url)
    if config is None:
        return None
    name = f"popbill:{store.id}" + ("" if livemode else ":test")
    return PopbillIssuer(popbill_settings(name, config))
