"""The shop-webhook outbox: events are written in the transaction that changed the checkout."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from checkout.models import Checkout, WebhookEvent, utcnow

PAYMENT_INSTRUCTIONS_ISSUED = "checkout.payment_instructions_issued"


def checkout_event_payload(
    checkout: Checkout, seq: int, event_type: str | None = None
) -> dict[str, Any]:
    """The body a shop receives: enough to act on without calling the API back."""
    return {
        "type": event_type or f"checkout.{checkout.status}",
        "seq": seq,
        "livemode": checkout.livemode is not False,
        "data": {
            "id": checkout.id,
            "object": "checkout",
            "order_id": checkout.order_id,
            "status": checkout.status,
            "amount": checkout.amount,
            "amount_paid": checkout.amount_paid or 0,
            "currency": checkout.currency,
            "review_reason": checkout.review_reason,
            "livemode": checkout.livemode is not False,
        },
    }


def enqueue_status_event(session: Session, checkout: Checkout) -> WebhookEvent:
    """Queue `checkout.<status>` for the shop; the caller's commit makes it real.

    The per-checkout sequence is bumped on the checkout row, which the caller has
    locked (or is updating), so a shop can order events even if they arrive out of order.
    """
    return _enqueue(session, checkout, checkout_event_payload(checkout, _next_seq(checkout)))


def enqueue_event(
    session: Session, checkout: Checkout, event_type: str, data: dict[str, Any]
) -> WebhookEvent:
    """Queue an event that is not a status change (e.g. payment instructions issued):
    the checkout's fields with `data` beside them. Takes the checkout's row lock for its
    sequence number; the caller's commit makes it real."""
    from checkout.services.lifecycle import lock_checkout

    lock_checkout(session, checkout)
    payload = checkout_event_payload(checkout, _next_seq(checkout), event_type)
    payload["data"].update(data)
    return _enqueue(session, checkout, payload)


def _next_seq(checkout: Checkout) -> int:
    checkout.event_seq = (checkout.event_seq or 0) + 1
    return checkout.event_seq


def _enqueue(session: Session, checkout: Checkout, payload: dict[str, Any]) -> WebhookEvent:
    now = utcnow()
    event = WebhookEvent(
        store_id=checkout.store_id,
        checkout_id=checkout.id,
        type=payload["type"],
        seq=payload["seq"],
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        pending_since=now,
    )
    session.add(event)
    return event
