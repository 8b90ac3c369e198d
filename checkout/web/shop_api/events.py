"""Events (the webhooks' log): list, read, resend; the webhook endpoint's ping; the contract.
All in the key's mode: another mode's event is 404."""

from __future__ import annotations

import json
from typing import Any

from flask import Response, current_app, request

from checkout.domain.states import WebhookStatus
from checkout.extensions import settings_of
from checkout.openapi import openapi_text
from checkout.services.errors import InvalidRequest
from checkout.services.events import (
    DEFAULT_PAGE,
    MAX_PAGE,
    deliveries_of,
    get_event,
    list_events,
    resend,
    send_ping,
)
from checkout.services.webhooks import webhook_body
from checkout.store.db import db
from checkout.store.models import WebhookEvent
from checkout.web.shop_api.auth import current_key
from checkout.web.shop_api.blueprint import bp
from checkout.web.shop_api.body import answer

MAX_FILTER_LENGTH = 64


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
def list_events_view() -> Response:
    key = current_key()
    page = list_events(
        db.session,
        key.store.id,
        key.livemode,
        event_type=_filter_arg("type"),
        checkout_id=_filter_arg("checkout"),
        starting_after=_filter_arg("starting_after"),
        limit=_limit_arg(),
    )
    return answer(
        {
            "object": "list",
            "data": [event_json(e) for e in page.events],
            "has_more": page.has_more,
            "next_starting_after": page.events[-1].public_id if page.has_more else None,
        }
    )


@bp.get("/events/<event_id>")
def read_event(event_id: str) -> Response:
    key = current_key()
    event = get_event(db.session, key.store.id, key.livemode, event_id)
    return answer(event_json(event, with_deliveries=True))


@bp.post("/events/<event_id>/resend")
def resend_event_view(event_id: str) -> Response:
    key = current_key()
    event = resend(db.session, key.store.id, key.livemode, event_id)
    return answer(event_json(event, with_deliveries=True), 202)


@bp.post("/webhook_endpoint/ping")
def ping() -> Response:
    key = current_key()
    deadline = settings_of(current_app).webhook_delivery.deadline
    result = send_ping(key.store, key.livemode, deadline=deadline)
    return answer(
        {
            "id": result.id,
            "object": "webhook_ping",
            "livemode": key.livemode,
            "delivered": result.ok,
            "status_code": result.status_code,
            "error": result.error,
            "duration_ms": result.duration_ms,
        }
    )


@bp.get("/openapi.json")
def openapi() -> Response:
    return current_app.response_class(openapi_text(), mimetype="application/json")
