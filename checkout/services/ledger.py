"""The one writer: reads a checkout under its row lock and persists what the rule decided.

`load_state` / `load_state_for_trade` read the checkout, all its attempts and its money rows
into a `domain.ledger.CheckoutState`, the checkout's row locked for the transaction
(PostgreSQL `FOR UPDATE`; SQLite's write transaction holds the whole file). The lock is taken
by its own small statement first: a joined `FOR UPDATE` that waits for another writer
re-reads only the locked row, not the rows joined to it, so it could decide on stale attempts.

`write_plan` writes a `domain.ledger.Plan` with Core statements: the attempts, the checkout,
the money rows, the timeline, the shop's events (the outbox) and, for a notify, the stored
message. On PostgreSQL they go as one statement (data-modifying WITH), one round trip; on
SQLite one after the other. Every change of status or money in the app goes through here.

`load_refunds` / `write_refund_plan` do the same for refunds (`domain.refunds.RefundPlan`):
the checkout's row lock is the refunds' lock, and their shop events share its event_seq.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, insert, select, update
from sqlalchemy.orm import Session

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
    CheckoutMoney,
    RefundPlan,
    RefundSource,
    RefundState,
    RefundStatus,
)
from checkout.domain.states import AttemptStatus, CheckoutStatus
from checkout.models import (
    Checkout,
    NotifyMessage,
    PaymentAttempt,
    PaymentReceipt,
    Refund,
    StateEvent,
    WebhookEvent,
    new_public_id,
)
from checkout.services.outbox import event_payload

A, C, R, RF = PaymentAttempt, Checkout, PaymentReceipt, Refund

_CHECKOUT_COLUMNS = (
    C.id,
    C.store_id,
    C.order_id,
    C.status,
    C.amount,
    C.currency,
    C.amount_paid,
    C.review_reason,
    C.event_seq,
    C.expires_at,
    C.livemode,
)
_ATTEMPT_COLUMNS = (
    A.id.label("a_id"),
    A.trade_no.label("a_trade_no"),
    A.provider.label("a_provider"),
    A.method.label("a_method"),
    A.status.label("a_status"),
    A.amount.label("a_amount"),
    A.currency.label("a_currency"),
    A.amount_paid.label("a_amount_paid"),
    A.review_reason.label("a_review_reason"),
    A.platform_trade_no.label("a_platform_trade_no"),
    A.created_at.label("a_created_at"),
    A.deadline_at.label("a_deadline_at"),
    A.abandoned_at.label("a_abandoned_at"),
)
_RECEIPT_COLUMNS = (
    R.attempt_id.label("r_attempt_id"),
    R.transfer_key.label("r_transfer_key"),
    R.amount.label("r_amount"),
)


def _lock(session: Session, checkout_id_clause: Any) -> str | None:
    return session.execute(
        select(C.id).where(C.id == checkout_id_clause).with_for_update()
    ).scalar_one_or_none()


def load_state(session: Session, checkout_id: str) -> CheckoutState | None:
    """The checkout with its attempts and money rows, its row locked; None if unknown."""
    if _lock(session, checkout_id) is None:
        return None
    return _read(session, checkout_id)


def load_state_for_trade(
    session: Session, provider: str, trade_no: str
) -> tuple[CheckoutState, int] | None:
    """The state of the checkout owning attempt `trade_no` at `provider`, locked, and the
    attempt's id; None if no such attempt."""
    owner = (
        select(A.checkout_id)
        .where(A.trade_no == trade_no, A.provider == provider)
        .scalar_subquery()
    )
    checkout_id = _lock(session, owner)
    if checkout_id is None:
        return None
    state = _read(session, checkout_id)
    attempt = next((a for a in state.attempts if a.trade_no == trade_no), None)
    if attempt is None or attempt.provider != provider:
        return None
    return state, attempt.id


