"""The hot path of notifies: a live attempt paid as expected, written in one go.

On a sale day nearly every notify says the same thing: the attempt we are waiting for was
paid, in the currency we asked for and no more than we asked. For that case alone this
module reads the attempt and its checkout under lock (only the columns it needs), decides
with the one state machine, and writes every effect (the attempt, the checkout, both
timeline rows, the shop's webhook event and the raw notify) with pre-built statements:
on PostgreSQL one statement, on SQLite five (no round trips there). Anything else (a
duplicate, a conflict, money after an expiry, an overpayment, a failure) returns None and
goes through `lifecycle.apply_update`, which handles every case; tests/test_settle.py
checks that both give the same rows wherever this one applies.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Executable, bindparam, insert, select, update
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from checkout.domain.states import (
    ATTEMPT_LIVE,
    AttemptStatus,
    CheckoutStatus,
    EventSource,
    TransitionError,
    attempt_transition,
    checkout_transition,
)
from checkout.models import (
    Checkout,
    NotifyMessage,
    PaymentAttempt,
    StateEvent,
    WebhookEvent,
    new_public_id,
)
from checkout.providers.base import PaymentUpdate
from checkout.services.outbox import checkout_event_payload

A, C = PaymentAttempt, Checkout

_LOCKED = (
    select(
        A.id,
        A.status,
        A.amount,
        A.currency,
        A.platform_trade_no,
        A.checkout_id,
        C.status.label("checkout_status"),
        C.amount.label("checkout_amount"),
        C.amount_paid.label("checkout_paid"),
        C.currency.label("checkout_currency"),
        C.event_seq,
        C.store_id,
        C.order_id,
        C.livemode,
        C.review_reason.label("checkout_review"),
    )
    .join(C, C.id == A.checkout_id)
    .where(A.trade_no == bindparam("s_trade_no"), A.provider == bindparam("s_provider"))
    .with_for_update()
)


def read_locked(session: Session, provider: str, trade_no: str) -> Row[Any] | None:
    """The attempt and its checkout, both rows locked for this transaction (PostgreSQL
    FOR UPDATE; SQLite's write transaction holds the whole file)."""
    return (
        session.connection()
        .execute(_LOCKED, {"s_trade_no": trade_no, "s_provider": provider})
        .one_or_none()
    )


@dataclass(frozen=True)
class Settlement:
    """What a notify of expected money changes, decided and ready to write."""

    attempt_id: int
    checkout_id: str
    attempt_from: AttemptStatus
    attempt_to: AttemptStatus
    amount_paid: int
    provider_status: str
    platform_trade_no: str | None
    failure_message: str | None
    checkout_from: CheckoutStatus
    checkout_to: CheckoutStatus
    checkout_paid: int  # the checkout's amount paid after this payment
    event_seq: int  # the shop's event number for this change
    webhook: dict[str, Any]  # the shop's event as it will be sent
    store_id: str


def plan_settlement(row: Row[Any], update: PaymentUpdate) -> Settlement | None:
    """The settlement for `update` if it is the plain case, else None (use apply_update).

    The plain case: money in the attempt's currency, more than nothing and no more than
    asked, for an attempt still live, on a checkout that is open or pending. Decisions go
    through the state machine, as apply_update's do.
    """
    paid = update.amount_paid
    if update.status not in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID) or paid is None:
        return None
    if paid.currency != row.currency or not 0 < paid.amount <= row.amount:
        return None  # unusable or overpaid: flagged for review by apply_update
    current = AttemptStatus(row.status)
    checkout_now = CheckoutStatus(row.checkout_status)
    if current not in ATTEMPT_LIVE or checkout_now not in (
        CheckoutStatus.OPEN,
        CheckoutStatus.PENDING,
    ):
        return None
    target = AttemptStatus.PAID if paid.amount == row.amount else AttemptStatus.PARTIALLY_PAID
    checkout_paid = (row.checkout_paid or 0) + paid.amount
    settled = (
        CheckoutStatus.PAID
        if checkout_paid >= row.checkout_amount
        else CheckoutStatus.PARTIALLY_PAID
    )
    try:
        if not attempt_transition(current, target) or not checkout_transition(
            checkout_now, settled
        ):
            return None
    except TransitionError:
        return None  # apply_update meets the same refusal and says so
    seq = (row.event_seq or 0) + 1
    payload = checkout_event_payload(
        _CheckoutAfter(
            id=row.checkout_id,
            status=settled,
            order_id=row.order_id,
            amount=row.checkout_amount,
            amount_paid=checkout_paid,
            currency=row.checkout_currency,
            review_reason=row.checkout_review,
            livemode=row.livemode,
        ),
        seq,
    )
    return Settlement(
        attempt_id=row.id,
        checkout_id=row.checkout_id,
        attempt_from=current,
        attempt_to=target,
        amount_paid=paid.amount,
        provider_status=update.provider_status,
        platform_trade_no=row.platform_trade_no or update.platform_trade_no,
        failure_message=update.failure_message[:500] if update.failure_message else None,
        checkout_from=checkout_now,
        checkout_to=settled,
        checkout_paid=checkout_paid,
        event_seq=seq,
        webhook=payload,
        store_id=row.store_id,
    )


