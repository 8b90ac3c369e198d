"""Idempotency-Key: the same key and request within 24 h gets the first answer, exactly.

"The same request" compares parameters, not bytes: a JSON body is hashed in a canonical
form (keys sorted, no spacing), so the same object in another key order or spacing is a
replay; the same key with other parameters is a 409 `idempotency_key_reused`. Keys are kept
per store and mode (a test key's never answers a live key).

A key is claimed before the request runs (a row with no answer yet, committed), so twins
sent at once never both run: a twin with the same parameters waits, boundedly, for the
first answer and replays it; one with other parameters is refused at once. The claim is
released when the request ends in an error (nothing was done, it may be retried), and
taken over when its holder died (older than ABANDONED_AFTER, no answer).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checkout.services.errors import Conflict, InvalidRequest
from checkout.store.db import is_connection_lost, through_outage
from checkout.store.models import IdempotencyKey, utcnow

KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_LENGTH = 255
IN_FLIGHT = 0  # response_status of a claimed key whose first request has not answered yet
ABANDONED_AFTER = timedelta(minutes=2)  # longer than any request may run
WAIT_STEP_SECONDS = 0.02
MAX_WAIT_STEPS = 500  # a twin waits at most 10 s for the first answer


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str


@dataclass(frozen=True)
class IdempotentRequest:
    store_id: str
    livemode: bool
    key: str
    fingerprint: str


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(
        b"\n".join([method.encode(), path.encode(), canonical_body(body)])
    ).hexdigest()


def canonical_body(body: bytes) -> bytes:
    """The body's JSON with sorted keys and no spacing; the bytes as they are if not JSON."""
    try:
        parsed = json.loads(body)
        return json.dumps(parsed, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode(
            "utf-8", "surrogatepass"
        )
    except (ValueError, RecursionError):  # not JSON (or absurdly deep): compare bytes
        return body


def check_key(key: str) -> str:
    """1 to 255 visible ASCII characters (a UUID, an order id and a verb, ...)."""
    key = key.strip()
    if not key or len(key) > MAX_KEY_LENGTH or not all("!" <= c <= "~" for c in key):
        raise InvalidRequest(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces).",
            field="Idempotency-Key",
        )
    return key


def _row(session: Session, wanted: IdempotentRequest) -> IdempotencyKey | None:
    return session.scalars(
        select(IdempotencyKey)
        .where(
            IdempotencyKey.store_id == wanted.store_id,
            IdempotencyKey.livemode == wanted.livemode,
            IdempotencyKey.key == wanted.key,
        )
        .execution_options(populate_existing=True)
    ).one_or_none()


def _reused() -> Conflict:
    return Conflict(
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request in the last 24 hours.",
    )


def claim(session: Session, wanted: IdempotentRequest) -> StoredResponse | None:
    """None: this request now holds the key (end with `complete` or `release`). Else the
    first answer to replay. Conflict when the key went with other parameters, or when its
    first request is still running after the bounded wait."""
    for _step in range(MAX_WAIT_STEPS):
        session.rollback()  # a fresh look each time
        row = _row(session, wanted)
        now = utcnow()
        if row is not None and row.created_at < now - KEY_LIFETIME:
            session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == row.id))
            session.commit()
            continue
        if row is None:
            # The claim carries a token of this request's, so a COMMIT whose answer was lost
            # (the database restarting) can be told apart from a twin's claim.
            token = f"claim:{secrets.token_hex(8)}"
            session.add(
                IdempotencyKey(
                    store_id=wanted.store_id,
                    livemode=wanted.livemode,
                    key=wanted.key,
                    request_hash=wanted.fingerprint,
                    response_status=IN_FLIGHT,
                    response_body=token,
                    created_at=now,
                )
            )
            try:
                session.commit()
            except IntegrityError:  # a twin claimed it first: look again
                session.rollback()
                continue
            except Exception as error:
                if not is_connection_lost(error):
                    raise
                session.rollback()
                landed = through_outage(lambda: _row(session, wanted))
                session.rollback()
                if landed is not None and landed.response_body == token:
                    return None  # the claim is ours: it was committed
                continue
            return None
        if row.request_hash != wanted.fingerprint:
            raise _reused()
        if row.response_status != IN_FLIGHT:
            return StoredResponse(row.response_status, row.response_body)
        if row.created_at < now - ABANDONED_AFTER:  # its holder died: take it over
            row.created_at = now
            session.commit()
            return None
        session.rollback()
        time.sleep(WAIT_STEP_SECONDS)
    raise Conflict(
        "idempotency_key_in_use",
        "A request with this Idempotency-Key is still running; retry in a moment.",
    )


def complete(session: Session, wanted: IdempotentRequest, response: StoredResponse) -> None:
    """Keep the answer of the request that holds the key."""
    session.rollback()
    session.execute(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.store_id == wanted.store_id,
            IdempotencyKey.livemode == wanted.livemode,
            IdempotencyKey.key == wanted.key,
            IdempotencyKey.request_hash == wanted.fingerprint,
        )
        .values(response_status=response.status, response_body=response.body)
    )
    session.commit()


def release(session: Session, wanted: IdempotentRequest) -> None:
    """The request ended in an error and changed nothing: the key is free again."""
    session.rollback()
    session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.store_id == wanted.store_id,
            IdempotencyKey.livemode == wanted.livemode,
            IdempotencyKey.key == wanted.key,
            IdempotencyKey.response_status == IN_FLIGHT,
        )
    )
    session.commit()
