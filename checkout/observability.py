"""Per-request bookkeeping: the request id (logs and `X-Request-Id`) and the request metric.

Kept to the minimum on purpose (the app is benchmarked against a bare Flask app): before
each request one header read, one id and two context variables; after it one header, a
dict lookup and one histogram observation (checkout/metrics.py).

The request id is the incoming `X-Request-Id` when it is a short safe token (letters,
digits, `.`, `_`, `-`; at most 64), so a proxy's id carries through; otherwise a new random
one (32 hex digits). It is answered in `X-Request-Id` and stamped on every log record made
while the request is handled (checkout/logging_setup.py).
"""

from __future__ import annotations

import re
import secrets
import time
from contextvars import ContextVar
from typing import Any

from flask import Flask, request

from checkout.logging_setup import current_request_id, set_request_id
from checkout.metrics import (
    EXTENSION,
    KNOWN_METHODS,
    Metrics,
    multiprocess_dir,
    observe_provider_call,
)
from checkout.providers.http import add_call_observer

REQUEST_ID_HEADER = "X-Request-Id"
_safe_request_id = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}").fullmatch
_started: ContextVar[float | None] = ContextVar("checkout_request_started", default=None)


def request_id_from(incoming: str | None) -> str:
    """The incoming id if it is a short safe token, else a new random one."""
    if incoming and _safe_request_id(incoming):
        return incoming
    return secrets.token_hex(16)


def init_app(app: Flask, metrics_token: str | None = None) -> Metrics:
    """Register the hooks first (before the other before-request hooks, e.g. the rate
    limiter's), so even a refused request gets an id and is counted."""

    metrics = Metrics(multiprocess_dir(), token=metrics_token)
    app.extensions[EXTENSION] = metrics
    add_call_observer(observe_provider_call)  # process-wide; it finds the current app
    observe = metrics.observe_request
    clock = time.perf_counter
    environ_key = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")

    # `request` is a proxy: each attribute read through it costs a context lookup, so each
    # hook resolves it once.
    @app.before_request
    def start_request() -> None:
        environ = request._get_current_object().environ
        set_request_id(request_id_from(environ.get(environ_key)))
        _started.set(clock())

    @app.after_request
    def finish_request(response: Any) -> Any:
        request_id = current_request_id()
        if request_id is not None:
            response.headers[REQUEST_ID_HEADER] = request_id
        started = _started.get()
        if started is not None:
            current = request._get_current_object()
            method = current.method
            observe(
                current.endpoint or "unmatched",
                method if method in KNOWN_METHODS else "other",
                response.status_code,
                clock() - started,
            )
        return response

    @app.teardown_request
    def end_request(_error: BaseException | None) -> None:
        set_request_id(None)  # a thread's next log lines belong to no request
        _started.set(None)

    return metrics
