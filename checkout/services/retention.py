"""Retention: raw notify bodies and headers are personal data; the audit trail is not.

A notify's raw body (payer names, accounts, amounts) and headers are needed while a
payment may still be disputed or reconciled. After `notify_retention_days` only the row
stays: provider, times, trade number, attempt, verdict, response status and detail. The
purge is marked in `detail` (no schema change), which also makes it idempotent.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from checkout.store.models import NotifyMessage

PURGED_MARKER = "[raw body and headers purged]"

_DETAIL_MAX = 500  # NotifyMessage.detail is String(500)
_BATCH = 500  # rows per transaction: short locks, bounded memory
_MAX_BATCHES = 100_000  # a bound on the loop; 50 million rows is far beyond any backlog


def purged_detail(detail: str | None) -> str:
    """The detail with the purge marker appended, within the column's 500 characters."""
    kept = (detail or "").strip()
    room = _DETAIL_MAX - len(PURGED_MARKER) - 1
    return f"{kept[:room]} {PURGED_MARKER}" if kept else PURGED_MARKER


def purge_notify_bodies(session: Session, older_than: timedelta, now: datetime) -> int:
    """Blank the raw body and headers of notifies received before `now - older_than`.

    Keeps every row and its verdict, trade number, attempt and times. Commits in batches
    and returns how many messages were purged (already purged ones are not counted).
    """
    if older_than <= timedelta(0):
        raise ValueError("older_than must be positive: purging fresh notifies loses evidence")
    cutoff = now - older_than
    not_purged = or_(NotifyMessage.detail.is_(None), ~NotifyMessage.detail.endswith(PURGED_MARKER))
    purged = 0
    for _ in range(_MAX_BATCHES):
        batch = session.scalars(
            select(NotifyMessage)
            .where(NotifyMessage.received_at < cutoff, not_purged)
            .order_by(NotifyMessage.id)
            .limit(_BATCH)
        ).all()
        if not batch:
            break
        for message in batch:
            message.body = ""
            message.headers = {}
            message.detail = purged_detail(message.detail)
        session.commit()
        purged += len(batch)
    return purged
