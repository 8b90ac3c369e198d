"""Rate limits (Flask-Limiter): the checkout form, the shop API and provider notifies.

One Limiter per app, built by `init_limits` in create_app: counters never leak between
apps (each test app starts at zero), and nothing connects to storage at import time.
Several instances share counters through `rate_limit_storage_uri` (e.g. Redis).

| limit (`[rate_limits]`) | applies to | counted per |
|---|---|---|
| `checkout_form` | POST of the checkout form (`/c/<id>`) | client IP |
| `api` | every `/api/v1/...` call | API key (unknown keys: client IP) |
| `notify` | notifies that do not verify (`POST /notify/<instance>`) | instance and IP |
| `notify_instance` | the same, from every IP | instance |
| `admin_login` | `POST /admin/login` (the operator console's password form) | client IP |

Answers over a limit are 429 with `Retry-After`: JSON `{"error": ...}` for the API, a page
for shoppers, plain text for providers (which retry by themselves), the login page for
operators.

Notifies are limited by what they turn out to be, not by how many arrive: a notify whose
signature verifies is never refused (see NotifyGuard), while a source of forged or malformed
ones is answered 429, with nothing stored, once over its limit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, render_template, request
from flask_babel import gettext as _
from flask_limiter import Limiter, RateLimitExceeded
from limits import RateLimitItem, parse_many

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


class NotifyGuard:
    """The notify limits: messages that do not verify, per source and per provider instance.

    A notify whose signature verifies is never refused, counted or lost, whatever else came
    from its source: a provider's retries of one genuine notify (duplicates), a burst on a
    sale day, a genuine notify we cannot map. Only messages that do not verify (a bad or
    missing signature, a body that is not the provider's format) count, against two
    counters: `notify` per instance and client IP, and `notify_instance` per instance from
    every IP (a forged flood from many addresses). While either is over its limit, a notify
    from that source is still read and its signature checked (cheap, constant time): one
    that verifies is processed as ever; one that does not is answered 429 and not stored.
    So a forged flood stores at most the limits' worth of rows, and never delays a genuine
    notify. Counters live in the limiter's storage (shared through Redis by every worker and
    host); this process remembers which keys it has counted and asks the storage only about
    those, for as long as the longest window lasts (a clean source costs no round trip).
    """

    def __init__(self, limiter: Limiter, limits: Mapping[str, str], key_prefix: str) -> None:
        self._limiter = limiter
        # scope ("notify", "notify_instance") -> its limits
        self.items: dict[str, list[RateLimitItem]] = {
            scope: sorted(parse_many(limit)) for scope, limit in limits.items()
        }
        self._key_prefix = key_prefix
        self._window = max(item.get_expiry() for items in self.items.values() for item in items)
        self._suspects: dict[tuple[str, str], float] = {}  # (scope, key) -> time to forget
        self._lock = threading.Lock()

    def _keys(self, scope: str, identity: str) -> tuple[str, ...]:
        return (self._key_prefix, identity, scope) if self._key_prefix else (identity, scope)

    def _suspect(self, scope: str, identity: str) -> bool:
        until = self._suspects.get((scope, identity))
        if until is None:
            return False
        if time.monotonic() < until:
            return True
        with self._lock:
            self._suspects.pop((scope, identity), None)
        return False

    def retry_after(self, identities: Mapping[str, str]) -> int | None:
        """None while every scope's identity is under its limits; else the seconds until
        the fullest lets it again. `identities`: scope -> key (e.g. instance and IP)."""
        strategy = self._limiter.limiter  # the in-memory fallback while Redis is away
        waits = []
        for scope, identity in identities.items():
            if not self._suspect(scope, identity):
                continue
            keys = self._keys(scope, identity)
            try:
                for item in self.items[scope]:
                    if not strategy.test(item, *keys):
                        reset_at, _remaining = strategy.get_window_stats(item, *keys)
                        waits.append(max(1, int(reset_at - time.time()) + 1))
            except Exception:  # storage down: a provider's notify is never refused for that
                log.warning("notify limit: counter unavailable", exc_info=True)
        return max(waits) if waits else None

    def count_unverified(self, identities: Mapping[str, str]) -> None:
        strategy = self._limiter.limiter
        for scope, identity in identities.items():
            with self._lock:
                self._suspects[(scope, identity)] = time.monotonic() + self._window
            for item in self.items[scope]:
                try:
                    strategy.hit(item, *self._keys(scope, identity))
                except Exception:  # storage down: refuse nothing rather than fail the notify
                    log.warning("notify limit: counter unavailable", exc_info=True)


def notify_identities(instance: str) -> dict[str, str]:
    """The notify limits' keys for this request: its instance and IP, and its instance."""
    return {"notify": f"{instance}:{client_ip()}", "notify_instance": instance}


