"""POST /notify/<provider instance>: the providers' signed callbacks."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from checkout.app import catalog_of
from checkout.db import db
from checkout.metrics import metrics_of
from checkout.services.notifications import receive_notify

bp = Blueprint("notify", __name__, url_prefix="/notify")


@bp.post("/<instance>")
def notify(instance: str) -> Any:
    provider = catalog_of(current_app).providers.get(instance)
    if provider is None:
        abort(404)
    body = request.get_data(cache=False)  # the raw bytes the signature covers
    result = receive_notify(
        db.session,
        provider,
        {k: v for k, v in request.headers.items()},
        body,
        request.remote_addr,
    )
    # The verdict is final here: stored and committed before the answer goes out.
    metrics_of(current_app).observe_notify(instance, str(result.verdict))
    return Response(result.body, status=result.status, content_type=result.content_type)
