"""The data model: stores, checkouts, payment attempts, notify messages."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from checkout.domain.money import Money
from checkout.domain.states import (
    AttemptStatus,
    CheckoutStatus,
    WebhookStatus,
    latest_of,
    live_of,
)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime stored; use aware UTC datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_public_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(16)}"


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Checkout(Base):
    __tablename__ = "checkouts"
    # An order id is unique per store and mode: a test checkout never blocks a live one.
    # Every payment changes a checkout's status, so every index on it takes a new entry for
    # the new row version: indexes are only those a query uses, and partial where a query
    # reads only part of the rows (bench/notes.md, "Indexes", has each query's plan).
    __table_args__ = (
        # Also serves the shop API's lookups by store (its leading column).
        UniqueConstraint("store_id", "livemode", "order_id", name="uq_checkouts_store_order"),
        # The expiry sweep reads open checkouts; the console filters by status (live ones
        # here, the final ones through the list's created_at order). SQLite: whole (its
        # planner matches a partial index only on a literal, and the queries bind).
        Index(
            "ix_checkouts_status",
            "status",
            postgresql_where=text("status IN ('open', 'pending')"),
        ),
        # The console's "waiting" queue and its count in the nav: flagged rows only.
        Index(
            "ix_checkouts_review_reason",
            "review_reason",
            postgresql_where=text("review_reason IS NOT NULL"),
            sqlite_where=text("review_reason IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(
        String(40), primary_key=True, default=lambda: new_public_id("co")
    )
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    # Indexed alone too: the operator console searches by order id across stores.
    order_id: Mapped[str] = mapped_column(String(64), index=True)
    # False: created with a test key; paid through the sandbox providers, seen by test keys only.
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    amount_paid: Mapped[int] = mapped_column(BigInteger, default=0)
    description: Mapped[str | None] = mapped_column(String(500))
    return_url: Mapped[str] = mapped_column(String(2000))
    cancel_url: Mapped[str | None] = mapped_column(String(2000))
    # Shopper details the shop already knows (name, mobile, e-mail), to prefill the form.
    prefill: Mapped[dict[str, str] | None] = mapped_column(JSON)
    # Bumped with every event sent to the shop, under the checkout's row lock.
    event_seq: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locale: Mapped[str | None] = mapped_column(String(10))
    methods: Mapped[list[str] | None] = mapped_column(JSON)  # None: every method that fits
    status: Mapped[str] = mapped_column(String(20), default=CheckoutStatus.OPEN)
    review_reason: Mapped[str | None] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Indexed: the console lists newest first and filters by date.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    store: Mapped[Store] = relationship()
    attempts: Mapped[list[PaymentAttempt]] = relationship(
        back_populates="checkout", order_by="PaymentAttempt.id"
    )
    # The timeline: every status change of the checkout and its attempts, in order.
    events: Mapped[list[StateEvent]] = relationship(
        order_by="StateEvent.id", viewonly=True, lazy="select"
    )

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)

    @property
    def paid_money(self) -> Money:
        return Money(self.amount_paid, self.currency)

    @property
    def store_name(self) -> str:
        return self.store.name

    def live_attempt(self) -> PaymentAttempt | None:
        return live_of(self.attempts)

    def latest_attempt(self) -> PaymentAttempt | None:
        return latest_of(self.attempts)


class PaymentAttempt(Base):
    __tablename__ = "payment_attempts"
    # PayPro's per-IP daily rule counts one IP's attempts since midnight before every create.
    # As on checkouts: every notify and answer changes an attempt's status, so its indexes
    # are the ones a query uses, partial where the query reads part of the rows.
    __table_args__ = (
        Index("ix_payment_attempts_payer_ip_created_at", "payer_ip", "created_at"),
        # The reconciler reads live attempts only (creating, unknown, pending); SQLite:
        # whole, as ix_checkouts_status.
        Index(
            "ix_payment_attempts_status",
            "status",
            postgresql_where=text("status IN ('creating', 'unknown', 'pending')"),
        ),
        Index(
            "ix_payment_attempts_review_reason",
            "review_reason",
            postgresql_where=text("review_reason IS NOT NULL"),
            sqlite_where=text("review_reason IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), index=True)
    trade_no: Mapped[str] = mapped_column(String(32), unique=True)
    # The provider instance's name (a handful of values: not indexed, no query reads by it
    # alone).
    provider: Mapped[str] = mapped_column(String(64))
    method: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    amount_paid: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(20), default=AttemptStatus.CREATING)
    provider_status: Mapped[str | None] = mapped_column(String(40))
    platform_trade_no: Mapped[str | None] = mapped_column(String(64), index=True)
    redirect_url: Mapped[str | None] = mapped_column(String(2000))
    instructions: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    review_reason: Mapped[str | None] = mapped_column(String(200))  # the console's queue
    # The shopper's details, kept for the shop; never logged, masked in the API.
    payer_name: Mapped[str | None] = mapped_column(String(200))
    payer_email: Mapped[str | None] = mapped_column(String(320))
    payer_mobile: Mapped[str | None] = mapped_column(String(32))
    payer_ip: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the provider's, if any
    # Past this (the provider's deadline or the checkout's, whichever is first) the attempt
    # gets one last query and then expires (services/reconcile.py).
    deadline_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The shopper chose another way to pay while this attempt was live: it no longer holds the
    # checkout, but it is still reconciled until final and money it brings is kept.
    abandoned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Reconciliation: when to ask the provider next, how often we asked, the last outcome.
    # Not indexed: the reconciler finds due attempts through the live status index.
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    query_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_queried_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_query_error: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    checkout: Mapped[Checkout] = relationship(back_populates="attempts")

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class PaymentReceipt(Base):
    """Money received for an attempt: one row per provider transfer id, or one running-total
    row (transfer_key "total") for a provider that reports the order's total. The attempt's
    and the checkout's amount_paid are the sums of these rows (domain/ledger.py)."""

    __tablename__ = "payment_receipts"
    __table_args__ = (
        UniqueConstraint("attempt_id", "transfer_key", name="uq_payment_receipts_attempt_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"))
    attempt_id: Mapped[int] = mapped_column(ForeignKey("payment_attempts.id"))
    transfer_key: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    source: Mapped[str] = mapped_column(String(20))  # EventSource that brought it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StateEvent(Base):
    """One status change of a checkout or an attempt: the audit trail and the API timeline.

    Written only by the ledger writer (store/ledger.py), in the transaction of the change;
    a repeated status writes nothing.
    """

    __tablename__ = "state_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), index=True)
    # Not indexed: the timeline is read by checkout, and rows are only ever added.
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("payment_attempts.id"))
    # Set for kind "refund": the refund whose status moved (a refund's timeline lives here too).
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"))
    kind: Mapped[str] = mapped_column(String(10))  # "checkout" | "attempt" | "refund"
    from_status: Mapped[str | None] = mapped_column(String(20))  # None: the attempt was created
    to_status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # EventSource
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProviderExchange(Base):
    """One call to a provider for an attempt (create or query), as sent and as answered,
    with payer details and signatures masked (checkout/services/exchanges.py)."""

    __tablename__ = "provider_exchanges"
    # The providers page reads one instance's calls over the last hour or day.
    __table_args__ = (Index("ix_provider_exchanges_provider_created_at", "provider", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    attempt_id: Mapped[int] = mapped_column(ForeignKey("payment_attempts.id"), index=True)
    provider: Mapped[str] = mapped_column(String(64))  # provider instance name
    operation: Mapped[str] = mapped_column(String(20))  # create, query
    http_method: Mapped[str] = mapped_column(String(10))
    path: Mapped[str] = mapped_column(String(500))
    request_body: Mapped[str | None] = mapped_column(Text)
    response_status: Mapped[int | None] = mapped_column(Integer)  # None: no answer
    response_body: Mapped[str | None] = mapped_column(Text)
    outcome: Mapped[str] = mapped_column(String(32))  # ok, http_5xx, timeout, ...
    duration_ms: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class NotifyMessage(Base):
    """Every notify as received, with its verdict (kept even when processing fails)."""

    __tablename__ = "notify_messages"
    # Only TeemoPay sends a nonce: the index holds the rows that have one.
    __table_args__ = (
        Index(
            "ix_notify_messages_header_nonce",
            "header_nonce",
            postgresql_where=text("header_nonce IS NOT NULL"),
            sqlite_where=text("header_nonce IS NOT NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    provider: Mapped[str] = mapped_column(String(64))  # not searched alone: no index
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    headers: Mapped[dict[str, str]] = mapped_column(JSON)
    body: Mapped[str] = mapped_column(Text)
    trade_no: Mapped[str | None] = mapped_column(String(64), index=True)  # from a signed body
    # The trade number the body claims, read before (or without) any signature check, so a
    # forged or misrouted notify still shows on the checkout it names. Never trusted.
    claimed_trade_no: Mapped[str | None] = mapped_column(String(64), index=True)
    attempt_id: Mapped[int | None] = mapped_column(ForeignKey("payment_attempts.id"), index=True)
    verdict: Mapped[str] = mapped_column(String(30), default="received", index=True)
    detail: Mapped[str | None] = mapped_column(String(500))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)  # what we answered the provider
    # Freshness headers of providers that send them (TeemoPay's `timestamp` and `nonce`), as
    # received and unverified: the inbox flags a callback outside the window or a nonce seen
    # before; neither can move money (a replay applies as a duplicate).
    header_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime)
    header_nonce: Mapped[str | None] = mapped_column(String(64))


class IdempotencyKey(Base):
    """A shop's Idempotency-Key and the answer it got (kept 24 h)."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("store_id", "livemode", "key", name="uq_idempotency_keys_store_key"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    store_id: Mapped[str] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    key: Mapped[str] = mapped_column(String(255))
    # sha256 of method, path and the body's canonical JSON (key order and spacing ignored)
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


class WebhookEvent(Base):
    """The outbox: one row per event for a shop, written in the transaction that caused it."""

    __tablename__ = "webhook_events"
    # The worker's query: pending events due now, oldest first (services/webhooks.py).
    __table_args__ = (
        Index("ix_webhook_events_status_next_attempt_at", "status", "next_attempt_at"),
        # The events API: one store's events, newest first, by cursor.
        Index("ix_webhook_events_store_id_id", "store_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(
        String(40), unique=True, default=lambda: new_public_id("evt")
    )  # the webhook-id header
    store_id: Mapped[str] = mapped_column(String(64))
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), index=True)
    type: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(Integer)  # per checkout, ever increasing
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(20), default=WebhookStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the event last became due: its creation, or an operator's resend. The outbox's
    # "oldest pending" age counts from here, not from created_at (days old for a resend).
    pending_since: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookDelivery(Base):
    """Every try at delivering an event, with what the shop answered."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("webhook_events.id"), index=True)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status_code: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(String(200))
    duration_ms: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(String(1000))


class Operator(Base):
    """A person who may use the operator console (/admin); `flask create-operator`."""

    __tablename__ = "operators"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # werkzeug.security
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Wrong passwords in a row, whatever address they came from; past a few, each one
    # locks the name for a growing while (services/admin/operators.py authenticate).
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class OperatorSession(Base):
    """A console login, checked on every request: the cookie holds a random token whose
    SHA-256 is `token_sha256`; logout, a password reset, a deactivation or the idle and
    absolute limits set `revoked_at`, and a revoked token never works again, whatever
    cookie carries it."""

    __tablename__ = "operator_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    operator_id: Mapped[int] = mapped_column(ForeignKey("operators.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime)
    remote_addr: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_reason: Mapped[str | None] = mapped_column(String(40))

    operator: Mapped[Operator] = relationship()


class OperatorAction(Base):
    """The audit trail of the console: who did what to which checkout, and the outcome.

    Status changes an action causes are also in state_events (source "operator"); actions
    that change no status (a query, a resend, a review flag) are only here.
    """

    __tablename__ = "operator_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operator: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(40))
    checkout_id: Mapped[str | None] = mapped_column(String(40), index=True)
    target: Mapped[str | None] = mapped_column(String(64))  # trade number, event id
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Refund(Base):
    """Money back to a shopper through the provider's payout API (domain/refunds.py rules;
    written only by store/ledger.write_refund_plan under the checkout's row lock).

    The destination (bank code, account number, holder name) is one AccountCipher token;
    only `destination_masked` (bank and last four digits) is shown anywhere. `payout_no` is
    assigned once, when the refund is first claimed for sending, and never changes: a retry,
    a query or a late notify all use it, so one refund can never pay out twice.
    """

    __tablename__ = "refunds"
    __table_args__ = (
        UniqueConstraint("store_id", "idempotency_key", name="uq_refunds_store_idempotency_key"),
        # The worker's queries: approved refunds to send, unknown/processing ones to query.
        Index("ix_refunds_status_next_query_at", "status", "next_query_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True)  # re_...
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), index=True)
    store_id: Mapped[str] = mapped_column(String(64))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units
    currency: Mapped[str] = mapped_column(String(3))
    reason: Mapped[str] = mapped_column(String(500))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(20))  # RefundSource: api, console, shopper_page
    provider: Mapped[str] = mapped_column(String(64))  # the instance that pays it out
    destination_token: Mapped[str | None] = mapped_column(Text)  # AccountCipher token
    destination_masked: Mapped[str | None] = mapped_column(String(64))
    payout_no: Mapped[str | None] = mapped_column(String(32), unique=True)
    platform_payout_no: Mapped[str | None] = mapped_column(String(64))
    requested_by: Mapped[str] = mapped_column(String(64))  # "api:<store>" or an operator
    approved_by: Mapped[str | None] = mapped_column(String(64))
    idempotency_key: Mapped[str | None] = mapped_column(String(255))
    failure_code: Mapped[str | None] = mapped_column(String(64))
    failure_message: Mapped[str | None] = mapped_column(String(500))
    hold_reason: Mapped[str | None] = mapped_column(String(200))  # why an approved one waits
    sending_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # first claimed
    next_query_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    query_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @property
    def money(self) -> Money:
        return Money(self.amount, self.currency)


class ReceiptRequest(Base):
    """What the shopper (or the shop, through the API) asked for at checkout: a Korean cash
    receipt (domain/receipts.py) and/or Mexican invoice data (domain/cfdi.py). One per
    checkout; absent: nothing asked. The identity number is one AccountCipher token; only
    its last four digits are shown anywhere."""

    __tablename__ = "receipt_requests"

    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), primary_key=True)
    cash_receipt_kind: Mapped[str | None] = mapped_column(String(20))  # IdentityKind
    identity_token: Mapped[str | None] = mapped_column(Text)  # AccountCipher token
    identity_masked: Mapped[str | None] = mapped_column(String(32))
    # Validated datos de facturación (cfdi.InvoiceData as JSON) for the shop's own PAC.
    invoice_data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CashReceipt(Base):
    """One Korean cash receipt at Popbill: a checkout's receipt (kind "issue") or the
    cancel receipt of one of its refunds (kind "cancel").

    `mgt_key` is derived from our ids (receipts.issue_mgt_key / cancel_mgt_key) and fixed
    when the row is written, before any call: a retry or a run after a crash sends the same
    key, so Popbill can never hold two receipts for one decision. The state moves forward
    only (receipts.advance); Popbill's confirmation number and trade date are what a
    cancel references.
    """

    __tablename__ = "cash_receipts"
    __table_args__ = (
        # The worker's queries: receipts to issue, retry or follow to the NTS filing.
        Index("ix_cash_receipts_state_next_try_at", "state", "next_try_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    checkout_id: Mapped[str] = mapped_column(ForeignKey("checkouts.id"), index=True)
    refund_id: Mapped[int | None] = mapped_column(ForeignKey("refunds.id"), unique=True)
    store_id: Mapped[str] = mapped_column(String(64))
    livemode: Mapped[bool] = mapped_column(Boolean)  # the issuer's mode follows the checkout's
    kind: Mapped[str] = mapped_column(String(10))  # "issue" | "cancel"
    mgt_key: Mapped[str] = mapped_column(String(24), unique=True)
    usage: Mapped[str] = mapped_column(String(16))  # TradeUsage: 소득공제용 / 지출증빙용
    identity_token: Mapped[str | None] = mapped_column(Text)  # AccountCipher; issue only
    identity_masked: Mapped[str] = mapped_column(String(32))
    self_issued: Mapped[bool] = mapped_column(Boolean, default=False)
    taxable: Mapped[bool] = mapped_column(Boolean, default=True)
    partial: Mapped[bool] = mapped_column(Boolean, default=False)  # a partial cancel
    total: Mapped[int] = mapped_column(BigInteger)  # KRW
    supply_cost: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    service_fee: Mapped[int] = mapped_column(BigInteger, default=0)
    state: Mapped[str] = mapped_column(String(20))  # ReceiptState
    state_code: Mapped[int | None] = mapped_column(Integer)  # Popbill's 300/304/305
    confirm_num: Mapped[str | None] = mapped_column(String(24))
    trade_date: Mapped[str | None] = mapped_column(String(8))  # yyyyMMdd
    org_confirm_num: Mapped[str | None] = mapped_column(String(24))  # cancel: the original's
    org_trade_date: Mapped[str | None] = mapped_column(String(8))
    nts_result_code: Mapped[str | None] = mapped_column(String(16))
    tries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error_code: Mapped[str | None] = mapped_column(String(64))
    last_error_message: Mapped[str | None] = mapped_column(String(500))
    next_try_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    issued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
