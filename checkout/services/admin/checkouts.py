"""The console's checkout search and what a checkout's page shows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, false, func, or_, select
from sqlalchemy.orm import Session

from checkout.domain.ledger import cancellable
from checkout.domain.payer import mobile_query_digits
from checkout.domain.states import CheckoutStatus
from checkout.services.admin.freshness import freshness_flags
from checkout.store.models import (
    Checkout,
    NotifyMessage,
    OperatorAction,
    PaymentAttempt,
    ProviderExchange,
    StateEvent,
    WebhookDelivery,
    WebhookEvent,
)

PAGE_SIZE = 50


# ---------------------------------------------------------------- search
@dataclass
class CheckoutFilter:
    order_id: str = ""
    trade_no: str = ""  # ours or the provider's (platform trade number)
    store: str = ""
    provider: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    payer: str = ""  # e-mail or mobile: exact, or the end of it
    needs_review: bool = False
    mode: str = ""  # "live", "test" (made with a test key) or "" for both

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.needs_review:
            query = query.where(needs_review())
        if self.mode in ("live", "test"):
            query = query.where(Checkout.livemode == (self.mode == "live"))
        if self.order_id:
            query = query.where(Checkout.order_id == self.order_id)
        if self.store:
            query = query.where(Checkout.store_id == self.store)
        if self.status:
            query = query.where(Checkout.status == self.status)
        if self.date_from:
            query = query.where(Checkout.created_at >= day_start(self.date_from))
        if self.date_to:
            query = query.where(Checkout.created_at < day_start(self.date_to + timedelta(1)))
        attempt_filters = []
        if self.trade_no:
            attempt_filters.append(
                or_(
                    PaymentAttempt.trade_no == self.trade_no,
                    PaymentAttempt.platform_trade_no == self.trade_no,
                )
            )
        if self.provider:
            attempt_filters.append(PaymentAttempt.provider == self.provider)
        if self.payer:
            attempt_filters.append(payer_condition(self.payer))
        if attempt_filters:
            query = query.where(
                Checkout.id.in_(select(PaymentAttempt.checkout_id).where(*attempt_filters))
            )
        return query


def payer_condition(typed: str) -> Any:
    """An e-mail (case-insensitive) or a mobile (digits only, as stored), exact or its end.

    A value with "@" or a letter is an e-mail (or its end, "example.com"); anything else is
    a mobile number, whatever spaces, dashes or country code were typed.
    """
    value = typed.strip()
    if "@" in value or any(c.isalpha() for c in value):
        email = func.lower(PaymentAttempt.payer_email)
        lowered = value.lower()
        return or_(email == lowered, email.endswith(lowered, autoescape=True))
    digits = mobile_query_digits(value)
    if not digits:
        return false()
    return or_(
        PaymentAttempt.payer_mobile == digits,
        PaymentAttempt.payer_mobile.endswith(digits, autoescape=True),
    )


def needs_review() -> Any:
    """Checkouts waiting for an operator: flagged themselves, or through one of their
    attempts (attempt flags are copied to the checkout; this also covers older rows)."""
    return or_(
        Checkout.review_reason.is_not(None),
        Checkout.id.in_(
            select(PaymentAttempt.checkout_id).where(PaymentAttempt.review_reason.is_not(None))
        ),
    )


def day_start(day: date) -> datetime:
    """The start of the UTC day."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def page_count(total: int) -> int:
    """How many pages of PAGE_SIZE rows `total` rows make."""
    return (total + PAGE_SIZE - 1) // PAGE_SIZE


