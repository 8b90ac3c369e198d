"""POST /notify/<instance> and /notify/<instance>/payout: the providers' signed callbacks.

One pipeline for pay-ins and payouts (services/provider_notifies.py): route (which reader and
acknowledgement the URL has), read once (the provider verifies the raw body and maps it),
the notify limit (only what does not verify is refused or counted), then decide, write and
answer from the one verdict table after the commit.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request

from checkout.extensions import catalog_of
from checkout.limits import notify_guard, notify_identities, notify_too_many
from checkout.metrics import metrics_of
from checkout.providers.payouts import PayoutProvider
from checkout.services.provider_notifies import (
    UNVERIFIED,
    Inbound,
    payin_inbound,
    payout_inbound,
    read_notify,
    receive_notify,
)
from checkout.store.db import db

bp = Blueprint("notify", __name__, url_prefix="/notify")
log = logging.getLogger(__name__)
RATE_LIMITED = "rate_limited"  # the metric's verdict for a 429 (nothing stored)


def payouts_of(app: Flask, instance: str) -> PayoutProvider | None:
    """The instance's payout side, built once per app on its pay-in client's transport
    (services/catalog.py); None if no such instance."""
    return catalog_of(app).payouts.get(instance)


@bp.post("/<instance>")
def notify(instance: str) -> Any:
    provider = catalog_of(current_app).providers.get(instance)
    if provider is None:
        abort(404)
    return _receive(payin_inbound(provider))


@bp.post("/<instance>/payout")
def payout_notify(instance: str) -> Any:
    payouts = payouts_of(current_app, instance)
    if payouts is None:
        abort(404)
    return _receive(payout_inbound(instance, payouts))


def _receive(inbound: Inbound) -> Response:
    instance = inbound.instance
    body = request.get_data(cache=False)  # the raw bytes the signature covers
    headers = dict(request.headers.items())
    reading = read_notify(inbound, headers, body)  # verified and parsed, once
    guard, sources = notify_guard(current_app), notify_identities(instance)
    if not reading.verified:
        # Over the limit, a genuine notify still passes: only what does not verify is
        # refused (and not stored), and only that counts against its source.
        retry_after = guard.retry_after(sources)
        if retry_after is not None:
            guard.count_unverified(sources)
            metrics_of(current_app).observe_notify(instance, RATE_LIMITED)
            log.warning("notify refused: too many unverified notifies from %s", sources["notify"])
            return notify_too_many(retry_after)
    result = receive_notify(db.session, inbound, headers, body, request.remote_addr, reading)
    # The verdict is final here: stored and committed before the answer goes out.
    metrics_of(current_app).observe_notify(instance, str(result.verdict))
    if result.verdict in UNVERIFIED and not reading.verified:
        guard.count_unverified(sources)
    return Response(result.body, status=result.status, content_type=result.content_type)
