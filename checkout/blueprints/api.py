"""The shop's JSON API: create and read checkouts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from checkout.app import catalog_of, settings_of
from checkout.config import StoreConfig
from checkout.db import db
from checkout.models import Checkout
from checkout.services.checkouts import (
    attempt_summary,
    create_checkout,
    expire_if_due,
    get_checkout,
    parse_new_checkout,
)
from checkout.services.errors import ServiceError

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
        "locale": checkout.locale,
        "methods": checkout.methods,
        "review_reason": checkout.review_reason,
        "expires_at": checkout.expires_at.isoformat(),
        "created_at": checkout.created_at.isoformat(),
        "payment_attempts": [attempt_summary(a) for a in checkout.attempts],
    }


@bp.post("/checkouts")
def create() -> Any:
    store: StoreConfig = g.store
    data = request.get_json(silent=True)
    if data is None:
        return _error(
            400, "invalid_json", "The body must be JSON (Content-Type: application/json)."
        )
    new = parse_new_checkout(data, store, catalog_of(current_app))
    ttl = timedelta(minutes=settings_of(current_app).checkout_ttl_minutes)
    checkout = create_checkout(db.session, store, new, ttl)
    checkout = get_checkout(db.session, checkout.id)
    return jsonify(checkout_json(checkout)), 201


@bp.get("/checkouts/<checkout_id>")
def read(checkout_id: str) -> Any:
    checkout = get_checkout(db.session, checkout_id, store_id=g.store.id)
    expire_if_due(db.session, checkout)
    return jsonify(checkout_json(checkout))
