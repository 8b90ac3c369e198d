"""Delivering the outbox to shops: Standard Webhooks, at least once, with retries.

Events are claimed in a short transaction (a lease in `locked_until`, `FOR UPDATE SKIP
LOCKED` on PostgreSQL so concurrent workers take disjoint rows), POSTed outside any
transaction, and the outcome is written in another short transaction. A worker that
dies mid-batch leaves its lease to expire; the event is then sent again under the same
`webhook-id`, which shops use to drop duplicates.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from checkout.config import StoreConfig
from checkout.models import WebhookDelivery, WebhookEvent, utcnow
from checkout.services.errors import NotFound

log = logging.getLogger(__name__)

# Wait before each retry; after the last one the event is "failed" (about 44 h in all).
RETRY_SCHEDULE: tuple[timedelta, ...] = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=6),
    timedelta(hours=12),
    timedelta(hours=24),
)
LEASE = timedelta(seconds=60)  # renewed before each POST, so it covers one call, not a batch
RESPONSE_BODY_LIMIT = 1000  # WebhookDelivery.response_body
ERROR_LIMIT = 200  # WebhookDelivery.error
USER_AGENT = "checkout-webhooks/1"

PENDING, DELIVERED, FAILED, SKIPPED = "pending", "delivered", "failed", "skipped"

SessionFactory = Callable[[], Session]  # a sessionmaker; one per worker thread


# ---------------------------------------------------------------- signing
def webhook_body(event: WebhookEvent) -> str:
    """The JSON a shop receives; built from stored fields, so every retry is identical."""
    # Events queued before test mode existed were all live.
    livemode = event.payload.get("livemode", True)
    body: dict[str, Any] = {
        "id": event.public_id,
        "type": event.type,
        "seq": event.seq,
        "livemode": livemode,
        "timestamp": event.created_at.isoformat(),
        "data": {"livemode": livemode, **event.payload.get("data", {})},
    }
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def signed_headers(
    secrets: str | Sequence[str], msg_id: str, body: str, sent_at: datetime
) -> dict[str, str]:
    """The three Standard Webhooks headers; `sent_at` is wall-clock time (receivers
    reject timestamps more than 5 minutes off). With two secrets (a rotation) the
    signature header carries one `v1,<sig>` per secret, space-separated: a receiver
    holding either secret verifies it."""
    if isinstance(secrets, str):
        secrets = (secrets,)
    signature = " ".join(
        Webhook(secret).sign(msg_id=msg_id, timestamp=sent_at, data=body) for secret in secrets
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": signature,
    }


# ---------------------------------------------------------------- delivery
@dataclass(frozen=True)
class _Claimed:
    id: int
    public_id: str
    store_id: str
    body: str
    lease: datetime  # our locked_until: the proof we still own the event


@dataclass(frozen=True)
class _Outcome:
    status_code: int | None
    error: str | None
    duration_ms: int
    response_body: str | None

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def deliver_due(
    session_factory: SessionFactory,
    stores: Mapping[str, StoreConfig],
    *,
    now: datetime | None = None,
    batch: int = 10,
    timeout: tuple[float, float] = (3, 10),
    http: requests.Session | None = None,
) -> int:
    """Claim up to `batch` due events, send them, record each try; return how many.

    `now` is the scheduling clock (tests pass a future time instead of sleeping); it
    advances with real time during the call. Signatures always use the real clock.
    """
    started = time.monotonic()
    base = now or utcnow()

    def clock() -> datetime:
        return base + timedelta(seconds=time.monotonic() - started)

    claimed = _claim(session_factory, clock(), batch)
    if not claimed:
        return 0
    own_http = http is None
    http = http or requests.Session()
    try:
        for item in claimed:
            store = stores.get(item.store_id)
            if store is None or not store.webhook_url or not store.webhook_secret:
                _finish_skipped(session_factory, item)
                continue
            lease = _renew(session_factory, item, clock())
            if lease is None:  # our lease ran out and another worker took the event
                continue
            item = _Claimed(item.id, item.public_id, item.store_id, item.body, lease)
            outcome = _post(http, store, item, timeout)
            _record(session_factory, item, outcome, clock())
    finally:
        if own_http:
            http.close()
    return len(claimed)


def _claim(session_factory: SessionFactory, now: datetime, batch: int) -> list[_Claimed]:
    lease = now + LEASE
    with session_factory() as session, session.begin():
        events = session.scalars(
            select(WebhookEvent)
            .where(
                WebhookEvent.status == PENDING,
                WebhookEvent.next_attempt_at <= now,
                or_(WebhookEvent.locked_until.is_(None), WebhookEvent.locked_until <= now),
            )
            .order_by(WebhookEvent.next_attempt_at, WebhookEvent.id)
            .limit(batch)
            # PostgreSQL: concurrent workers skip each other's rows instead of waiting;
            # SQLite ignores this and serialises writers (BEGIN IMMEDIATE).
            .with_for_update(skip_locked=True)
        ).all()
        claimed = []
        for event in events:
            event.locked_until = lease
            claimed.append(
                _Claimed(event.id, event.public_id, event.store_id, webhook_body(event), lease)
            )
    return claimed


def _renew(session_factory: SessionFactory, item: _Claimed, now: datetime) -> datetime | None:
    """Extend our lease just before the POST; None if the event is no longer ours."""
    lease = now + LEASE
    with session_factory() as session, session.begin():
        result = session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.id == item.id,
                WebhookEvent.status == PENDING,
                WebhookEvent.locked_until == item.lease,
            )
            .values(locked_until=lease)
            .execution_options(synchronize_session=False)
        )
        owned = getattr(result, "rowcount", 0) == 1
    return lease if owned else None


def _post(
    http: requests.Session, store: StoreConfig, item: _Claimed, timeout: tuple[float, float]
) -> _Outcome:
    assert store.webhook_url and store.webhook_secret
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(store.webhook_secrets, item.public_id, item.body, datetime.now(UTC)),
    }
    started = time.monotonic()
    try:
        with http.post(
            store.webhook_url,
            data=item.body.encode(),
            headers=headers,
            timeout=timeout,
            allow_redirects=False,  # a redirect is not an acknowledgement
            stream=True,  # read only the start of whatever the shop answers
        ) as resp:
            return _Outcome(resp.status_code, None, _ms_since(started), _start_of_body(resp))
    except requests.Timeout as exc:
        return _Outcome(None, f"timeout: {type(exc).__name__}", _ms_since(started), None)
    except requests.RequestException as exc:
        # The class name only: requests' messages embed the URL, which may carry a token.
        return _Outcome(None, type(exc).__name__[:ERROR_LIMIT], _ms_since(started), None)


def _start_of_body(resp: requests.Response) -> str | None:
    """At most RESPONSE_BODY_LIMIT characters; the status code is what counts."""
    data = bytearray()
    try:
        for chunk in resp.iter_content(chunk_size=512):
            data += chunk
            if len(data) >= RESPONSE_BODY_LIMIT:
                break
    except requests.RequestException as exc:
        return f"<body unreadable: {type(exc).__name__}>"
    text = bytes(data).decode(resp.encoding or "utf-8", errors="replace")
    return text[:RESPONSE_BODY_LIMIT]


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record(
    session_factory: SessionFactory, item: _Claimed, outcome: _Outcome, now: datetime
) -> None:
    with session_factory() as session, session.begin():
        event = session.scalars(
            select(WebhookEvent).where(WebhookEvent.id == item.id).with_for_update()
        ).one()
        session.add(
            WebhookDelivery(
                event_id=event.id,
                attempted_at=now,
                status_code=outcome.status_code,
                error=outcome.error[:ERROR_LIMIT] if outcome.error else None,
                duration_ms=outcome.duration_ms,
                response_body=outcome.response_body,
            )
        )
        owned = event.status == PENDING and event.locked_until == item.lease
        if outcome.ok and event.status in (PENDING, FAILED):
            # Delivered is delivered, even if our lease had lapsed meanwhile.
            event.attempts = (event.attempts or 0) + 1
            event.status = DELIVERED
            event.delivered_at = now
            event.locked_until = None
        elif owned:
            event.attempts = (event.attempts or 0) + 1
            event.locked_until = None
            if event.attempts <= len(RETRY_SCHEDULE):
                event.next_attempt_at = now + RETRY_SCHEDULE[event.attempts - 1]
            else:
                event.status = FAILED
        attempts, status = event.attempts, event.status
    log.info(
        "webhook event=%s store=%s try=%s status_code=%s error=%s -> %s",
        item.public_id,
        item.store_id,
        attempts,
        outcome.status_code,
        outcome.error,
        status,
    )


def _finish_skipped(session_factory: SessionFactory, item: _Claimed) -> None:
    """No webhook_url: the event stays as the audit trail, marked as never sent."""
    with session_factory() as session, session.begin():
        session.execute(
            update(WebhookEvent)
            .where(WebhookEvent.id == item.id, WebhookEvent.locked_until == item.lease)
            .values(status=SKIPPED, locked_until=None)
            .execution_options(synchronize_session=False)
        )
    log.info("webhook event=%s store=%s skipped: no webhook_url", item.public_id, item.store_id)


def resend_event(session: Session, public_id: str) -> WebhookEvent:
    """Queue an event again now, with a fresh retry schedule and the same webhook-id."""
    event = session.scalars(
        select(WebhookEvent).where(WebhookEvent.public_id == public_id).with_for_update()
    ).one_or_none()
    if event is None:
        raise NotFound("event_not_found", f"No webhook event {public_id!r}.")
    now = utcnow()
    event.status = PENDING
    event.attempts = 0
    event.next_attempt_at = now
    event.pending_since = now  # the outbox's age counts from here, not from created_at
    event.locked_until = None
    event.delivered_at = None
    session.commit()
    return event


# ---------------------------------------------------------------- the worker
def run_worker(
    session_factory: SessionFactory,
    stores: Mapping[str, StoreConfig],
    *,
    once: bool = False,
    interval: float = 1.0,
    batch: int = 10,
    stop: threading.Event | None = None,
    each_round: Callable[[], object] | None = None,
) -> int:
    """Deliver until `stop` is set (or, with `once`, until nothing is due); return the count.

    A full batch means more may be waiting, so the loop goes on without sleeping;
    otherwise it sleeps `interval` seconds (bounded, and woken early by `stop`).
    `each_round` (e.g. reconciliation) runs once per idle round, errors logged.
    """
    stop = stop or threading.Event()
    pause = min(max(interval, 0.05), 60.0)
    total = 0
    with requests.Session() as http:  # one connection pool for the worker's life
        while not stop.is_set():
            try:
                done = deliver_due(session_factory, stores, batch=batch, http=http)
            except Exception:
                # A database hiccup must not end the worker; leases make the retry safe.
                if once:
                    raise
                log.exception("webhook delivery pass failed; retrying in %.1fs", pause)
                done = 0
            total += done
            if done >= batch:
                continue
            if each_round is not None:
                try:
                    each_round()
                except Exception:
                    if once:
                        raise
                    log.exception("worker round task failed; retrying next round")
            if once:
                break
            stop.wait(pause)
    return total
