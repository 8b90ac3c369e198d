"""The shop-webhook outbox: events are written in the transaction that changed the checkout."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from checkout.models import Checkout, WebhookEvent, utcnow


def checkout_event_payload(checkout: Checkout, seq: int) -> dict[str, Any]:
    """The body a shop receives: enough to act on without calling the API back."""
    return {
        "type": f"checkout.{checkout.status}",
        "seq": seq,
        "data": {
            "id": checkout.id,
            "object": "checkout",
            "order_id": checkout.order_id,
            "status": checkout.status,
            "amount": checkout.amount,
            "amount_paid": checkout.amount_paid or 0,
            "currency": checkout.currency,
            "review_reason": checkout.review_reason,
        },
    }


def enqueue_status_event(session: Session, checkout: Checkout) -> WebhookEvent:
    """Queue `checkout.<status>` for the shop; the caller's commit makes it real.

    The per-checkout sequence is bumped on the checkout row, which the caller has
    locked (or is updating), so a shop can order events even if they arrive out of order.
    """
    checkout.event_seq = (checkout.event_seq or 0) + 1
    payload = checkout_event_payload(checkout, checkout.event_seq)
    now = utcnow()
    event = WebhookEvent(
        store_id=checkout.store_id,
        checkout_id=checkout.id,
        type=payload["type"],
        seq=checkout.event_seq,
        payload=payload,
        status="pending",
        attempts=0,
        next_attempt_at=now,
        pending_since=now,
    )
    session.add(event)
    return event
