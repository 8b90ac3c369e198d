"""Rate limits (Flask-Limiter): the checkout form, the shop API and provider notifies.

One Limiter per app, built by `init_limits` in create_app: counters never leak between
apps (each test app starts at zero), and nothing connects to storage at import time.
Several instances share counters through `rate_limit_storage_uri` (e.g. Redis).

| limit (`[rate_limits]`) | applies to | counted per |
|---|---|---|
| `checkout_form` | POST of the checkout form (`/c/<id>`) | client IP |
| `api` | every `/api/v1/...` call | API key (unknown keys: client IP) |
| `notify` | `POST /notify/<instance>` | provider instance and IP |
| `admin_login` | `POST /admin/login` (the operator console's password form) | client IP |

Answers over a limit are 429 with `Retry-After`: JSON `{"error": ...}` for the API, a page
for shoppers, plain text for providers (which retry by themselves), the login page for
operators.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded

from checkout.config import Settings, hash_api_key

log = logging.getLogger(__name__)


def client_ip() -> str:
    # remote_addr is the client's address once ProxyFix (proxy_fix_x_for) has applied.
    return request.remote_addr or "unknown"


def api_key_identity() -> str:
    """The API key's hash for a known key; the IP otherwise, so junk keys share one bucket."""
    scheme, _sep, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    settings: Settings = current_app.extensions["settings"]
    if scheme.lower() == "bearer" and token and settings.store_for_api_key(token) is not None:
        return "key:" + hash_api_key(token)
    return "ip:" + client_ip()


def notify_identity() -> str:
    instance = (request.view_args or {}).get("instance", "")
    return f"{instance}:{client_ip()}"


def init_limits(app: Flask, settings: Settings) -> Limiter:
    """Bind a fresh Limiter to `app` with the configured storage and limits."""
    from checkout.blueprints import admin, api, notify, pages

    limiter = Limiter(
        key_func=client_ip,
        storage_uri=settings.rate_limit_storage_uri,
        key_prefix=settings.rate_limit_key_prefix,
        # No burst of twice the limit across a window edge, at O(1) per hit (a moving window
        # keeps, and counts, one entry per request in the window).
        strategy="sliding-window-counter",
        headers_enabled=True,  # X-RateLimit-* and Retry-After
        # Storage down (Redis restarting): keep counting in this process rather than refuse
        # payments or let everything through.
        in_memory_fallback_enabled=True,
        swallow_errors=True,
    )
    limits = settings.rate_limits
    # Shared limits: one counter per scope and key, however many routes the blueprint has.
    limiter.shared_limit(
        limits["checkout_form"], "checkout_form", methods=["POST"], key_func=client_ip
    )(pages.bp)
    limiter.shared_limit(limits["api"], "api", key_func=api_key_identity)(api.bp)
    limiter.shared_limit(limits["notify"], "notify", key_func=notify_identity)(notify.bp)
    # Password guessing: the login form's POST per client IP. The view is wrapped in this
    # app only (Flask-Limiter checks a decorated limit when the wrapper runs).
    login_endpoint = f"{admin.bp.name}.{admin.login.__name__}"
    app.view_functions[login_endpoint] = limiter.limit(
        limits["admin_login"], methods=["POST"], key_func=client_ip
    )(app.view_functions[login_endpoint])

    @limiter.request_filter
    def shopper_page_reads() -> bool:
        # Shopper pages limit only their form POST: skip the limiter's per-request lookups.
        return request.method in ("GET", "HEAD") and request.blueprint == "pages"

    limiter.init_app(app)
    app.extensions["checkout_limiter"] = limiter
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter


def too_many_requests(error: RateLimitExceeded) -> Any:
    """429 in the caller's language: JSON for shops, text for providers, a page for people."""
    log.warning("rate limit %s exceeded: %s %s", error.description, request.method, request.path)
    if request.path.startswith("/api/"):
        response = jsonify(
            error={
                "code": "rate_limited",
                "message": f"Too many requests ({error.description}). Retry after the "
                "Retry-After header's seconds.",
            }
        )
        response.status_code = 429
        return response
    if request.path.startswith("/notify/"):
        return Response("Too Many Requests", 429, mimetype="text/plain")
    if request.path.startswith("/admin/"):
        from checkout.blueprints.admin import LoginForm

        error = "Too many login attempts from your address. Wait a minute and try again."
        return render_template("admin/login.html", form=LoginForm(), error=error), 429
    message = _(
        "Too many payment attempts from your connection. Nothing was charged. "
        "Please wait a minute and try again."
    )
    return render_template("message.html", message=message), 429
