"""The one writer: reads a checkout under its row lock and persists what the rule decided.

`load_state` / `load_state_for_trade` read the checkout, all its attempts and its money rows
into a `domain.ledger.CheckoutState`, the checkout's row locked for the transaction
(PostgreSQL `FOR UPDATE`; SQLite's BEGIN IMMEDIATE holds the whole file). On PostgreSQL the
lock is taken by its own small statement and the read follows as a second statement in the
same round trip (psycopg's pipeline): a joined `FOR UPDATE` that waits for another writer
re-reads only the locked row, not the rows joined to it, so it could decide on stale
attempts; a statement of its own starts with a snapshot taken once the lock is held.

`write_plan` writes a `domain.ledger.Plan`: the attempts, the checkout, the money rows, the
timeline, the shop's events (the outbox) and, for a notify, the stored message. On
PostgreSQL they go as one statement (data-modifying WITH), one round trip; on SQLite one
after the other. Every statement is compiled once per shape and run through the driver
(`store/statements.py`): building and compiling Core statements for every notify was most
of its CPU. Every change of status or money in the app goes through here.

`load_refunds` / `write_refund_plan` do the same for refunds (`domain.refunds.RefundPlan`):
the checkout's row lock is the refunds' lock, and their shop events share its event_seq.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from functools import partial
from typing import Any

from sqlalchemy import Table, func, insert, literal_column, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from checkout.domain.ledger import (
    NEW_ATTEMPT,
    AttemptState,
    CheckoutState,
    Plan,
    Receipt,
    ShopEvent,
)
from checkout.domain.money import Money
from checkout.domain.refunds import (
    CapRefund,
    CheckoutMoney,
    RefundPlan,
    RefundSource,
    RefundState,
    RefundStatus,
)
from checkout.domain.states import AttemptStatus, CheckoutStatus, EventSource
from checkout.store import statements
from checkout.store.errors import RefundWriteConflict
from checkout.store.models import (
    Checkout,
    NotifyMessage,
    PaymentAttempt,
    PaymentReceipt,
    ProviderExchange,
    Refund,
    StateEvent,
    WebhookEvent,
)
from checkout.store.outbox import outbox_row

A, C, R, RF = PaymentAttempt, Checkout, PaymentReceipt, Refund
ATTEMPTS, CHECKOUTS, RECEIPTS, REFUNDS = A.__table__, C.__table__, R.__table__, RF.__table__
TIMELINE, EVENTS, NOTIFIES = StateEvent.__table__, WebhookEvent.__table__, NotifyMessage.__table__
EXCHANGES = ProviderExchange.__table__

# The snapshot's columns, in the order of the one read (rows are plain tuples).
_CHECKOUT_COLUMNS = (
    "id",
    "store_id",
    "order_id",
    "status",
    "amount",
    "currency",
    "amount_paid",
    "review_reason",
    "event_seq",
    "expires_at",
    "livemode",
)
_ATTEMPT_COLUMNS = (
    "id",
    "trade_no",
    "provider",
    "method",
    "status",
    "amount",
    "currency",
    "amount_paid",
    "review_reason",
    "platform_trade_no",
    "created_at",
    "deadline_at",
    "abandoned_at",
)
_RECEIPT_COLUMNS = ("attempt_id", "transfer_key", "amount")
_NC, _NA = len(_CHECKOUT_COLUMNS), len(_ATTEMPT_COLUMNS)


def _lock(session: Session, checkout_id: str) -> str | None:
    """The checkout's row lock (PostgreSQL FOR UPDATE; SQLite's BEGIN IMMEDIATE already
    holds the file): its id, or None if unknown."""
    connection = session.connection()
    shape, build = (
        (("exists",), _exists_statement)
        if connection.dialect.name == "sqlite"
        else (("lock",), _lock_statement)
    )
    found = statements.rows(connection, shape, build, {"id": checkout_id})
    return found[0][0] if found else None


def _lock_statement() -> Any:
    return select(C.id).where(C.id == statements.param("id", CHECKOUTS.c.id)).with_for_update()


def _exists_statement() -> Any:
    return select(C.id).where(C.id == statements.param("id", CHECKOUTS.c.id))


def _owner(trade_no_param: str, provider_param: str) -> Any:
    return (
        select(A.checkout_id)
        .where(
            A.trade_no == statements.param(trade_no_param, ATTEMPTS.c.trade_no),
            A.provider == statements.param(provider_param, ATTEMPTS.c.provider),
        )
        .scalar_subquery()
    )


def _lock_for_trade_statement() -> Any:
    return select(C.id).where(C.id == _owner("trade_no", "provider")).with_for_update()


def _read_statement(by_trade: bool) -> Any:
    key = _owner("trade_no", "provider") if by_trade else statements.param("id", CHECKOUTS.c.id)
    return (
        select(
            *(CHECKOUTS.c[name] for name in _CHECKOUT_COLUMNS),
            *(ATTEMPTS.c[name] for name in _ATTEMPT_COLUMNS),
            *(RECEIPTS.c[name] for name in _RECEIPT_COLUMNS),
        )
        .select_from(CHECKOUTS)
        .outerjoin(ATTEMPTS, ATTEMPTS.c.checkout_id == CHECKOUTS.c.id)
        .outerjoin(RECEIPTS, RECEIPTS.c.attempt_id == ATTEMPTS.c.id)
        .where(CHECKOUTS.c.id == key)
        .order_by(ATTEMPTS.c.id, RECEIPTS.c.id)
    )


def load_state(session: Session, checkout_id: str) -> CheckoutState | None:
    """The checkout with its attempts and money rows, its row locked; None if unknown."""
    state, _reserved = _locked_read(
        session, ("lock",), _lock_statement, {"id": checkout_id}, by_trade=False
    )
    return state


def load_state_for_claim(
    session: Session, checkout_id: str
) -> tuple[CheckoutState | None, int | None]:
    """`load_state`, and on PostgreSQL the id of the attempt a claim may create, drawn from
    its sequence in the same round trip: `write_plan` then writes the attempt and the rest
    of the plan as one statement (a draw not used is a gap in the ids, nothing more). None
    on SQLite, where the attempt's INSERT returns its id."""
    return _locked_read(
        session, ("lock",), _lock_statement, {"id": checkout_id}, by_trade=False, reserve=True
    )


