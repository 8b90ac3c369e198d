"""JSON from untrusted bytes (notifies, provider answers, shop API bodies), parsed safely.

`json.loads` recurses once per nesting level (200 KB of "[" raise RecursionError, which is
no ValueError), converts exponent floats and 4,000-digit integers at full cost, and accepts
NaN and Infinity. Here the size and the nesting depth are checked first, in linear time,
before json.loads sees the text; numbers stay exact (fractions as Decimal, never float) and
bounded; and every failure, whatever it is, is one `UnsafeJson` (a ValueError), so each
caller's "not JSON" branch covers it.
"""

from __future__ import annotations

import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_DEPTH = 32  # no provider or shop body nests more than a few levels
MAX_BYTES = 256 * 1024  # as the app's MAX_CONTENT_LENGTH
MAX_NUMBER_CHARS = 64  # a number literal longer than this is no amount, id or timestamp
MAX_EXPONENT = 64  # |adjusted exponent| of a fraction: 1e999999 is refused here

# A JSON string (possibly unterminated: it then runs to the end, so the scan never restarts
# inside it); possessive, so matching is linear.
_STRING = re.compile(r'"(?:[^"\\]++|\\[\s\S]?+)*+"?')
_NOT_BRACKET = re.compile(r"[^\[\]{}]++")
_EMPTY_PAIR = re.compile(r"\[\]|\{\}")


class UnsafeJson(ValueError):
    """Not JSON, too large, too deep, or holding a number we do not read."""


def nesting_depth_exceeds(text: str, max_depth: int) -> bool:
    """True when `text` nests arrays/objects deeper than `max_depth` (or its brackets do not
    balance, which json.loads would refuse anyway). Linear: strings are dropped, then at most
    max_depth + 1 passes each remove the innermost empty pairs."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    for _ in range(max_depth):
        if not brackets:
            return False
        brackets, removed = _EMPTY_PAIR.subn("", brackets)
        if not removed:
            return True  # unbalanced
    return bool(brackets)


def _integer(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson(f"number of {len(text)} digits")
    return int(text)


def _fraction(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise UnsafeJson(f"number of {len(text)} characters")
    try:
        value = Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - json only passes number syntax
        raise UnsafeJson(f"unreadable number {text[:20]!r}") from exc
    if abs(value.adjusted()) > MAX_EXPONENT:
        raise UnsafeJson(f"number out of range {text[:20]!r}")
    return value


def _constant(name: str) -> Any:
    raise UnsafeJson(f"{name} is not a JSON number we read")


def loads(
    data: bytes | bytearray | str, *, max_depth: int = MAX_DEPTH, max_bytes: int = MAX_BYTES
) -> Any:
    """The parsed value of `data`; fractions are Decimal (their text exact), integers int.

    Raises UnsafeJson (a ValueError) for anything else: undecodable bytes, more than
    `max_bytes`, nesting deeper than `max_depth`, NaN/Infinity, over-long numbers, and any
    other error json.loads may raise.
    """
    if len(data) > max_bytes:
        raise UnsafeJson(f"body of {len(data)} bytes (at most {max_bytes})")
    try:
        text = data if isinstance(data, str) else bytes(data).decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError as exc:
        raise UnsafeJson("body is not UTF-8") from exc
    if nesting_depth_exceeds(text, max_depth):
        raise UnsafeJson(f"nested deeper than {max_depth} levels (or unbalanced)")
    try:
        return json.loads(text, parse_float=_fraction, parse_int=_integer, parse_constant=_constant)
    except UnsafeJson:
        raise
    except Exception as exc:  # JSONDecodeError, RecursionError, ...: all "not JSON"
        raise UnsafeJson(f"not JSON: {type(exc).__name__}") from exc
