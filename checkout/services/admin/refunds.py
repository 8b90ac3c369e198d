"""The console's refunds: what a checkout's page shows of them, an operator's request, and a
second operator's decision. Every step is in operator_actions, in the transaction of the
change."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.config import Settings
from checkout.domain.refunds import (
    RefundSource,
    RefundStatus,
    awaits_approval,
    awaits_destination,
    refund_cancellable,
)
from checkout.providers.payouts import PayoutProvider
from checkout.services import refunds as refund_service
from checkout.services.admin.actions import record_action
from checkout.services.errors import ServiceError
from checkout.services.refund_account_links import account_link
from checkout.store.models import Checkout, Refund

# approve, reject or cancel (services/refunds.py): (session, refund id, operator, audit).
Decision = Callable[[Session, str, str, refund_service.Audit], Refund]


def refunds_panel(session: Session, settings: Settings, checkout: Checkout) -> dict[str, Any]:
    """What the checkout page shows of refunds: the rows, the refund-account link of each
    still waiting for an account, what is refundable and the excess paid."""
    rows = session.scalars(
        select(Refund).where(Refund.checkout_id == checkout.id).order_by(Refund.id)
    ).all()
    refundable = refund_service.refundable_of(session, checkout)
    links = {
        r.public_id: account_link(
            settings.public_base_url, settings.secret_key, r.public_id, checkout.locale
        )
        for r in rows
        if awaits_destination(RefundStatus(r.status), r.destination_token is not None)
    }
    statuses = {r.public_id: RefundStatus(r.status) for r in rows}
    return {
        "rows": rows,
        "links": links,
        # What an operator may still do to each (the domain's rules, not the templates').
        "approvable": {i for i, status in statuses.items() if awaits_approval(status)},
        "cancellable": {i for i, status in statuses.items() if refund_cancellable(status)},
        "refundable": refundable.amount,
        "excess": refund_service.excess_of(session, checkout).amount,
    }


def _audit(
    session: Session, operator: str, action: str, checkout_id: str, detail: str
) -> Callable[[str], None]:
    return lambda public_id: record_action(
        session, operator, action, checkout_id, target=public_id, detail=detail
    )


def request_refund(
    session: Session,
    settings: Settings,
    payouts: Mapping[str, PayoutProvider],
    operator: str,
    checkout: Checkout,
    data: dict[str, Any],
) -> str:
    """Ask for a refund of the checkout (another operator must approve it); returns the
    outcome for the page, a refusal included."""
    try:
        refund, _created = refund_service.create_refund(
            session,
            settings,
            checkout.store_id,
            checkout.id,
            data,
            source=RefundSource.CONSOLE,
            requested_by=operator,
            payouts=payouts,
            audit=_audit(
                session,
                operator,
                "refund_request",
                checkout.id,
                f"{data['amount']}: {data['reason']}",
            ),
        )
    except ServiceError as exc:
        session.rollback()
        return f"Refund refused: {exc.message}" + (f" ({exc.field})" if exc.field else "")
    return f"Refund {refund.public_id} requested: another operator must approve it."


def refund_of(session: Session, checkout_id: str, public_id: str) -> Refund | None:
    """The checkout's refund `public_id`, if it has one by that id."""
    return session.scalars(
        select(Refund).where(Refund.public_id == public_id, Refund.checkout_id == checkout_id)
    ).one_or_none()


def decide_refund(
    session: Session,
    decide: Decision,
    operator: str,
    checkout_id: str,
    public_id: str,
    action: str,
    done: str,
) -> str:
    """Approve, reject or cancel the checkout's refund `public_id`; the outcome for the page."""
    if refund_of(session, checkout_id, public_id) is None:
        return "No such refund."
    try:
        decide(session, public_id, operator, _audit(session, operator, action, checkout_id, done))
    except ServiceError as exc:
        session.rollback()
        return f"Refund {public_id}: {exc.message}"
    return f"Refund {public_id} {done}."
