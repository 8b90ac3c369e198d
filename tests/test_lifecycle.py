"""Applying provider updates: amounts, repeats, contradictions, the timeline, unknown
outcomes, late money (services.lifecycle, services.reconcile)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from checkout.domain.money import Money
from checkout.domain.states import (
    AttemptStatus,
    CheckoutStatus,
    EventSource,
    TransitionError,
    attempt_transition,
    checkout_transition,
)
from checkout.models import (
    Base,
    Checkout,
    PaymentAttempt,
    StateEvent,
    Store,
    WebhookEvent,
    utcnow,
)
from checkout.providers.base import OrderNotFound, PaymentUpdate, ProviderError
from checkout.services.lifecycle import (
    Verdict,
    apply_update,
    set_attempt_status,
    set_checkout_status,
)
from checkout.services.reconcile import UNKNOWN_SETTLE, query_backoff, reconcile_due


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


def test_money_for_a_failed_attempt_is_kept_and_flagged(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.FAILED, None))
    assert attempt.checkout.status == "open"  # the shopper may try again
    assert apply_update(session, attempt, update(AttemptStatus.PAID, 10000)) == Verdict.ACCEPTED
    assert attempt.status == "paid" and attempt.checkout.status == "paid"
    assert attempt.amount_paid == 10000 and attempt.checkout.amount_paid == 10000
    assert attempt.review_reason == "paid after failed"
    assert attempt.checkout.review_reason == "paid after failed"
    session.flush()
    assert events(session)[-2:] == [
        ("attempt", "failed", "paid", "notify"),
        ("checkout", "open", "paid", "notify"),
    ]
    queued = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert queued[-1].type == "checkout.paid"
    assert queued[-1].payload["data"]["review_reason"] == "paid after failed"


def test_part_of_the_money_for_a_failed_attempt_is_partially_paid(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.FAILED, None))
    assert apply_update(session, attempt, update(AttemptStatus.PAID, 4000)) == Verdict.ACCEPTED
    assert attempt.status == "partially_paid" and attempt.checkout.status == "partially_paid"
    assert "paid after failed" in (attempt.checkout.review_reason or "")


@pytest.mark.parametrize(
    ("news", "verdict", "reason"),
    [
        (update(AttemptStatus.PAID, 12000), Verdict.ACCEPTED, "overpaid: 12000 KRW"),
        (update(AttemptStatus.PAID, None), Verdict.AMOUNT_MISMATCH, "unusable amount"),
        (update(AttemptStatus.PAID, 10000, "MXN"), Verdict.AMOUNT_MISMATCH, "unusable amount"),
    ],
)
def test_every_attempt_flag_also_flags_its_checkout(
    session: Session, news: PaymentUpdate, verdict: Verdict, reason: str
) -> None:
    attempt = make_attempt(session)
    attempt.checkout.review_reason = "customer called"  # an operator's flag stays
    assert apply_update(session, attempt, news) == verdict
    assert reason in (attempt.review_reason or "")
    flag = attempt.checkout.review_reason or ""
    assert flag.startswith(f"attempt T1: {attempt.review_reason}")
    assert flag.endswith("; customer called")


def test_a_conflict_flags_the_attempt_and_its_checkout(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.PAID, 10000))
    assert apply_update(session, attempt, update(AttemptStatus.FAILED, None)) == Verdict.CONFLICT
    assert attempt.review_reason == "provider reported failed after paid"
    assert attempt.checkout.review_reason == "attempt T1: provider reported failed after paid"
    assert attempt.status == "paid" and attempt.checkout.status == "paid"


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


# ---------------------------------------------------------------- timeline, unknown, late money
def events(session: Session) -> list[tuple[str, str | None, str, str]]:
    rows = session.scalars(select(StateEvent).order_by(StateEvent.id)).all()
    return [(e.kind, e.from_status, e.to_status, e.source) for e in rows]


def test_changes_are_recorded_once_with_their_source(session: Session) -> None:
    attempt = make_attempt(session)
    apply_update(session, attempt, update(AttemptStatus.PAID, 10000), source=EventSource.QUERY)
    apply_update(session, attempt, update(AttemptStatus.PAID, 10000))  # a repeat: nothing
    assert not set_checkout_status(
        session, attempt.checkout, CheckoutStatus.PAID, source=EventSource.OPERATOR
    )
    assert not set_attempt_status(session, attempt, AttemptStatus.PAID, source=EventSource.OPERATOR)
    session.flush()
    assert events(session) == [
        ("attempt", "pending", "paid", "query"),
        ("checkout", "pending", "paid", "query"),
    ]


@pytest.mark.parametrize(
    ("start", "news"),
    [
        (AttemptStatus.FAILED, update(AttemptStatus.PENDING, None)),
        (AttemptStatus.PAID, update(AttemptStatus.FAILED, None)),
        (AttemptStatus.PAID, update(AttemptStatus.PARTIALLY_PAID, 5000)),
        (AttemptStatus.PARTIALLY_PAID, update(AttemptStatus.FAILED, None)),
        (AttemptStatus.EXPIRED, update(AttemptStatus.FAILED, None)),
        (AttemptStatus.EXPIRED, update(AttemptStatus.PENDING, None)),
    ],
)
def test_other_final_statuses_never_move(
    session: Session, start: AttemptStatus, news: PaymentUpdate
) -> None:
    attempt = make_attempt(session)
    attempt.status = start
    session.flush()
    assert apply_update(session, attempt, news) == Verdict.CONFLICT
    assert attempt.status == start and events(session) == []


def test_money_after_expiry_is_kept_and_flagged(session: Session) -> None:
    attempt = make_attempt(session)
    attempt.status = AttemptStatus.EXPIRED
    attempt.checkout.status = CheckoutStatus.EXPIRED
    session.flush()
    assert apply_update(session, attempt, update(AttemptStatus.PAID, 12000)) == Verdict.ACCEPTED
    assert attempt.status == "paid" and attempt.checkout.status == "paid"
    assert (attempt.review_reason or "").startswith("paid late; overpaid")
    assert attempt.checkout.review_reason == (
        "paid late; attempt T1: overpaid: 12000 KRW received for 10000 KRW"
    )
    assert attempt.checkout.amount_paid == 12000


def test_unknown_is_live_and_moves_only_where_allowed() -> None:
    unknown = AttemptStatus.UNKNOWN
    assert attempt_transition(AttemptStatus.CREATING, unknown)
    for target in ("pending", "paid", "partially_paid", "failed", "expired"):
        assert attempt_transition(unknown, AttemptStatus(target))
    with pytest.raises(TransitionError):
        attempt_transition(unknown, AttemptStatus.CREATING)
    with pytest.raises(TransitionError):
        attempt_transition(AttemptStatus.EXPIRED, AttemptStatus.FAILED)
    assert checkout_transition(CheckoutStatus.EXPIRED, CheckoutStatus.PAID)
    with pytest.raises(TransitionError):
        checkout_transition(CheckoutStatus.EXPIRED, CheckoutStatus.OPEN)
    with pytest.raises(TransitionError):
        checkout_transition(CheckoutStatus.CANCELLED, CheckoutStatus.PAID)


def test_unknown_becomes_pending_when_the_provider_has_it(session: Session) -> None:
    attempt = make_attempt(session)
    attempt.status = AttemptStatus.UNKNOWN
    session.flush()
    news = update(AttemptStatus.PENDING, None)
    assert apply_update(session, attempt, news, source=EventSource.QUERY) == Verdict.ACCEPTED
    assert attempt.status == "pending" and attempt.checkout.status == "pending"


def test_query_backoff() -> None:
    now = utcnow()
    far = now + timedelta(days=1)
    delays = [query_backoff(n, now, None) for n in range(1, 9)]
    assert [d.total_seconds() / 60 for d in delays] == [1, 2, 5, 10, 30, 60, 60, 60]
    # Near a VA's expiry, at most one minute; never sleeping past the final window.
    assert query_backoff(6, now, now + timedelta(minutes=5)) == timedelta(minutes=1)
    assert query_backoff(6, now, now + timedelta(minutes=25)) == timedelta(minutes=15)
    assert query_backoff(6, now, far) == timedelta(hours=1)


class FakeProvider:
    def __init__(self, answer: PaymentUpdate | ProviderError) -> None:
        self.answer = answer
        self.calls = 0

    def query_payment(self, trade_no: str, platform_trade_no: str | None) -> PaymentUpdate:
        self.calls += 1
        if isinstance(self.answer, ProviderError):
            raise self.answer
        return self.answer


def test_unknown_not_found_fails_only_after_the_settle_window(
    session: Session, tmp_path: Path
) -> None:
    attempt = make_attempt(session)
    attempt.status = AttemptStatus.UNKNOWN
    session.commit()
    factory = sessionmaker(session.get_bind(), expire_on_commit=False)
    provider = FakeProvider(OrderNotFound("p", "0050", "order not found"))
    catalog = SimpleNamespace(providers={"p": provider})
    soon = attempt.created_at + UNKNOWN_SETTLE - timedelta(seconds=1)
    reconcile_due(factory, catalog, soon, after=timedelta(0))  # type: ignore[arg-type]
    session.expire_all()
    assert attempt.status == "unknown" and provider.calls == 1
    later = attempt.created_at + timedelta(minutes=10)
    report = reconcile_due(factory, catalog, later, after=timedelta(0))  # type: ignore[arg-type]
    session.expire_all()
    assert report.changed == 1
    assert attempt.status == "failed" and attempt.checkout.status == "open"
    assert events(session) == [
        ("attempt", "unknown", "failed", "query"),
        ("checkout", "pending", "open", "query"),
    ]
