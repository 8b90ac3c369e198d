"""The shop's refund API: POST/GET /api/v1/checkouts/<id>/refunds, GET /api/v1/refunds/<id>.

Creating a refund needs an API key with the refund scope (`stores.<id>.refund_api_key_sha256`);
reading works with any of the store's keys. Errors are {"error": {code, message, field}}.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from checkout.blueprints.api_bodies import json_body, replayed
from checkout.db import db
from checkout.domain.refunds import RefundSource
from checkout.extensions import catalog_of, settings_of
from checkout.models import Refund
from checkout.services.errors import Forbidden, ServiceError
from checkout.services.idempotency import (
    StoredResponse,
    check_key,
    remember,
    replay,
    request_hash,
)
from checkout.services.refund_links import account_link
from checkout.services.refunds import create_refund, get_refund, list_refunds, refund_json

bp = Blueprint("refunds_api", __name__, url_prefix="/api/v1")


def _json(refund: Refund) -> dict[str, Any]:
    """The refund, with a fresh refund-account link while it still needs an account."""
    data = refund_json(refund)
    if refund.destination_token is None and refund.status in ("requested", "approved"):
        settings = settings_of(current_app)
        data["account_url"] = account_link(
            settings.public_base_url, settings.secret_key, refund.public_id
        )
    return data


def _error(status: int, code: str, message: str, field: str | None = None) -> Any:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify(error=body), status


@bp.before_request
def authenticate() -> Any:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    store = None
    if scheme.lower() == "bearer" and token:
        store = settings_of(current_app).store_for_api_key(token)
    if store is None:
        response = _error(
            401, "unauthorized", "A valid 'Authorization: Bearer <API key>' is required."
        )
        response[0].headers["WWW-Authenticate"] = 'Bearer realm="checkout"'
        return response
    g.store = store
    g.may_refund = store.may_refund(token)
    return None


@bp.errorhandler(ServiceError)
def service_error(error: ServiceError) -> Any:
    return _error(error.http_status, error.code, error.message, error.field)


@bp.errorhandler(HTTPException)
def http_error(error: HTTPException) -> Any:
    code = (error.name or "error").lower().replace(" ", "_")
    return _error(error.code or 500, code, error.description or error.name)


def _create_refund(checkout_id: str, data: Any, key: str | None) -> tuple[Refund, bool]:
    """The store's refund of the checkout, asked through the API (created: False when a
    concurrent request with the same Idempotency-Key made it)."""
    return create_refund(
        db.session,
        settings_of(current_app),
        g.store.id,
        checkout_id,
        data,
        source=RefundSource.API,
        requested_by=f"api:{g.store.id}",
        payouts=catalog_of(current_app).payouts,
        idempotency_key=key,
    )


@bp.post("/checkouts/<checkout_id>/refunds")
def create(checkout_id: str) -> Any:
    if not g.may_refund:
        raise Forbidden("refund_not_allowed", "This API key may not create refunds.")
    key = request.headers.get("Idempotency-Key")
    fingerprint = request_hash("POST", request.path, request.get_data())
    if key is not None:
        key = check_key(key)
        # The same key and body: the first answer again; another request's key: 409.
        stored = replay(db.session, g.store.id, key, fingerprint)
        if stored is not None:
            return replayed(stored)
    data = json_body()
    if data is None:
        return _error(
            400, "invalid_json", "The body must be JSON (Content-Type: application/json)."
        )
    refund, created = _create_refund(checkout_id, data, key)
    status, body = (201 if created else 200), json.dumps(_json(refund))
    if key is not None and created:
        remember(db.session, g.store.id, key, fingerprint, StoredResponse(status, body))
    response = current_app.response_class(body, status=status, mimetype="application/json")
    if not created:  # a concurrent twin with the same key made it
        response.headers["Idempotent-Replayed"] = "true"
    return response


@bp.get("/checkouts/<checkout_id>/refunds")
def list_for_checkout(checkout_id: str) -> Any:
    refunds = list_refunds(db.session, checkout_id, store_id=g.store.id)
    return jsonify(object="list", data=[_json(r) for r in refunds])


@bp.get("/refunds/<refund_id>")
def read(refund_id: str) -> Any:
    return jsonify(_json(get_refund(db.session, refund_id, store_id=g.store.id)))