@dataclass(frozen=True)
class _CheckoutAfter:
    """The checkout as the shop's event describes it (outbox.checkout_event_payload)."""

    id: str
    status: str
    order_id: str
    amount: int
    amount_paid: int
    currency: str
    review_reason: str | None
    livemode: bool = True


# The statements, built once; the values are bound per notify. Every parameter is named
# s_*: an UPDATE or INSERT would take a parameter named like one of its columns as one more
# value to write.
_UPDATE_ATTEMPT = (
    update(A)
    .where(A.id == bindparam("s_attempt_id"))
    .values(
        status=bindparam("s_attempt_to"),
        amount_paid=bindparam("s_amount_paid"),
        provider_status=bindparam("s_provider_status"),
        platform_trade_no=bindparam("s_platform_trade_no"),
        failure_message=bindparam("s_failure_message"),
        updated_at=bindparam("s_now"),
    )
)
_UPDATE_CHECKOUT = (
    update(C)
    .where(C.id == bindparam("s_checkout_id"))
    .values(
        status=bindparam("s_checkout_to"),
        amount_paid=bindparam("s_checkout_paid"),
        event_seq=bindparam("s_event_seq"),
        updated_at=bindparam("s_now"),
    )
)


def _event_params(attempt: str, kind: str, before: str, after: str) -> dict[str, str]:
    """A timeline row's columns and the parameters that fill them."""
    return {
        "checkout_id": "s_checkout_id",
        "attempt_id": attempt,
        "kind": kind,
        "from_status": before,
        "to_status": after,
        "source": "s_source",
        "detail": "s_no_detail",
        "created_at": "s_now",
    }


def _bound(params: dict[str, str]) -> dict[str, Any]:
    return {
        column: bindparam(name, type_=StateEvent.__table__.c[column].type)
        for column, name in params.items()
    }


