"""When the database goes away and comes back: one retry, then a 503, never a 500.

A statement that fails because the server ended or refused the connection (a restart, a
failover, a killed backend; db.is_connection_lost) is answered here:

- if nothing of the request was committed yet (db.commit_sent), the whole request is run
  once more on a fresh connection after a short pause (RetryOnceWhenDatabaseReturns): the
  pool has dropped the dead connections, and a restart of a second or so is over by then;
- otherwise, or if the retry fails too, the answer is 503 with Retry-After: JSON on the
  shop API, the providers' plain "retry later" on notifies (every provider retries a
  non-2xx answer), a page in the person's language elsewhere. Shops, providers and
  browsers all read a 503 as "try again"; a 500 would say "your request is wrong or we
  are broken".

A request that had committed something is never repeated here: the client's own retry
meets the idempotency that already protects it (Idempotency-Key, the notify inbox, the
payment claim).
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext as _
from sqlalchemy.exc import SQLAlchemyError

from checkout.store.db import commit_sent, is_connection_lost, reset_commit_sent

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 2
RETRY_PAUSE_SECONDS = 0.5  # before the one retry: a restart's refusals are over by then
# Internal: the answer may be replaced by one retry of the request (never sent out).
RETRY_MARK = "X-Checkout-Retry-Once"
NOTIFY_BODY = "busy, retry later"  # as services/provider_notifies.BUSY_BODY


class RetryOnceWhenDatabaseReturns:
    """WSGI middleware: run a request once more when its answer is marked retryable.

    The body is kept (up to `max_body` bytes) so the retry reads what the first try read;
    a larger or unsized body is never retried (its first answer stands).
    """

    def __init__(self, app: Callable[..., Iterable[bytes]], max_body: int, pause: float) -> None:
        self.app = app
        self.max_body = max_body
        self.pause = pause

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = self._body(environ)
        if body is None:
            return self.app(environ, _without_mark(start_response))
        held: list[tuple[str, list[tuple[str, str]], Any]] = []

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            held.append((status, headers, exc_info))
            return _no_write

        result = self.app(_fresh(environ, body), hold)
        status, headers, exc_info = held[-1]
        if not any(name == RETRY_MARK for name, _ in headers):
            start_response(status, headers, exc_info)
            return result
        _close(result)  # `_lost` logged it
        time.sleep(self.pause)
        return self.app(_fresh(environ, body), _without_mark(start_response))

    def _body(self, environ: dict[str, Any]) -> bytes | None:
        if environ.get("REQUEST_METHOD") in ("GET", "HEAD", "OPTIONS"):
            return b""
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return None
        if length > self.max_body or (
            not length and environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked"
        ):
            return None
        data = environ["wsgi.input"].read(length) if length else b""
        return data if len(data) == length else None


def _fresh(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    copy = dict(environ)
    copy["wsgi.input"] = io.BytesIO(body)
    return copy


def _without_mark(start_response: Callable[..., Any]) -> Callable[..., Any]:
    def start(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return start_response(status, [h for h in headers if h[0] != RETRY_MARK], exc_info)

    return start


def _no_write(_data: bytes) -> None:  # the write() callable; Flask never uses it
    raise RuntimeError("write() is not supported behind RetryOnceWhenDatabaseReturns")


def _close(result: Iterable[bytes]) -> None:
    close = getattr(result, "close", None)
    if close is not None:
        close()


def unavailable_answer() -> Any:
    """The 503 for the current request, in its caller's language."""
    if request.path.startswith("/api/"):
        response = jsonify(
            error={
                "code": "service_unavailable",
                "message": "The database is briefly unavailable; nothing was done. Retry"
                " after the Retry-After header's seconds.",
            }
        )
        response.status_code = 503
    elif request.path.startswith("/notify/"):
        response = _plain(NOTIFY_BODY)
    else:
        message = _(
            "We could not complete that just now. Nothing was charged. "
            "Please try again in a moment."
        )
        response = _page(message)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def _plain(text: str) -> Any:
    from flask import Response

    return Response(text, 503, mimetype="text/plain")


def _page(message: str) -> Any:
    from flask import make_response

    try:
        return make_response(render_template("message.html", message=message), 503)
    except Exception:  # a page that needs the database to render: plain text then
        return _plain(message)


def init_app(app: Flask) -> None:
    @app.before_request
    def _nothing_committed_yet() -> None:
        reset_commit_sent()

    @app.errorhandler(SQLAlchemyError)
    def _database_error(error: SQLAlchemyError) -> Any:
        if not is_connection_lost(error):
            raise error
        return _lost(error)

    try:
        import psycopg
    except ImportError:  # pragma: no cover
        psycopg = None  # type: ignore[assignment]
    if psycopg is not None:

        @app.errorhandler(psycopg.Error)
        def _driver_error(error: Exception) -> Any:
            if not is_connection_lost(error):
                raise error
            return _lost(error)

    app.wsgi_app = RetryOnceWhenDatabaseReturns(  # type: ignore[method-assign]
        app.wsgi_app, app.config.get("MAX_CONTENT_LENGTH") or 256 * 1024, RETRY_PAUSE_SECONDS
    )


def _lost(error: BaseException) -> Any:
    response = unavailable_answer()
    retryable = not commit_sent()
    log.warning(
        "database connection lost: %s %s answered 503%s (%s)",
        request.method,
        request.path,
        "" if not retryable else ", retried once",
        type(error).__name__,
    )
    if retryable:
        response.headers[RETRY_MARK] = "1"
    return response
