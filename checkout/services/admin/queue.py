"""What waits for an operator: refunds asked for and not yet approved (a second operator
must approve each), and checkouts flagged for review. The console's "Waiting" page lists
them, oldest first, and every console page's nav shows how many there are."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkout.domain.refunds import RefundStatus
from checkout.services.admin.checkouts import PAGE_SIZE, needs_review
from checkout.store.models import Checkout, Refund

MODES = ("live", "test")


@dataclass(frozen=True)
class WaitingCounts:
    refunds: int  # waiting for approval
    reviews: int  # checkouts flagged for review

    @property
    def total(self) -> int:
        return self.refunds + self.reviews


@dataclass(frozen=True)
class WaitingQueue:
    refunds: list[tuple[Refund, Checkout]]  # oldest first
    reviews: list[Checkout]  # oldest first
    counts: WaitingCounts  # all of them, beyond the first PAGE_SIZE of each


def _mode_filter(mode: str) -> list[object]:
    return [Checkout.livemode == (mode == "live")] if mode in MODES else []


def waiting_counts(session: Session, mode: str = "") -> WaitingCounts:
    """How many refunds wait for approval and checkouts for review (in `mode`, or both)."""
    refunds = session.scalar(
        select(func.count(Refund.id))
        .join(Checkout, Checkout.id == Refund.checkout_id)
        .where(Refund.status == RefundStatus.REQUESTED, *_mode_filter(mode))
    )
    reviews = session.scalar(
        select(func.count(Checkout.id)).where(needs_review(), *_mode_filter(mode))
    )
    return WaitingCounts(int(refunds or 0), int(reviews or 0))


def waiting_queue(session: Session, mode: str = "", limit: int = PAGE_SIZE) -> WaitingQueue:
    """The refunds waiting for approval and the checkouts waiting for review, oldest first."""
    refunds = session.execute(
        select(Refund, Checkout)
        .join(Checkout, Checkout.id == Refund.checkout_id)
        .where(Refund.status == RefundStatus.REQUESTED, *_mode_filter(mode))
        .order_by(Refund.created_at, Refund.id)
        .limit(limit)
    ).all()
    reviews = session.scalars(
        select(Checkout)
        .where(needs_review(), *_mode_filter(mode))
        .order_by(Checkout.created_at, Checkout.id)
        .limit(limit)
    ).all()
    return WaitingQueue(
        [(refund, checkout) for refund, checkout in refunds],
        list(reviews),
        waiting_counts(session, mode),
    )
