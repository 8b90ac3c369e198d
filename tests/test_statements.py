"""The ledger's prepared statements (checkout/store/statements.py) on the test database:
SQL kept per shape, values through the columns' processors, and the locked read on
PostgreSQL (lock and read in one round trip) seeing what the lock's previous holder wrote."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from checkout.domain.ledger import MoneyReporting, PaymentUpdate, Transfer, provider_reported
from checkout.domain.money import Money
from checkout.domain.refunds import (
    ApprovalPolicy,
    NewRefund,
    RefundSource,
    cancel_refund,
    request_refund,
)
from checkout.domain.states import AttemptStatus, CheckoutStatus, EventSource
from checkout.store import ledger, statements
from checkout.store.db import DatabaseTimeouts, is_lock_timeout, make_engine
from checkout.store.models import (
    Base,
    Checkout,
    PaymentAttempt,
    Refund,
    StateEvent,
    Store,
    WebhookEvent,
)
from tests.conftest import _database_url

CHECKOUTS, ATTEMPTS, TIMELINE = Checkout.__table__, PaymentAttempt.__table__, StateEvent.__table__
NOW = datetime(2026, 12, 5, 1, 2, 3, 456789, tzinfo=UTC)


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(_database_url(tmp_path), timeouts=DatabaseTimeouts(lock=2.0))
    Base.metadata.create_all(engine)
    with Session(engine) as session:
        session.add(Store(id="shop", name="Shop"))
        session.add(
            Checkout(
                id="co_1",
                store_id="shop",
                order_id="o1",
                amount=10000,
                currency="KRW",
                amount_paid=0,
                return_url="https://shop.example/back",
                status=CheckoutStatus.PENDING,
                expires_at=NOW + timedelta(hours=1),
                created_at=NOW,
                event_seq=0,
            )
        )
        session.commit()
    yield engine
    engine.dispose()


def _attempt(session: Session, trade_no: str) -> None:
    session.execute(
        insert(PaymentAttempt).values(
            checkout_id="co_1",
            trade_no=trade_no,
            provider="paypro_kr",
            method="kakaopay",
            amount=10000,
            currency="KRW",
            status=AttemptStatus.PENDING,
            created_at=NOW,
            updated_at=NOW,
        )
    )


def test_placeholders_become_postgresql_numbers_once_per_name() -> None:
    sql, order = statements._dollar_placeholders(
        "SELECT %(a)s, %(b)s::JSON, %(a)s WHERE x LIKE 'y%%'"
    )
    assert sql == "SELECT $1, $2::JSON, $1 WHERE x LIKE 'y%'"
    assert order == ("a", "b")


def test_values_go_through_the_columns_processors_both_ways(engine: Engine) -> None:
    """Aware UTC datetimes in and out on every backend (SQLite stores them as text), JSON
    stored as JSON, a Python-side default filled in, and the SQL kept per shape."""
    row = statements.with_defaults(
        TIMELINE,
        {
            "checkout_id": "co_1",
            "kind": "checkout",
            "to_status": "pending",
            "source": "notify",
            "detail": "100% 'quoted' %(not_a_param)s",
        },
    )
    assert isinstance(row["created_at"], datetime)  # the column's default, filled in
    row["created_at"] = NOW
    cols = statements.columns_key(row)

    def build() -> object:
        return insert(TIMELINE).values({c: statements.param(c, TIMELINE.c[c]) for c in cols})

    with Session(engine) as session, session.begin():
        connection = session.connection()
        statements.run(connection, [(("t-insert", cols), build, row)])
        statements.run(connection, [(("t-insert", cols), build, {**row, "detail": "second"})])

    def read() -> object:
        return select(TIMELINE.c.detail, TIMELINE.c.created_at).order_by(TIMELINE.c.id)

    with Session(engine) as session, session.begin():
        got = statements.rows(session.connection(), ("t-read",), read, {})
    assert got == [("100% 'quoted' %(not_a_param)s", NOW), ("second", NOW)]
    assert got[0][1].tzinfo is not None
    keys = [key for key in statements._cache if key[-1] in (("t-insert", cols), ("t-read",))]
    assert len(keys) == 2  # compiled once per shape and dialect


def test_a_builder_that_leaves_out_a_default_is_refused(engine: Engine) -> None:
    def build() -> object:  # created_at has a Python-side default the builder did not give
        return insert(TIMELINE).values(
            checkout_id=statements.param("c", TIMELINE.c.checkout_id),
            kind=statements.param("k", TIMELINE.c.kind),
            to_status=statements.param("t", TIMELINE.c.to_status),
            source=statements.param("s", TIMELINE.c.source),
        )

    with (
        Session(engine) as session,
        session.begin(),
        pytest.raises(RuntimeError, match="lacks values"),
    ):
        statements.run(session.connection(), [(("no-default",), build, {})])


def test_the_shape_cache_is_bounded(monkeypatch: pytest.MonkeyPatch, engine: Engine) -> None:
    """Past SHAPES_KEPT a statement still runs, compiled for its one use and not kept."""
    monkeypatch.setattr(statements, "SHAPES_KEPT", len(statements._cache))

    def build() -> object:
        return select(CHECKOUTS.c.id)

    with Session(engine) as session, session.begin():
        before = len(statements._cache)
        assert statements.rows(session.connection(), ("one-too-many",), build, {}) == [("co_1",)]
        assert len(statements._cache) == before


def test_the_locked_read_sees_what_the_previous_lock_holder_committed(engine: Engine) -> None:
    """A writer holds the checkout's lock and adds an attempt; the reader waits for the lock,
    and its read (one round trip with the lock on PostgreSQL) includes the new attempt."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite lets one writer in at a time: no read can start under a lock")
    with Session(engine) as session, session.begin():
        _attempt(session, "T-FIRST")
    holder = Session(engine)
    assert ledger.load_state(holder, "co_1") is not None  # holds the lock
    _attempt(holder, "T-SECOND")
    holder.execute(update(Checkout).where(Checkout.id == "co_1").values(event_seq=1))
    seen: list[object] = []

    def read() -> None:
        with Session(engine) as reader, reader.begin():
            seen.append(ledger.load_state_for_trade(reader, "paypro_kr", "T-FIRST"))

    thread = threading.Thread(target=read)
    thread.start()
    time.sleep(0.3)  # the reader is waiting for the lock
    assert thread.is_alive()
    holder.commit()
    holder.close()
    thread.join(10)
    [found] = seen
    assert found is not None
    state, _attempt_id = found  # type: ignore[misc]
    assert [a.trade_no for a in state.attempts] == ["T-FIRST", "T-SECOND"]
    assert state.event_seq == 1


