"""POST /notify/<provider instance>/payout: the providers' signed payout notifies (refunds).

Verified on the raw body, stored, applied through the refund rule, then acknowledged with
exactly the body the provider expects (services/refunds.receive_payout_notify).
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, abort, current_app, request

from checkout.db import db
from checkout.extensions import catalog_of
from checkout.limits import notify_guard, notify_identities, notify_too_many
from checkout.providers.errors import NotifyError
from checkout.providers.payouts import PayoutProvider
from checkout.services.refunds import receive_payout_notify

bp = Blueprint("payout_notify", __name__, url_prefix="/notify")


def payouts_of(app: Flask, instance: str) -> PayoutProvider | None:
    """The instance's payout side, built once with the app; None if no such instance."""
    return catalog_of(app).payouts.get(instance)


@bp.post("/<instance>/payout")
def payout_notify(instance: str) -> Any:
    payouts = payouts_of(current_app, instance)
    if payouts is None:
        abort(404)
    guard, sources = notify_guard(current_app), notify_identities(instance)
    body = request.get_data(cache=False)
    headers = dict(request.headers.items())
    retry_after = guard.retry_after(sources)
    # As for pay-in notifies: over the limit, a genuine one still passes; only what does not
    # verify is refused (and not stored), and only that counts against its source.
    if retry_after is not None and not _verifies(payouts, headers, body):
        guard.count_unverified(sources)
        return notify_too_many(retry_after)
    answer = receive_payout_notify(
        db.session, instance, payouts, headers, body, request.remote_addr
    )
    if answer.verdict in ("bad_signature", "malformed") and not _verifies(payouts, headers, body):
        guard.count_unverified(sources)
    return Response(answer.body, status=answer.status, content_type=answer.content_type)


def _verifies(payouts: PayoutProvider, headers: dict[str, str], body: bytes) -> bool:
    try:
        payouts.parse_payout_notify(headers, body)
    except NotifyError as error:
        return bool(getattr(error, "verified", False))
    except Exception:  # whatever unverified bytes make a parser do, they did not verify
        return False
    return True
