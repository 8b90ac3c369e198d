"""PayPro's request and notify signature: MD5 over sorted `k=v` pairs plus the app secret.

Documented (PayPro overview, Java step 1): every field except `sign` whose value is
non-empty, sorted by key, joined as `key1=value1key2=value2` with no separator.
Inferred (their step 2 only names an MD5 helper): the secret is appended as is; that
rule lives in `salt_with_secret` alone so it can be corrected in one place.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal

SIGN_FIELD = "sign"


def field_text(value: object) -> str | None:
    """A body value as the text PayPro signs it; None when it is absent or empty.

    Numbers keep their JSON text when parsed with `parse_float=Decimal` (so "1000.00"
    stays "1000.00"); booleans are JSON's `true`/`false`, as a Java toString gives.
    """
    if value is None:
        return None
    if isinstance(value, str):
        text = value
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, int | Decimal | float):
        text = str(value)
    else:
        # Nested objects are not in PayPro's pages; compact JSON is the likeliest text.
        # default=str: numbers inside them are Decimals (parse_float), which json cannot
        # encode; a crash here would answer a forged notify with a 500.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text or None


def sign_string(fields: Mapping[str, object]) -> str:
    """`key1=value1key2=value2...` over the non-empty fields except `sign`, sorted by key."""
    parts: list[str] = []
    for key in sorted(fields):
        if key == SIGN_FIELD:
            continue
        text = field_text(fields[key])
        if text is not None:
            parts.append(f"{key}={text}")
    return "".join(parts)


def salt_with_secret(unsalted: str, secret: str) -> str:
    """INFERRED: the app secret is appended directly (no `&`, no `key=`)."""
    return unsalted + secret


def sign(fields: Mapping[str, object], secret: str) -> str:
    """The lowercase hex MD5 PayPro expects in `sign`."""
    salted = salt_with_secret(sign_string(fields), secret)
    # MD5 is PayPro's choice, not ours; the secret salt is what authenticates.
    return hashlib.md5(salted.encode("utf-8")).hexdigest()  # noqa: S324


def verify(fields: Mapping[str, object], secret: str, signature: object) -> bool:
    """True if `signature` is the sign of `fields`; compared in constant time."""
    if not isinstance(signature, str) or not signature:
        return False
    expected = sign(fields, secret).encode("ascii")
    # Hex case carries no meaning; bytes so a non-ASCII signature cannot raise.
    return hmac.compare_digest(expected, signature.strip().lower().encode("utf-8"))
