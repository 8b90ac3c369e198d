"""Idempotency-Key on the API's creates: claim the key, run the create, keep its answer.

The one glue between a view and services/idempotency.py: a replay is the first answer
exactly (status, body, Content-Type), marked `Idempotent-Replayed: true`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Response, current_app, request

from checkout.services.idempotency import (
    IdempotentRequest,
    StoredResponse,
    check_key,
    claim,
    complete,
    release,
    request_hash,
)
from checkout.store.db import db, through_outage
from checkout.web.shop_api.auth import current_key

log = logging.getLogger(__name__)


def idempotent(create: Callable[[], Response]) -> Response:
    """`create()`'s answer, once per Idempotency-Key (none given: just `create()`)."""
    header = request.headers.get("Idempotency-Key")
    if header is None:
        return create()
    key = current_key()
    wanted = IdempotentRequest(
        store_id=key.store.id,
        livemode=key.livemode,
        key=check_key(header),
        fingerprint=request_hash(request.method, request.path, request.get_data(cache=True)),
    )
    stored = claim(db.session, wanted)
    if stored is not None:
        return replayed(stored)
    try:
        response = create()
    except BaseException:
        # An error changed nothing: the key may be used again. Released through a database
        # restart too, or the shop's retry would find the key held until ABANDONED_AFTER.
        session = db.session
        try:
            through_outage(lambda: release(session, wanted))
        except Exception:
            log.warning("Idempotency-Key claim not released (database unreachable)")
        raise
    stored = StoredResponse(response.status_code, response.get_data(True))
    # The answer is kept through a database restart too: the shop's retry then gets it.
    session = db.session
    through_outage(lambda: complete(session, wanted, stored))
    return response


def replayed(stored: StoredResponse) -> Response:
    response = current_app.response_class(
        stored.body, status=stored.status, mimetype="application/json"
    )
    response.headers["Idempotent-Replayed"] = "true"
    return response
