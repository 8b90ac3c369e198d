"""Shopper-facing formatting per locale: amounts, dates in the provider's country, catalogs.

The locale is chosen in app.py (`_select_locale`): the checkout's `locale`, else the browser's
Accept-Language among ko, es and en, else English. Numbers and dates use the country the
language is spoken in here: ko -> ko_KR, es -> es_MX (Mexican Spanish).
"""

from __future__ import annotations

import functools
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import flask_babel
from babel.dates import format_date, format_time
from babel.numbers import format_currency
from flask import Flask, g
from flask_babel import get_locale, get_translations
from flask_babel import lazy_gettext as _l
from jinja2 import pass_context
from jinja2.runtime import Context

from checkout.domain.locales import SUPPORTED_LOCALES
from checkout.domain.money import Money

log = logging.getLogger(__name__)

# The CLDR locale that formats numbers and dates for each catalog language.
FORMAT_LOCALES = {"ko": "ko_KR", "es": "es_MX", "en": "en_US"}

ZONE_NAMES = {
    "Asia/Seoul": _l("Korea time"),
    "America/Mexico_City": _l("Mexico City time"),
}


def gettext(text: str, **variables: Any) -> str:
    """`text` in the request's language (Flask-Babel), `%(name)s` filled from `variables`:
    how the use cases translate what they say, without importing Flask themselves."""
    return flask_babel.gettext(text, **variables)


def lazy_gettext(text: str, **variables: Any) -> Any:
    """`text` translated when it is shown, in the language of that moment's request."""
    return flask_babel.lazy_gettext(text, **variables)


def current_language() -> str:
    locale = get_locale()
    language = str(locale.language) if locale else "en"
    return language if language in FORMAT_LOCALES else "en"


def format_money(money: Money, language: str | None = None) -> str:
    """The amount as a shopper of `language` reads it, with the currency's own decimals.

    en: "KRW 15,000", "MXN 250.00" (ISO code first: English shoppers here pay in either);
    ko: "15,000원" for won, "MX$250.00" otherwise; es: "$250.00 MXN" for pesos (what Mexican
    shops print), "KRW 15,000" otherwise.
    """
    return _format_amount(money.amount, money.currency, language or current_language())


@functools.lru_cache(maxsize=4096)
def _format_amount(amount: int, currency: str, lang: str) -> str:
    # Babel's formatting is pure and costs a tenth of a page: amounts repeat (every page shows
    # its amount twice, checkouts share prices), so the strings are kept.
    money = Money(amount, currency)
    value = money.to_decimal()
    locale = FORMAT_LOCALES.get(lang, "en_US")
    if lang == "ko" and money.currency == "KRW":
        return format_currency(value, "KRW", format="#,##0원", locale=locale)
    if lang == "es" and money.currency == "MXN":
        return format_currency(value, "MXN", format="¤#,##0.00 ¤¤", locale=locale)
    if lang == "ko":
        return format_currency(value, money.currency, locale=locale)
    # English, and Spanish for other currencies: the ISO code, a plain space, the amount
    # with exactly the currency's decimals (currency_digits).
    return format_currency(value, money.currency, format="¤¤ #,##0.00", locale=locale)


def format_local_datetime(moment: datetime, zone: str, language: str | None = None) -> str:
    """`moment` in the provider's zone, e.g. "2026년 1월 5일 18:30 (한국 시간)"."""
    lang = language or current_language()
    locale = FORMAT_LOCALES.get(lang, "en_US")
    tz = ZoneInfo(zone)
    local = moment.astimezone(tz)
    day = format_date(local, format="long", locale=locale)
    clock = format_time(local, format="HH:mm", tzinfo=tz, locale=locale)
    name = ZONE_NAMES.get(zone)
    label = str(name) if name is not None else zone
    separator = " " if lang == "ko" else ", "
    return f"{day}{separator}{clock} ({label})"


def register(app: Flask) -> None:
    """Jinja filters `money` and `local_datetime`; `locale` in every template; a catalog check."""
    app.add_template_filter(format_money, "money")
    # Flask-Babel's template gettext looks the catalog up through the app and request contexts
    # on every string; a page has thirty. The catalog is looked up once per render
    # (language_context) and each string reads it from the template's own context.
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=pass_context(lambda ctx, s: _catalog_of(ctx).ugettext(s)),
        ngettext=pass_context(lambda ctx, s, p, n: _catalog_of(ctx).ungettext(s, p, n)),
        newstyle=True,
        pgettext=pass_context(lambda ctx, c, s: _catalog_of(ctx).upgettext(c, s)),
        npgettext=pass_context(lambda ctx, c, s, p, n: _catalog_of(ctx).unpgettext(c, s, p, n)),
    )
    app.add_template_filter(format_local_datetime, "local_datetime")

    @app.context_processor
    def language_context() -> dict[str, Any]:
        return {"locale": current_language(), _CATALOG: _request_translations()}

    directory = Path(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    missing = missing_catalogs(directory)
    if missing:
        log.warning(
            "compiled translations missing or older than their .po for %s: pages show "
            "English (or stale text). Run "
            "`pybabel compile -d checkout/translations` (python3 dev.py does it).",
            ", ".join(missing),
        )


_CATALOG = "_checkout_catalog"  # the template context's name for the render's catalog


def _catalog_of(context: Context) -> Any:
    """The catalog language_context put in this render's context; a template rendered
    without the context processors (none is, today) looks it up itself."""
    catalog = context.get(_CATALOG)
    return catalog if catalog is not None else _request_translations()


def _request_translations() -> Any:
    """This request's catalog (Flask-Babel's, for the locale it chose), fetched once."""
    translations = getattr(g, "_checkout_translations", None)
    if translations is None:
        translations = g._checkout_translations = get_translations()
    return translations


def warm_up(app: Flask) -> None:
    """Load each language's catalogs and Babel's locale data now (a worker starting), not in
    its first requests: under load, a cold worker would load them in many threads at once."""
    for language in SUPPORTED_LOCALES:
        with app.test_request_context("/", headers={"Accept-Language": language}):
            g.checkout_locale = language
            _request_translations()
            for currency in ("KRW", "MXN"):
                format_money(Money(100, currency), language)
            format_local_datetime(datetime(2026, 1, 1, tzinfo=UTC), "Asia/Seoul", language)


def missing_catalogs(directory: Path) -> list[str]:
    """Languages with a messages.po but no messages.mo, or an older one."""
    missing = []
    for po in sorted(directory.glob("*/LC_MESSAGES/messages.po")):
        mo = po.with_suffix(".mo")
        if not mo.exists() or mo.stat().st_mtime < po.stat().st_mtime:
            missing.append(po.parent.parent.name)
    return missing
