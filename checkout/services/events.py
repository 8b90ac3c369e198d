"""The events API: a store's webhook events, for a shop to catch up without an operator.

Every read is scoped to one store and one mode (a test key sees test checkouts' events
only) and to the last EVENTS_WINDOW; anything else is "not found".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.config import StoreConfig
from checkout.services.errors import Conflict, NotFound
from checkout.services.webhooks import (
    DEFAULT_DEADLINE,
    USER_AGENT,
    post_within_deadline,
    resend_event,
    signed_headers,
)
from checkout.store.models import Checkout, WebhookDelivery, WebhookEvent, new_public_id, utcnow

EVENTS_WINDOW = timedelta(days=30)
DEFAULT_PAGE = 20
MAX_PAGE = 100
PING_TYPE = "webhook.ping"


@dataclass(frozen=True)
class EventPage:
    events: list[WebhookEvent]
    has_more: bool


def _scoped(store_id: str, livemode: bool, now: datetime) -> Any:
    return (
        select(WebhookEvent)
        .join(Checkout, Checkout.id == WebhookEvent.checkout_id)
        .where(
            WebhookEvent.store_id == store_id,
            Checkout.livemode == livemode,
            WebhookEvent.created_at >= now - EVENTS_WINDOW,
        )
    )


def list_events(
    session: Session,
    store_id: str,
    livemode: bool,
    *,
    event_type: str | None = None,
    checkout_id: str | None = None,
    starting_after: str | None = None,
    limit: int = DEFAULT_PAGE,
) -> EventPage:
    """Newest first; `starting_after` (an event id from the previous page) pages on."""
    now = utcnow()
    query = _scoped(store_id, livemode, now)
    if event_type is not None:
        query = query.where(WebhookEvent.type == event_type)
    if checkout_id is not None:
        query = query.where(WebhookEvent.checkout_id == checkout_id)
    if starting_after is not None:
        cursor = session.scalars(
            _scoped(store_id, livemode, now).where(WebhookEvent.public_id == starting_after)
        ).one_or_none()
        if cursor is None:  # as for GET /events/<id>: another store's or too old
            raise NotFound("event_not_found", "starting_after names no event of yours.")
        query = query.where(WebhookEvent.id < cursor.id)
    rows = list(session.scalars(query.order_by(WebhookEvent.id.desc()).limit(limit + 1)))
    return EventPage(rows[:limit], has_more=len(rows) > limit)


def get_event(session: Session, store_id: str, livemode: bool, public_id: str) -> WebhookEvent:
    event = session.scalars(
        _scoped(store_id, livemode, utcnow()).where(WebhookEvent.public_id == public_id)
    ).one_or_none()
    if event is None:
        raise NotFound("event_not_found", "No such event.")
    return event


def deliveries_of(session: Session, event: WebhookEvent) -> list[WebhookDelivery]:
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id == event.id)
            .order_by(WebhookDelivery.id)
        )
    )


def resend(session: Session, store_id: str, livemode: bool, public_id: str) -> WebhookEvent:
    """Queue one of the store's events again now (same webhook-id, fresh retries)."""
    event = get_event(session, store_id, livemode, public_id)
    session.rollback()  # resend_event locks the row in its own transaction
    return resend_event(session, event.public_id)


@dataclass(frozen=True)
class PingResult:
    id: str
    url: str
    status_code: int | None
    error: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def ping_body(ping_id: str, livemode: bool, sent_at: datetime) -> str:
    import json

    body = {
        "id": ping_id,
        "type": PING_TYPE,
        "seq": 0,
        "livemode": livemode,
        "timestamp": sent_at.isoformat(),
        "data": {"object": "webhook_ping", "livemode": livemode},
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True)


def send_ping(store: StoreConfig, livemode: bool, deadline: float = DEFAULT_DEADLINE) -> PingResult:
    """POST a signed `webhook.ping` to the store's webhook_url now, as a delivery would be
    (same headers, every active secret, the same total `deadline`); nothing is stored or
    retried."""
    if not store.webhook_url or not store.webhook_secrets:
        raise Conflict(
            "no_webhook_endpoint", "This store has no webhook_url configured: nothing to ping."
        )
    ping_id = new_public_id("evt")
    sent_at = datetime.now(UTC)
    body = ping_body(ping_id, livemode, sent_at)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        **signed_headers(store.webhook_secrets, ping_id, body, sent_at),
    }
    outcome = post_within_deadline(store.webhook_url, body, headers, deadline=deadline)
    status_code, error, duration_ms = outcome.status_code, outcome.error, outcome.duration_ms
    return PingResult(ping_id, store.webhook_url, status_code, error, duration_ms)