def load_state_for_trade(
    session: Session, provider: str, trade_no: str
) -> tuple[CheckoutState, int] | None:
    """The state of the checkout owning attempt `trade_no` at `provider`, locked, and the
    attempt's id; None if no such attempt."""
    key = {"trade_no": trade_no, "provider": provider}
    state, _reserved = _locked_read(
        session, ("lock-trade",), _lock_for_trade_statement, key, by_trade=True
    )
    if state is None:
        return None
    attempt = next((a for a in state.attempts if a.trade_no == trade_no), None)
    if attempt is None or attempt.provider != provider:
        return None
    return state, attempt.id


def _next_attempt_id_statement() -> Any:
    sequence = func.pg_get_serial_sequence(
        literal_column(f"'{ATTEMPTS.name}'"), literal_column("'id'")
    )
    return select(func.nextval(sequence))


def _locked_read(
    session: Session,
    lock_shape: Hashable,
    lock: Callable[[], Any],
    key: Mapping[str, Any],
    *,
    by_trade: bool,
    reserve: bool = False,
) -> tuple[CheckoutState | None, int | None]:
    """The row lock, then the snapshot read by the same key: on PostgreSQL two statements
    in one round trip (the read starts once the lock is held, with a snapshot of its own);
    on SQLite BEGIN IMMEDIATE already holds the file, so the read alone. `reserve`: on
    PostgreSQL, a new attempt id drawn in the same round trip."""
    connection = session.connection()

    def read() -> Any:
        return _read_statement(by_trade)

    reserved = None
    if connection.dialect.name == "sqlite":
        rows = statements.rows(connection, ("read", by_trade), read, key)
    else:
        batch: list[statements.Statement] = [
            (lock_shape, lock, key),
            (("read", by_trade), read, key),
        ]
        if reserve:
            batch.append((("next-attempt-id",), _next_attempt_id_statement, {}))
        locked, rows, *drawn = statements.run(connection, batch)
        if not locked:
            return None, None
        if drawn:
            reserved = int(drawn[0][0][0])
    return (_state(rows) if rows else None), reserved


