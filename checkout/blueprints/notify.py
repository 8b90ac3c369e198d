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
    headers = {k: v for k, v in request.headers.items()}
    if _is_payout_notify(instance, headers, body):
        # PayPro sends pay-in and payout notifies to one URL: refunds take the payout ones.
        from checkout.blueprints.payout_notify import payouts_of
        from checkout.services.refunds import receive_payout_notify

        payouts = payouts_of(current_app, instance)
        assert payouts is not None
        answer = receive_payout_notify(
            db.session, instance, payouts, headers, body, request.remote_addr
        )
        return Response(answer.body, status=answer.status, content_type=answer.content_type)
    result = receive_notify(
        db.session,
        provider,
        {k: v for k, v in request.headers.items()},
        body,
        request.remote_addr,
    )
    # The verdict is final here: stored and committed before the answer goes out.
    metrics_of(current_app).observe_notify(instance, str(result.verdict))
    if result.verdict not in NEWS:
        guard.count_refusal(source)
    return Response(result.body, status=result.status, content_type=result.content_type)


def _is_payout_notify(instance: str, headers: dict[str, str], body: bytes) -> bool:
    """Read without verifying (routing only): the payout parser verifies."""
    from checkout.blueprints.payout_notify import payouts_of

    try:
        payouts = payouts_of(current_app, instance)
        return payouts is not None and payouts.notify_kind(headers, body) == "payout"
    except Exception:  # an unroutable body is the pay-in path's to refuse
        return False
