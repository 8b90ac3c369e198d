"""The console templates' filters: personal data and secrets only ever shown masked, money
and times as operators read them."""

from __future__ import annotations

import json
from typing import Any

from checkout.domain.money import CURRENCY_EXPONENT
from checkout.logging_setup import mask_text
from checkout.services.checkouts import mask_email, mask_mobile, mask_name
from checkout.services.exchanges import mask_body, mask_headers, mask_ip
from checkout.web.console.common import bp


@bp.app_template_filter("admin_mask_email")
def _f_mask_email(value: str | None) -> str:
    return mask_email(value) or ""


@bp.app_template_filter("admin_mask_mobile")
def _f_mask_mobile(value: str | None) -> str:
    return mask_mobile(value) or ""


@bp.app_template_filter("admin_mask_name")
def _f_mask_name(value: str | None) -> str:
    return mask_name(value) or ""


@bp.app_template_filter("admin_mask")
def _f_mask(value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        value = json.dumps(value, ensure_ascii=False, indent=1, sort_keys=True)
    return mask_text(value)


@bp.app_template_filter("admin_mask_body")
def _f_mask_body(value: str | None) -> str:
    """A raw body (a notify, a shop's answer): personal and secret values masked by key,
    as provider calls are, then as log text."""
    return mask_body(value.encode("utf-8")) or "" if value else ""


@bp.app_template_filter("admin_mask_headers")
def _f_mask_headers(value: dict[str, str] | None) -> str:
    return mask_headers(value)


@bp.app_template_filter("admin_mask_ip")
def _f_mask_ip(value: str | None) -> str:
    return mask_ip(value)


@bp.app_template_filter("admin_money")
def _f_money(amount: int | None, currency: str) -> str:
    if amount is None:
        return ""
    exp = CURRENCY_EXPONENT.get(currency, 0)
    value = f"{amount / 10**exp:,.{exp}f}" if exp else f"{amount:,}"
    return f"{currency} {value}"


@bp.app_template_filter("admin_time")
def _f_time(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value else ""
