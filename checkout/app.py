"""The application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, request
from werkzeug.middleware.proxy_fix import ProxyFix

from checkout.config import Settings, build_settings, load_raw
from checkout.extensions import babel, csrf, db
from checkout.providers.base import PaymentProvider
from checkout.providers.registry import build_provider
from checkout.services.catalog import Catalog
from checkout.services.checkouts import SUPPORTED_LOCALES

ROOT = Path(__file__).resolve().parent.parent


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` replaces the TOML file (tests pass a whole config)."""
    raw = load_raw(os.environ) if config is None else dict(config)
    instance_path = Path(
        str(
            raw.get("instance_path")
            or os.environ.get("CHECKOUT_INSTANCE_PATH")
            or ROOT / "instance"
        )
    ).resolve()
    settings = build_settings(raw, instance_path)

    app = Flask(
        __name__,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
        instance_path=str(instance_path),
    )
    secure = settings.public_base_url.startswith("https://")
    app.config.update(
        SECRET_KEY=settings.secret_key,
        DATABASE_URL=settings.database_url,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        # Every FlaskForm checks its own token, so a failure is shown on the page in the
        # shopper's language instead of a bare 400; the API and notify carry no cookies.
        WTF_CSRF_CHECK_DEFAULT=False,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_DEFAULT_TIMEZONE="UTC",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "checkout" / "translations"),
    )
    app.extensions["settings"] = settings

    if settings.sandbox:
        _prepare_sandbox_keys(settings)
    providers: dict[str, PaymentProvider] = {
        name: build_provider(cfg) for name, cfg in settings.providers.items()
    }
    app.extensions["catalog"] = Catalog(providers, settings.methods)

    db.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    if settings.proxy_fix_x_for:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_fix_x_for, x_proto=1, x_host=1
        )

    from checkout.blueprints import api, notify, pages

    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(notify.bp)

    from checkout import cli

    cli.register(app)
    _security_headers(app)
    return app


def _prepare_sandbox_keys(settings: Settings) -> None:
    from checkout.sandbox.keys import ensure_teemopay_keys

    for cfg in settings.providers.values():
        if cfg.type == "teemopay" and cfg.sandbox:
            key_file = Path(str(cfg.settings["private_key_file"]))
            if not key_file.exists():
                ensure_teemopay_keys(key_file.parent)


def _select_locale() -> str | None:
    from flask import g

    forced = getattr(g, "checkout_locale", None)
    if forced in SUPPORTED_LOCALES:
        return forced
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "en"


def _security_headers(app: Flask) -> None:
    @app.after_request
    def add_headers(response: Any) -> Any:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        # Framing by shops is issue-specific (their origins); until then deny it.
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
            "form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
        )
        return response


def settings_of(app: Flask) -> Settings:
    return app.extensions["settings"]


def catalog_of(app: Flask) -> Catalog:
    return app.extensions["catalog"]