def test_a_lock_held_too_long_is_a_lock_timeout_and_the_reader_can_go_on(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite's equivalent is the write queue (tests/test_sqlite_writes.py)")
    holder = Session(engine)
    assert ledger.load_state(holder, "co_1") is not None
    try:
        with Session(engine) as reader:
            with pytest.raises(DBAPIError) as raised:
                ledger.load_state(reader, "co_1")  # lock_timeout is 2 s here
            assert is_lock_timeout(raised.value)
            reader.rollback()
            assert reader.execute(select(Checkout.id)).scalar_one() == "co_1"
    finally:
        holder.rollback()
        holder.close()


def _paid_test_mode_checkout(engine: Engine) -> None:
    with Session(engine) as session, session.begin():
        session.execute(
            update(Checkout)
            .where(Checkout.id == "co_1")
            .values(status=CheckoutStatus.PAID, amount_paid=10000, livemode=False)
        )


def test_refund_events_of_a_test_mode_checkout_say_livemode_false(engine: Engine) -> None:
    _paid_test_mode_checkout(engine)
    new = NewRefund(
        "re_1", Money(4000, "KRW"), "excess", RefundSource.API, "paypro_kr", "api:shop", None, None
    )
    with Session(engine) as session, session.begin():
        loaded = ledger.load_refunds(session, "co_1")
        assert loaded is not None
        money, refunds = loaded
        assert money.livemode is False
        plan = request_refund(money, refunds, new, ApprovalPolicy({"KRW": 100_000}))
        refund_id = ledger.write_refund_plan(session, money, "shop", "o1", plan, NOW)
    with Session(engine) as session:
        [event] = session.scalars(select(WebhookEvent)).all()
        assert (event.type, event.seq, event.payload["livemode"]) == ("refund.created", 1, False)
        assert event.payload["data"]["refund"]["id"] == "re_1"
        row = session.get(Refund, refund_id)
        assert row is not None and (row.status, row.amount) == ("approved", 4000)


def test_a_refund_that_moved_under_the_plan_is_not_written(engine: Engine) -> None:
    _paid_test_mode_checkout(engine)
    new = NewRefund(
        "re_1", Money(4000, "KRW"), "excess", RefundSource.API, "paypro_kr", "api:shop", None, None
    )
    with Session(engine) as session, session.begin():
        money, refunds = ledger.load_refunds(session, "co_1")  # type: ignore[misc]
        plan = request_refund(money, refunds, new, ApprovalPolicy({"KRW": 100_000}))
        ledger.write_refund_plan(session, money, "shop", "o1", plan, NOW)
    with Session(engine) as session, session.begin():
        money, [refund] = ledger.load_refunds(session, "co_1")  # type: ignore[misc]
        plan = cancel_refund(money, refund, "alice")
        # Another writer (without the lock: a bug) moved it meanwhile.
        session.execute(update(Refund).values(status="sending"))
        with pytest.raises(ledger.RefundWriteConflict):
            ledger.write_refund_plan(session, money, "shop", "o1", plan, NOW)


def test_a_query_answer_listing_many_transfers_is_written_in_one_insert(engine: Engine) -> None:
    """The largest answer a transfer provider's query can give: every transfer a row, the
    money their sum, whatever their number (one multi-row INSERT, one shape per count)."""
    with Session(engine) as session, session.begin():
        _attempt(session, "T-MANY")
    transfers = tuple(Transfer(f"tr-{i}", Money(100, "KRW")) for i in range(300))
    update_ = PaymentUpdate(
        "T-MANY", AttemptStatus.PAID, "paid", Money(30_000, "KRW"), transfers=transfers
    )
    with Session(engine) as session, session.begin():
        state, attempt_id = ledger.load_state_for_trade(session, "paypro_kr", "T-MANY")  # type: ignore[misc]
        plan = provider_reported(
            state, attempt_id, update_, MoneyReporting.TRANSFERS, EventSource.QUERY, NOW
        )
        ledger.write_plan(session, state, plan, NOW)
    with Session(engine) as session:
        state, _ = ledger.load_state_for_trade(session, "paypro_kr", "T-MANY")  # type: ignore[misc]
        assert len(state.receipts) == 300
        assert state.amount_paid == sum(r.amount for r in state.receipts) == 30_000
        assert state.status == CheckoutStatus.PAID
        session.rollback()


def _paid_plan(session: Session, trade_no: str):  # type: ignore[no-untyped-def]
    state, attempt_id = ledger.load_state_for_trade(session, "paypro_kr", trade_no)  # type: ignore[misc]
    update_ = PaymentUpdate(trade_no, AttemptStatus.PAID, "paid", Money(10_000, "KRW"))
    plan = provider_reported(
        state, attempt_id, update_, MoneyReporting.TOTAL, EventSource.QUERY, NOW
    )
    return state, plan


def _status(engine: Engine) -> str:
    with Session(engine) as other:
        return str(other.scalar(select(Checkout.status).where(Checkout.id == "co_1")))


def test_a_plan_written_with_its_commit_is_committed_in_that_round_trip(engine: Engine) -> None:
    """write_plan(commit=True) commits: on PostgreSQL the COMMIT goes with the write (the
    session's commit then has nothing to do at the server), so another connection sees it
    at once; a later commit changes nothing. ORM changes pending would not be part of the
    plan's transaction: refused."""
    with Session(engine) as session, session.begin():
        _attempt(session, "T-C")
    session = Session(engine)
    state, plan = _paid_plan(session, "T-C")
    ledger.write_plan(session, state, plan, NOW, commit=True)
    postgresql = engine.dialect.name == "postgresql"
    if postgresql:
        assert _status(engine) == "paid"
    session.commit()
    assert _status(engine) == "paid"
    session.close()
    with Session(engine) as session:
        session.add(Store(id="other", name="Other"))
        state, plan = _paid_plan(session, "T-C")
        with pytest.raises(ValueError, match="ORM changes pending"):
            ledger.write_plan(session, state, plan, NOW, commit=True)


def test_a_plan_that_fails_with_its_commit_leaves_nothing(engine: Engine) -> None:
    """The write fails at the server (here: a timeline row naming no attempt breaks its
    foreign key): the COMMIT queued behind it never commits anything."""
    with Session(engine) as session, session.begin():
        _attempt(session, "T-F")
    session = Session(engine)
    state, plan = _paid_plan(session, "T-F")
    broken = replace(plan, timeline=tuple(replace(t, attempt_id=999_999) for t in plan.timeline))
    with pytest.raises(DBAPIError):
        ledger.write_plan(session, state, broken, NOW, commit=True)
    session.rollback()
    session.close()
    assert _status(engine) == "pending"
    with Session(engine) as session:  # the pool's connection is usable again
        state, plan = _paid_plan(session, "T-F")
        ledger.write_plan(session, state, plan, NOW, commit=True)
        session.commit()
    assert _status(engine) == "paid"
