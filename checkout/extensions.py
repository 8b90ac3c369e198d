"""Flask extensions, bound to an app with init_app in create_app, and the accessors for what
create_app keeps in `app.extensions` (the web floor imports these, never checkout.app)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from flask import Flask
from flask_babel import Babel
from flask_wtf import CSRFProtect

from checkout.store.db import db

if TYPE_CHECKING:
    from checkout.concurrency import CreateTurns
    from checkout.config import Settings
    from checkout.services.catalog import Catalog

csrf = CSRFProtect()
babel = Babel()


def settings_of(app: Flask) -> Settings:
    return app.extensions["settings"]


def catalog_of(app: Flask, livemode: bool = True) -> Catalog:
    """The methods and providers for live checkouts, or for test ones (livemode False).
    Both hold every provider instance, so notifies and queries find any attempt's."""
    return app.extensions["catalog" if livemode else "test_catalog"]


def create_turns_of(app: Flask) -> CreateTurns:
    return app.extensions["create_turns"]


__all__ = ["babel", "catalog_of", "create_turns_of", "csrf", "db", "settings_of"]
