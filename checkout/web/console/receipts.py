"""The console's cash receipts (issue 24): the receipt panel on a checkout's page
(templates/admin/_receipt.html) and its "Issue now" and "Retry" actions, POSTs with the
console's CSRF token, recorded in operator_actions (services/admin/receipts.py)."""

from __future__ import annotations

from typing import Any

from flask import current_app, flash

from checkout.extensions import catalog_of, settings_of
from checkout.services.admin import receipts as console_receipts
from checkout.store.db import db
from checkout.store.models import Checkout
from checkout.web.console.common import back, bp, load_action, operator_name


@bp.app_template_global("admin_receipt_of")
def receipt_of(checkout: Checkout) -> dict[str, Any]:
    """What the checkout page shows of its cash receipt."""
    return console_receipts.receipt_panel(db.session, settings_of(current_app), checkout)


@bp.post("/checkouts/<checkout_id>/receipt/issue")
def issue_receipt_now(checkout_id: str) -> Any:
    item, _form = load_action(checkout_id)
    flash(
        console_receipts.operator_issue_now(
            db.session,
            settings_of(current_app),
            catalog_of(current_app, item.livemode),
            operator_name(),
            item.id,
        )
    )
    return back(item.id)


@bp.post("/checkouts/<checkout_id>/receipt/retry")
def retry_receipt(checkout_id: str) -> Any:
    item, form = load_action(checkout_id)
    flash(
        console_receipts.operator_retry(
            db.session, operator_name(), item.id, form.target.data or ""
        )
    )
    return back(item.id)
