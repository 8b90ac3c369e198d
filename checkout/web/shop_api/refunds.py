"""Refunds: create (refund scope, idempotent), list per checkout, read; all in the key's
mode. A refund's mode is its checkout's: another mode's refund or checkout is 404, so a key
is never handed another mode's refund-account link (`account_url`)."""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, request

from checkout.domain.refunds import RefundSource, RefundStatus, awaits_destination
from checkout.extensions import catalog_of, settings_of
from checkout.services.refund_account_links import account_link
from checkout.services.refunds import create_refund, get_refund, list_refunds, refund_json
from checkout.store.db import db
from checkout.store.models import Refund
from checkout.web.shop_api.auth import current_key, require_refund_scope
from checkout.web.shop_api.blueprint import bp
from checkout.web.shop_api.body import answer, json_body
from checkout.web.shop_api.idempotent import idempotent


def _json(refund: Refund, livemode: bool) -> dict[str, Any]:
    """The refund, with a fresh refund-account link while it still needs an account."""
    data = refund_json(refund, livemode)
    if awaits_destination(RefundStatus(refund.status), refund.destination_token is not None):
        settings = settings_of(current_app)
        data["account_url"] = account_link(
            settings.public_base_url, settings.secret_key, refund.public_id
        )
    return data


@bp.post("/checkouts/<checkout_id>/refunds", endpoint="create_refund")
def create(checkout_id: str) -> Response:
    require_refund_scope()
    return idempotent(lambda: _create(checkout_id))


def _create(checkout_id: str) -> Response:
    key = current_key()
    data = json_body()
    refund, created = create_refund(
        db.session,
        settings_of(current_app),
        key.store.id,
        checkout_id,
        data,
        source=RefundSource.API,
        requested_by=f"api:{key.store.id}",
        payouts=catalog_of(current_app).payouts,
        idempotency_key=request.headers.get("Idempotency-Key", "").strip() or None,
        livemode=key.livemode,
    )
    response = answer(_json(refund, key.livemode), 201 if created else 200)
    if not created:  # made by this key's earlier request whose answer was lost
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/checkouts/<checkout_id>/refunds", endpoint="list_refunds")
def list_for_checkout(checkout_id: str) -> Response:
    key = current_key()
    refunds = list_refunds(db.session, checkout_id, store_id=key.store.id, livemode=key.livemode)
    return answer({"object": "list", "data": [_json(r, key.livemode) for r in refunds]})


@bp.get("/refunds/<refund_id>", endpoint="read_refund")
def read(refund_id: str) -> Response:
    key = current_key()
    refund = get_refund(db.session, refund_id, store_id=key.store.id, livemode=key.livemode)
    return answer(_json(refund, key.livemode))
