"""The refund-account link a shop or an operator sends a shopper: signed and expiring.

    /refund-account/<refund id>?t=<expires_at>.<hex HMAC-SHA256(SECRET_KEY,
        "refund-account:<refund id>:<expires_at>")>

Whoever holds the link may give the account for that one refund, once (the account is fixed
afterwards), before it expires; it is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import time

LINK_LIFETIME_SECONDS = 7 * 24 * 3600


def account_link_token(secret_key: str, refund_id: str, expires_at: int | None = None) -> str:
    expires = int(time.time()) + LINK_LIFETIME_SECONDS if expires_at is None else expires_at
    return f"{expires}.{_mac(secret_key, refund_id, expires)}"


def check_account_link_token(
    secret_key: str, refund_id: str, token: str | None, now: float | None = None
) -> bool:
    expires_text, _, mac = (token or "").partition(".")
    if not expires_text.isdigit() or len(expires_text) > 12 or len(mac) != 64:
        return False
    if (time.time() if now is None else now) > int(expires_text):
        return False
    return hmac.compare_digest(
        _mac(secret_key, refund_id, int(expires_text)).encode(), mac.encode()
    )


def account_link(base_url: str, secret_key: str, refund_id: str, locale: str | None = None) -> str:
    url = f"{base_url}/refund-account/{refund_id}?t={account_link_token(secret_key, refund_id)}"
    return url + (f"&lang={locale}" if locale in ("ko", "es", "en") else "")


def _mac(secret_key: str, refund_id: str, expires_at: int) -> str:
    message = f"refund-account:{refund_id}:{expires_at}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()
