"""The console's cash receipts (issue 24): what a checkout's page shows of its receipt and
cancel receipts, and the operator's "issue now" and "retry", each recorded in
operator_actions in the transaction of the change."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.config import Settings
from checkout.services import receipts
from checkout.services.admin.actions import record_action
from checkout.services.catalog import Catalog
from checkout.services.errors import ServiceError
from checkout.store.models import CashReceipt, Checkout, ReceiptRequest, StateEvent


def receipt_panel(session: Session, settings: Settings, checkout: Checkout) -> dict[str, Any]:
    """The receipt panel of a checkout's page: identities masked, Popbill's last answer."""
    store = settings.stores.get(checkout.store_id)
    rows = session.scalars(
        select(CashReceipt).where(CashReceipt.checkout_id == checkout.id).order_by(CashReceipt.id)
    ).all()
    asked = session.get(ReceiptRequest, checkout.id)
    decided_none = session.scalar(
        select(StateEvent.detail)
        .where(
            StateEvent.checkout_id == checkout.id,
            StateEvent.kind == receipts.TIMELINE_KIND,
            StateEvent.to_status == "none",
        )
        .order_by(StateEvent.id.desc())
        .limit(1)
    )
    has_issue = any(r.kind == "issue" for r in rows)
    return {
        "no_issuer": receipts.issuer_status(store),
        "applies": checkout.currency == "KRW",
        "asked": asked,
        "rows": rows,
        "none_reason": decided_none,
        "can_issue_now": store is not None
        and store.cash_receipts is not None
        and checkout.currency == "KRW"
        and checkout.amount_paid > 0
        and not has_issue,
    }


def operator_issue_now(
    session: Session, settings: Settings, catalog: Catalog, operator: str, checkout_id: str
) -> str:
    """Decide the checkout's receipt now (if it is not yet) and make it due at once."""
    try:
        row = receipts.issue_now(session, settings, catalog, checkout_id)
    except ServiceError as exc:
        session.rollback()
        return f"Not issued: {exc.message}"
    outcome = (
        f"Cash receipt {row.mgt_key} is due now: the worker issues it in its next round."
        if row is not None
        else "No cash receipt is owed for this checkout (see its timeline)."
    )
    record_action(session, operator, "receipt_issue_now", checkout_id, detail=outcome)
    session.commit()
    return outcome


def operator_retry(session: Session, operator: str, checkout_id: str, target: str) -> str:
    """Make a refused or waiting receipt of this checkout due again now."""
    row = session.get(CashReceipt, int(target)) if target.isdigit() else None
    if row is None or row.checkout_id != checkout_id:
        return "No such receipt on this checkout."
    try:
        receipts.retry(session, row.id)
    except ServiceError as exc:
        session.rollback()
        return f"Not retried: {exc.message}"
    outcome = f"The {row.kind} receipt {row.mgt_key} is due again: the worker tries it next round."
    record_action(
        session, operator, "receipt_retry", checkout_id, target=row.mgt_key, detail=outcome
    )
    session.commit()
    return outcome
