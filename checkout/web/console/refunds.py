"""The console's refunds: on a checkout's page, its refunds, a "Refund" form ("Return the
excess" pre-filled for overpaid, late, after-cancel and duplicate money), and "Approve" /
"Reject" for a second operator. Every step is in operator_actions, in the transaction of the
change (services/admin/refunds.py)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for

from checkout.domain.banks import refund_bank_choices
from checkout.domain.errors import MoneyError
from checkout.domain.money import CURRENCY_EXPONENT, Money, parse_typed_amount
from checkout.extensions import catalog_of, settings_of
from checkout.i18n import current_language
from checkout.services import refunds as refund_service
from checkout.services.admin import refunds as console_refunds
from checkout.store.db import db
from checkout.store.models import Checkout
from checkout.web.console.checkouts import render_checkout
from checkout.web.console.common import back, bp, load_action, operator_name


@bp.app_template_global("admin_refunds_of")
def refunds_of(checkout: Checkout) -> dict[str, Any]:
    """What the checkout page shows of refunds, the form's banks in the operator's language."""
    panel = console_refunds.refunds_panel(db.session, settings_of(current_app), checkout)
    panel["banks"] = refund_bank_choices(checkout.currency, current_language())
    panel["exponent"] = CURRENCY_EXPONENT[checkout.currency]
    panel["excess_typed"] = (
        Money(panel["excess"], checkout.currency).format_plain() if panel["excess"] else ""
    )
    return panel


def _request_data(form: Mapping[str, str], currency: str) -> dict[str, Any]:
    """The refund form as create_refund reads a request: the amount typed in major units
    ("12,000" KRW, "120.50" MXN) in minor units, the account only when any of it was given.
    MoneyError when the amount is not one of `currency`."""
    fields = {k: (form.get(k) or "").strip() for k in ("amount", "reason")}
    account = {
        k: (form.get(k) or "").strip() for k in ("bank_code", "account_number", "holder_name")
    }
    return {
        "amount": parse_typed_amount(fields["amount"], currency).amount,
        "reason": fields["reason"],
        "destination": account if any(account.values()) else None,
    }


@bp.post("/checkouts/<checkout_id>/refunds")
def request_refund(checkout_id: str) -> Any:
    item, _form = load_action(checkout_id)
    try:
        data = _request_data(request.form, item.currency)
    except MoneyError as exc:
        # The form again as typed (the account number and holder excepted: never echoed),
        # the error beside the amount; nothing was asked for.
        typed = {k: (request.form.get(k) or "")[:500] for k in ("amount", "reason", "bank_code")}
        return render_checkout(item.id, {**typed, "error": str(exc)}, 400)
    flash(
        console_refunds.request_refund(
            db.session,
            settings_of(current_app),
            catalog_of(current_app).payouts,
            operator_name(),
            item,
            data,
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
    if request.form.get("back") == "waiting":  # decided from the "Waiting" page
        return redirect(url_for("admin.waiting"))
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


# What each confirmed decision is called, and what it posts to.
CONFIRMABLE = {
    "reject": ("Reject refund", "admin.reject_refund"),
    "cancel": ("Cancel refund", "admin.cancel_refund"),
}


@bp.get("/checkouts/<checkout_id>/refunds/<public_id>/<decision>")
def confirm_refund(checkout_id: str, public_id: str, decision: str) -> Any:
    """A confirmation step before a refund is rejected or cancelled; the decision itself is
    still the POST (with CSRF) it always was."""
    if decision not in CONFIRMABLE:
        abort(404)
    refund = console_refunds.refund_of(db.session, checkout_id, public_id)
    if refund is None:
        abort(404)
    label, endpoint = CONFIRMABLE[decision]
    return render_template(
        "admin/confirm.html",
        title=f"{label} {refund.public_id}?",
        what=[
            ("Checkout", checkout_id),
            ("Refund", refund.public_id),
            ("Amount", refund.amount, refund.currency),
            ("Status", refund.status),
        ],
        warning="The refund will not be sent. This cannot be undone.",
        action=url_for(endpoint, checkout_id=checkout_id),
        target=refund.public_id,
        label=label,
        keep="Keep the refund",
        checkout_id=checkout_id,
        back="waiting" if request.args.get("back") == "waiting" else "",
    )
