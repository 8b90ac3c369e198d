"""The application factory."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask, request
from flask.sessions import SecureCookieSessionInterface
from itsdangerous import URLSafeTimedSerializer
from werkzeug.middleware.proxy_fix import ProxyFix

from checkout import cli, i18n, observability
from checkout.concurrency import CreateTurns
from checkout.config import Settings, build_settings, load_raw
from checkout.domain.locales import SUPPORTED_LOCALES
from checkout.extensions import babel, csrf, db, settings_of
from checkout.limits import init_limits
from checkout.logging_setup import install_masking, register_secrets, secrets_of_config
from checkout.providers.base import PaymentProvider
from checkout.providers.registry import build_provider, payouts_of
from checkout.sandbox.from_settings import prepare_sandbox_instances
from checkout.services.admin import database_gauges
from checkout.services.catalog import Catalog
from checkout.services.circuits import (
    CircuitBreakers,
)
from checkout.web import console, notify, shop_api, unavailable
from checkout.web.console import auth
from checkout.web.shopper import pages, pay_links, receipts, refund_account

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
        # Connections per process (PostgreSQL): `database_pool_size` kept open, up to
        # `database_max_overflow` more for a burst. Those are closed after each use, so a
        # steady load above the pool would open a connection (a server process) per request.
        DATABASE_POOL_SIZE=settings.database_pool_size,
        DATABASE_MAX_OVERFLOW=settings.database_max_overflow,
        # Lock, statement, pool and SQLite waits, all far below gunicorn's 30 s (store/db.py).
        DATABASE_TIMEOUTS=settings.database_timeouts,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=secure,
        SESSION_COOKIE_SAMESITE="Lax",
        MAX_CONTENT_LENGTH=256 * 1024,
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        # Every FlaskForm checks its own token, so a failure is shown on the page in the
        # shopper's language instead of a bare 400; the API and notify carry no cookies.
        # The payment form uses a checkout-bound token instead (checkout/forms.py).
        WTF_CSRF_CHECK_DEFAULT=False,
        BABEL_DEFAULT_LOCALE="en",
        BABEL_DEFAULT_TIMEZONE="UTC",
        BABEL_TRANSLATION_DIRECTORIES=str(ROOT / "checkout" / "translations"),
        # How long raw notify bodies and headers are kept (`flask purge-notifies`).
        NOTIFY_RETENTION_DAYS=settings.notify_retention_days,
    )
    app.session_interface = SignedCookieSessions()
    app.extensions["settings"] = settings
    # Logs never carry personal data or configured secrets, however the app is served
    # (gunicorn, flask run, tests): every record is masked where it is created.
    install_masking()
    register_secrets(secrets_of_config(settings, raw))

    # First of the request hooks: every request gets its id and is counted, even one that a
    # later hook (CSRF, rate limits, NUL check) refuses. /metrics is in web/console/health.py.
    metrics = observability.init_app(app, settings.metrics_token)
    metrics.database.read = lambda: database_gauges(db.session)

    # Sandbox mode, and the test twins of a live deployment (TeemoPay's key files).
    prepare_sandbox_instances(settings)
    providers: dict[str, PaymentProvider] = {
        name: build_provider(cfg) for name, cfg in settings.providers.items()
    }
    # Each instance's payout client, on its pay-in client's transport: built once, here.
    payouts = {name: payouts_of(provider) for name, provider in providers.items()}
    app.extensions["catalog"] = Catalog(
        providers, settings.methods, _circuit_breakers(settings), payouts
    )
    # Test-mode checkouts: the same methods on the sandbox twins (the same catalog in
    # sandbox mode, where every instance is a simulator already).
    app.extensions["test_catalog"] = app.extensions["catalog"].for_test_mode()
    # Payment creations at work at once in this process (checkout/concurrency.py).
    app.extensions["create_turns"] = CreateTurns(settings.create_payment_turns)

    db.init_app(app)
    csrf.init_app(app)
    babel.init_app(app, locale_selector=_select_locale)

    i18n.register(app)  # amount and date filters; warns if compiled catalogs are missing

    if settings.proxy_fix_x_for:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.proxy_fix_x_for, x_proto=1, x_host=1
        )

    app.register_blueprint(pages.bp)
    receipts.init_app(app)  # issue 24: the paid page's cash-receipt line
    app.register_blueprint(shop_api.bp)
    app.register_blueprint(refund_account.bp)
    app.register_blueprint(notify.bp)
    app.register_blueprint(pay_links.bp)
    console.init_app(app)  # the operator console (/admin), /healthz and /readyz
    unavailable.init_app(app)  # a database that went away: one retry, then 503, never 500

    # After the blueprints: their limits bind to this app only.
    init_limits(
        app,
        settings,
        checkout_form=pages.bp,
        api=(shop_api.bp,),
        login_endpoint=f"{console.bp.name}.{auth.login.__name__}",
        login_form=auth.LoginForm,
    )

    cli.register(app)
    _security_headers(app)
    _refuse_nul(app)
    return app


def _select_locale() -> str | None:
    from flask import g

    forced = getattr(g, "checkout_locale", None)
    if forced in SUPPORTED_LOCALES:
        return forced
    return request.accept_languages.best_match(SUPPORTED_LOCALES) or "en"


_CSP = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "form-action 'self' http: https:; base-uri 'none'; frame-ancestors "
)
# A CSP source expression for an origin: scheme://host[:port], nothing that could end the
# directive. Origins are normalised when the config is read; this is a second guard.
_ORIGIN_SOURCE = re.compile(r"^https?://[a-z0-9.\-\[\]:]+$")


class SignedCookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie session (the console's login, the forms' CSRF), its serializer
    built once: Flask builds one on every request, a tenth of a page's own work. A request
    without the cookie (a shopper's page, a notify, the API) gets an empty session without
    Flask's lookup, which raises and catches an HTTP error for the missing cookie."""

    def open_session(self, app: Flask, request: Any) -> Any:
        if self.get_cookie_name(app) in request.cookies:
            return super().open_session(app, request)
        return None if self.get_signing_serializer(app) is None else self.session_class()

    _built: tuple[tuple[Any, ...], URLSafeTimedSerializer | None] | None = None

    def get_signing_serializer(self, app: Flask) -> URLSafeTimedSerializer | None:
        key = (app.secret_key, tuple(app.config.get("SECRET_KEY_FALLBACKS") or ()))
        built = self._built
        if built is None or built[0] != key:
            built = self._built = (key, super().get_signing_serializer(app))
        return built[1]


