"""POST /notify/<provider instance>: the providers' signed callbacks."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Blueprint, Response, abort, current_app, request

from checkout.blueprints.payout_notify import payouts_of
from checkout.db import db
from checkout.domain.ledger import Verdict
from checkout.extensions import catalog_of
from checkout.limits import notify_guard, notify_identities, notify_too_many
from checkout.metrics import metrics_of
from checkout.providers.base import PaymentProvider
from checkout.providers.errors import NotifyError
from checkout.providers.registry import SPECS
from checkout.services.notifications import receive_notify
from checkout.services.refunds import receive_payout_notify

bp = Blueprint("notify", __name__, url_prefix="/notify")
log = logging.getLogger(__name__)
# Verdicts of a notify that may not verify: the only ones counted against its source.
UNVERIFIED = frozenset({Verdict.BAD_SIGNATURE, Verdict.MALFORMED})
RATE_LIMITED = "rate_limited"  # the metric's verdict for a 429 (nothing stored)


def signature_verifies(provider: PaymentProvider, headers: Mapping[str, str], body: bytes) -> bool:
    """True if the provider signed this body. Checks the signature only: nothing is stored
    and no row is read (the provider's own constant-time check)."""
    try:
        provider.parse_notify(headers, body)
    except NotifyError as error:
        return error.verified
    except Exception:  # whatever unverified bytes make a parser do, they did not verify
        return False
    return True


@bp.post("/<instance>")
def notify(instance: str) -> Any:
    provider = catalog_of(current_app).providers.get(instance)
    if provider is None:
        abort(404)
    body = request.get_data(cache=False)  # the raw bytes the signature covers
    headers = {k: v for k, v in request.headers.items()}
    refused = _over_limit_and_unverified(instance, provider, headers, body)
    if refused is not None:
        return refused  # nothing stored
    if SPECS[provider.config.type].shared_notify_url and _is_payout_notify(instance, headers, body):
        return _payout_notify(instance, headers, body)
    result = receive_notify(db.session, provider, headers, body, request.remote_addr)
    # The verdict is final here: stored and committed before the answer goes out.
    metrics_of(current_app).observe_notify(instance, str(result.verdict))
    if result.verdict in UNVERIFIED and (
        result.verdict == Verdict.BAD_SIGNATURE or not signature_verifies(provider, headers, body)
    ):
        notify_guard(current_app).count_unverified(notify_identities(instance))
    return Response(result.body, status=result.status, content_type=result.content_type)


def _over_limit_and_unverified(
    instance: str, provider: PaymentProvider, headers: dict[str, str], body: bytes
) -> Response | None:
    """The 429 for a source over its limit whose notify does not verify; None otherwise
    (over the limit, a genuine notify still passes: only what does not verify is refused)."""
    guard, sources = notify_guard(current_app), notify_identities(instance)
    retry_after = guard.retry_after(sources)
    if retry_after is None or signature_verifies(provider, headers, body):
        return None
    guard.count_unverified(sources)
    metrics_of(current_app).observe_notify(instance, RATE_LIMITED)
    log.warning("notify refused: too many unverified notifies from %s", sources["notify"])
    return notify_too_many(retry_after)


def _payout_notify(instance: str, headers: dict[str, str], body: bytes) -> Response:
    """PayPro sends pay-in and payout notifies to one URL: refunds take the payout ones."""

    payouts = payouts_of(current_app, instance)
    assert payouts is not None
    answer = receive_payout_notify(
        db.session, instance, payouts, headers, body, request.remote_addr
    )
    return Response(answer.body, status=answer.status, content_type=answer.content_type)


def _is_payout_notify(instance: str, headers: dict[str, str], body: bytes) -> bool:
    """Read without verifying (routing only): the payout parser verifies."""

    try:
        payouts = payouts_of(current_app, instance)
        return payouts is not None and payouts.notify_kind(headers, body) == "payout"
    except Exception:  # an unroutable body is the pay-in path's to refuse
        return False
