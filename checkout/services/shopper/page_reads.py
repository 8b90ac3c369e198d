"""Checkouts as the shopper's pages read them: one narrow query, plain frozen objects.

A page GET (the form, the payment details, the status a page polls) only reads. Loading
ORM objects for it (every column of the checkout and its attempts, the identity map, the
unit of work's bookkeeping) was a third of the page's time; these views carry only what
the pages show, from a single SELECT. Anything that writes (a payment, an expiry, a query
to the provider) loads the models as before, then reads the view again: every shopper page
works on `CheckoutView` only (`read_page_checkout`, `refresh_and_read`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from checkout.domain.money import Money
from checkout.domain.states import CheckoutStatus, latest_of, live_of
from checkout.services.checkouts import expire_if_due, get_checkout
from checkout.services.errors import NotFound
from checkout.store.db import db, read_only_connection
from checkout.store.models import Checkout, PaymentAttempt, ReceiptRequest, Store, utcnow
from checkout.urls import rendered_url


@dataclass(frozen=True, slots=True)
class AttemptView:
    id: int
    trade_no: str
    status: str
    method: str
    provider: str
    amount: int
    currency: str
    amount_paid: int | None
    redirect_url: str | None
    instructions: dict[str, Any] | None
    platform_trade_no: str | None
    abandoned_at: datetime | None = None  # the shopper chose another way to pay

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


@dataclass(frozen=True, slots=True)
class CheckoutView:
    id: str
    store_id: str
    store_name: str
    order_id: str
    amount: int
    currency: str
    amount_paid: int
    description: str | None
    cancel_url: str | None
    prefill: dict[str, str] | None
    locale: str | None
    methods: list[str] | None
    status: str
    expires_at: datetime
    attempts: tuple[AttemptView, ...]
    livemode: bool = True
    # What the buyer already asked for (receipt_requests), read in the same statement: a
    # cash-receipt choice, invoice data (the form then does not ask again).
    receipt_chosen: bool = False
    invoice_given: bool = False

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def paid_money(self) -> Money:
        return Money(self.amount_paid, self.currency)

    @property
    def owed_money(self) -> Money:
        """What is still to pay (nothing once paid in full or more)."""
        return Money(max(self.amount - self.amount_paid, 0), self.currency)

    def live_attempt(self) -> AttemptView | None:
        return live_of(self.attempts)

    def latest_attempt(self) -> AttemptView | None:
        return latest_of(self.attempts)


C, A = Checkout, PaymentAttempt
_CHECKOUT_COLUMNS = (
    C.id,
    C.store_id,
    Store.name.label("store_name"),
    C.order_id,
    C.amount,
    C.currency,
    C.amount_paid,
    C.description,
    C.cancel_url,
    C.prefill,
    C.locale,
    C.methods,
    C.status,
    C.expires_at,
    C.livemode,
)
_ATTEMPT_COLUMNS = (
    A.id.label("a_id"),
    A.trade_no.label("a_trade_no"),
    A.status.label("a_status"),
    A.method.label("a_method"),
    A.provider.label("a_provider"),
    A.amount.label("a_amount"),
    A.currency.label("a_currency"),
    A.amount_paid.label("a_amount_paid"),
    A.redirect_url.label("a_redirect_url"),
    A.instructions.label("a_instructions"),
    A.platform_trade_no.label("a_platform_trade_no"),
    A.abandoned_at.label("a_abandoned_at"),
)
R = ReceiptRequest
_ASKED_COLUMNS = (
    R.cash_receipt_kind.is_not(None).label("r_receipt_chosen"),
    R.invoice_data.is_not(None).label("r_invoice_given"),
)
_READ = (
    select(*_CHECKOUT_COLUMNS, *_ATTEMPT_COLUMNS, *_ASKED_COLUMNS)
    .join(Store, Store.id == C.store_id)
    .outerjoin(R, R.checkout_id == C.id)
    .outerjoin(A, A.checkout_id == C.id)
    .where(C.id == bindparam("checkout_id"))
    .order_by(A.id)
)


def read_checkout(session: Session, checkout_id: str) -> CheckoutView:
    """The checkout and its attempts (oldest first), or NotFound."""
    return _view_of(session.connection().execute(_READ, {"checkout_id": checkout_id}).all())


def _view_of(rows: Sequence[Any]) -> CheckoutView:
    if not rows:
        raise NotFound("checkout_not_found", "No such checkout.")
    first = rows[0]
    attempts = tuple(
        AttemptView(
            id=row.a_id,
            trade_no=row.a_trade_no,
            status=row.a_status,
            method=row.a_method,
            provider=row.a_provider,
            amount=row.a_amount,
            currency=row.a_currency,
            amount_paid=row.a_amount_paid,
            redirect_url=row.a_redirect_url,
            instructions=row.a_instructions,
            platform_trade_no=row.a_platform_trade_no,
            abandoned_at=row.a_abandoned_at,
        )
        for row in rows
        if row.a_id is not None
    )
    return CheckoutView(
        id=first.id,
        store_id=first.store_id,
        store_name=first.store_name,
        order_id=first.order_id,
        amount=first.amount,
        currency=first.currency,
        amount_paid=first.amount_paid or 0,
        description=first.description,
        cancel_url=rendered_url(first.cancel_url),  # re-serialised as a browser reads it
        prefill=first.prefill,
        locale=first.locale,
        methods=first.methods,
        status=first.status,
        expires_at=first.expires_at,
        attempts=attempts,
        livemode=first.livemode,
        receipt_chosen=bool(first.r_receipt_chosen),
        invoice_given=bool(first.r_invoice_given),
    )


def read_page_checkout(session: Session, checkout_id: str) -> CheckoutView:
    """The checkout as a shopper page shows it, or NotFound: an open checkout past its
    deadline is expired first (through the lifecycle, on the models) and read again."""

    view = _read_without_transaction(session, checkout_id)
    if view.status != CheckoutStatus.OPEN or utcnow() < view.expires_at:
        return view
    if expire_if_due(session, get_checkout(session, checkout_id)):
        return read_checkout(session, checkout_id)
    session.commit()
    return _read_without_transaction(session, checkout_id)


def refresh_and_read(
    session: Session,
    view: CheckoutView,
    attempt: AttemptView | None,
    refresh: Callable[[PaymentAttempt], bool],
) -> CheckoutView:
    """Ask the provider about `attempt` (`refresh`: reconcile.refresh_attempt, rate-limited)
    and return the checkout as it is afterwards; the same view if nothing was asked."""
    if attempt is None:
        return view
    model = session.get(PaymentAttempt, attempt.id)
    if model is None or not refresh(model):
        session.commit()
        return view
    session.commit()
    return _read_without_transaction(session, view.id)


def _read_without_transaction(session: Session, checkout_id: str) -> CheckoutView:

    if session is db.session:
        if not session.in_transaction():
            return _read_on_own_connection(session.get_bind(), checkout_id)
        with db.reading() as reading:
            return read_checkout(reading, checkout_id)
    return read_checkout(session, checkout_id)


def _read_on_own_connection(engine: Any, checkout_id: str) -> CheckoutView:
    """The one SELECT on a pooled connection of its own: a page that only reads needs none
    of the session's transaction bookkeeping."""

    with read_only_connection(engine) as conn:
        return _view_of(conn.execute(_READ, {"checkout_id": checkout_id}).all())


def attempt_view_of(attempt: PaymentAttempt) -> AttemptView:
    """An attempt the request has just written, as the pages read attempts."""
    return AttemptView(
        id=attempt.id,
        trade_no=attempt.trade_no,
        status=str(attempt.status),
        method=attempt.method,
        provider=attempt.provider,
        amount=attempt.amount,
        currency=attempt.currency,
        amount_paid=attempt.amount_paid,
        redirect_url=attempt.redirect_url,
        instructions=attempt.instructions,
        platform_trade_no=attempt.platform_trade_no,
    )
