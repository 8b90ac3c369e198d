"""POST /notify/<provider instance>: the providers' signed callbacks."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from checkout.db import db
from checkout.domain.ledger import Verdict
from checkout.extensions import catalog_of
from checkout.limits import notify_guard, notify_identity, notify_too_many
from checkout.metrics import metrics_of
from checkout.services.notifications import receive_notify

bp = Blueprint("notify", __name__, url_prefix="/notify")
log = logging.getLogger(__name__)
# Verdicts of a notify that told us something: not counted against its source's limit.
NEWS = frozenset({Verdict.ACCEPTED, Verdict.NO_CHANGE})


@bp.post("/<instance>")
def notify(instance: str) -> Any:
    provider = catalog_of(current_app).providers.get(instance)
    if provider is None:
        abort(404)
    guard, source = notify_guard(current_app), notify_identity(instance)
    retry_after = guard.retry_after(source)
    if retry_after is not None:
        log.warning("notify refused: too many refused notifies from %s", source)
        return notify_too_many(retry_after)  # before anything is read or stored
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
    if result.verdict not in NEWS and result.verdict != Verdict.RECEIVED:
        guard.count_refusal(source)  # RECEIVED: kept unjudged (rows busy), not refused
    return Response(result.body, status=result.status, content_type=result.content_type)
