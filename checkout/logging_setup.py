"""Logging that never writes personal data or secrets: every record is masked.

Masking happens when a record is created (a LogRecord factory), not in one handler's
filter, so it covers every logger and handler in the process: ours, werkzeug's request
lines (query strings can carry an e-mail in a return_url), gunicorn's, and pytest's
caplog. Tracebacks are masked too (exception messages can quote SQL parameters).
Our own code never logs names or payer details; the patterns are the safety net.

The same factory stamps every record with the id of the request being handled
(`record.request_id`, from a context variable the app sets per request; None outside a
request), so a line can be traced to its request whichever logger wrote it.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import traceback
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from typing import Any

_EMAIL_AT = r"(?:@|%40|%2540)"  # raw, URL-encoded, double-encoded (query strings)
_SEP = r"(?:[\s.-]|%20|\+)?"  # a separator people type, also URL-encoded
# Digit patterns start after a non-alphanumeric, or right after a URL-encoded "=", " ",
# "+" or ":" (a query string inside a return_url); alphanumeric bounds keep hex ids intact.
_START = r"(?:(?<![A-Za-z0-9_])|(?<=%3D)|(?<=%3d)|(?<=%20)|(?<=%2B)|(?<=%3A))"
_END = r"(?![A-Za-z0-9_])"
# A run of digits followed by ":dd" is a clock, not a phone: "2026-12-07 10:39:10" has ten
# digits from an area-code-like "2" to the hour, and was masked as "<mobile>:39:10".
_NOT_TIME = r"(?!(?::|%3A|%3a)\d)"
# A date followed by a time (ISO, or a space, also URL-encoded) is a timestamp, not a birth date.
_NOT_DATETIME = r"(?!(?:[T ]|%20)\d{2}(?::|%3A|%3a))"
# Nor is a number with its currency after it ("5512345678 MXN" is an amount in centavos).
_NOT_AMOUNT = r"(?!\s?(?:KRW|MXN|원))"
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Linear on any input: a local part starts only where a run of its characters starts
    # (the lookbehind), so a long run is scanned once, not once per position; and the mask
    # runs on to the end of that run, so no address can hide in the tail of a match.
    (
        re.compile(
            rf"(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]+{_EMAIL_AT}[A-Za-z0-9.-]+\.[A-Za-z]{{2,}}"
            r"[A-Za-z0-9._%+@-]*+"
        ),
        "<email>",
    ),
    # Each digit pattern first looks ahead for the characters its match can start with, so
    # _START's six lookbehinds run only there (the masking of a line took 27 us, now ~9).
    # Korean mobiles: 010-1234-5678, 01012345678, +82 10 1234 5678, 821012345678.
    (
        re.compile(
            rf"(?=[+%08]){_START}(?:(?:\+|%2B)?82{_SEP}0?|0)1[016789]{_SEP}\d{{3,4}}{_SEP}\d{{4}}{_END}{_NOT_TIME}{_NOT_AMOUNT}"
        ),
        "<mobile>",
    ),
    # Mexican mobiles: ten digits from an area code starting 2-9, optionally +52 or +52 1,
    # with single separators or parentheses anywhere ("(55) 1234-5678"). The first digit
    # keeps Unix timestamps (1...) readable.
    (
        re.compile(
            rf"(?=[+%(2-9]){_START}(?:(?:\+|%2B)?52{_SEP}(?:1{_SEP})?)?\(?[2-9](?:(?:[\s().-]|%20){{0,2}}\d){{9}}{_END}{_NOT_TIME}{_NOT_AMOUNT}"
        ),
        "<mobile>",
    ),
    # Dates (of birth): 1990-05-17, 1990/05/17, 1990.05.17, 19900517, 17/05/1990. An ISO
    # timestamp (a date followed by a time) is not a birth date and stays readable.
    (
        re.compile(
            rf"(?=[12]){_START}(?:19|20)\d{{2}}([-/.]?)(?:0[1-9]|1[0-2])\1(?:0[1-9]|[12]\d|3[01])"
            rf"{_END}{_NOT_DATETIME}"
        ),
        "<date>",
    ),
    (
        re.compile(
            rf"(?=[0-3]){_START}(?:0[1-9]|[12]\d|3[01])[-/.](?:0[1-9]|1[0-2])[-/.](?:19|20)\d{{2}}{_END}{_NOT_DATETIME}"
        ),
        "<date>",
    ),
]

# Configured secrets (API keys, provider secrets, SECRET_KEY) are replaced wherever they
# appear. Short values are skipped: masking "1" everywhere would make logs unreadable.
_MIN_SECRET_LEN = 8
_secrets: set[str] = set()
_secrets_re: re.Pattern[str] | None = None
_secrets_lock = threading.Lock()


def register_secrets(values: Iterable[Any]) -> None:
    """Add values that must never appear in a log line (idempotent, process-wide)."""
    global _secrets_re
    fresh = {str(v) for v in values if v is not None and len(str(v)) >= _MIN_SECRET_LEN}
    with _secrets_lock:
        if fresh <= _secrets:
            return
        _secrets.update(fresh)
        # Longest first, so a secret containing another is replaced whole.
        ordered = sorted(_secrets, key=len, reverse=True)
        _secrets_re = re.compile("|".join(re.escape(s) for s in ordered))


# At most this much of one text is masked and shown; the rest is cut off first, so no log
# line, stored body or page pays for more (bodies shown in the console cut far shorter).
MASK_LIMIT = 64 * 1024
# Masked beyond the cut, so a value straddling it is masked whole before the cut is made.
_CUT_MARGIN = 320


def mask_text(text: str, limit: int = MASK_LIMIT) -> str:
    """`text` with personal data and secrets masked, cut to `limit` characters first.

    Linear in min(len(text), limit): every pattern is free of quadratic backtracking.
    """
    if len(text) > limit:
        masked = _mask_all(text[: limit + _CUT_MARGIN])
        return masked[:limit] + f"... ({len(text) - limit} more characters)"
    return _mask_all(text)


def _mask_all(text: str) -> str:
    secrets_re = _secrets_re
    if secrets_re is not None:
        text = secrets_re.sub("<secret>", text)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    """Replace the record's message (and traceback text) by its masked form, in place."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging itself reports it at emit time
        return record
    masked = mask_text(message)
    if masked != message or record.args:
        record.msg, record.args = masked, None
    record.checkout_masked = True  # type: ignore[attr-defined]
    if record.exc_info and not record.exc_text:
        # Formatters reuse exc_text when it is set, so this is what every handler prints.
        record.exc_text = mask_text("".join(traceback.format_exception(*record.exc_info)))
        record.exc_text = record.exc_text.rstrip("\n")
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    return record


