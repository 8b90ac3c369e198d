"""Provider calls kept per attempt for the operator console, masked before they are stored.

What a provider was sent and what it answered is what an operator needs when a shop says
"the customer paid but the order is open". Both go through one mask before they reach the
database: payer details (names, mobile, e-mail, birth date, IP) are shortened to a hint,
signatures, tokens and keys are hidden, and whatever slipped through is masked again as log
lines are (e-mails, mobile numbers, configured secrets).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from checkout import jsonsafe
from checkout.logging_setup import mask_text
from checkout.providers.http import Exchange
from checkout.store.models import ProviderExchange, utcnow

BODY_LIMIT = 8000  # characters kept of each body

# Keys (lower case, without "_" and "-") whose values are personal data.
PERSONAL_KEYS = frozenset(
    {
        "name", "firstname", "lastname", "fullname", "realname", "payer", "payername",
        "username", "customername", "mobile", "mobileno", "phone", "phoneno", "phonenumber",
        "tel", "email", "mail", "dateofbirth", "birthdate", "birthday", "dob", "ipaddress",
        "ip", "clientip", "payerip", "idnumber", "idcard", "birth", "surname", "givenname",
        "holder", "holdername", "cellphone",
    }
)  # fmt: skip
# The same keys with the prefixes bodies put before them (payerEmail, customer_mobile).
PERSONAL_PREFIXES = ("payer", "customer", "buyer", "user", "client", "shopper", "account")
# Keys that hold credentials or signatures, wherever the word appears in them.
SECRET_KEY_PARTS = re.compile(
    r"sign|token|secret|password|apikey|privatekey|authorization|cookie|session"
)


def _normal(key: str) -> str:
    return key.lower().replace("_", "").replace("-", "")


def _hint(value: Any) -> str:
    text = str(value)
    if not text:
        return text
    return f"{text[0]}***" if len(text) > 2 else "***"


def _personal(normal: str) -> bool:
    if normal in PERSONAL_KEYS:
        return True
    return any(
        normal.startswith(prefix) and normal[len(prefix) :] in PERSONAL_KEYS
        for prefix in PERSONAL_PREFIXES
    )


_SECRET, _PERSONAL, _OTHER = 1, 2, 0


@functools.lru_cache(maxsize=2048)
def _key_kind(key: str) -> int:
    """What a body key holds (pure, and bodies repeat their keys: kept per process)."""
    normal = _normal(key)
    if SECRET_KEY_PARTS.search(normal):
        return _SECRET
    return _PERSONAL if _personal(normal) else _OTHER


def mask_value(key: str, value: Any) -> Any:
    kind = _key_kind(key)
    if kind == _SECRET:
        return "***" if value not in (None, "") else value
    if kind == _PERSONAL and isinstance(value, str | int) and value != "":
        return _hint(value)
    return mask_structure(value)


def mask_structure(data: Any) -> Any:
    if isinstance(data, dict):
        return {key: mask_value(str(key), value) for key, value in data.items()}
    if isinstance(data, list):
        return [mask_structure(item) for item in data]
    return data


def mask_body(body: bytes | None) -> str | None:
    """A provider body as it may be shown and stored: JSON with personal and secret values
    masked by key, anything else masked as log text; cut to BODY_LIMIT characters."""
    if body is None:
        return None
    text = body.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    try:
        # Bounded depth and size, so mask_structure's recursion is bounded too.
        parsed = jsonsafe.loads(text)
    except ValueError:
        masked = text
    else:
        masked = json.dumps(mask_structure(parsed), ensure_ascii=False, default=str)
    # Cut before masking: showing a 256 KB body costs what showing 8,000 characters does.
    return mask_text(masked, limit=BODY_LIMIT)


def mask_headers(headers: dict[str, str] | None) -> str:
    """Stored request headers as they may be shown: signatures, tokens, cookies hidden,
    personal values shortened, the rest masked as log text."""
    if not headers:
        return ""
    masked = mask_structure({str(k): v for k, v in headers.items()})
    return mask_text(json.dumps(masked, ensure_ascii=False, indent=1, sort_keys=True))


def mask_ip(ip: str | None) -> str:
    """A payer's IP as provider calls show it: a hint, never the address."""
    return str(mask_value("ip", ip)) if ip else ""


def exchange_rows(
    attempt_id: int, operation: str, exchanges: Iterable[Exchange], now: datetime
) -> list[dict[str, Any]]:
    """The calls as provider_exchanges rows, masked (the ledger writes them with its plan)."""
    return [
        {
            "attempt_id": attempt_id,
            "provider": exchange.provider,
            "operation": operation,
            "http_method": exchange.method[:10],
            "path": exchange.path[:500],
            "request_body": mask_body(exchange.request_body),
            "response_status": exchange.status,
            "response_body": mask_body(exchange.response_body),
            "outcome": exchange.outcome[:32],
            "duration_ms": round(exchange.seconds * 1000),
            "created_at": now,
        }
        for exchange in exchanges
    ]


def record_exchanges(
    session: Session, attempt_id: int, operation: str, exchanges: Iterable[Exchange]
) -> None:
    """Add the calls to the caller's transaction (kept if and only if it commits)."""
    for row in exchange_rows(attempt_id, operation, exchanges, utcnow()):
        session.add(ProviderExchange(**row))
