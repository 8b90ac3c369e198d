"""Readiness and the backlog figures /readyz and /metrics report."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from checkout.domain.states import WebhookStatus
from checkout.store.models import Checkout, WebhookEvent, utcnow


def database_ready(session: Session) -> bool:
    try:
        session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        session.rollback()


def outbox_backlog(session: Session, now: datetime | None = None) -> tuple[int, float]:
    """(pending webhook events, age in seconds of the oldest one; 0 when none).

    The age counts from when each event last became due (`pending_since`: created, or
    resent by an operator), so resending a days-old event does not look like a stuck worker.
    """
    count, oldest = session.execute(
        select(func.count(), func.min(WebhookEvent.pending_since)).where(
            WebhookEvent.status == WebhookStatus.PENDING
        )
    ).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(((now or utcnow()) - oldest).total_seconds(), 0.0)


def counts_by(session: Session, column: Any) -> Mapping[str, int]:
    return {key: n for key, n in session.execute(select(column, func.count()).group_by(column))}


def database_gauges(session: Session) -> tuple[Mapping[str, int], int, float]:
    """What /metrics reads from the database at a scrape: checkouts by status, pending
    webhook events and the oldest one's age in seconds. Only reads: the transaction (and
    any lock) ends here."""
    try:
        counts = dict(counts_by(session, Checkout.status))
        backlog, age = outbox_backlog(session)
    finally:
        session.rollback()
    return counts, backlog, age
