"""The shop's JSON API: checkouts, events and the webhook ping (spec: checkout/openapi.json).

Each API key has a mode: a live key sees live checkouts only, a test key test ones
(`livemode: false`); the other mode's objects are "not found".
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from checkout.blueprints.api_bodies import json_body, replayed
from checkout.config import StoreConfig
from checkout.db import db
from checkout.domain.states import WebhookStatus
from checkout.extensions import catalog_of, settings_of
from checkout.models import Checkout, WebhookEvent
from checkout.openapi import openapi_text
from checkout.services.checkouts import (
    attempt_summary,
    cancel_checkout,
    create_checkout,
    expire_if_due,
    find_by_order_id,
    get_checkout,
    parse_new_checkout,
)
from checkout.services.errors import InvalidRequest, ServiceError
from checkout.services.events import (
    DEFAULT_PAGE,
    MAX_PAGE,
    deliveries_of,
    get_event,
    list_events,
    resend,
    send_ping,
)
from checkout.services.idempotency import (
    StoredResponse,
    check_key,
    remember,
    replay,
    request_hash,
)
from checkout.services.receipts import keep_receipt_request, receipt_fields
from checkout.services.webhooks import webhook_body

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def _error(status: int, code: str, message: str, field: str | None = None) -> Any:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return jsonify(error=body), status


OPENAPI_PATH = "/api/v1/openapi.json"
MAX_FILTER_LENGTH = 64
MAX_ORDER_ID_LENGTH = 64


@bp.before_request
def authenticate() -> Any:
    if request.path == OPENAPI_PATH:
        return None  # the contract is public
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    match = None
    if scheme.lower() == "bearer" and token.strip():
        match = settings_of(current_app).api_key_match(token.strip())
    if match is None:
        response = _error(
            401, "unauthorized", "A valid 'Authorization: Bearer <API key>' is required."
        )
        response[0].headers["WWW-Authenticate"] = 'Bearer realm="checkout"'
        return response
    g.store, g.livemode = match
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
        **receipt_fields(db.session, checkout),  # cash_receipt, invoice_data (issue 24)
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
    livemode: bool = g.livemode
    key = request.headers.get("Idempotency-Key")
    fingerprint = request_hash("POST", request.path, request.get_data())
    if key is not None:
        key = check_key(key)
        stored = replay(db.session, store.id, key, fingerprint, livemode)
        if stored is not None:
            return replayed(stored)
    data = json_body()
    if data is None:
        return _error(
            400, "invalid_json", "The body must be JSON (Content-Type: application/json)."
        )
    new = parse_new_checkout(data, store, catalog_of(current_app, livemode))
    ttl = timedelta(minutes=settings_of(current_app).checkout_ttl_minutes)
    checkout, created = create_checkout(db.session, store, new, ttl, livemode)
    checkout = keep_receipt_request(db.session, checkout, new, created, settings_of(current_app))
    status = 201 if created else 200
    body = json.dumps(checkout_json(checkout))
    if key is not None:
        remember(db.session, store.id, key, fingerprint, StoredResponse(status, body), livemode)
    return current_app.response_class(body, status=status, mimetype="application/json")


@bp.get("/checkouts")
def list_checkouts() -> Any:
    order_id = request.args.get("order_id")
    if not order_id:
        return _error(400, "order_id_required", "Give ?order_id= to find a checkout.", "order_id")
    if len(order_id) > MAX_ORDER_ID_LENGTH:
        return _error(
            400, "invalid_order_id", "order_id must be at most 64 characters.", "order_id"
        )
    checkout = find_by_order_id(db.session, g.store.id, order_id, g.livemode)
    return jsonify(object="list", data=[checkout_json(checkout)] if checkout else [])


@bp.get("/checkouts/<checkout_id>")
def read(checkout_id: str) -> Any:
    checkout = get_checkout(db.session, checkout_id, store_id=g.store.id, livemode=g.livemode)
    expire_if_due(db.session, checkout)
    return jsonify(checkout_json(checkout))


@bp.post("/checkouts/<checkout_id>/cancel")
def cancel(checkout_id: str) -> Any:
    checkout = cancel_checkout(db.session, checkout_id, g.store.id, livemode=g.livemode)
    return jsonify(checkout_json(get_checkout(db.session, checkout.id)))


# ---------------------------------------------------------------- events
def event_json(event: WebhookEvent, with_deliveries: bool = False) -> dict[str, Any]:
    """An event as the API shows it: the webhook's own body plus where its delivery stands."""
    body = json.loads(webhook_body(event))
    body.update(
        object="event",
        checkout_id=event.checkout_id,
        created_at=event.created_at.isoformat(),
        delivery={
            "status": event.status,
            "attempts": event.attempts or 0,
            "next_attempt_at": event.next_attempt_at.isoformat()
            if event.status == WebhookStatus.PENDING
            else None,
            "delivered_at": event.delivered_at.isoformat() if event.delivered_at else None,
        },
    )
    if with_deliveries:
        body["delivery_attempts"] = [
            {
                "attempted_at": d.attempted_at.isoformat(),
                "status_code": d.status_code,
                "error": d.error,
                "duration_ms": d.duration_ms,
            }
            for d in deliveries_of(db.session, event)
        ]
    return body


def _filter_arg(name: str) -> str | None:
    value = request.args.get(name)
    if value is None:
        return None
    if not value or len(value) > MAX_FILTER_LENGTH:
        raise InvalidRequest(
            f"invalid_{name}", f"{name} must be 1 to {MAX_FILTER_LENGTH} characters.", field=name
        )
    return value


def _limit_arg() -> int:
    value = request.args.get("limit")
    if value is None:
        return DEFAULT_PAGE
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_PAGE:
        raise InvalidRequest(
            "invalid_limit", f"limit must be a whole number from 1 to {MAX_PAGE}.", field="limit"
        )
    return int(value)


@bp.get("/events")
def list_events_view() -> Any:
    page = list_events(
        db.session,
        g.store.id,
        g.livemode,
        event_type=_filter_arg("type"),
        checkout_id=_filter_arg("checkout"),
        starting_after=_filter_arg("starting_after"),
        limit=_limit_arg(),
    )
    return jsonify(
        object="list",
        data=[event_json(e) for e in page.events],
        has_more=page.has_more,
        next_starting_after=page.events[-1].public_id if page.has_more else None,
    )


@bp.get("/events/<event_id>")
def read_event(event_id: str) -> Any:
    event = get_event(db.session, g.store.id, g.livemode, event_id)
    return jsonify(event_json(event, with_deliveries=True))


@bp.post("/events/<event_id>/resend")
def resend_event_view(event_id: str) -> Any:
    event = resend(db.session, g.store.id, g.livemode, event_id)
    return jsonify(event_json(event, with_deliveries=True)), 202


@bp.post("/webhook_endpoint/ping")
def ping() -> Any:
    result = send_ping(g.store, g.livemode)
    return jsonify(
        id=result.id,
        object="webhook_ping",
        livemode=g.livemode,
        delivered=result.ok,
        status_code=result.status_code,
        error=result.error,
        duration_ms=result.duration_ms,
    )


@bp.get("/openapi.json")
def openapi() -> Any:
    return current_app.response_class(openapi_text(), mimetype="application/json")
