"""/healthz, /readyz and /metrics: their own blueprint, `ops` (no login, no rate limit)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, request

from checkout.metrics import metrics_of
from checkout.services.admin.health import database_ready
from checkout.store.db import db

ops = Blueprint("ops", __name__)


@ops.get("/healthz")
def healthz() -> Any:
    return Response("ok", mimetype="text/plain")


@ops.get("/readyz")
def readyz() -> Any:
    # A read (SQLite: no write turn), so a writer holding the database does not fail it.
    with db.reading() as session:
        ready = database_ready(session)
    if ready:
        return Response("ready", mimetype="text/plain")
    return Response("database unavailable", status=503, mimetype="text/plain")


@ops.get("/metrics")
def metrics() -> Any:
    """Prometheus metrics (checkout/metrics.py); `Bearer <metrics_token>` when one is set."""
    registry = metrics_of(current_app)
    if not registry.authorized(request.headers.get("Authorization")):
        return Response(
            "metrics_token required",
            status=401,
            mimetype="text/plain",
            headers={"WWW-Authenticate": 'Bearer realm="metrics"'},
        )
    body, content_type = registry.exposition()
    return Response(body, content_type=content_type, headers={"Cache-Control": "no-store"})
