"""The shop-webhook outbox: events are written in the transaction that changed the checkout
(services/ledger.py inserts them with the change; this module says what they carry)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# Not a status change: the payment details a shop may pass on to the shopper.
PAYMENT_INSTRUCTIONS_ISSUED = "checkout.payment_instructions_issued"


def event_payload(
    event_type: str,
    seq: int,
    *,
    checkout_id: str,
    order_id: str,
    status: str,
    amount: int,
    amount_paid: int,
    currency: str,
    review_reason: str | None,
    livemode: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The body a shop receives: the checkout as it stands after the change, enough to act
    on without calling the API back."""
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
    return {"type": event_type, "seq": seq, "livemode": livemode, "data": data}
