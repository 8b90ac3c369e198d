"""Linkhub's token request signature (HMAC-SHA256), as its SDKs compute it.

Documented (py-linkhub linkhub.py, node-linkhub TokenBuilder.js, java-linkhub): the string
to sign is "POST", the base64 SHA-256 of the exact body bytes, the x-lh-date value, the
x-lh-forwarded value when that header is sent, the API version "2.0", and the path
"/{ServiceID}/Token", joined by newlines; the key is the base64-decoded secret key.
(An older guide names MD5 and a 2017 post SHA-1; all current SDKs sign as here.)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from datetime import UTC, datetime

API_VERSION = "2.0"
AUTH_SCHEME = "LINKHUB"


def lh_date(now: datetime) -> str:
    """The x-lh-date value as py-linkhub writes it: UTC, seconds, a Z."""
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def token_path(service_id: str) -> str:
    return f"/{service_id}/Token"


def body_hash(body: bytes) -> str:
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def string_to_sign(body: bytes, date: str, forwarded: str | None, service_id: str) -> str:
    lines = ["POST", body_hash(body), date]
    if forwarded is not None:
        lines.append(forwarded)
    lines += [API_VERSION, token_path(service_id)]
    return "\n".join(lines)


class BadSecretKey(ValueError):
    """A secret key that is not base64 text (configuration error)."""


def secret_bytes(secret_key: str) -> bytes:
    try:
        return base64.b64decode(secret_key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise BadSecretKey("the Linkhub secret key is not base64 text") from exc


def sign(secret_key: str, body: bytes, date: str, forwarded: str | None, service_id: str) -> str:
    """The base64 HMAC-SHA256 of the string to sign, keyed by the decoded secret key."""
    message = string_to_sign(body, date, forwarded, service_id).encode("utf-8")
    digest = hmac.new(secret_bytes(secret_key), message, hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def authorization(link_id: str, signature: str) -> str:
    return f"{AUTH_SCHEME} {link_id} {signature}"


def parse_authorization(header: str) -> tuple[str, str] | None:
    """(link id, signature) of an `Authorization: LINKHUB <id> <sig>` header, else None."""
    parts = header.split(" ")
    if len(parts) != 3 or parts[0] != AUTH_SCHEME or not parts[1] or not parts[2]:
        return None
    return parts[1], parts[2]


def verify(
    secret_key: str,
    body: bytes,
    date: str,
    forwarded: str | None,
    service_id: str,
    signature: str,
) -> bool:
    """True if `signature` signs this request; compared in constant time."""
    expected = sign(secret_key, body, date, forwarded, service_id).encode("ascii")
    return hmac.compare_digest(expected, signature.encode("utf-8"))
