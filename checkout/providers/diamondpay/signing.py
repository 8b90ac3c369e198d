"""Diamond Pay signatures: MD5 over the sorted fields plus the key, or HMAC-SHA256.

String to sign: every body field except `sign` and `sign_type` whose value is
non-empty, sorted by key, `k=v` joined by `&`, no URL-encoding. MD5 appends
`&<key>` and hashes; HMAC-SHA256 keys the same string (without the key) with the
platform key. Both give lowercase hex. Used by the client and by the sandbox, so
both ends agree by construction; the tests pin the documented string.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

MD5 = "MD5"
HMAC_SHA256 = "HMAC-SHA256"
SIGN_TYPES = (MD5, HMAC_SHA256)
# Diamond Pay retired MD5 (psp-docs, Corrections): HMAC-SHA256 unless configured otherwise.
DEFAULT_SIGN_TYPE = HMAC_SHA256

# Fields that never enter the string to sign.
UNSIGNED_FIELDS = frozenset({"sign", "sign_type"})


def value_text(value: Any) -> str:
    """A field's text in the string to sign: what the JSON carried, unchanged.

    Integers print plainly; numbers with a fraction arrive as Decimal (JSON parsed
    with parse_float=Decimal), so they keep their written digits ("1.50").
    """
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: bool is an int subclass
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | Decimal):
        return str(value)
    # Nested values are not in Diamond Pay's tables; compact JSON keeps them stable.
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def sign_string(fields: Mapping[str, Any]) -> str:
    """`k=v&k=v` over the signed, non-empty fields, sorted by key."""
    parts = []
    for key in sorted(fields):
        if key in UNSIGNED_FIELDS:
            continue
        text = value_text(fields[key])
        if text == "":
            continue
        parts.append(f"{key}={text}")
    return "&".join(parts)


def normalise_sign_type(sign_type: Any) -> str:
    """The sign type a message declares; absent or empty means MD5.

    Raises ValueError for anything else, so callers can refuse it.
    """
    if sign_type is None or sign_type == "":
        return MD5
    if isinstance(sign_type, str) and sign_type.upper() in SIGN_TYPES:
        return sign_type.upper()
    raise ValueError(f"unsupported sign_type {sign_type!r}")


def sign(fields: Mapping[str, Any], key: str, sign_type: str = MD5) -> str:
    """The lowercase hex signature of `fields` with the platform key."""
    text = sign_string(fields)
    sign_type = normalise_sign_type(sign_type)
    if sign_type == HMAC_SHA256:
        return hmac.new(key.encode(), text.encode(), hashlib.sha256).hexdigest()
    # MD5 is what Diamond Pay specifies for this mode, not our choice of hash.
    return hashlib.md5((text + "&" + key).encode(), usedforsecurity=False).hexdigest()


def verify(fields: Mapping[str, Any], key: str, accepted: str) -> bool:
    """True if `fields["sign"]` matches and the message is signed with `accepted`, the one
    sign type configured: a message declaring another (absent means MD5) never verifies, so
    an HMAC-SHA256 platform cannot be downgraded to MD5 by dropping `sign_type`."""
    provided = fields.get("sign")
    if not isinstance(provided, str) or not provided:
        return False
    try:
        sign_type = normalise_sign_type(fields.get("sign_type"))
    except ValueError:
        return False
    if sign_type != normalise_sign_type(accepted):
        return False
    expected = sign(fields, key, sign_type)
    return hmac.compare_digest(expected.encode(), provided.lower().encode())