# The id of the request this thread is handling (checkout/observability.py sets and clears it).
_request_id: ContextVar[str | None] = ContextVar("checkout_request_id", default=None)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(value: str | None) -> None:
    """Mark the current context as handling request `value` (None: no request)."""
    _request_id.set(value)


class MaskingFilter(logging.Filter):
    """Masks a record; for handlers created outside this process's record factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        # A record of this process's factory is masked already (and cannot have changed:
        # its message was frozen into `msg`).
        if not getattr(record, "checkout_masked", False):
            mask_record(record)
        return True


_factory_lock = threading.Lock()


def install_masking() -> None:
    """Mask every log record created from now on in this process (idempotent)."""
    with _factory_lock:
        current = logging.getLogRecordFactory()
        if getattr(current, "_checkout_masking", False):
            return

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            record = current(*args, **kwargs)
            record.request_id = _request_id.get()
            return mask_record(record)

        factory._checkout_masking = True  # type: ignore[attr-defined]
        logging.setLogRecordFactory(factory)


class RequestIdFilter(logging.Filter):
    """Gives every record a `request_id` attribute ("-" outside a request) for text formats.

    Records made by the masking factory already carry it; this covers any other record.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "request_id", None) is None:
            record.request_id = _request_id.get() or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line (CHECKOUT_LOG_FORMAT=json): time, level, logger, message,
    and `request_id` on every line written while a request is handled."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = getattr(record, "request_id", None) or _request_id.get()
        if request_id and request_id != "-":
            entry["request_id"] = request_id
        if record.exc_info:
            entry["exception"] = record.exc_text or self.formatException(record.exc_info)
        return mask_text(json.dumps(entry, ensure_ascii=False))


def configure_logging(level: int = logging.INFO, json_lines: bool | None = None) -> None:
    """One masked stream handler on the root logger; `json_lines` defaults from the env."""
    import os

    install_masking()
    if json_lines is None:
        json_lines = os.environ.get("CHECKOUT_LOG_FORMAT", "").lower() == "json"
    root = logging.getLogger()
    if not any(isinstance(f, MaskingFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        formatter: logging.Formatter = (
            JsonFormatter()
            if json_lines
            else logging.Formatter(
                "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"
            )
        )
        handler.setFormatter(formatter)
        handler.addFilter(MaskingFilter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # its plugin chatter is noise


def secrets_of_config(settings: Any, raw: Mapping[str, Any] | None = None) -> list[str]:
    """Every configured secret: SECRET_KEY, plain API keys (sandbox), store and provider secrets.

    Plain API keys exist only in the raw config (settings keep their SHA-256).
    """
    values: list[Any] = [getattr(settings, "secret_key", None)]
    values.append(getattr(settings, "metrics_token", None))
    for store in getattr(settings, "stores", {}).values():
        values.append(getattr(store, "link_secret", None))
        values.append(getattr(store, "webhook_secret", None))
        values.append(getattr(store, "webhook_secret_next", None))
    for table in ((raw or {}).get("stores") or {}).values():
        if isinstance(table, Mapping):
            values.extend(table.get("api_keys") or ())
    for provider in getattr(settings, "providers", {}).values():
        for key, value in (getattr(provider, "settings", {}) or {}).items():
            if _is_secret_key(key):
                values.append(value)
    return [v for v in values if isinstance(v, str) and v]


_SECRET_KEYS = ("secret", "key", "token", "password")
_NOT_SECRET = ("_file", "sign_type")  # key *files* are paths; sign_type is "MD5"


def _is_secret_key(name: str) -> bool:
    lowered = name.lower()
    if lowered.endswith(_NOT_SECRET):
        return False
    return any(word in lowered for word in _SECRET_KEYS)
