"""The notify inbox: every notify received, newest first, with the checkout it belongs to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from checkout.services.admin.checkouts import PAGE_SIZE, page_count
from checkout.services.admin.freshness import freshness_flags
from checkout.store.models import NotifyMessage, PaymentAttempt


def notifies(
    session: Session, verdict: str = "", page: int = 1, *, trade_no: str = ""
) -> tuple[list[NotifyMessage], int]:
    """The inbox, newest first; by verdict, and by trade number (verified or only claimed)."""
    query = select(NotifyMessage)
    if verdict:
        query = query.where(NotifyMessage.verdict == verdict)
    if trade_no:
        query = query.where(
            or_(NotifyMessage.trade_no == trade_no, NotifyMessage.claimed_trade_no == trade_no)
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(NotifyMessage.id.desc())
        .limit(PAGE_SIZE)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    return list(rows), total


@dataclass
class NotifyInbox:
    """One page of the inbox and what the page shows beside each notify."""

    rows: list[NotifyMessage]
    total: int
    attempts: dict[int, str] = field(default_factory=dict)  # attempt id -> checkout id
    claimed: dict[str, str] = field(default_factory=dict)  # trade number -> checkout id
    freshness: dict[int, list[str]] = field(default_factory=dict)

    @property
    def pages(self) -> int:
        return page_count(self.total)


def notify_inbox(
    session: Session, verdict: str, page: int, trade_no: str, max_ages: Mapping[str, int]
) -> NotifyInbox:
    """The inbox page: its notifies, the checkout of each (through its attempt, or, unverified,
    through the trade number it names) and their freshness flags."""
    rows, total = notifies(session, verdict, page, trade_no=trade_no)
    inbox = NotifyInbox(rows, total, freshness=freshness_flags(session, rows, max_ages))
    ids = {n.attempt_id for n in rows if n.attempt_id}
    if ids:
        inbox.attempts = {
            a.id: a.checkout_id
            for a in session.scalars(select(PaymentAttempt).where(PaymentAttempt.id.in_(ids)))
        }
    named = {n.trade_no or n.claimed_trade_no for n in rows if not n.attempt_id} - {None}
    if named:
        inbox.claimed = {
            a.trade_no: a.checkout_id
            for a in session.scalars(
                select(PaymentAttempt).where(PaymentAttempt.trade_no.in_(named))
            )
        }
    return inbox
