"""The shop-webhook outbox: events are written in the transaction that changed the checkout
(store/ledger.py inserts them with the change; this module says what they carry)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from checkout.domain.states import WebhookStatus
from checkout.store.models import new_public_id

# Not a status change: the payment details a shop may pass on to the shopper.
PAYMENT_INSTRUCTIONS_ISSUED = "checkout.payment_instructions_issued"


def outbox_row(
    event_type: str,
    seq: int,
    now: datetime,
    *,
    store_id: str,
    checkout_id: str,
    order_id: str,
    status: str,
    amount: int,
    amount_paid: int,
    currency: str,
    review_reason: str | None,
    livemode: bool,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """One pending outbox row (webhook_events) for a checkout's change, due at once. Its
    payload is the body a shop receives: the checkout as it stands after the change, enough
    to act on without calling the API back, with `extra` (a refund, a receipt) merged in.
    Every writer of shop events builds its rows here."""
    data: dict[str, Any] = {
        "id": checkout_id,
        "object": "checkout",
        "order_id": order_id,
        "status": status,
        "amount": amount,
        "amount_paid": amount_paid or 0,
        "currency": currency,
        "review_reason": review_reason,
        "livemode": livemode,
    }
    if extra:
        data.update(extra)
    return {
        "public_id": new_public_id("evt"),
        "store_id": store_id,
        "checkout_id": checkout_id,
        "type": event_type,
        "seq": seq,
        "payload": {"type": event_type, "seq": seq, "livemode": livemode, "data": data},
        "status": str(WebhookStatus.PENDING),
        "attempts": 0,
        "next_attempt_at": now,
        "pending_since": now,
        "created_at": now,
    }
