"""What an operator does to a checkout: each action is recorded in operator_actions, in the
transaction of the change."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.domain.ledger import flag_for_review, resolve_review
from checkout.services.catalog import Catalog
from checkout.services.checkouts import cancel_unpaid
from checkout.services.errors import Conflict, NotFound
from checkout.services.reconcile import query_now
from checkout.services.webhooks import resend_event
from checkout.store.ledger import load_state, write_plan
from checkout.store.models import Checkout, OperatorAction, WebhookEvent, utcnow


def record_action(
    session: Session,
    operator: str,
    action: str,
    checkout_id: str | None,
    *,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    """Add an audit row to the caller's transaction (the caller commits)."""
    session.add(
        OperatorAction(
            operator=operator,
            action=action,
            checkout_id=checkout_id,
            target=target[:64] if target else None,
            detail=detail[:500] if detail else None,
            created_at=utcnow(),
        )
    )


def operator_cancel(session: Session, operator: str, checkout_id: str) -> str:
    """Cancel for an operator (open, or pending with nothing paid) and record the action
    with what really happened, in one transaction; returns that outcome for the page."""

    try:
        _checkout, was = cancel_unpaid(
            session, checkout_id, None, by=f"operator {operator}", allow_pending=True
        )
    except Conflict as exc:
        session.rollback()
        outcome = f"Not cancelled: {exc.message}"
    else:
        outcome = (
            "Already cancelled; nothing changed."
            if was is None
            else f"Checkout cancelled (was {was})."
        )
    record_action(session, operator, "cancel", checkout_id, detail=outcome)
    session.commit()
    return outcome


def operator_mark_review(session: Session, operator: str, checkout_id: str, reason: str) -> str:
    """Flag the checkout for review (the shop hears of it: checkout.review_required)."""

    session.rollback()
    state = load_state(session, checkout_id)
    if state is None:
        return "No such checkout."
    write_plan(session, state, flag_for_review(state, reason, operator), utcnow())
    previous = state.review_reason
    record_action(
        session,
        operator,
        "mark_review",
        checkout_id,
        detail=f"{reason}" + (f"; was: {previous}" if previous else ""),
    )
    session.commit()
    return "Marked for review."


def operator_resolve_review(session: Session, operator: str, checkout_id: str, note: str) -> str:
    """Clear the checkout's review flag and its attempts' (checkout.review_resolved)."""

    session.rollback()
    state = load_state(session, checkout_id)
    if state is None:
        return "No such checkout."
    write_plan(session, state, resolve_review(state), utcnow())
    cleared = [f"{a.trade_no}: {a.review_reason}" for a in state.attempts if a.review_reason]
    record_action(
        session,
        operator,
        "resolve_review",
        checkout_id,
        detail=f"resolved by {operator}: {state.review_reason or '(attempts only)'}"
        + (f"; attempts: {', '.join(cleared)}" if cleared else "")
        + (f"; note: {note}" if note else ""),
    )
    session.commit()
    return f"Review resolved by {operator}."


def operator_query(
    session: Session, catalog: Catalog, operator: str, checkout: Checkout, trade_no: str
) -> str | None:
    """Ask the provider now about the checkout's attempt `trade_no` and record what came of
    it; returns that for the page, or None when the checkout has no such attempt."""
    attempt = next((a for a in checkout.attempts if a.trade_no == trade_no), None)
    if attempt is None:
        return None
    before = attempt.status
    # Any attempt, failed and expired too: money the provider reports is kept and flagged.
    query_now(session, catalog, attempt)
    session.refresh(attempt)
    outcome = f"{before} -> {attempt.status}"
    if attempt.last_query_error:
        outcome += f"; {attempt.last_query_error}"
    if attempt.review_reason:
        outcome += f"; review: {attempt.review_reason}"
    record_action(
        session, operator, "query_provider", checkout.id, target=attempt.trade_no, detail=outcome
    )
    session.commit()
    return f"Query {attempt.trade_no}: {outcome}"


def operator_resend(
    session: Session, operator: str, checkout_id: str, public_id: str
) -> str | None:
    """Queue the checkout's webhook event `public_id` again, recorded with the change;
    returns the outcome for the page, or None when the checkout has no such event."""
    event = session.scalars(
        select(WebhookEvent).where(
            WebhookEvent.public_id == public_id, WebhookEvent.checkout_id == checkout_id
        )
    ).one_or_none()
    if event is None:
        return None
    record_action(
        session,
        operator,
        "resend_webhook",
        checkout_id,
        target=public_id,
        detail=f"{event.type} seq {event.seq} was {event.status}",
    )
    try:
        resend_event(session, public_id)  # commits the audit row with the change
    except NotFound:
        session.rollback()
        return None
    return f"Webhook {public_id} queued again."
