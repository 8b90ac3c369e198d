"""The daily summary (`flask daily-summary`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus
from checkout.services.admin.checkouts import day_start, needs_review
from checkout.store.models import Checkout, PaymentAttempt


def store_label(store_id: str, livemode: bool) -> str:
    """A store as the summary counts it: test-mode checkouts apart from live ones."""
    return store_id if livemode else f"{store_id} [test]"


def format_amount(amount: int, currency: str) -> str:
    """Minor units as the currency's units with its code: "KRW 15000", "MXN 150.00"."""
    return f"{currency} {Money(amount, currency).format_plain()}"


def format_amounts(amounts: Mapping[str, int]) -> str:
    return ", ".join(format_amount(a, c) for c, a in sorted(amounts.items())) or "-"


def _add(amounts: dict[str, int], currency: str, amount: int | None) -> None:
    if amount:
        amounts[currency] = amounts.get(currency, 0) + int(amount)


@dataclass
class StoreDay:
    """A store's checkouts created on the day, by their status now."""

    created: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    paid: dict[str, int] = field(default_factory=dict)


@dataclass
class ProviderDay:
    """A store's payment attempts started on the day at one provider, by their status now:
    each attempt counts at its own provider."""

    attempts: int = 0
    paid: int = 0  # paid or partially paid
    failed: int = 0
    expired: int = 0
    live: int = 0  # still creating, pending or unknown
    amount_paid: dict[str, int] = field(default_factory=dict)


@dataclass
class DailySummary:
    day: date
    checkouts: dict[str, StoreDay]
    attempts: dict[tuple[str, str], ProviderDay]  # (store, provider instance)
    review: list[Checkout]  # waiting for review, whatever day they were created


def daily_summary(session: Session, day: date) -> DailySummary:
    """Checkouts created on `day` (UTC) per store; attempts started on `day` per store and
    provider (a checkout that failed at one provider and was paid at another counts a
    failure for the first and a payment for the second); and every checkout awaiting review."""
    start, end = day_start(day), day_start(day + timedelta(1))
    checkouts: dict[str, StoreDay] = {}
    for store, livemode, status, currency, n, due, paid in session.execute(
        select(
            Checkout.store_id,
            Checkout.livemode,
            Checkout.status,
            Checkout.currency,
            func.count(),
            func.sum(Checkout.amount),
            func.sum(Checkout.amount_paid),
        )
        .where(Checkout.created_at >= start, Checkout.created_at < end)
        .group_by(Checkout.store_id, Checkout.livemode, Checkout.status, Checkout.currency)
    ):
        row = checkouts.setdefault(store_label(store, livemode), StoreDay())
        row.created += n
        row.statuses[status] = row.statuses.get(status, 0) + n
        _add(row.due, currency, due)
        _add(row.paid, currency, paid)
    attempts: dict[tuple[str, str], ProviderDay] = {}
    for store, livemode, provider, status, currency, n, paid in session.execute(
        select(
            Checkout.store_id,
            Checkout.livemode,
            PaymentAttempt.provider,
            PaymentAttempt.status,
            PaymentAttempt.currency,
            func.count(),
            func.sum(PaymentAttempt.amount_paid),
        )
        .join(Checkout, Checkout.id == PaymentAttempt.checkout_id)
        .where(PaymentAttempt.created_at >= start, PaymentAttempt.created_at < end)
        .group_by(
            Checkout.store_id,
            Checkout.livemode,
            PaymentAttempt.provider,
            PaymentAttempt.status,
            PaymentAttempt.currency,
        )
    ):
        entry = attempts.setdefault((store_label(store, livemode), provider), ProviderDay())
        entry.attempts += n
        if status in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
            entry.paid += n
        elif status == AttemptStatus.FAILED:
            entry.failed += n
        elif status == AttemptStatus.EXPIRED:
            entry.expired += n
        else:
            entry.live += n
        _add(entry.amount_paid, currency, paid)
    review = session.scalars(
        select(Checkout).where(needs_review()).order_by(Checkout.created_at)
    ).all()
    return DailySummary(day, checkouts, attempts, list(review))


def review_reason_of(checkout: Checkout) -> str:
    """The checkout's flag, or its attempts' (rows flagged before flags were copied)."""
    if checkout.review_reason:
        return checkout.review_reason
    return "; ".join(
        f"attempt {a.trade_no}: {a.review_reason}" for a in checkout.attempts if a.review_reason
    )