def _read(session: Session, checkout_id: str) -> CheckoutState:
    rows = session.execute(
        select(*_CHECKOUT_COLUMNS, *_ATTEMPT_COLUMNS, *_RECEIPT_COLUMNS)
        .outerjoin(A, A.checkout_id == C.id)
        .outerjoin(R, R.attempt_id == A.id)
        .where(C.id == checkout_id)
        .order_by(A.id, R.id)
    ).all()
    first = rows[0]
    attempts: dict[int, AttemptState] = {}
    receipts: list[Receipt] = []
    for row in rows:
        if row.a_id is not None and row.a_id not in attempts:
            attempts[row.a_id] = AttemptState(
                id=row.a_id,
                trade_no=row.a_trade_no,
                provider=row.a_provider,
                method=row.a_method,
                status=AttemptStatus(row.a_status),
                amount=row.a_amount,
                currency=row.a_currency,
                amount_paid=row.a_amount_paid or 0,
                review_reason=row.a_review_reason,
                platform_trade_no=row.a_platform_trade_no,
                created_at=row.a_created_at,
                deadline_at=row.a_deadline_at,
                abandoned=row.a_abandoned_at is not None,
            )
        if row.r_attempt_id is not None:
            receipts.append(Receipt(row.r_attempt_id, row.r_transfer_key, row.r_amount))
    return CheckoutState(
        id=first.id,
        store_id=first.store_id,
        order_id=first.order_id,
        status=CheckoutStatus(first.status),
        amount=first.amount,
        currency=first.currency,
        amount_paid=first.amount_paid or 0,
        review_reason=first.review_reason,
        event_seq=first.event_seq or 0,
        expires_at=first.expires_at,
        attempts=tuple(attempts.values()),
        receipts=tuple(receipts),
        livemode=first.livemode is not False,
    )


