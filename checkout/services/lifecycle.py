"""Applying a provider's word (create answer, notify, query) through the state machine."""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy.orm import Session

from checkout.domain.states import (
    ATTEMPT_FINAL,
    ATTEMPT_LIVE,
    CHECKOUT_FINAL,
    AttemptStatus,
    CheckoutStatus,
    attempt_transition,
    checkout_transition,
)
from checkout.models import Checkout, PaymentAttempt, utcnow
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


def set_attempt_status(attempt: PaymentAttempt, target: AttemptStatus) -> bool:
    changed = attempt_transition(AttemptStatus(attempt.status), target)
    if changed:
        attempt.status = target
    return changed


def lock_checkout(session: Session, checkout: Checkout) -> None:
    """Re-read the checkout's status, money and event counter under its row lock.

    Objects outlive commits (expire_on_commit=False), so a status read earlier may be
    stale; deciding on it could overwrite a concurrent change or queue its event twice.
    Flushing first keeps this transaction's own unflushed changes.
    """
    session.flush()
    session.refresh(
        checkout, attribute_names=["status", "amount_paid", "event_seq"], with_for_update=True
    )


def set_checkout_status(session: Session, checkout: Checkout, target: CheckoutStatus) -> bool:
    """Move the checkout and queue exactly one webhook event per real change.

    The event is written in the caller's transaction (the outbox), so the shop hears of
    the change if and only if it is committed; a repeated status queues nothing.
    """
    lock_checkout(session, checkout)
    changed = checkout_transition(CheckoutStatus(checkout.status), target)
    if changed:
        checkout.status = target
        enqueue_status_event(session, checkout)
    return changed


def reopen_if_idle(session: Session, checkout: Checkout) -> None:
    """After an attempt ends without money, let the shopper try again (or expire)."""
    lock_checkout(session, checkout)
    if checkout.status != CheckoutStatus.PENDING:
        return
    if any(a.status in ATTEMPT_LIVE for a in checkout.attempts):
        return
    expired = utcnow() >= checkout.expires_at
    set_checkout_status(
        session, checkout, CheckoutStatus.EXPIRED if expired else CheckoutStatus.OPEN
    )


def apply_update(session: Session, attempt: PaymentAttempt, update: PaymentUpdate) -> Verdict:
    """Apply a provider's status to an attempt (locked by the caller) and its checkout.

    The caller commits. Amounts decide between paid and partially paid; an amount
    that cannot be matched flags the attempt for review and moves nothing.
    """
    target = update.status
    paid = update.amount_paid
    if update.platform_trade_no and not attempt.platform_trade_no:
        attempt.platform_trade_no = update.platform_trade_no
    if target in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
        if paid is None or paid.currency != attempt.currency or paid.amount <= 0:
            attempt.review_reason = f"provider reported {target} with unusable amount {paid}"
            return Verdict.AMOUNT_MISMATCH
        if paid.amount < attempt.amount:
            target = AttemptStatus.PARTIALLY_PAID
        else:
            target = AttemptStatus.PAID
            if paid.amount > attempt.amount:
                attempt.review_reason = f"overpaid: {paid} received for {attempt.money}"

    current = AttemptStatus(attempt.status)
    if current == target:
        return Verdict.DUPLICATE if target in ATTEMPT_FINAL else Verdict.NO_CHANGE
    if current in ATTEMPT_FINAL:
        attempt.review_reason = f"provider reported {target} after {current}"
        return Verdict.CONFLICT
    if target in ATTEMPT_LIVE:
        return Verdict.NO_CHANGE

    set_attempt_status(attempt, target)
    attempt.provider_status = update.provider_status
    if update.failure_message:
        attempt.failure_message = update.failure_message[:500]
    checkout = attempt.checkout
    if target in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
        assert paid is not None
        lock_checkout(session, checkout)  # amount_paid and status are read-modify-write
        attempt.amount_paid = paid.amount
        checkout.amount_paid = (checkout.amount_paid or 0) + paid.amount
        if checkout.status in CHECKOUT_FINAL:
            # Money for a checkout that was already settled: never lose it, flag it.
            checkout.review_reason = f"payment {attempt.trade_no} arrived while {checkout.status}"
        else:
            done = checkout.amount_paid >= checkout.amount
            set_checkout_status(
                session, checkout, CheckoutStatus.PAID if done else CheckoutStatus.PARTIALLY_PAID
            )
    else:
        reopen_if_idle(session, checkout)
    session.flush()
    return Verdict.ACCEPTED
