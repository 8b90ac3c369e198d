"""The shop's JSON API: create and read checkouts."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from checkout import jsonsafe
from checkout.config import StoreConfig
from checkout.db import db
from checkout.extensions import catalog_of, settings_of
from checkout.models import Checkout
from checkout.services.checkouts import (
    attempt_summary,
    cancel_checkout,
    create_checkout,
    expire_if_due,
    find_by_order_id,
    get_checkout,
    parse_new_checkout,
)
from checkout.services.errors import ServiceError
from checkout.services.idempotency import (
    StoredResponse,
    check_key,
    remember,
    replay,
    request_hash,
)

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _error(status: int, code: str, message: str, field: str | None = None) -> Any:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify(error=body), status


@bp.before_request
def authenticate() -> Any:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    store = None
    if scheme.lower() == "bearer" and token.strip():
        store = settings_of(current_app).store_for_api_key(token.strip())
    if store is None:
        response = _error(
            401, "unauthorized", "A valid 'Authorization: Bearer <API key>' is required."
        )
        response[0].headers["WWW-Authenticate"] = 'Bearer realm="checkout"'
        return response
    g.store = store
    return None


@bp.errorhandler(ServiceError)
def service_error(error: ServiceError) -> Any:
    return _error(error.http_status, error.code, error.message, error.field)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    code = (error.name or "error").lower().replace(" ", "_")
    return _error(error.code or 500, code, error.description or error.name)


def checkout_json(checkout: Checkout) -> dict[str, Any]:
    settings = settings_of(current_app)
    return {
        "id": checkout.id,
        "object": "checkout",
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
    }


@bp.post("/checkouts")
def create() -> Any:
    store: StoreConfig = g.store
    key = request.headers.get("Idempotency-Key")
    fingerprint = request_hash("POST", request.path, request.get_data())
    if key is not None:
        key = check_key(key)
        stored = replay(db.session, store.id, key, fingerprint)
        if stored is not None:
            response = current_app.response_class(
                stored.body, status=stored.status, mimetype="application/json"
            )
            response.headers["Idempotent-Replayed"] = "true"
            return response
    try:
        # Bounded size and depth, every failure a 400 (checkout/jsonsafe.py).
        data = jsonsafe.loads(request.get_data()) if request.is_json else None
    except jsonsafe.UnsafeJson:
        data = None
    if data is None:
        return _error(
            400, "invalid_json", "The body must be JSON (Content-Type: application/json)."
        )
    new = parse_new_checkout(data, store, catalog_of(current_app))
    ttl = timedelta(minutes=settings_of(current_app).checkout_ttl_minutes)
    checkout, created = create_checkout(db.session, store, new, ttl)
    checkout = get_checkout(db.session, checkout.id)
    status = 201 if created else 200
    body = json.dumps(checkout_json(checkout))
    if key is not None:
        remember(db.session, store.id, key, fingerprint, StoredResponse(status, body))
    return current_app.response_class(body, status=status, mimetype="application/json")


@bp.get("/checkouts")
def list_checkouts() -> Any:
    order_id = request.args.get("order_id")
    if not order_id:
        return _error(400, "order_id_required", "Give ?order_id= to find a checkout.", "order_id")
    checkout = find_by_order_id(db.session, g.store.id, order_id)
    return jsonify(object="list", data=[checkout_json(checkout)] if checkout else [])


@bp.get("/checkouts/<checkout_id>")
def read(checkout_id: str) -> Any:
    checkout = get_checkout(db.session, checkout_id, store_id=g.store.id)
    expire_if_due(db.session, checkout)
    return jsonify(checkout_json(checkout))


@bp.post("/checkouts/<checkout_id>/cancel")
def cancel(checkout_id: str) -> Any:
    checkout = cancel_checkout(db.session, checkout_id, g.store.id)
    return jsonify(checkout_json(get_checkout(db.session, checkout.id)))
