"""Idempotency-Key: the same key and request within 24 h gets the same answer.

"The same request" compares parameters, not bytes: a JSON body is hashed in a canonical
form (keys sorted, no spacing), so the same object in another key order or spacing is a
replay. Keys are kept per store and mode (a test key's never answers a live key).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checkout.models import IdempotencyKey, utcnow
from checkout.services.errors import Conflict, InvalidRequest

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(
        b"\n".join([method.encode(), path.encode(), canonical_body(body)])
    ).hexdigest()


def canonical_body(body: bytes) -> bytes:
    """The body's JSON with sorted keys and no spacing; the bytes as they are if not JSON."""
    try:
        parsed = json.loads(body)
        return json.dumps(
            parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False
        ).encode()
    except (ValueError, RecursionError):  # not JSON (or absurdly deep): compare bytes
        return body


def check_key(key: str) -> str:
    """1 to 255 visible ASCII characters (a UUID, an order id and a verb, ...)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not all("!" <= c <= "~" for c in key):
        raise InvalidRequest(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).",
        )
    return key


def replay(
    session: Session, store_id: str, key: str, fingerprint: str, livemode: bool = True
) -> StoredResponse | None:
    """The stored answer for this key, None if unseen; a different request is a Conflict."""
    row = session.scalars(
        select(IdempotencyKey).where(
            IdempotencyKey.store_id == store_id,
            IdempotencyKey.livemode == livemode,
            IdempotencyKey.key == key,
        )
    ).one_or_none()
    if row is None:
        return None
    if row.created_at < utcnow() - KEY_LIFETIME:
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
        session.commit()
        return None
    if row.request_hash != fingerprint:
        raise Conflict(
            "idempotency_key_reused",
            "This Idempotency-Key was used with a different request in the last 24 hours.",
        )
    return StoredResponse(row.response_status, row.response_body)


def remember(
    session: Session,
    store_id: str,
    key: str,
    fingerprint: str,
    response: StoredResponse,
    livemode: bool = True,
) -> None:
    """Keep the answer; a concurrent twin that stored first wins (its answer is equal)."""
    session.add(
        IdempotencyKey(
            store_id=store_id,
            livemode=livemode,
            key=key,
            request_hash=fingerprint,
            response_status=response.status,
            response_body=response.body,
        )
    )
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