def frame_ancestors(origins: tuple[str, ...] | list[str] | None) -> str:
    """The frame-ancestors value: the shop's origins, or 'none' when nothing may frame us."""
    allowed = [o for o in origins or () if _ORIGIN_SOURCE.match(o)]
    return " ".join(allowed) if allowed else "'none'"


def _security_headers(app: Flask) -> None:
    hsts = settings_of(app).public_base_url.startswith("https://")

    static = [
        ("X-Content-Type-Options", "nosniff"),
        ("Referrer-Policy", "no-referrer"),
        ("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()"),
    ]
    if hsts:
        static.append(("Strict-Transport-Security", "max-age=31536000"))
    static_keyed = [(name.lower(), name, value) for name, value in static]

    @app.after_request
    def add_headers(response: Any) -> Any:
        from flask import g

        # A view's own header wins. Headers.setdefault would look each name up by raising
        # and catching a KeyError; one pass over the response's names is cheaper.
        headers = response.headers
        present = {name.lower() for name, _value in headers.items()}
        for key, name, value in static_keyed:
            if key not in present:
                headers.add(name, value)
        # Shopper pages of a checkout (pages.py sets g.frame_origins) may be framed by the
        # checkout's shop, and only by it; every other page refuses framing.
        ancestors = frame_ancestors(getattr(g, "frame_origins", None))
        if ancestors == "'none'" and "x-frame-options" not in present:
            headers.add("X-Frame-Options", "DENY")
        if "content-security-policy" not in present:
            headers.add("Content-Security-Policy", _CSP + ancestors)
        return response


def _has_nul(request_: Any, body: bool = True) -> bool:
    if "\x00" in request_.path or "\x00" in request_.headers.get("Idempotency-Key", ""):
        return True
    if any("\x00" in k or "\x00" in v for k, v in request_.args.items(multi=True)):
        return True
    if body and request_.method in ("POST", "PUT", "PATCH"):
        if request_.is_json:
            raw = request_.get_data(cache=True)
            return b"\x00" in raw or b"\\u0000" in raw.lower()
        return any("\x00" in k or "\x00" in v for k, v in request_.form.items(multi=True))
    return False


def _refuse_nul(app: Flask) -> None:
    """A NUL character in a URL, form or JSON string is refused with a 400 before any view.

    No genuine input has one, and PostgreSQL cannot store or even compare text holding
    one, so it would otherwise end in a 500. Provider notifies are exempt: they are stored
    raw (services/provider_notifies.py replaces NUL) and refused by their signature check. The shop
    API's JSON bodies are checked by its body reader (web/shop_api/body.py), which
    names the field.
    """
    from flask import jsonify

    @app.before_request
    def refuse_nul() -> Any:
        api = request.path.startswith("/api/")
        if request.path.startswith("/notify/") or not _has_nul(request, body=not api):
            return None
        if api:
            error = {"code": "invalid_request", "message": "NUL characters are not accepted."}
            return jsonify(error=error), 400
        return "NUL characters are not accepted.", 400


def _circuit_breakers(settings: Settings) -> CircuitBreakers:
    """The instances' breakers, as configured (config.py reads [circuit_breaker])."""
    # A probe held longer than any call can take belongs to a thread that died.
    longest = max(
        (cfg.connect_timeout + cfg.read_timeout for cfg in settings.providers.values()),
        default=25.0,
    )
    return CircuitBreakers(
        settings.circuit_breakers,
        probe_timeout=longest + 10.0,
        refresh_seconds=settings.circuit_refresh_seconds,
    )