def write_plan(
    session: Session,
    state: CheckoutState,
    plan: Plan,
    now: datetime,
    *,
    notify: Mapping[str, Any] | None = None,
) -> int | None:
    """Persist `plan` in the caller's transaction (the caller commits). `notify`: the
    notify message's columns, stored in the same statement. Returns the new attempt's id
    when the plan created one."""
    new_id = None
    if plan.new_attempt is not None:
        new = plan.new_attempt
        new_id = session.execute(
            insert(A)
            .values(
                checkout_id=state.id,
                trade_no=new.trade_no,
                provider=new.provider,
                method=new.method,
                amount=new.amount,
                currency=new.currency,
                status=AttemptStatus.CREATING,
                deadline_at=new.deadline_at,
                query_count=0,
                created_at=now,
                updated_at=now,
                **new.payer,
            )
            .returning(A.id)
        ).scalar_one()

    def attempt_id(value: int | None) -> int | None:
        return new_id if value == NEW_ATTEMPT and new_id is not None else value

    statements: list[Executable] = []
    for change in plan.attempts:
        statements.append(
            update(A)
            .where(A.id == attempt_id(change.attempt_id))
            .values(**_plain(change.values), updated_at=now)
        )
    if plan.checkout is not None:
        statements.append(
            update(C).where(C.id == state.id).values(**_plain(plan.checkout.values), updated_at=now)
        )
    for receipt in plan.receipts:
        if receipt.new:
            statements.append(
                insert(R).values(
                    checkout_id=state.id,
                    attempt_id=receipt.attempt_id,
                    transfer_key=receipt.transfer_key,
                    amount=receipt.amount,
                    currency=state.currency,
                    source=str(receipt.source),
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            statements.append(
                update(R)
                .where(R.attempt_id == receipt.attempt_id, R.transfer_key == receipt.transfer_key)
                .values(amount=receipt.amount, updated_at=now)
            )
    if plan.timeline:
        # One INSERT: ids follow the rows' order, which is the timeline's.
        statements.append(
            insert(StateEvent).values(
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
                ]
            )
        )
    if plan.events:
        statements.append(insert(WebhookEvent).values(_events(state, plan, plan.events, now)))
    if notify is not None:
        statements.append(insert(NotifyMessage).values(**notify))
    _execute(session, statements)
    return new_id


def _plain(values: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: (str(v) if isinstance(v, AttemptStatus | CheckoutStatus) else v)
        for k, v in values.items()
    }


def _events(
    state: CheckoutState, plan: Plan, events: Sequence[ShopEvent], now: datetime
) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        payload = event_payload(
            event.type,
            event.seq,
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
        rows.append(
            {
                "public_id": new_public_id("evt"),
                "store_id": state.store_id,
                "checkout_id": state.id,
                "type": event.type,
                "seq": event.seq,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": now,
                "pending_since": now,
                "created_at": now,
            }
        )
    return rows


def _execute(session: Session, statements: list[Executable]) -> None:
    if not statements:
        return
    connection = session.connection()
    if connection.dialect.name == "postgresql" and len(statements) > 1:
        # One round trip: every write but the last as a data-modifying CTE of the last.
        *first, last = statements
        combined = last.add_cte(  # type: ignore[attr-defined]
            *(s.cte(f"ledger_{i}") for i, s in enumerate(first))  # type: ignore[attr-defined]
        )
        connection.execute(combined)
        return
    for statement in statements:
        connection.execute(statement)


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
            C.id, C.status, C.currency, C.amount, C.amount_paid, C.review_reason, C.event_seq
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


class RefundWriteConflict(RuntimeError):
    """The refund was not in the status the plan was decided on (a writer without the
    checkout's lock: a bug); nothing of the plan is written."""


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
        new = plan.new
        refund_id = session.execute(
            insert(RF)
            .values(
                public_id=new.public_id,
                checkout_id=checkout.id,
                store_id=store_id,
                amount=new.amount.amount,
                currency=new.amount.currency,
                reason=new.reason[:500],
                status=str(plan.status),
                source=str(new.source),
                provider=new.provider,
                destination_token=new.destination_token,
                destination_masked=new.destination_masked,
                requested_by=new.requested_by[:64],
                idempotency_key=new.idempotency_key,
                query_count=0,
                created_at=now,
                updated_at=now,
            )
            .returning(RF.id)
        ).scalar_one()
    elif plan.values:
        # Its own statement: the status guard's row count must be seen.
        guard = RF.id == refund_id
        if plan.expect_status is not None:
            guard = guard & (RF.status == str(plan.expect_status))
        done = session.execute(update(RF).where(guard).values(**plan.values, updated_at=now))
        if done.rowcount != 1:  # type: ignore[attr-defined]
            raise RefundWriteConflict(f"refund {plan.public_id} moved under the plan")
    statements: list[Executable] = []
    if plan.timeline:
        statements.append(
            insert(StateEvent).values(
                [
                    {
                        "checkout_id": checkout.id,
                        "refund_id": refund_id,
                        "kind": "refund",
                        "from_status": str(e.from_status) if e.from_status else None,
                        "to_status": str(e.to_status),
                        "source": e.source,
                        "detail": e.detail[:500] if e.detail else None,
                        "created_at": now,
                    }
                    for e in plan.timeline
                ]
            )
        )
    checkout_values: dict[str, Any] = {}
    if plan.event_seq != checkout.event_seq:
        checkout_values["event_seq"] = plan.event_seq
    if plan.review_reason != checkout.review_reason:
        checkout_values["review_reason"] = plan.review_reason
    if checkout_values:
        statements.append(
            update(C).where(C.id == checkout.id).values(**checkout_values, updated_at=now)
        )
    if plan.events:
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
        statements.append(
            insert(WebhookEvent).values(
                [
                    {
                        "public_id": new_public_id("evt"),
                        "store_id": store_id,
                        "checkout_id": checkout.id,
                        "type": event.type,
                        "seq": event.seq,
                        "payload": event_payload(
                            event.type,
                            event.seq,
                            checkout_id=checkout.id,
                            order_id=order_id,
                            status=checkout.status,
                            amount=checkout.amount,
                            amount_paid=checkout.amount_paid,
                            currency=checkout.currency,
                            review_reason=plan.review_reason,
                            extra=refund_data,
                        ),
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "pending_since": now,
                        "created_at": now,
                    }
                    for event in plan.events
                ]
            )
        )
    _execute(session, statements)
    return refund_id
