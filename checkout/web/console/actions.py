"""An operator's actions on a checkout: query its provider now, resend a webhook, mark it for
review or resolve that, cancel it. Each is a POST with the console's CSRF token, recorded in
operator_actions (services/admin/actions.py), and back to the checkout's page."""

from __future__ import annotations

from typing import Any

from flask import abort, current_app, flash, render_template, url_for

from checkout.extensions import catalog_of
from checkout.services.admin import actions
from checkout.store.db import db
from checkout.store.models import Checkout
from checkout.web.console.common import back, bp, load_action, operator_name


@bp.post("/checkouts/<checkout_id>/query")
def query_provider(checkout_id: str) -> Any:
    item, form = load_action(checkout_id)
    outcome = actions.operator_query(
        db.session, catalog_of(current_app), operator_name(), item, form.target.data or ""
    )
    if outcome is None:
        abort(404)
    flash(outcome)
    return back(item.id)


@bp.post("/checkouts/<checkout_id>/resend")
def resend_webhook(checkout_id: str) -> Any:
    item, form = load_action(checkout_id)
    outcome = actions.operator_resend(db.session, operator_name(), item.id, form.target.data or "")
    if outcome is None:
        abort(404)
    flash(outcome)
    return back(item.id)


@bp.post("/checkouts/<checkout_id>/review")
def mark_review(checkout_id: str) -> Any:
    item, form = load_action(checkout_id)
    reason = (form.reason.data or "").strip() or "marked by an operator"
    flash(actions.operator_mark_review(db.session, operator_name(), item.id, reason))
    return back(item.id)


@bp.post("/checkouts/<checkout_id>/resolve")
def resolve_review(checkout_id: str) -> Any:
    item, form = load_action(checkout_id)
    note = (form.reason.data or "").strip()
    flash(actions.operator_resolve_review(db.session, operator_name(), item.id, note))
    return back(item.id)


@bp.get("/checkouts/<checkout_id>/cancel")
def confirm_cancel(checkout_id: str) -> Any:
    """A confirmation step before a checkout is cancelled (no script needed); the cancel
    itself is still the POST (with CSRF) below."""
    item = db.session.get(Checkout, checkout_id)
    if item is None:
        abort(404)
    return render_template(
        "admin/confirm.html",
        title=f"Cancel checkout {item.id}?",
        what=[
            ("Checkout", item.id),
            ("Order id", item.order_id),
            ("Amount due", item.amount, item.currency),
            ("Status", item.status),
        ],
        warning=(
            "The shopper can no longer pay, and the shop hears that the checkout was "
            "cancelled. This cannot be undone."
        ),
        action=url_for("admin.cancel", checkout_id=item.id),
        target="",
        label="Cancel checkout",
        keep="Keep the checkout",
        checkout_id=item.id,
        back="",
    )


@bp.post("/checkouts/<checkout_id>/cancel")
def cancel(checkout_id: str) -> Any:
    item, _form = load_action(checkout_id)
    flash(actions.operator_cancel(db.session, operator_name(), item.id))
    return back(item.id)