_ATTEMPT_EVENT_PARAMS = _event_params(
    "s_attempt_id", "s_attempt_kind", "s_attempt_from", "s_attempt_to"
)
_CHECKOUT_EVENT_PARAMS = _event_params(
    "s_no_attempt", "s_checkout_kind", "s_checkout_from", "s_checkout_to"
)
# One statement per timeline row: SQLAlchemy compiles a multi-row VALUES anew every time.
_INSERT_ATTEMPT_EVENT = insert(StateEvent).values(_bound(_ATTEMPT_EVENT_PARAMS))
_INSERT_CHECKOUT_EVENT = insert(StateEvent).values(_bound(_CHECKOUT_EVENT_PARAMS))
_INSERT_WEBHOOK = insert(WebhookEvent).values(
    public_id=bindparam("s_webhook_public_id"),
    store_id=bindparam("s_store_id"),
    checkout_id=bindparam("s_checkout_id"),
    type=bindparam("s_webhook_type"),
    seq=bindparam("s_event_seq"),
    payload=bindparam("s_webhook_payload", type_=WebhookEvent.__table__.c.payload.type),
    status=bindparam("s_webhook_status"),
    attempts=bindparam("s_webhook_attempts"),
    next_attempt_at=bindparam("s_now"),
    pending_since=bindparam("s_now"),
    created_at=bindparam("s_now"),
)
_INSERT_MESSAGE = insert(NotifyMessage).values(
    provider=bindparam("s_message_provider"),
    received_at=bindparam("s_now"),
    remote_addr=bindparam("s_remote_addr"),
    headers=bindparam("s_headers", type_=NotifyMessage.__table__.c.headers.type),
    body=bindparam("s_body"),
    trade_no=bindparam("s_trade_no"),
    claimed_trade_no=bindparam("s_claimed_trade_no"),
    attempt_id=bindparam("s_attempt_id"),
    verdict=bindparam("s_verdict"),
    detail=bindparam("s_no_detail"),
    response_status=bindparam("s_response_status"),
    response_body=bindparam("s_response_body"),
)
_SEQUENCE: tuple[Executable, ...] = (
    _UPDATE_ATTEMPT,
    _UPDATE_CHECKOUT,
    _INSERT_ATTEMPT_EVENT,
    _INSERT_CHECKOUT_EVENT,
    _INSERT_WEBHOOK,
    _INSERT_MESSAGE,
)
# PostgreSQL: the same writes as one statement (data-modifying WITH), one round trip. Its
# parts run in no set order, so the checkout's timeline row is read off the attempt's
# (its id then comes second, as in the timeline's order).
_ATTEMPT_EVENT = _INSERT_ATTEMPT_EVENT.returning(StateEvent.id).cte("settled_attempt_event")
_CHECKOUT_EVENT_AFTER = insert(StateEvent).from_select(
    list(_CHECKOUT_EVENT_PARAMS),
    select(*_bound(_CHECKOUT_EVENT_PARAMS).values()).select_from(_ATTEMPT_EVENT),
)
_ONE_STATEMENT = _INSERT_MESSAGE.add_cte(
    _UPDATE_ATTEMPT.cte("settled_attempt"),
    _UPDATE_CHECKOUT.cte("settled_checkout"),
    _ATTEMPT_EVENT,
    _CHECKOUT_EVENT_AFTER.cte("settled_checkout_event"),
    _INSERT_WEBHOOK.cte("settled_webhook"),
)


def write_settlement(
    session: Session, settlement: Settlement, message: dict[str, Any], now: datetime
) -> None:
    """Write the settlement and the notify (`message`: NotifyMessage's columns) in the
    caller's transaction; the caller commits."""
    params = {
        "s_attempt_id": settlement.attempt_id,
        "s_checkout_id": settlement.checkout_id,
        "s_attempt_from": str(settlement.attempt_from),
        "s_attempt_to": str(settlement.attempt_to),
        "s_amount_paid": settlement.amount_paid,
        "s_provider_status": settlement.provider_status,
        "s_platform_trade_no": settlement.platform_trade_no,
        "s_failure_message": settlement.failure_message,
        "s_checkout_from": str(settlement.checkout_from),
        "s_checkout_to": str(settlement.checkout_to),
        "s_checkout_paid": settlement.checkout_paid,
        "s_event_seq": settlement.event_seq,
        "s_source": str(EventSource.NOTIFY),
        "s_attempt_kind": "attempt",
        "s_checkout_kind": "checkout",
        "s_no_attempt": None,
        "s_no_detail": None,
        "s_store_id": settlement.store_id,
        "s_webhook_public_id": new_public_id("evt"),
        "s_webhook_type": settlement.webhook["type"],
        "s_webhook_status": "pending",
        "s_webhook_attempts": 0,
        "s_webhook_payload": settlement.webhook,
        "s_message_provider": message["provider"],
        "s_remote_addr": message["remote_addr"],
        "s_headers": message["headers"],
        "s_body": message["body"],
        "s_trade_no": message["trade_no"],
        "s_claimed_trade_no": message["claimed_trade_no"],
        "s_verdict": message["verdict"],
        "s_response_status": message["response_status"],
        "s_response_body": message["response_body"],
        "s_now": now,
    }
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_ONE_STATEMENT, params)
        return
    for statement in _SEQUENCE:
        connection.execute(statement, params)
