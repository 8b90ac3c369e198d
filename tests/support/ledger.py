"""Database-free helpers for the ledger's rule tests: build a state, fold a Plan into it."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from checkout.domain.ledger import (
    NEW_ATTEMPT,
    AttemptState,
    CheckoutState,
    Plan,
    Receipt,
)
from checkout.domain.states import AttemptStatus, CheckoutStatus

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def attempt(
    attempt_id: int = 1,
    status: AttemptStatus = AttemptStatus.PENDING,
    *,
    trade_no: str | None = None,
    amount: int = 10000,
    amount_paid: int = 0,
    review_reason: str | None = None,
    deadline_at: datetime | None = None,
    created_at: datetime | None = None,
) -> AttemptState:
    return AttemptState(
        id=attempt_id,
        trade_no=trade_no or f"T{attempt_id}",
        provider="p",
        status=status,
        amount=amount,
        currency="KRW",
        amount_paid=amount_paid,
        review_reason=review_reason,
        platform_trade_no=None,
        created_at=created_at or NOW - timedelta(minutes=5),
        deadline_at=deadline_at,
        method="m",
    )


def checkout(
    *attempts: AttemptState,
    status: CheckoutStatus = CheckoutStatus.PENDING,
    amount: int = 10000,
    amount_paid: int = 0,
    review_reason: str | None = None,
    receipts: tuple[Receipt, ...] = (),
    expires_at: datetime | None = None,
) -> CheckoutState:
    return CheckoutState(
        id="co_1",
        store_id="s",
        order_id="o",
        status=status,
        amount=amount,
        currency="KRW",
        amount_paid=amount_paid,
        review_reason=review_reason,
        event_seq=0,
        expires_at=expires_at or NOW + timedelta(hours=1),
        attempts=attempts,
        receipts=receipts,
    )


def fold(state: CheckoutState, plan: Plan, new_attempt_id: int = 99) -> CheckoutState:
    """The state as the writer would leave it (what store/ledger.py writes, in memory)."""
    attempts = list(state.attempts)
    if plan.new_attempt is not None:
        new = plan.new_attempt
        attempts.append(
            AttemptState(
                id=new_attempt_id,
                trade_no=new.trade_no,
                provider=new.provider,
                status=AttemptStatus.CREATING,
                amount=new.amount,
                currency=new.currency,
                amount_paid=0,
                review_reason=None,
                platform_trade_no=None,
                created_at=NOW,
                deadline_at=new.deadline_at,
                method=new.method,
            )
        )
    for change in plan.attempts:
        target = new_attempt_id if change.attempt_id == NEW_ATTEMPT else change.attempt_id
        index = next(i for i, a in enumerate(attempts) if a.id == target)
        known = {k: v for k, v in change.values.items() if k in AttemptState.__dataclass_fields__}
        if "status" in known:
            known["status"] = AttemptStatus(known["status"])
        if "abandoned_at" in change.values:
            known["abandoned"] = change.values["abandoned_at"] is not None
        attempts[index] = replace(attempts[index], **known)
    receipts = {(r.attempt_id, r.transfer_key): r for r in state.receipts}
    for receipt in plan.receipts:
        receipts[(receipt.attempt_id, receipt.transfer_key)] = Receipt(
            receipt.attempt_id, receipt.transfer_key, receipt.amount
        )
    values = dict(plan.checkout.values) if plan.checkout is not None else {}
    return replace(
        state,
        status=CheckoutStatus(values.get("status", state.status)),
        amount_paid=values.get("amount_paid", state.amount_paid),
        review_reason=values.get("review_reason", state.review_reason),
        event_seq=values.get("event_seq", state.event_seq),
        attempts=tuple(attempts),
        receipts=tuple(receipts.values()),
    )
