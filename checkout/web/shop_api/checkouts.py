"""Checkouts: create (idempotent), find by order id, read, cancel; all in the key's mode."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Response, current_app, request

from checkout.extensions import catalog_of, settings_of
from checkout.services.checkouts import (
    attempt_summary,
    cancel_checkout,
    create_checkout,
    expire_if_due,
    find_by_order_id,
    get_checkout,
    parse_new_checkout,
)
from checkout.services.errors import InvalidRequest
from checkout.services.receipts import receipt_fields
from checkout.store.db import db
from checkout.store.models import Checkout
from checkout.web.shop_api.auth import current_key
from checkout.web.shop_api.blueprint import bp
from checkout.web.shop_api.body import answer, json_body
from checkout.web.shop_api.idempotent import idempotent

MAX_ORDER_ID_LENGTH = 64


def checkout_json(checkout: Checkout) -> dict[str, Any]:
    settings = settings_of(current_app)
    return {
        "id": checkout.id,
        "object": "checkout",
        "livemode": checkout.livemode,
        "url": f"{settings.public_base_url}/c/{checkout.id}",
        "order_id": checkout.order_id,
        "status": checkout.status,
        "amount": checkout.amount,
        "amount_paid": checkout.amount_paid,
        "currency": checkout.currency,
        "description": checkout.description,
        "return_url": checkout.return_url,
        "cancel_url": checkout.cancel_url,
        "locale": checkout.locale,
        "methods": checkout.methods,
        "review_reason": checkout.review_reason,
        "expires_at": checkout.expires_at.isoformat(),
        "created_at": checkout.created_at.isoformat(),
        "payment_attempts": [attempt_summary(a) for a in checkout.attempts],
        # Every status change of the checkout and its attempts, oldest first.
        "events": [
            {
                "kind": e.kind,
                "from": e.from_status,
                "to": e.to_status,
                "source": e.source,
                "at": e.created_at.isoformat(),
            }
            for e in checkout.events
        ],
        **receipt_fields(db.session, checkout),  # cash_receipt, invoice_data
    }


@bp.post("/checkouts")
def create() -> Response:
    return idempotent(_create)


def _create() -> Response:
    key = current_key()
    new = parse_new_checkout(json_body(), key.store, catalog_of(current_app, key.livemode))
    settings = settings_of(current_app)
    ttl = timedelta(minutes=settings.checkout_ttl_minutes)
    checkout, created = create_checkout(
        db.session, key.store, new, ttl, key.livemode, settings.account_cipher
    )
    checkout = get_checkout(db.session, checkout.id)
    return answer(checkout_json(checkout), 201 if created else 200)


@bp.get("/checkouts")
def list_checkouts() -> Response:
    key = current_key()
    order_id = request.args.get("order_id")
    if not order_id:
        raise InvalidRequest(
            "order_id_required", "Give ?order_id= to find a checkout.", field="order_id"
        )
    if len(order_id) > MAX_ORDER_ID_LENGTH:
        raise InvalidRequest(
            "invalid_order_id", "order_id must be at most 64 characters.", field="order_id"
        )
    checkout = find_by_order_id(db.session, key.store.id, order_id, key.livemode)
    return answer({"object": "list", "data": [checkout_json(checkout)] if checkout else []})


@bp.get("/checkouts/<checkout_id>")
def read(checkout_id: str) -> Response:
    key = current_key()
    checkout = get_checkout(db.session, checkout_id, store_id=key.store.id, livemode=key.livemode)
    expire_if_due(db.session, checkout)
    return answer(checkout_json(checkout))


@bp.post("/checkouts/<checkout_id>/cancel")
def cancel(checkout_id: str) -> Response:
    key = current_key()
    checkout = cancel_checkout(db.session, checkout_id, key.store.id, livemode=key.livemode)
    return answer(checkout_json(get_checkout(db.session, checkout.id)))