def search_checkouts(
    session: Session, flt: CheckoutFilter, page: int = 1
) -> tuple[list[Checkout], int, dict[str, int]]:
    """(one page of checkouts, newest first; total matching; counts by status)."""
    base = flt.apply(select(Checkout))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(
        base.order_by(Checkout.created_at.desc(), Checkout.id)
        .limit(PAGE_SIZE)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    status_query = flt.apply(select(Checkout.status, func.count()).group_by(Checkout.status))
    counts = {status: n for status, n in session.execute(status_query).all()}
    return list(rows), total, counts


# ---------------------------------------------------------------- a checkout's page
@dataclass
class CheckoutPage:
    """Everything a checkout's page shows, each list oldest first."""

    checkout: Checkout
    events: list[StateEvent]
    actions: list[OperatorAction]
    notifies: list[NotifyMessage]
    freshness: dict[int, list[str]]
    webhook_events: list[WebhookEvent]
    deliveries: dict[int, list[WebhookDelivery]]  # webhook event id -> its deliveries
    exchanges: dict[int, list[ProviderExchange]]  # attempt id -> its provider calls
    can_cancel: bool = False  # an operator may cancel it (domain.ledger.cancellable)


def checkout_page(
    session: Session, checkout_id: str, max_ages: Mapping[str, int]
) -> CheckoutPage | None:
    """The checkout's page (None: no such checkout); `max_ages` as for freshness_flags."""
    item = session.get(Checkout, checkout_id)
    if item is None:
        return None
    events = session.scalars(
        select(StateEvent).where(StateEvent.checkout_id == item.id).order_by(StateEvent.id)
    ).all()
    actions = session.scalars(
        select(OperatorAction)
        .where(OperatorAction.checkout_id == item.id)
        .order_by(OperatorAction.id)
    ).all()
    notify_rows = _notifies_of(session, item)
    webhook_events = list(
        session.scalars(
            select(WebhookEvent)
            .where(WebhookEvent.checkout_id == item.id)
            .order_by(WebhookEvent.id)
        ).all()
    )
    return CheckoutPage(
        checkout=item,
        events=list(events),
        actions=list(actions),
        notifies=notify_rows,
        freshness=freshness_flags(session, notify_rows, max_ages),
        webhook_events=webhook_events,
        deliveries=_deliveries_of(session, webhook_events),
        exchanges=_exchanges_of(session, [a.id for a in item.attempts]),
        can_cancel=cancellable(
            CheckoutStatus(item.status), item.amount_paid or 0, allow_pending=True
        ),
    )


def _notifies_of(session: Session, item: Checkout) -> list[NotifyMessage]:
    """Its attempts' notifies, and also those that only name one of its trade numbers: a
    forged (bad signature) or misrouted (unknown trade) notify claiming this order shows on
    its page, marked unverified."""
    attempt_ids = [a.id for a in item.attempts]
    if not attempt_ids:
        return []
    trade_nos = [a.trade_no for a in item.attempts]
    return list(
        session.scalars(
            select(NotifyMessage)
            .where(
                or_(
                    NotifyMessage.attempt_id.in_(attempt_ids),
                    NotifyMessage.trade_no.in_(trade_nos),
                    NotifyMessage.claimed_trade_no.in_(trade_nos),
                )
            )
            .order_by(NotifyMessage.id)
        ).all()
    )


def _exchanges_of(session: Session, attempt_ids: list[int]) -> dict[int, list[ProviderExchange]]:
    exchanges: dict[int, list[ProviderExchange]] = {}
    if attempt_ids:
        for x in session.scalars(
            select(ProviderExchange)
            .where(ProviderExchange.attempt_id.in_(attempt_ids))
            .order_by(ProviderExchange.id)
        ):
            exchanges.setdefault(x.attempt_id, []).append(x)
    return exchanges


def _deliveries_of(
    session: Session, events: list[WebhookEvent]
) -> dict[int, list[WebhookDelivery]]:
    deliveries: dict[int, list[WebhookDelivery]] = {}
    if events:
        for d in session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.event_id.in_([e.id for e in events]))
            .order_by(WebhookDelivery.id)
        ):
            deliveries.setdefault(d.event_id, []).append(d)
    return deliveries
