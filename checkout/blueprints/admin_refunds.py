"""The console's refunds: on a checkout's page, its refunds, a "Refund" form ("Return the
excess" pre-filled for overpaid, late, after-cancel and duplicate money), and "Approve" /
"Reject" for a second operator. Routes live on the console's blueprint (its login and CSRF
rules apply); every step is in operator_actions, in the transaction of the change."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash, request
from sqlalchemy import select

from checkout.blueprints.admin import _action, _back, bp, operator_name
from checkout.db import db
from checkout.domain.refunds import RefundSource
from checkout.extensions import settings_of
from checkout.models import Checkout, Refund
from checkout.services import refunds as refund_service
from checkout.services.admin import record_action
from checkout.services.errors import ServiceError
from checkout.services.refund_links import account_link


@bp.app_template_global("admin_refunds_of")
def refunds_of(checkout: Checkout) -> dict[str, Any]:
    """What the checkout page shows of refunds."""
    rows = db.session.scalars(
        select(Refund).where(Refund.checkout_id == checkout.id).order_by(Refund.id)
    ).all()
    refundable = refund_service.refundable_of(db.session, checkout)
    settings = settings_of(current_app)
    links = {
        r.public_id: account_link(
            settings.public_base_url, settings.secret_key, r.public_id, checkout.locale
        )
        for r in rows
        if r.destination_token is None and r.status in ("requested", "approved")
    }
    return {
        "rows": rows,
        "links": links,
        "refundable": refundable.amount,
        "excess": min(refund_service.excess_of(checkout), refundable.amount),
    }


def _audit(operator: str, action: str, checkout_id: str, detail: str) -> Any:
    return lambda public_id: record_action(
        db.session, operator, action, checkout_id, target=public_id, detail=detail
    )


@bp.post("/checkouts/<checkout_id>/refunds")
def request_refund(checkout_id: str) -> Any:
    item, _form = _action(checkout_id)
    operator = operator_name()
    fields = {k: (request.form.get(k) or "").strip() for k in ("amount", "reason")}
    account = {
        k: (request.form.get(k) or "").strip()
        for k in ("bank_code", "account_number", "holder_name")
    }
    data: dict[str, Any] = {
        "amount": int(fields["amount"]) if fields["amount"].isdigit() else fields["amount"],
        "reason": fields["reason"],
        "destination": account if any(account.values()) else None,
    }
    try:
        refund, _created = refund_service.create_refund(
            db.session,
            settings_of(current_app),
            item.store_id,
            item.id,
            data,
            source=RefundSource.CONSOLE,
            requested_by=operator,
            audit=_audit(
                operator, "refund_request", item.id, f"{data['amount']}: {data['reason']}"
            ),
        )
    except ServiceError as exc:
        db.session.rollback()
        flash(f"Refund refused: {exc.message}" + (f" ({exc.field})" if exc.field else ""))
        return _back(item.id)
    flash(f"Refund {refund.public_id} requested: another operator must approve it.")
    return _back(item.id)


def _decide(checkout_id: str, action: str, decide: Any, done: str) -> Any:
    item, form = _action(checkout_id)
    public_id = form.target.data or ""
    refund = db.session.scalars(
        select(Refund).where(Refund.public_id == public_id, Refund.checkout_id == item.id)
    ).one_or_none()
    if refund is None:
        flash("No such refund.")
        return _back(item.id)
    operator = operator_name()
    try:
        decide(db.session, public_id, operator, _audit(operator, action, item.id, done))
    except ServiceError as exc:
        db.session.rollback()
        flash(f"Refund {public_id}: {exc.message}")
        return _back(item.id)
    flash(f"Refund {public_id} {done}.")
    return _back(item.id)


@bp.post("/checkouts/<checkout_id>/refunds/approve")
def approve_refund(checkout_id: str) -> Any:
    return _decide(checkout_id, "refund_approve", refund_service.approve, "approved")


@bp.post("/checkouts/<checkout_id>/refunds/reject")
def reject_refund(checkout_id: str) -> Any:
    return _decide(checkout_id, "refund_reject", refund_service.reject, "rejected")


@bp.post("/checkouts/<checkout_id>/refunds/cancel")
def cancel_refund(checkout_id: str) -> Any:
    return _decide(checkout_id, "refund_cancel", refund_service.cancel, "cancelled")
