"""The languages the checkout speaks (shopper pages, API `locale`, translations)."""

from __future__ import annotations

SUPPORTED_LOCALES = ("ko", "es", "en")
