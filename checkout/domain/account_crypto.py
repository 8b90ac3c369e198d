"""Bank account data at rest: Fernet tokens under a rotating list of keys.

Keys come from configuration as a list, **newest first**: new data is encrypted with the
first key; every key in the list still decrypts. To rotate: generate a key
(`AccountCipher.generate_key()`), put it first, keep the old ones after it, restart, then
re-encrypt stored tokens with `rotate` (it decrypts with any key and encrypts with the
first); once every token is rotated, drop the old key from the list.

No Flask here; the caller passes the configured keys.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from checkout.domain.errors import AccountCipherError


class AccountCipher:
    """Encrypts and decrypts account data (text or small JSON objects) with MultiFernet."""

    def __init__(self, keys: Sequence[str | bytes]) -> None:
        if isinstance(keys, str | bytes) or not keys:
            raise AccountCipherError("at least one Fernet key is required (a list, newest first)")
        fernets = []
        for index, key in enumerate(keys):
            try:
                fernets.append(Fernet(key))
            except (ValueError, TypeError) as exc:
                # Never echo a key, only which one is wrong.
                raise AccountCipherError(
                    f"key {index + 1} is not a Fernet key (32 url-safe base64 bytes)"
                ) from exc
        self._cipher = MultiFernet(fernets)
        self.key_count = len(fernets)

    @classmethod
    def from_setting(cls, value: str | Sequence[str]) -> AccountCipher:
        """From a configuration value: a list, or one string of keys separated by commas."""
        if isinstance(value, str):
            keys = [part.strip() for part in value.split(",") if part.strip()]
        else:
            keys = [str(part).strip() for part in value if str(part).strip()]
        return cls(keys)

    @staticmethod
    def generate_key() -> str:
        return Fernet.generate_key().decode("ascii")

    def encrypt(self, text: str) -> str:
        return self._cipher.encrypt(text.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._cipher.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError) as exc:
            raise AccountCipherError("no configured key opens this token") from exc

    def rotate(self, token: str) -> str:
        """The same data under the first (newest) key."""
        try:
            return self._cipher.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError) as exc:
            raise AccountCipherError("no configured key opens this token") from exc

    def encrypt_json(self, data: Mapping[str, Any]) -> str:
        return self.encrypt(json.dumps(dict(data), ensure_ascii=False, separators=(",", ":")))

    def decrypt_json(self, token: str) -> dict[str, Any]:
        value = json.loads(self.decrypt(token))
        if not isinstance(value, dict):
            raise AccountCipherError("the token does not hold an object")
        return value

    def __repr__(self) -> str:  # never show keys
        return f"AccountCipher(keys={self.key_count})"
