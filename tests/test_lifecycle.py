"""The ledger writer on a real database (store/ledger.py) and reconciliation; the rules
themselves are tested without a database in test_ledger_rules.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session, sessionmaker

from checkout.domain.errors import TransitionError
from checkout.domain.ledger import MoneyReporting, Transfer, Verdict, provider_reported
from checkout.domain.money import Money
from checkout.domain.states import (
    AttemptStatus,
    CheckoutStatus,
    EventSource,
    attempt_transition,
    checkout_transition,
)
from checkout.providers.base import PaymentUpdate
from checkout.providers.errors import OrderNotFound, ProviderError
from checkout.services.circuits import CircuitBreakers
from checkout.services.reconcile import UNKNOWN_SETTLE, query_backoff, reconcile_due
from checkout.store.ledger import load_state, write_plan
from checkout.store.models import (
    Base,
    Checkout,
    PaymentAttempt,
    PaymentReceipt,
    StateEvent,
    Store,
    WebhookEvent,
    utcnow,
)


@pytest.fixture
def session(tmp_path: Path) -> Iterator[Session]:
    """SQLite, or the PostgreSQL of TEST_DATABASE_URL (the writer's one-statement path)."""
    from tests.conftest import _database_url

    engine = create_engine(_database_url(tmp_path))
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


def events(session: Session) -> list[tuple[str, str | None, str, str]]:
    rows = session.scalars(select(StateEvent).order_by(StateEvent.id)).all()
    return [(e.kind, e.from_status, e.to_status, e.source) for e in rows]


def apply(session: Session, attempt: PaymentAttempt, news: PaymentUpdate, **kw: object) -> Verdict:
    """A provider's word through the ledger, as a notify applies it (store/ledger.py)."""
    session.commit()
    state = load_state(session, attempt.checkout_id)
    assert state is not None
    plan = provider_reported(
        state,
        attempt.id,
        news,
        kw.get("reporting", MoneyReporting.TOTAL),
        EventSource.NOTIFY,
        utcnow(),  # type: ignore[arg-type]
    )
    write_plan(session, state, plan, utcnow())
    session.commit()
    session.expire_all()
    return plan.verdict


def paid(amount: int, *transfers: tuple[str, int]) -> PaymentUpdate:
    return PaymentUpdate(
        "T1",
        AttemptStatus.PAID,
        "x",
        Money(amount, "KRW"),
        transfers=tuple(Transfer(t, Money(a, "KRW")) for t, a in transfers),
    )


def test_the_writer_keeps_rows_sums_timeline_and_events_together(session: Session) -> None:
    """What the rule decides is what the tables hold: money rows and their sums, the
    timeline in order, one shop event per change with growing seq."""
    attempt = make_attempt(session)
    transfers = {"reporting": MoneyReporting.TRANSFERS}
    assert apply(session, attempt, paid(4000, ("P1", 4000)), **transfers) == Verdict.ACCEPTED
    assert apply(session, attempt, paid(4000, ("P1", 4000)), **transfers) == Verdict.DUPLICATE
    assert apply(session, attempt, paid(6000, ("P2", 6000)), **transfers) == Verdict.ACCEPTED
    receipts = session.scalars(select(PaymentReceipt).order_by(PaymentReceipt.id)).all()
    assert [(r.transfer_key, r.amount) for r in receipts] == [("P1", 4000), ("P2", 6000)]
    assert attempt.amount_paid == 10000 == attempt.checkout.amount_paid
    assert attempt.status == "paid" and attempt.checkout.status == "paid"
    assert events(session) == [
        ("attempt", "pending", "partially_paid", "notify"),
        ("checkout", "pending", "partially_paid", "notify"),
        ("attempt", "partially_paid", "paid", "notify"),
        ("checkout", "partially_paid", "paid", "notify"),
    ]
    queued = session.scalars(select(WebhookEvent).order_by(WebhookEvent.id)).all()
    assert [(e.type, e.seq) for e in queued] == [
        ("checkout.partially_paid", 1),
        ("checkout.paid", 2),
    ]
    assert queued[-1].payload["data"]["amount_paid"] == 10000
    assert attempt.checkout.event_seq == 2


def test_money_after_a_cancel_reaches_the_shop(session: Session) -> None:
    attempt = make_attempt(session)
    attempt.checkout.status = CheckoutStatus.CANCELLED
    session.commit()
    assert apply(session, attempt, paid(10000)) == Verdict.ACCEPTED
    assert attempt.checkout.status == "cancelled" and attempt.checkout.amount_paid == 10000
    [event] = session.scalars(select(WebhookEvent)).all()
    assert event.type == "checkout.payment_received"
    assert event.payload["data"]["amount_paid"] == 10000
    assert "arrived while cancelled" in event.payload["data"]["review_reason"]


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
    # What reconcile uses of a Catalog: its providers, and its breakers (the query counts).
    catalog = SimpleNamespace(providers={"p": provider}, circuits=CircuitBreakers({}))
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