def _state(rows: Sequence[tuple[Any, ...]]) -> CheckoutState:
    first = rows[0]
    attempts: dict[int, AttemptState] = {}
    receipts: list[Receipt] = []
    for row in rows:
        a = row[_NC : _NC + _NA]
        if a[0] is not None and a[0] not in attempts:
            attempts[a[0]] = AttemptState(
                id=a[0],
                trade_no=a[1],
                provider=a[2],
                method=a[3],
                status=AttemptStatus(a[4]),
                amount=a[5],
                currency=a[6],
                amount_paid=a[7] or 0,
                review_reason=a[8],
                platform_trade_no=a[9],
                created_at=a[10],
                deadline_at=a[11],
                abandoned=a[12] is not None,
            )
        r = row[_NC + _NA :]
        if r[0] is not None:
            receipts.append(Receipt(r[0], r[1], r[2]))
    return CheckoutState(
        id=first[0],
        store_id=first[1],
        order_id=first[2],
        status=CheckoutStatus(first[3]),
        amount=first[4],
        currency=first[5],
        amount_paid=first[6] or 0,
        review_reason=first[7],
        event_seq=first[8] or 0,
        expires_at=first[9],
        attempts=tuple(attempts.values()),
        receipts=tuple(receipts),
        livemode=first[10] is not False,
    )


# ---------------------------------------------------------------- writing a Plan
@dataclass(frozen=True)
class _Part:
    """One statement of a Plan: its shape (what fixes its SQL), a builder taking the
    parameters' prefix, and its values (names without the prefix)."""

    shape: Hashable
    build: Callable[[str], Any]
    params: Mapping[str, Any]


def _update(
    table: Table, key: Mapping[str, Any], values: Mapping[str, Any], *, returning: bool = False
) -> _Part:
    """An UPDATE of the rows matching every `key` column; `returning`: their ids back."""
    keys, cols = statements.columns_key(key), statements.columns_key(values)

    def build(p: str) -> Any:
        where = [table.c[k] == statements.param(f"{p}k_{k}", table.c[k]) for k in keys]
        statement = (
            update(table)
            .where(*where)
            .values({c: statements.param(f"{p}{c}", table.c[c]) for c in cols})
        )
        return statement.returning(table.c.id) if returning else statement

    params = {**{f"k_{k}": v for k, v in key.items()}, **values}
    return _Part(("update", table.name, keys, cols, returning), build, params)


def _insert(table: Table, rows: Sequence[Mapping[str, Any]]) -> _Part:
    """A multi-row INSERT; every row names the same columns."""
    full = [statements.with_defaults(table, row) for row in rows]
    cols, count = statements.columns_key(full[0]), len(full)

    def build(p: str) -> Any:
        return insert(table).values(
            [{c: statements.param(f"{p}{i}_{c}", table.c[c]) for c in cols} for i in range(count)]
        )

    return _Part(("insert", table.name, cols, count), build, statements.row_params("", full))


def _run(session: Session, parts: Sequence[_Part], *, commit: bool = False) -> None:
    """Every part, in order: on PostgreSQL as one statement (each part but the last a
    data-modifying CTE of the last), one round trip, with the COMMIT when `commit`;
    elsewhere one after the other."""
    if not parts:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(parts) > 1:

        def build() -> Any:
            *first, last = [part.build(f"s{i}_") for i, part in enumerate(parts)]
            return last.add_cte(*(s.cte(f"ledger_{i}") for i, s in enumerate(first)))

        params: dict[str, Any] = {}
        for i, part in enumerate(parts):
            params.update(statements.prefixed(f"s{i}_", part.params))
        plan = (("plan", tuple(p.shape for p in parts)), build, params)
        statements.run(connection, [plan], commit=commit)
        return
    statements.run(
        connection,
        [
            (
                ("one", part.shape),
                partial(part.build, "s0_"),
                statements.prefixed("s0_", part.params),
            )
            for part in parts
        ],
        commit=commit,
    )


def _attempt_row(
    state: CheckoutState, new: Any, now: datetime, attempt_id: int | None
) -> dict[str, Any]:
    values = {
        "checkout_id": state.id,
        "trade_no": new.trade_no,
        "provider": new.provider,
        "method": new.method,
        "amount": new.amount,
        "currency": new.currency,
        "status": str(AttemptStatus.CREATING),
        "deadline_at": new.deadline_at,
        "query_count": 0,
        "created_at": now,
        "updated_at": now,
        **new.payer,
    }
    if attempt_id is not None:
        values["id"] = attempt_id
    return values


def _insert_returning_id(session: Session, table: Table, values: Mapping[str, Any]) -> int:
    """One row inserted (every value named, defaults filled in); its new id."""
    full = statements.with_defaults(table, values)
    cols = statements.columns_key(full)

    def build() -> Any:
        return (
            insert(table)
            .values({c: statements.param(c, table.c[c]) for c in cols})
            .returning(table.c.id)
        )

    [(new_id,)] = statements.rows(
        session.connection(), ("returning", table.name, cols), build, full
    )
    return int(new_id)


