"""Applying provider updates: amounts, repeats, contradictions (services.lifecycle)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from checkout.domain.money import Money
from checkout.domain.states import AttemptStatus, CheckoutStatus
from checkout.models import Base, Checkout, PaymentAttempt, Store, utcnow
from checkout.providers.base import PaymentUpdate
from checkout.services.lifecycle import Verdict, apply_update


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    engine = create_engine(f"sqlite:///{tmp_path / 'l.sqlite3'}")
    Base.metadata.create_all(engine)
    with Session(engine, expire_on_commit=False) as s:
        yield s
    engine.dispose()


def make_attempt(
    session: Session, trade_no: str = "T1", checkout: Checkout | None = None
) -> PaymentAttempt:
    if checkout is None:
        session.add(Store(id="s", name="S"))
        checkout = Checkout(
            store_id="s", order_id="o", amount=10000, currency="KRW", amount_paid=0,
            return_url="https://shop.example/", status=CheckoutStatus.PENDING,
            expires_at=utcnow() + timedelta(hours=1),
        )  # fmt: skip
        session.add(checkout)
    attempt = PaymentAttempt(
        checkout=checkout, trade_no=trade_no, provider="p", method="m", amount=10000,
        currency="KRW", status=AttemptStatus.PENDING,
    )  # fmt: skip
    session.add(attempt)
    session.flush()
    return attempt


def update(status: AttemptStatus, amount: int | None, currency: str = "KRW") -> PaymentUpdate:
    paid = Money(amount, currency) if amount is not None else None
    return PaymentUpdate("T1", status, "x", paid)


def test_paid_in_full(session: Session) -> None:
    attempt = make_attempt(session)
    assert apply_update(session, attempt, update(AttemptStatus.PAID, 10000)) == Verdict.ACCEPTED
    assert attempt.status == "paid" and attempt.checkout.status == "paid"
    assert attempt.checkout.amount_paid == 10000 and attempt.review_reason is None
    # The same news again changes nothing.
    assert apply_update(session, attempt, update(AttemptStatus.PAID, 10000)) == Verdict.DUPLICATE
    assert attempt.checkout.amount_paid == 10000


def test_less_is_partial_even_when_the_provider_says_paid(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.PAID, 4000))
    assert attempt.status == "partially_paid" and attempt.checkout.status == "partially_paid"
    assert attempt.amount_paid == 4000


def test_more_is_paid_and_flagged(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.PAID, 12000))
    assert attempt.status == "paid" and "overpaid" in (attempt.review_reason or "")


@pytest.mark.parametrize(
    "news", [update(AttemptStatus.PAID, None), update(AttemptStatus.PAID, 10000, "MXN")]
)
def test_unusable_amount_moves_nothing_and_is_flagged(
    session: Session, news: PaymentUpdate
) -> None:
    attempt = make_attempt(session)
    assert apply_update(session, attempt, news) == Verdict.AMOUNT_MISMATCH
    assert attempt.status == "pending" and attempt.checkout.status == "pending"
    assert attempt.review_reason


def test_a_final_status_is_never_overturned(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.FAILED, None))
    assert attempt.checkout.status == "open"  # the shopper may try again
    assert apply_update(session, attempt, update(AttemptStatus.PAID, 10000)) == Verdict.CONFLICT
    assert attempt.status == "failed" and attempt.checkout.amount_paid == 0
    assert "paid after failed" in (attempt.review_reason or "")


def test_still_pending_is_no_change(session: Session) -> None:
    attempt = make_attempt(session)
    assert apply_update(session, attempt, update(AttemptStatus.PENDING, None)) == Verdict.NO_CHANGE


def test_money_for_a_settled_checkout_is_kept_and_flagged(session: Session) -> None:
    first = make_attempt(session)
    apply_update(session, first, update(AttemptStatus.PAID, 10000))
    second = make_attempt(session, "T2", first.checkout)
    assert apply_update(session, second, update(AttemptStatus.PAID, 10000)) == Verdict.ACCEPTED
    assert second.status == "paid"
    assert first.checkout.status == "paid" and first.checkout.amount_paid == 20000
    assert "arrived while paid" in (first.checkout.review_reason or "")
