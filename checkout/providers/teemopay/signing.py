"""TeemoPay signatures: SHA1withRSA over a sorted `k=v&...&nonce=<nonce>` string.

Pure functions, shared by the client (signs requests, verifies callbacks) and the
sandbox (verifies requests, signs callbacks), so the rule lives in one place.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from cryptography.exceptions import InvalidSignature as CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SIGN_FIELD = "sign"


def scalar_text(value: Any) -> str:
    """How a JSON value is written in the string to sign.

    Strings as they are; integers as plain digits (`801`); decimals keep the text
    they had on the wire, which is why bodies are parsed with `parse_float=Decimal`;
    booleans as Java prints them. Objects and arrays as compact JSON (**inferred**: no
    TeemoPay body we sign or verify carries one).
    """
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # only reached if a caller skipped parse_float=Decimal
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def string_to_sign(fields: Mapping[str, Any], nonce: str) -> str:
    """Every field but `sign` with a non-empty value, sorted by key, then the nonce."""
    parts = [
        f"{key}={text}"
        for key, text in sorted((k, scalar_text(v)) for k, v in fields.items() if k != SIGN_FIELD)
        if text != ""
    ]
    parts.append(f"nonce={nonce}")
    return "&".join(parts)


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """A PKCS#8 (or PKCS#1) PEM RSA private key; ValueError if it is anything else."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def load_public_key(pem: bytes) -> rsa.RSAPublicKey:
    """A SubjectPublicKeyInfo PEM RSA public key; ValueError if it is anything else."""
    key = serialization.load_pem_public_key(pem)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("not an RSA public key")
    return key


def sign(fields: Mapping[str, Any], nonce: str, private_key: rsa.RSAPrivateKey) -> str:
    """Base64 SHA1withRSA (PKCS#1 v1.5) signature, as TeemoPay expects in `sign`."""
    message = string_to_sign(fields, nonce).encode("utf-8")
    signature = private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return base64.b64encode(signature).decode("ascii")


def verify(
    fields: Mapping[str, Any], nonce: str, signature: str, public_key: rsa.RSAPublicKey
) -> bool:
    """True if `signature` (Base64) signs `fields` + `nonce` under `public_key`."""
    if not signature or not nonce:
        return False
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    message = string_to_sign(fields, nonce).encode("utf-8")
    try:
        public_key.verify(raw, message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    except CryptoInvalidSignature:
        return False
    return True
