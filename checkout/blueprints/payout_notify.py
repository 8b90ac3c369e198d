"""POST /notify/<provider instance>/payout: the providers' signed payout notifies (refunds).

Verified on the raw body, stored, applied through the refund rule, then acknowledged with
exactly the body the provider expects (services/refunds.receive_payout_notify).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request

from checkout.db import db
from checkout.extensions import settings_of
from checkout.limits import notify_guard, notify_identity, notify_too_many
from checkout.providers.payouts import PayoutProvider
from checkout.providers.registry import build_payout_provider
from checkout.services.refunds import receive_payout_notify

bp = Blueprint("payout_notify", __name__, url_prefix="/notify")


def payouts_of(app: Flask, instance: str) -> PayoutProvider | None:
    """The instance's payout side, built once per app; None if no such instance."""
    cache: dict[str, PayoutProvider] = app.extensions.setdefault("payout_providers", {})
    if instance not in cache:
        config = settings_of(app).providers.get(instance)
        if config is None:
            return None
        cache[instance] = build_payout_provider(config)
    return cache[instance]


@bp.post("/<instance>/payout")
def payout_notify(instance: str) -> Any:
    payouts = payouts_of(current_app, instance)
    if payouts is None:
        abort(404)
    guard, source = notify_guard(current_app), notify_identity(instance)
    retry_after = guard.retry_after(source)
    if retry_after is not None:
        return notify_too_many(retry_after)
    body = request.get_data(cache=False)
    answer = receive_payout_notify(
        db.session, instance, payouts, dict(request.headers.items()), body, request.remote_addr
    )
    if answer.verdict not in ("accepted", "duplicate"):
        guard.count_refusal(source)
    return Response(answer.body, status=answer.status, content_type=answer.content_type)
