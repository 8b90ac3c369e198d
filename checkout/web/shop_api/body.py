"""The one body reader and the one answer writer of the shop API.

A body is read by the bounded parser for untrusted bytes (checkout/jsonsafe.py), then every
string in it (keys too) is checked before any use case sees it: no lone surrogate (it cannot
be stored or encoded: it was a 500), no NUL (PostgreSQL refuses it in text), at most
MAX_STRING_CHARS, and containers nested at most MAX_NESTING deep (no shop body nests more
than an object in an object). Each refusal is a 400 naming the field.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from flask import Response, current_app, request

from checkout import jsonsafe
from checkout.services.errors import InvalidRequest

MAX_STRING_CHARS = 8192  # a URL, a reason, a description: far below; a megabyte: refused
MAX_NESTING = 4  # the body object, an object in it (destination, prefill), a list in that


def json_body() -> Any:
    """The request's JSON body, checked; InvalidRequest (400) naming the field otherwise."""
    raw = request.get_data(cache=True)
    if not raw or not request.is_json:
        raise InvalidRequest(
            "invalid_json", "The body must be JSON (Content-Type: application/json)."
        )
    try:
        data = jsonsafe.loads(raw)
    except jsonsafe.UnsafeJson:
        raise InvalidRequest(
            "invalid_json", "The body must be JSON (Content-Type: application/json)."
        ) from None
    for path, depth, text in _strings(data, "", 1):
        _check(path, depth, text)
    return data


def _strings(value: Any, path: str, depth: int) -> Iterator[tuple[str, int, str | None]]:
    """(field path, nesting depth, text or None for a container) for every value and key;
    the path names object keys ("destination.holder_name"), list items by their list."""
    if isinstance(value, dict):
        yield path, depth, None
        for key, item in value.items():
            inner = f"{path}.{key}" if path else key
            yield inner, depth, key
            yield from _strings(item, inner, depth + 1)
    elif isinstance(value, list):
        yield path, depth, None
        for item in value:
            yield from _strings(item, path, depth + 1)
    elif isinstance(value, str):
        yield path, depth, value


def _check(path: str, depth: int, text: str | None) -> None:
    field = _printable(path) or None
    if depth > MAX_NESTING:
        raise InvalidRequest(
            "nesting_too_deep",
            f"{field or 'The body'} nests objects or lists deeper than {MAX_NESTING} levels.",
            field=field,
        )
    if text is None:
        return
    if len(text) > MAX_STRING_CHARS:
        raise InvalidRequest(
            "string_too_long",
            f"{field} must be at most {MAX_STRING_CHARS} characters.",
            field=field,
        )
    if "\x00" in text or not _encodable(text):
        raise InvalidRequest(
            "invalid_string",
            f"{field} holds a NUL character or a lone UTF-16 surrogate (\\u0000, \\ud800): "
            "not text.",
            field=field,
        )


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(path: str) -> str:
    """The path as an answer may carry it (a key may itself be the broken text)."""
    return path.encode("utf-8", "replace").decode("utf-8").replace("\x00", "?")


def answer(data: Any, status: int = 200) -> Response:
    """Every answer of the API: compact JSON (the app's JSON provider, as jsonify)."""
    response = current_app.json.response(data)
    response.status_code = status
    return response
