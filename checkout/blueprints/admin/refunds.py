"""The console's refunds: on a checkout's page, its refunds, a "Refund" form ("Return the
excess" pre-filled for overpaid, late, after-cancel and duplicate money), and "Approve" /
"Reject" for a second operator. Every step is in operator_actions, in the transaction of the
change (services/admin/refunds.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import current_app, flash, request

from checkout.blueprints.admin.common import back, bp, load_action, operator_name
from checkout.db import db
from checkout.extensions import catalog_of, settings_of
from checkout.models import Checkout
from checkout.services import refunds as refund_service
from checkout.services.admin import refunds as console_refunds


@bp.app_template_global("admin_refunds_of")
def refunds_of(checkout: Checkout) -> dict[str, Any]:
    """What the checkout page shows of refunds."""
    return console_refunds.refunds_panel(db.session, settings_of(current_app), checkout)


def _request_data(form: Mapping[str, str]) -> dict[str, Any]:
    """The refund form as create_refund reads a request: the amount a number when it is one
    (otherwise refused there, as typed), the account only when any of it was given."""
    fields = {k: (form.get(k) or "").strip() for k in ("amount", "reason")}
    account = {
        k: (form.get(k) or "").strip() for k in ("bank_code", "account_number", "holder_name")
    }
    return {
        "amount": int(fields["amount"]) if fields["amount"].isdigit() else fields["amount"],
        "reason": fields["reason"],
        "destination": account if any(account.values()) else None,
    }


@bp.post("/checkouts/<checkout_id>/refunds")
def request_refund(checkout_id: str) -> Any:
    item, _form = load_action(checkout_id)
    flash(
        console_refunds.request_refund(
            db.session,
            settings_of(current_app),
            catalog_of(current_app).payouts,
            operator_name(),
            item,
            _request_data(request.form),
        )
    )
    return back(item.id)


def _decide(checkout_id: str, action: str, decide: console_refunds.Decision, done: str) -> Any:
    item, form = load_action(checkout_id)
    public_id = form.target.data or ""
    flash(
        console_refunds.decide_refund(
            db.session, decide, operator_name(), item.id, public_id, action, done
        )
    )
    return back(item.id)


@bp.post("/checkouts/<checkout_id>/refunds/approve")
def approve_refund(checkout_id: str) -> Any:
    return _decide(checkout_id, "refund_approve", refund_service.approve, "approved")


@bp.post("/checkouts/<checkout_id>/refunds/reject")
def reject_refund(checkout_id: str) -> Any:
    return _decide(checkout_id, "refund_reject", refund_service.reject, "rejected")


@bp.post("/checkouts/<checkout_id>/refunds/cancel")
def cancel_refund(checkout_id: str) -> Any:
    return _decide(checkout_id, "refund_cancel", refund_service.cancel, "cancelled")