def write_plan(
    session: Session,
    state: CheckoutState,
    plan: Plan,
    now: datetime,
    *,
    notify: Mapping[str, Any] | None = None,
    exchanges: Sequence[Mapping[str, Any]] = (),
    attempt_id_drawn: int | None = None,
    commit: bool = False,
) -> int | None:
    """Persist `plan` in the caller's transaction (the caller commits). `notify`: the
    notify message's columns; `exchanges`: provider_exchanges rows (the calls the plan
    answers, services/exchanges.exchange_rows); both stored in the same statement. Returns
    the new attempt's id when the plan created one. `attempt_id_drawn`: the id
    `load_state_for_claim` drew for it, so the attempt goes in the plan's one statement.
    `commit`: the plan is the transaction's last write: commit it here (on PostgreSQL the
    COMMIT goes in the plan's round trip, and the session's own commit then has nothing
    left to do at the server)."""
    if commit and (session.new or session.dirty or session.deleted):
        raise ValueError("write_plan(commit=True) with ORM changes pending: they would be lost")
    new_id = None
    parts: list[_Part] = []
    if plan.new_attempt is not None and attempt_id_drawn is not None:
        new_id = attempt_id_drawn
        parts.append(_insert(ATTEMPTS, [_attempt_row(state, plan.new_attempt, now, new_id)]))
    elif plan.new_attempt is not None:
        new_id = _insert_returning_id(
            session, ATTEMPTS, _attempt_row(state, plan.new_attempt, now, None)
        )

    def attempt_id(value: int | None) -> int | None:
        return new_id if value == NEW_ATTEMPT and new_id is not None else value

    parts.extend(
        _update(
            ATTEMPTS,
            {"id": attempt_id(change.attempt_id)},
            {**_plain(change.values), "updated_at": now},
        )
        for change in plan.attempts
    )
    if plan.checkout is not None:
        parts.append(
            _update(
                CHECKOUTS, {"id": state.id}, {**_plain(plan.checkout.values), "updated_at": now}
            )
        )
    # New money rows in one INSERT (a query answer may list many transfers); a running
    # total raised in place.
    new_receipts = [r for r in plan.receipts if r.new]
    if new_receipts:
        parts.append(
            _insert(
                RECEIPTS,
                [
                    {
                        "checkout_id": state.id,
                        "attempt_id": receipt.attempt_id,
                        "transfer_key": receipt.transfer_key,
                        "amount": receipt.amount,
                        "currency": state.currency,
                        "source": str(receipt.source),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for receipt in new_receipts
                ],
            )
        )
    for receipt in plan.receipts:
        if not receipt.new:
            key = {"attempt_id": receipt.attempt_id, "transfer_key": receipt.transfer_key}
            parts.append(_update(RECEIPTS, key, {"amount": receipt.amount, "updated_at": now}))
    if plan.timeline:
        # One INSERT: ids follow the rows' order, which is the timeline's.
        parts.append(
            _insert(
                TIMELINE,
                [
                    {
                        "checkout_id": state.id,
                        "attempt_id": attempt_id(entry.attempt_id),
                        "kind": entry.kind,
                        "from_status": str(entry.from_status) if entry.from_status else None,
                        "to_status": str(entry.to_status),
                        "source": str(entry.source),
                        "detail": entry.detail[:500] if entry.detail else None,
                        "created_at": now,
                    }
                    for entry in plan.timeline
                ],
            )
        )
    if plan.events:
        parts.append(_insert(EVENTS, _events(state, plan, plan.events, now)))
    if notify is not None:
        parts.append(_insert(NOTIFIES, [_plain(notify)]))
    if exchanges:
        parts.append(_insert(EXCHANGES, list(exchanges)))
    _run(session, parts, commit=commit)
    if commit:
        session.commit()
    return new_id


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    """Enum members as their plain string values (what the drivers are given)."""
    return {k: (str(v) if isinstance(v, StrEnum) else v) for k, v in values.items()}


def _events(
    state: CheckoutState, plan: Plan, events: Sequence[ShopEvent], now: datetime
) -> list[dict[str, Any]]:
    return [
        outbox_row(
            event.type,
            event.seq,
            now,
            store_id=state.store_id,
            checkout_id=state.id,
            order_id=state.order_id,
            status=str(plan.after.status),
            amount=state.amount,
            amount_paid=plan.after.amount_paid,
            currency=state.currency,
            review_reason=plan.after.review_reason,
            livemode=state.livemode,
            extra=event.data,
        )
        for event in events
    ]


# ---------------------------------------------------------------- refunds
def load_refunds(
    session: Session, checkout_id: str
) -> tuple[CheckoutMoney, tuple[RefundState, ...]] | None:
    """The checkout's money and all its refunds, the checkout's row locked (every refund
    write holds it, so what is refundable is decided on what is true); None if unknown."""
    if _lock(session, checkout_id) is None:
        return None
    row = session.execute(
        select(
            C.id,
            C.status,
            C.currency,
            C.amount,
            C.amount_paid,
            C.review_reason,
            C.event_seq,
            C.livemode,
        ).where(C.id == checkout_id)
    ).one()
    checkout = CheckoutMoney(
        id=row.id,
        status=row.status,
        currency=row.currency,
        amount=row.amount,
        amount_paid=row.amount_paid or 0,
        review_reason=row.review_reason,
        event_seq=row.event_seq or 0,
        livemode=row.livemode is not False,
    )
    refunds = tuple(
        RefundState(
            id=r.id,
            public_id=r.public_id,
            status=RefundStatus(r.status),
            amount=Money(r.amount, r.currency),
            requested_by=r.requested_by,
            source=RefundSource(r.source),
            has_destination=r.destination_token is not None,
            payout_no=r.payout_no,
            sending_at=r.sending_at,
            query_count=r.query_count or 0,
        )
        for r in session.execute(
            select(
                RF.id,
                RF.public_id,
                RF.status,
                RF.amount,
                RF.currency,
                RF.requested_by,
                RF.source,
                RF.destination_token,
                RF.payout_no,
                RF.sending_at,
                RF.query_count,
            )
            .where(RF.checkout_id == checkout_id)
            .order_by(RF.id)
        ).all()
    )
    return checkout, refunds


def load_cap_day(
    session: Session,
    store_id: str,
    livemode: bool,
    currency: str,
    day: tuple[datetime, datetime],
) -> tuple[CapRefund, ...]:
    """The store's refunds of one mode and currency first sent within `day` ([start, end),
    domain.refunds.store_day_bounds): what domain.refunds.check_daily_cap reads. Call it
    under the store's row lock, so two workers never both spend the same room."""
    start, end = day
    rows = session.execute(
        select(RF.status, RF.amount, RF.currency, C.livemode, RF.sending_at)
        .join(C, C.id == RF.checkout_id)
        .where(
            RF.store_id == store_id,
            C.livemode == livemode,
            RF.currency == currency,
            RF.sending_at >= start,
            RF.sending_at < end,
        )
        .order_by(RF.id)
    ).all()
    return tuple(
        CapRefund(
            status=RefundStatus(r.status),
            amount=Money(r.amount, r.currency),
            livemode=r.livemode is not False,
            sending_at=r.sending_at,
        )
        for r in rows
    )


def write_refund_plan(
    session: Session,
    checkout: CheckoutMoney,
    store_id: str,
    order_id: str,
    plan: RefundPlan,
    now: datetime,
    refund_json: Mapping[str, Any] | None = None,
) -> int | None:
    """Persist a refund plan in the caller's transaction (the caller commits): the refund
    row, its timeline (state_events kind "refund"), the shop's events and the checkout's
    event_seq (and review flag). Returns the refund's id."""
    refund_id = plan.refund_id
    if plan.new is not None:
        refund_id = _insert_refund(session, checkout, store_id, plan, now)
    elif plan.values:
        # Its own statement: the status guard must be seen to hold.
        key: dict[str, Any] = {"id": refund_id}
        if plan.expect_status is not None:
            key["status"] = str(plan.expect_status)
        guarded = _update(REFUNDS, key, {**_plain(plan.values), "updated_at": now}, returning=True)
        [done] = statements.run(
            session.connection(),
            [
                (
                    ("one", guarded.shape),
                    partial(guarded.build, "s0_"),
                    statements.prefixed("s0_", guarded.params),
                )
            ],
        )
        if len(done) != 1:
            raise RefundWriteConflict(f"refund {plan.public_id} moved under the plan")
    parts: list[_Part] = []
    if plan.timeline:
        parts.append(
            _insert(
                TIMELINE,
                [
                    {
                        "checkout_id": checkout.id,
                        "refund_id": refund_id,
                        "kind": "refund",
                        "from_status": str(e.from_status) if e.from_status else None,
                        "to_status": str(e.to_status),
                        "source": str(e.source),
                        "detail": e.detail[:500] if e.detail else None,
                        "created_at": now,
                    }
                    for e in plan.timeline
                ],
            )
        )
    checkout_values: dict[str, Any] = {}
    if plan.event_seq != checkout.event_seq:
        checkout_values["event_seq"] = plan.event_seq
    if plan.review_reason != checkout.review_reason:
        checkout_values["review_reason"] = plan.review_reason
    if checkout_values:
        parts.append(
            _update(CHECKOUTS, {"id": checkout.id}, {**checkout_values, "updated_at": now})
        )
    if plan.events:
        parts.append(
            _insert(EVENTS, _refund_events(checkout, store_id, order_id, plan, now, refund_json))
        )
    _run(session, parts)
    return refund_id


def _insert_refund(
    session: Session, checkout: CheckoutMoney, store_id: str, plan: RefundPlan, now: datetime
) -> int:
    new = plan.new
    assert new is not None
    values = {
        "public_id": new.public_id,
        "checkout_id": checkout.id,
        "store_id": store_id,
        "amount": new.amount.amount,
        "currency": new.amount.currency,
        "reason": new.reason[:500],
        "status": str(plan.status),
        "source": str(new.source),
        "provider": new.provider,
        "destination_token": new.destination_token,
        "destination_masked": new.destination_masked,
        "requested_by": new.requested_by[:64],
        "idempotency_key": new.idempotency_key,
        "query_count": 0,
        "created_at": now,
        "updated_at": now,
    }
    return _insert_returning_id(session, REFUNDS, values)


def _refund_events(
    checkout: CheckoutMoney,
    store_id: str,
    order_id: str,
    plan: RefundPlan,
    now: datetime,
    refund_json: Mapping[str, Any] | None,
) -> list[dict[str, Any]]:
    refund_data = {
        "refund": dict(refund_json)
        if refund_json is not None
        else {
            "id": plan.public_id,
            "object": "refund",
            "status": str(plan.status),
            "amount": plan.amount.amount,
            "currency": plan.amount.currency,
        }
    }
    return [
        outbox_row(
            event.type,
            event.seq,
            now,
            store_id=store_id,
            checkout_id=checkout.id,
            order_id=order_id,
            status=checkout.status,
            amount=checkout.amount,
            amount_paid=checkout.amount_paid,
            currency=checkout.currency,
            review_reason=plan.review_reason,
            livemode=checkout.livemode,
            extra=refund_data,
        )
        for event in plan.events
    ]


# ---------------------------------------------------------------- cash receipts
def write_receipt_change(
    session: Session,
    checkout: C,
    timeline: Sequence[tuple[str, str]],
    events: Sequence[tuple[str, Mapping[str, Any]]],
    now: datetime,
    source: str = EventSource.QUERY,
) -> None:
    """A cash receipt's change on the checkout's timeline (kind "receipt": its state and a
    masked detail) and its shop events (`receipt.*`), numbered by the checkout's event_seq.
    The caller holds the checkout's row lock (services/receipts.py) and commits."""
    rows = [
        {
            "checkout_id": checkout.id,
            "kind": "receipt",
            "from_status": None,
            "to_status": to_status[:20],
            "source": str(source),
            "detail": detail[:500],
            "created_at": now,
        }
        for to_status, detail in timeline
    ]
    if rows:
        session.execute(insert(TIMELINE), rows)
    if not events:
        return
    seq = checkout.event_seq or 0
    outbox = []
    for event_type, data in events:
        seq += 1
        outbox.append(
            outbox_row(
                event_type,
                seq,
                now,
                store_id=checkout.store_id,
                checkout_id=checkout.id,
                order_id=checkout.order_id,
                status=checkout.status,
                amount=checkout.amount,
                amount_paid=checkout.amount_paid,
                currency=checkout.currency,
                review_reason=checkout.review_reason,
                livemode=checkout.livemode,
                extra=data,
            )
        )
    session.execute(insert(EVENTS), outbox)
    session.execute(update(CHECKOUTS).where(CHECKOUTS.c.id == checkout.id).values(event_seq=seq))
    set_committed_value(checkout, "event_seq", seq)
