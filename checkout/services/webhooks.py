"""Delivering the outbox to shops: Standard Webhooks, at least once, with retries.

Events are claimed in a short transaction (a lease in `locked_until`, `FOR UPDATE SKIP
LOCKED` on PostgreSQL so concurrent workers take disjoint rows), POSTed outside any
transaction, and the outcome is written in another short transaction. A worker that
dies mid-batch leaves its lease to expire; the event is then sent again under the same
`webhook-id`, which shops use to drop duplicates.

Every delivery has one total deadline (`webhook_deadline`, default 10 s) over connect,
headers and the body read: a watchdog shuts the socket when it passes, so a shop that
answers a byte at a time is cut off there. Deliveries run on a bounded pool of threads
per worker (`webhook_threads`), at most `webhook_threads_per_store` of them for any one
store, so one slow shop never holds back another shop's webhooks.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import socket
import ssl
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from standardwebhooks import Webhook

from checkout.config import (
    DEFAULT_DEADLINE,
    DEFAULT_THREADS,
    DEFAULT_THREADS_PER_STORE,
    DEFAULT_TIMEOUT,
    DeliveryOptions,
    StoreConfig,
)
from checkout.domain.states import WebhookStatus
from checkout.services.errors import NotFound
from checkout.store.db import log_failure, through_outage
from checkout.store.models import WebhookDelivery, WebhookEvent, utcnow

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
# A try's error until its outcome is written: what the history shows for a try whose
# worker stopped (or lost the database) between sending it and recording its answer.
OUTCOME_UNKNOWN = "sent; no outcome recorded (the worker stopped before writing it)"

PENDING, DELIVERED, FAILED, SKIPPED = (
    WebhookStatus.PENDING,
    WebhookStatus.DELIVERED,
    WebhookStatus.FAILED,
    WebhookStatus.SKIPPED,
)
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


@dataclass
class _Lanes:
    running: int = 0
    waiting: deque[Callable[[], None]] = field(default_factory=deque)


class DeliveryPool:
    """A bounded pool of delivery threads where one store holds at most `per_store`.

    Each store's jobs run in at most `per_store` lanes (a lane runs that store's jobs one
    after another); other stores' lanes take the remaining threads, so a shop that is slow
    or drips its answer delays only its own webhooks.
    """

    def __init__(self, threads: int, per_store: int) -> None:
        if not 1 <= per_store < threads:
            raise ValueError("per_store must be between 1 and threads - 1")
        self.per_store = per_store
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="webhook")
        self._guard = threading.Condition()
        self._stores: dict[str, _Lanes] = {}

    def submit(self, store_id: str, job: Callable[[], None]) -> None:
        with self._guard:
            lanes = self._stores.setdefault(store_id, _Lanes())
            if lanes.running >= self.per_store:
                lanes.waiting.append(job)
                return
            lanes.running += 1
        self._executor.submit(self._lane, store_id, job)

    def _lane(self, store_id: str, job: Callable[[], None]) -> None:
        while True:
            try:
                job()
            except Exception as error:  # one delivery's failure must not end the lane
                log_failure(log, error, "webhook delivery failed store=%s", store_id)
            with self._guard:
                lanes = self._stores[store_id]
                if not lanes.waiting:
                    lanes.running -= 1
                    if lanes.running == 0:
                        del self._stores[store_id]
                    self._guard.notify_all()
                    return
                job = lanes.waiting.popleft()

    def busy_stores(self) -> set[str]:
        """Stores with every lane taken: the next claim leaves their events for later."""
        with self._guard:
            return {
                store
                for store, lanes in self._stores.items()
                if lanes.running >= self.per_store or lanes.waiting
            }

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._guard:
            return self._guard.wait_for(lambda: not self._stores, timeout)

    def shutdown(self) -> None:
        self.wait_idle()
        self._executor.shutdown(wait=True)


def deliver_due(
    session_factory: SessionFactory,
    stores: Mapping[str, StoreConfig],
    *,
    now: datetime | None = None,
    batch: int = 10,
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
    pool: DeliveryPool | None = None,
) -> int:
    """Claim up to `batch` due events and deliver them; return how many were claimed.

    Without `pool`, a pool of this call's own delivers them and the call returns when all
    are recorded. With the worker's `pool`, they are handed to it and the call returns at
    once; stores whose lanes are all busy are left out of the claim.

    `now` is the scheduling clock (tests pass a future time instead of sleeping); it
    advances with real time during the call. Signatures always use the real clock.
    """
    started = time.monotonic()
    base = now or utcnow()

    def clock() -> datetime:
        return base + timedelta(seconds=time.monotonic() - started)

    own_pool = pool is None
    work = pool or DeliveryPool(DEFAULT_THREADS, DEFAULT_THREADS_PER_STORE)
    try:
        claimed = _claim(session_factory, clock(), batch, exclude=work.busy_stores())
        for item in claimed:
            work.submit(
                item.store_id,
                lambda item=item: _deliver_one(
                    session_factory, stores, item, clock, timeout, deadline
                ),
            )
    finally:
        if own_pool:
            work.shutdown()
    return len(claimed)


def _deliver_one(
    session_factory: SessionFactory,
    stores: Mapping[str, StoreConfig],
    item: _Claimed,
    clock: Callable[[], datetime],
    timeout: tuple[float, float],
    deadline: float,
) -> None:
    store = stores.get(item.store_id)
    if store is None or not store.webhook_url or not store.webhook_secret:
        _finish_skipped(session_factory, item)
        return
    renewed = _renew(session_factory, item, clock())
    if renewed is None:  # our lease ran out and another worker took the event
        return
    lease, delivery_id = renewed
    item = _Claimed(item.id, item.public_id, item.store_id, item.body, lease)
    outcome = _post(store, item, timeout, deadline)
    _record_surviving_outages(session_factory, item, delivery_id, outcome, clock)


def _claim(
    session_factory: SessionFactory, now: datetime, batch: int, exclude: set[str] | None = None
) -> list[_Claimed]:
    lease = now + LEASE
    query = (
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
    )
    if exclude:
        query = query.where(WebhookEvent.store_id.not_in(sorted(exclude)))
    with session_factory() as session, session.begin():
        events = session.scalars(query).all()
        claimed = []
        for event in events:
            event.locked_until = lease
            claimed.append(
                _Claimed(event.id, event.public_id, event.store_id, webhook_body(event), lease)
            )
    return claimed


def _renew(
    session_factory: SessionFactory, item: _Claimed, now: datetime
) -> tuple[datetime, int] | None:
    """Extend our lease just before the POST and record the try it is about to make (its
    outcome unknown until `_record` writes it), so the history keeps every try the shop may
    have received, whatever stops this worker between the send and the record. None if the
    event is no longer ours."""
    lease = now + LEASE
    with session_factory() as session, session.begin():
        result = session.execute(
            update(WebhookEvent)
            .where(
                WebhookEvent.id == item.id,
                WebhookEvent.status == PENDING,
                WebhookEvent.locked_until == item.lease,
            )
            .values(locked_until=lease, attempts=func.coalesce(WebhookEvent.attempts, 0) + 1)
            .execution_options(synchronize_session=False)
        )
        if getattr(result, "rowcount", 0) != 1:
            return None
        delivery = WebhookDelivery(event_id=item.id, attempted_at=now, error=OUTCOME_UNKNOWN)
        session.add(delivery)
        session.flush()
        delivery_id = delivery.id
    return lease, delivery_id


class _Watchdog:
    """Shuts a connection's socket when the delivery's deadline passes, from a timer
    thread: whatever the delivering thread is blocked in (connect, headers, a dripping
    body) then fails at once."""

    def __init__(self, seconds: float) -> None:
        # The socket itself, not the connection's attribute: http.client drops that for a
        # "Connection: close" answer while the response still reads from the socket.
        self.sock: socket.socket | None = None
        self.fired = threading.Event()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def _fire(self) -> None:
        self.fired.set()
        sock = self.sock
        if sock is not None:
            with contextlib.suppress(OSError):  # already closed: nothing left to cut
                sock.shutdown(socket.SHUT_RDWR)

    def cancel(self) -> None:
        self._timer.cancel()


def _connection(url: str, connect_timeout: float) -> tuple[http.client.HTTPConnection, str]:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("webhook_url must be an http(s) URL")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    if parts.scheme == "https":
        conn: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname,
            parts.port,
            timeout=connect_timeout,
            context=ssl.create_default_context(),
        )
    else:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=connect_timeout)
    return conn, target


def _post(
    store: StoreConfig, item: _Claimed, timeout: tuple[float, float], deadline: float
) -> _Outcome:
    assert store.webhook_url and store.webhook_secret
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(store.webhook_secrets, item.public_id, item.body, datetime.now(UTC)),
    }
    return post_within_deadline(store.webhook_url, item.body, headers, timeout, deadline)


def post_within_deadline(
    url: str,
    body: str,
    headers: Mapping[str, str],
    timeout: tuple[float, float] = DEFAULT_TIMEOUT,
    deadline: float = DEFAULT_DEADLINE,
) -> _Outcome:
    """One POST to a shop, bounded by `deadline` seconds in all (connect, headers, body);
    every request this app sends a shop (deliveries, pings) goes through here. The duration
    is measured after the start of the body was read (what the exchange really took)."""
    connect_timeout, read_timeout = timeout
    started = time.monotonic()
    try:
        conn, target = _connection(url, min(connect_timeout, deadline))
    except ValueError:
        return _Outcome(None, "invalid webhook_url", _ms_since(started), None)
    watchdog = _Watchdog(deadline)
    status: int | None = None
    try:
        conn.connect()
        watchdog.sock = conn.sock
        if watchdog.fired.is_set() or conn.sock is None:  # connected just past the deadline
            raise TimeoutError("deadline passed while connecting")
        conn.sock.settimeout(min(read_timeout, deadline))
        # No redirects are followed: a redirect is not an acknowledgement.
        conn.request("POST", target, body=body.encode(), headers=dict(headers))
        resp = conn.getresponse()
        status = resp.status
        answer = _start_of_body(resp, watchdog)
        return _Outcome(status, None, _ms_since(started), answer)
    except (TimeoutError, OSError, http.client.HTTPException) as exc:
        # The class name only: messages may quote the URL, which may carry a token.
        if watchdog.fired.is_set() or time.monotonic() - started >= deadline:
            # The watchdog, or a socket timeout cut to what the deadline left: the deadline.
            error = f"timeout: deadline of {deadline:g} s passed"
        elif isinstance(exc, TimeoutError):
            error = f"timeout: {type(exc).__name__}"
        elif isinstance(exc, ConnectionError):  # refused, reset, aborted, broken pipe
            error = "ConnectionError"
        else:
            error = type(exc).__name__
        return _Outcome(status, error[:ERROR_LIMIT], _ms_since(started), None)
    finally:
        watchdog.cancel()
        conn.close()


def _start_of_body(resp: http.client.HTTPResponse, watchdog: _Watchdog) -> str | None:
    """At most RESPONSE_BODY_LIMIT characters; the status code is what counts. A body
    cut at the deadline is shown as far as it came."""
    data = bytearray()
    try:
        while len(data) < RESPONSE_BODY_LIMIT:
            chunk = resp.read1(RESPONSE_BODY_LIMIT - len(data))
            if not chunk:
                break
            data += chunk
    except (OSError, http.client.HTTPException) as exc:
        reason = "deadline" if watchdog.fired.is_set() else type(exc).__name__
        return f"<body cut: {reason}> " + bytes(data).decode("utf-8", errors="replace")
    if watchdog.fired.is_set():  # the socket was shut: what came before the deadline
        return "<body cut: deadline> " + bytes(data).decode("utf-8", errors="replace")
    charset = resp.headers.get_content_charset() or "utf-8"
    try:
        text = bytes(data).decode(charset, errors="replace")
    except LookupError:
        text = bytes(data).decode("utf-8", errors="replace")
    return text[:RESPONSE_BODY_LIMIT]


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _record_surviving_outages(
    session_factory: SessionFactory,
    item: _Claimed,
    delivery_id: int,
    outcome: _Outcome,
    clock: Callable[[], datetime],
) -> None:
    """Write the outcome, through a database restart or failover (an outcome written is a
    resend saved). If it still cannot be written, the try stays recorded with its outcome
    unknown and the lease expires into a resend under the same webhook-id."""
    through_outage(lambda: _record(session_factory, item, delivery_id, outcome, clock()))


def _record(
    session_factory: SessionFactory,
    item: _Claimed,
    delivery_id: int,
    outcome: _Outcome,
    now: datetime,
) -> None:
    with session_factory() as session, session.begin():
        event = session.scalars(
            select(WebhookEvent).where(WebhookEvent.id == item.id).with_for_update()
        ).one()
        session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id == delivery_id)
            .values(
                status_code=outcome.status_code,
                error=outcome.error[:ERROR_LIMIT] if outcome.error else None,
                duration_ms=outcome.duration_ms,
                response_body=outcome.response_body,
            )
            .execution_options(synchronize_session=False)
        )
        owned = event.status == PENDING and event.locked_until == item.lease
        # `attempts` already counts this try (_renew).
        if outcome.ok and event.status in (PENDING, FAILED):
            # Delivered is delivered, even if our lease had lapsed meanwhile.
            event.status = DELIVERED
            event.delivered_at = now
            event.locked_until = None
        elif owned:
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
    options: DeliveryOptions | None = None,
) -> int:
    """Deliver until `stop` is set (or, with `once`, until nothing is due); return the count.

    Deliveries run on this worker's DeliveryPool (`options`). A full claim means more may
    be waiting, so the loop goes on without sleeping; otherwise it sleeps `interval`
    seconds (bounded, and woken early by `stop`). `each_round` (e.g. reconciliation) runs
    once per idle round, errors logged. On stop, the deliveries in hand are finished
    (each within its deadline).
    """
    options = options or DeliveryOptions()
    stop = stop or threading.Event()
    pause = min(max(interval, 0.05), 60.0)
    total = 0
    pool = DeliveryPool(options.threads, options.threads_per_store)
    try:
        while not stop.is_set():
            try:
                done = deliver_due(
                    session_factory,
                    stores,
                    batch=batch,
                    timeout=options.timeout,
                    deadline=options.deadline,
                    pool=pool,
                )
                if once:
                    pool.wait_idle()
            except Exception as error:
                # A database hiccup must not end the worker; leases make the retry safe.
                if once:
                    raise
                log_failure(log, error, "webhook delivery pass failed; retrying in %.1fs", pause)
                done = 0
            total += done
            if done >= batch:
                continue
            if each_round is not None:
                try:
                    each_round()
                except Exception as error:
                    if once:
                        raise
                    log_failure(log, error, "worker round task failed; retrying next round")
            if once:
                break
            stop.wait(pause)
    finally:
        pool.shutdown()
    return total