def notify_guard(app: Flask) -> NotifyGuard:
    return app.extensions["checkout_notify_guard"]


def init_limits(
    app: Flask,
    settings: Settings,
    *,
    checkout_form: Blueprint,
    api: Sequence[Blueprint],
    login_endpoint: str,
    login_form: Callable[[], Any],
) -> Limiter:
    """Bind a fresh Limiter to `app` with the configured storage and limits: the payment
    form's POSTs (`checkout_form`, per client IP), the shop API (`api`, per API key) and the
    operator login's POST (`login_endpoint`; a refusal shows `login_form()` again). The web
    layer hands its blueprints down: this module imports none of them."""

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
    )(checkout_form)
    for blueprint in api:
        limiter.shared_limit(limits["api"], "api", key_func=api_key_identity)(blueprint)
    # Notifies: NotifyGuard, asked by the view (see the module's docstring).
    # Password guessing: the login form's POST per client IP. The view is wrapped in this
    # app only (Flask-Limiter checks a decorated limit when the wrapper runs).
    app.view_functions[login_endpoint] = limiter.limit(
        limits["admin_login"], methods=["POST"], key_func=client_ip
    )(app.view_functions[login_endpoint])

    @limiter.request_filter
    def not_limited_here() -> bool:
        # Skip the limiter's per-request lookups where it has nothing to count: shopper pages
        # limit only their form POST, notifies are counted by NotifyGuard, and health checks
        # and metrics (asked every few seconds) have no limit.
        blueprint = request.blueprint
        return blueprint in ("notify", "ops") or (
            blueprint == "pages" and request.method in ("GET", "HEAD")
        )

    limiter.init_app(app)
    _skip_hooks_where_not_limited(app, limiter, not_limited_here)
    app.extensions["checkout_limiter"] = limiter
    app.extensions["checkout_notify_guard"] = NotifyGuard(
        limiter,
        {scope: limits[scope] for scope in ("notify", "notify_instance")},
        settings.rate_limit_key_prefix,
    )
    app.extensions["checkout_login_form"] = login_form
    app.register_error_handler(RateLimitExceeded, too_many_requests)
    return limiter


def _skip_hooks_where_not_limited(app: Flask, limiter: Limiter, skip: Any) -> None:
    """Flask-Limiter's own hooks, run only where something may be counted.

    On a request its filter skips (shopper pages' GETs, notifies, health checks), the
    limiter's before-request hook still resolves the endpoint's limits before it asks the
    filter, and its after-request hook looks for limits to report: a twentieth of a page's
    time for nothing. The same filter now decides first; every other request goes through
    the before-request hook as before, and through the headers' hook unless it is a
    shopper's form answer that was not refused.
    """
    from functools import partial

    check = limiter._check_request_limit

    def check_request_limit() -> None:
        if not skip():
            check()

    def is_inject_headers(hook: Any) -> bool:
        return isinstance(hook, partial) and hook.args == (limiter,)

    before = app.before_request_funcs.setdefault(None, [])
    after = app.after_request_funcs.setdefault(None, [])
    if before.count(check) != 1 or sum(map(is_inject_headers, after)) != 1:
        return  # another Flask-Limiter than this code knows: its hooks stay as they are
    before[before.index(check)] = check_request_limit
    [i] = [i for i, hook in enumerate(after) if is_inject_headers(hook)]
    inject_headers = after[i]

    def inject_rate_limit_headers(response: Any) -> Any:
        if skip() or (request.blueprint == "pages" and response.status_code != 429):
            # A shopper's browser never reads X-RateLimit-*, and working them out is a second
            # round trip to the counters' storage on every payment: the checkout form's
            # answers carry them only when refused (with Retry-After). Shops' API calls
            # always carry them.
            return response
        return inject_headers(response)

    after[i] = inject_rate_limit_headers


def notify_too_many(retry_after: int) -> Response:
    """Plain text for providers, which retry by themselves."""
    response = Response("Too Many Requests", 429, mimetype="text/plain")
    response.headers["Retry-After"] = str(retry_after)
    return response


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
    if request.path.startswith("/admin/"):
        error = "Too many login attempts from your address. Wait a minute and try again."
        form = current_app.extensions["checkout_login_form"]()
        return render_template("admin/login.html", form=form, error=error), 429
    message = _(
        "Too many payment attempts from your connection. Nothing was charged. "
        "Please wait a minute and try again."
    )
    return render_template("message.html", message=message), 429
