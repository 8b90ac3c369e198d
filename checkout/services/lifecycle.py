"""Applying a provider's word (create answer, notify, query) through the state machine."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from checkout.domain.states import (
    ATTEMPT_FINAL,
    ATTEMPT_LIVE,
    CHECKOUT_FINAL,
    AttemptStatus,
    CheckoutStatus,
    EventSource,
    attempt_transition,
    checkout_transition,
)
from checkout.models import Checkout, PaymentAttempt, StateEvent, utcnow
from checkout.providers.base import PaymentUpdate
from checkout.services.outbox import enqueue_status_event


class Verdict(StrEnum):
    """What became of a provider message; stored on every notify."""

    RECEIVED = "received"  # stored, not yet processed
    ACCEPTED = "accepted"  # applied: the attempt moved
    NO_CHANGE = "no_change"  # still pending, nothing to do
    DUPLICATE = "duplicate"  # the attempt already had this status
    CONFLICT = "conflict"  # contradicts a final status: kept for review, nothing moved
    AMOUNT_MISMATCH = "amount_mismatch"  # currency or amount unusable: flagged for review
    BAD_SIGNATURE = "bad_signature"
    MALFORMED = "malformed"
    UNKNOWN_TRADE = "unknown_trade"


PAID_LATE = "paid late"  # review_reason for money that arrived after an expiry
PAID_AFTER_FAILED = "paid after failed"  # money the provider reports for a failed attempt
# Final attempt statuses that money may still move, and the review flag it gets.
_LATE_MONEY = {AttemptStatus.EXPIRED: PAID_LATE, AttemptStatus.FAILED: PAID_AFTER_FAILED}


def _record_event(
    session: Session,
    checkout_id: str,
    attempt: PaymentAttempt | None,
    previous: str | None,
    target: str,
    source: EventSource,
    detail: str | None,
) -> None:
    session.add(
        StateEvent(
            checkout_id=checkout_id,
            attempt_id=attempt.id if attempt is not None else None,
            kind="attempt" if attempt is not None else "checkout",
            from_status=previous,
            to_status=str(target),
            source=str(source),
            detail=detail[:500] if detail else None,
            created_at=utcnow(),
        )
    )


def record_attempt_created(
    session: Session, attempt: PaymentAttempt, detail: str | None = None
) -> None:
    """The timeline's first attempt entry (none -> creating); the attempt must be flushed.
    `detail`: the routing decision (checkout/domain/routing.py route_note), if any."""
    session.flush()
    _record_event(
        session,
        attempt.checkout_id,
        attempt,
        None,
        attempt.status,
        EventSource.SHOPPER,
        detail or f"{attempt.method} via {attempt.provider}",
    )


def set_attempt_status(
    session: Session,
    attempt: PaymentAttempt,
    target: AttemptStatus,
    *,
    source: EventSource,
    detail: str | None = None,
) -> bool:
    """Move the attempt (the caller holds its row lock) and record the change.

    Returns False for a repeat, which records nothing; raises TransitionError if the
    state machine forbids the move.
    """
    previous = attempt.status
    changed = attempt_transition(AttemptStatus(previous), target)
    if changed:
        attempt.status = target
        _record_event(session, attempt.checkout_id, attempt, previous, target, source, detail)
    return changed


def lock_checkout(session: Session, checkout: Checkout) -> None:
    """Re-read the checkout's status, money and event counter under its row lock.

    Objects outlive commits (expire_on_commit=False), so a status read earlier may be
    stale; deciding on it could overwrite a concurrent change or queue its event twice.
    Flushing first keeps this transaction's own unflushed changes.
    """
    if _locked_here(session, checkout):
        return  # read under lock earlier in this transaction: nobody else can have changed it
    session.flush()
    session.refresh(
        checkout,
        attribute_names=["status", "amount_paid", "event_seq", "review_reason"],
        with_for_update=True,
    )
    mark_checkout_locked(session, checkout)


_LOCKS = "checkout_row_locks"  # session.info: (transaction, ids of checkouts it locked)


def mark_checkout_locked(session: Session, checkout: Checkout) -> None:
    """The caller has just read `checkout` FOR UPDATE in the current transaction."""
    transaction = session.get_transaction()
    if transaction is None:
        return
    held = session.info.get(_LOCKS)
    if held is None or held[0] is not transaction:
        held = session.info[_LOCKS] = (transaction, set())
    held[1].add(checkout.id)


def _locked_here(session: Session, checkout: Checkout) -> bool:
    held = session.info.get(_LOCKS)
    return (
        held is not None
        and held[0] is session.get_transaction()
        and held[0].is_active
        and checkout.id in held[1]
    )


def set_checkout_status(
    session: Session,
    checkout: Checkout,
    target: CheckoutStatus,
    *,
    source: EventSource,
    detail: str | None = None,
) -> bool:
    """Move the checkout, record the change and queue exactly one webhook event for it.

    Both rows are written in the caller's transaction (the outbox), so the shop hears of
    the change if and only if it is committed; a repeated status writes nothing.
    """
    lock_checkout(session, checkout)
    previous = checkout.status
    changed = checkout_transition(CheckoutStatus(previous), target)
    if changed:
        checkout.status = target
        _record_event(session, checkout.id, None, previous, target, source, detail)
        enqueue_status_event(session, checkout)
    return changed


def claim_checkout(session: Session, checkout: Checkout) -> bool:
    """OPEN -> PENDING for a new attempt, atomically; False if another request won.

    A conditional UPDATE rather than read-then-write: only one of several simultaneous
    submits can match `status = 'open'` (SQLite has no row locks to rely on).
    """
    now = utcnow()
    claimed = session.execute(
        update(Checkout)
        .where(Checkout.id == checkout.id, Checkout.status == CheckoutStatus.OPEN)
        .values(status=CheckoutStatus.PENDING, updated_at=now)
        .returning(Checkout.amount_paid, Checkout.event_seq)
        .execution_options(synchronize_session=False)
    ).one_or_none()
    if claimed is None:
        return False
    # The UPDATE holds the row lock and returned what the checkout holds now: take it as
    # read under the lock (no second query), then record the change and queue
    # checkout.pending in the attempt's transaction.
    for name, value in (
        ("status", CheckoutStatus.PENDING),
        ("updated_at", now),
        ("amount_paid", claimed.amount_paid),
        ("event_seq", claimed.event_seq),
    ):
        set_committed_value(checkout, name, value)
    mark_checkout_locked(session, checkout)
    _record_event(
        session,
        checkout.id,
        None,
        CheckoutStatus.OPEN,
        CheckoutStatus.PENDING,
        EventSource.SHOPPER,
        None,
    )
    enqueue_status_event(session, checkout)
    return True


def reopen_if_idle(
    session: Session,
    checkout: Checkout,
    *,
    source: EventSource,
    now: datetime | None = None,
) -> None:
    """After an attempt ends without money, let the shopper try again (or expire)."""
    lock_checkout(session, checkout)
    if checkout.status != CheckoutStatus.PENDING:
        return
    if any(a.status in ATTEMPT_LIVE for a in checkout.attempts):
        return
    expired = (now or utcnow()) >= checkout.expires_at
    set_checkout_status(
        session,
        checkout,
        CheckoutStatus.EXPIRED if expired else CheckoutStatus.OPEN,
        source=EventSource.EXPIRY if expired else source,
    )


def expire_attempt(
    session: Session, attempt: PaymentAttempt, *, now: datetime | None = None
) -> bool:
    """A live attempt whose deadline passed (VA expiry plus grace) -> EXPIRED.

    The checkout reopens, or expires if it is past its own deadline. The caller holds the
    attempt's row lock and commits.
    """
    if attempt.status not in (AttemptStatus.PENDING, AttemptStatus.UNKNOWN):
        return False
    set_attempt_status(
        session, attempt, AttemptStatus.EXPIRED, source=EventSource.EXPIRY, detail="va expired"
    )
    reopen_if_idle(session, attempt.checkout, source=EventSource.EXPIRY, now=now)
    session.flush()
    return True


def apply_update(
    session: Session,
    attempt: PaymentAttempt,
    update: PaymentUpdate,
    *,
    source: EventSource = EventSource.NOTIFY,
    now: datetime | None = None,
) -> Verdict:
    """Apply a provider's status to an attempt (locked by the caller) and its checkout.

    The caller commits. Amounts decide between paid and partially paid; an amount
    that cannot be matched flags the attempt (and its checkout) for review and moves
    nothing. Money for an expired or failed attempt, or an expired checkout, is kept and
    flagged ("paid late", "paid after failed"); every other final status never moves.
    """
    target = update.status
    paid = update.amount_paid
    if update.platform_trade_no and not attempt.platform_trade_no:
        attempt.platform_trade_no = update.platform_trade_no
    if target in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
        if paid is None or paid.currency != attempt.currency or paid.amount <= 0:
            flag_attempt(
                session, attempt, f"provider reported {target} with unusable amount {paid}"
            )
            return Verdict.AMOUNT_MISMATCH
        if paid.amount < attempt.amount:
            target = AttemptStatus.PARTIALLY_PAID
        else:
            target = AttemptStatus.PAID
            if paid.amount > attempt.amount:
                flag_attempt(session, attempt, f"overpaid: {paid} received for {attempt.money}")

    current = AttemptStatus(attempt.status)
    if current == target:
        return Verdict.DUPLICATE if target in ATTEMPT_FINAL else Verdict.NO_CHANGE
    late = _LATE_MONEY.get(current)
    paid_late = late is not None and target in (
        AttemptStatus.PAID,
        AttemptStatus.PARTIALLY_PAID,
    )
    if current in ATTEMPT_FINAL and not paid_late:
        flag_attempt(session, attempt, f"provider reported {target} after {current}")
        return Verdict.CONFLICT
    if target in ATTEMPT_LIVE:
        # Only "the provider has it" news moves anything: an unknown create did arrive.
        if current == AttemptStatus.UNKNOWN and target == AttemptStatus.PENDING:
            set_attempt_status(session, attempt, target, source=source)
            attempt.provider_status = update.provider_status
            return Verdict.ACCEPTED
        return Verdict.NO_CHANGE

    set_attempt_status(session, attempt, target, source=source, detail=late if paid_late else None)
    attempt.provider_status = update.provider_status
    if update.failure_message:
        attempt.failure_message = update.failure_message[:500]
    if paid_late:
        assert late is not None
        attempt.review_reason = _flag(attempt.review_reason, late)
    checkout = attempt.checkout
    if target in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
        assert paid is not None
        lock_checkout(session, checkout)  # amount_paid and status are read-modify-write
        attempt.amount_paid = paid.amount
        checkout.amount_paid = (checkout.amount_paid or 0) + paid.amount
        done = checkout.amount_paid >= checkout.amount
        settled = CheckoutStatus.PAID if done else CheckoutStatus.PARTIALLY_PAID
        if paid_late and late is not None:
            checkout.review_reason = _flag(checkout.review_reason, late)
        if checkout.status == CheckoutStatus.EXPIRED:
            # The shopper paid after the deadline: the money is real, keep the sale.
            checkout.review_reason = _flag(checkout.review_reason, PAID_LATE)
            set_checkout_status(session, checkout, settled, source=source, detail=PAID_LATE)
        elif checkout.status in CHECKOUT_FINAL:
            # Money for a checkout that was already settled: never lose it, flag it.
            checkout.review_reason = _flag(
                checkout.review_reason,
                f"payment {attempt.trade_no} arrived while {checkout.status}",
            )
        else:
            set_checkout_status(session, checkout, settled, source=source, detail=late)
    else:
        reopen_if_idle(session, checkout, source=source, now=now)
    return Verdict.ACCEPTED  # written by the caller's commit, in one flush


def flag_attempt(session: Session, attempt: PaymentAttempt, reason: str) -> None:
    """Flag an attempt for review, and its checkout with it ("attempt <trade_no>: <reason>"):
    the console's list, its review filter, the daily summary and Resolve look at checkouts."""
    attempt.review_reason = reason[:200]
    checkout = attempt.checkout
    lock_checkout(session, checkout)  # review_reason is read-modify-write
    checkout.review_reason = _flag(checkout.review_reason, f"attempt {attempt.trade_no}: {reason}")


def _flag(existing: str | None, reason: str) -> str:
    """Add a review reason without losing one already there (e.g. overpaid)."""
    if not existing:
        return reason[:200]
    if reason in existing:
        return existing
    return f"{reason}; {existing}"[:200]
