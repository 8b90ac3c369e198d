"""Creating and reading checkouts (the shop's side)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload, selectinload

from checkout.config import StoreConfig
from checkout.domain.account_crypto import AccountCipher
from checkout.domain.errors import LedgerRefusal
from checkout.domain.ledger import cancel, checkout_deadline_passed
from checkout.domain.locales import SUPPORTED_LOCALES
from checkout.domain.money import CURRENCY_EXPONENT, Money
from checkout.domain.states import CheckoutStatus, EventSource
from checkout.services.catalog import Catalog
from checkout.services.errors import Conflict, InvalidRequest, NotFound
from checkout.services.receipts import ReceiptAsk, fill_receipt_request, parse_receipt_request
from checkout.store.ledger import load_state, write_plan
from checkout.store.models import (
    Checkout,
    PaymentAttempt,
    ReceiptRequest,
    Store,
    new_public_id,
    utcnow,
)
from checkout.urls import UrlRefused, parse_web_url

MAX_AMOUNT = 10**12  # a sanity bound far above any provider's limit


@dataclass(frozen=True)
class NewCheckout:
    order_id: str
    amount: Money
    return_url: str
    description: str | None
    methods: list[str] | None
    locale: str | None
    cancel_url: str | None = None
    prefill: dict[str, str] | None = None
    expires_at: datetime | None = None  # None: now + the configured lifetime
    receipt_ask: ReceiptAsk | None = None  # cash receipt / invoice data asked in the body

    def same_order_as(self, checkout: Checkout) -> bool:
        """True when `checkout` was created from an equal request (idempotent replay)."""
        return (
            checkout.amount == self.amount.amount
            and checkout.currency == self.amount.currency
            and checkout.return_url == self.return_url
        )


PREFILL_FIELDS = {"first_name": 64, "last_name": 64, "email": 320, "mobile": 20}
MIN_LIFETIME = timedelta(minutes=5)
MAX_LIFETIME = timedelta(days=7)


def parse_new_checkout(data: Any, store: StoreConfig, catalog: Catalog) -> NewCheckout:
    """Validate the API's JSON body; raises InvalidRequest naming the field."""
    if not isinstance(data, Mapping):
        raise InvalidRequest("invalid_body", "The body must be a JSON object.")
    order_id = data.get("order_id")
    if not isinstance(order_id, str) or not order_id.strip() or len(order_id) > 64:
        raise InvalidRequest(
            "invalid_order_id", "order_id must be a string of 1 to 64 characters.", field="order_id"
        )
    currency = data.get("currency")
    if not isinstance(currency, str) or currency not in CURRENCY_EXPONENT:
        raise InvalidRequest(
            "invalid_currency",
            f"currency must be one of {', '.join(CURRENCY_EXPONENT)}.",
            field="currency",
        )
    amount = data.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, int) or not 0 < amount <= MAX_AMOUNT:
        raise InvalidRequest(
            "invalid_amount",
            "amount must be a positive integer in the currency's minor unit "
            "(won for KRW, centavos for MXN).",
            field="amount",
        )
    return_url = shop_url(data.get("return_url"), "return_url", store)
    description = data.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 500):
        raise InvalidRequest(
            "invalid_description",
            "description must be a string of at most 500 characters.",
            field="description",
        )
    locale = data.get("locale")
    if locale is not None and (not isinstance(locale, str) or locale not in SUPPORTED_LOCALES):
        raise InvalidRequest(
            "invalid_locale",
            f"locale must be one of {', '.join(SUPPORTED_LOCALES)}.",
            field="locale",
        )
    methods = data.get("methods")
    if methods is not None:
        if (
            not isinstance(methods, list)
            or not methods
            or not all(isinstance(m, str) for m in methods)
        ):
            raise InvalidRequest(
                "invalid_methods",
                "methods must be a non-empty list of method codes.",
                field="methods",
            )
        unknown = [m for m in methods if m not in catalog.methods]
        if unknown:
            raise InvalidRequest(
                "unknown_method", f"Unknown method(s): {', '.join(unknown)}.", field="methods"
            )
    money = Money(amount, currency)
    if not catalog.methods_for(money, methods):
        raise InvalidRequest(
            "no_method_available",
            "No configured payment method accepts this currency and amount"
            + (" among the methods given." if methods else "."),
            field="methods" if methods else "currency",
        )
    cancel_url = data.get("cancel_url")
    if cancel_url is not None:
        cancel_url = shop_url(cancel_url, "cancel_url", store)
    return NewCheckout(
        order_id.strip(),
        money,
        return_url,
        description,
        methods,
        locale,
        cancel_url=cancel_url,
        prefill=_parse_prefill(data.get("prefill")),
        expires_at=_parse_expires_at(data.get("expires_at")),
        receipt_ask=parse_receipt_request(data, money.currency),
    )


def shop_url(value: Any, name: str, store: StoreConfig) -> str:
    """A URL of the shop's, as a browser reads it (checkout/urls.py), re-serialised, on one
    of the store's origins; InvalidRequest naming `name` otherwise (never a 500)."""
    if value is None:
        raise InvalidRequest(f"invalid_{name}", f"{name} is required.", field=name)
    try:
        url = parse_web_url(value)
    except UrlRefused as refused:
        raise InvalidRequest(f"invalid_{name}", f"{name} {refused.reason}.", field=name) from None
    if url.origin not in store.allowed_origins:
        raise InvalidRequest(
            f"{name}_not_allowed",
            f"{name} must be on one of the store's configured origins (it is on {url.origin}).",
            field=name,
        )
    return url.href


def _parse_prefill(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not set(value) <= set(PREFILL_FIELDS):
        raise InvalidRequest(
            "invalid_prefill",
            f"prefill must be an object with only {', '.join(PREFILL_FIELDS)}.",
            field="prefill",
        )
    for key, text in value.items():
        if not isinstance(text, str) or len(text) > PREFILL_FIELDS[key]:
            raise InvalidRequest(
                "invalid_prefill",
                f"prefill.{key} must be a string of at most {PREFILL_FIELDS[key]} characters.",
                field=f"prefill.{key}",
            )
    return {k: v.strip() for k, v in value.items() if v.strip()} or None


def _parse_expires_at(value: Any) -> datetime | None:
    """ISO 8601 with a zone, or Unix seconds; between 5 minutes and 7 days ahead."""
    if value is None:
        return None
    when: datetime | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        when = datetime.fromtimestamp(value, UTC) if 0 < value < 2**34 else None
    elif isinstance(value, str):
        try:
            when = datetime.fromisoformat(value)
        except ValueError:
            when = None
        if when is not None and when.tzinfo is None:
            when = None
    now = utcnow()
    if when is None or not now + MIN_LIFETIME <= when <= now + MAX_LIFETIME:
        raise InvalidRequest(
            "invalid_expires_at",
            "expires_at must be an ISO 8601 time with a zone (or Unix seconds) "
            "between 5 minutes and 7 days from now.",
            field="expires_at",
        )
    return when.astimezone(UTC)


def create_checkout(
    session: Session,
    store: StoreConfig,
    new: NewCheckout,
    ttl: timedelta,
    livemode: bool = True,
    cipher: AccountCipher | None = None,
) -> tuple[Checkout, bool]:
    """Create a checkout, or return the one this order already has (idempotent).

    Returns (checkout, created). The same order_id with a different amount, currency
    or return URL is a Conflict: a shop must never see one order with two prices. What
    the body asked of receipts (`new.receipt_ask`, its identity sealed with `cipher`) is
    written in the same transaction: a new checkout never exists without it. A replayed
    order keeps what it had.
    """
    _ensure_store(session, store)
    existing = find_by_order_id(session, store.id, new.order_id, livemode)
    if existing is not None:
        return _existing_or_conflict(existing, new), False
    now = utcnow()
    checkout = Checkout(
        id=new_public_id("co"),
        store_id=store.id,
        order_id=new.order_id,
        livemode=livemode,
        amount=new.amount.amount,
        currency=new.amount.currency,
        amount_paid=0,
        description=new.description,
        return_url=new.return_url,
        cancel_url=new.cancel_url,
        prefill=new.prefill,
        locale=new.locale,
        methods=new.methods,
        status=CheckoutStatus.OPEN,
        expires_at=new.expires_at or now + ttl,
        created_at=now,
        event_seq=0,
    )
    receipt_request = None
    ask = new.receipt_ask
    if ask is not None and not ask.empty:
        if cipher is None:
            raise ValueError("a receipt request needs the account cipher to seal its identity")
        receipt_request = ReceiptRequest(checkout_id=checkout.id)
        fill_receipt_request(receipt_request, ask, cipher)
    session.add(checkout)
    try:
        if receipt_request is not None:
            # The checkout's row first (the request references it; the two models have no
            # relationship to order their inserts), then the request, in one transaction.
            session.flush()
            session.add(receipt_request)
        session.commit()
    except IntegrityError:  # a concurrent request created it first
        session.rollback()
        existing = find_by_order_id(session, store.id, new.order_id, livemode)
        if existing is None:
            raise
        return _existing_or_conflict(existing, new), False
    return checkout, True


def _existing_or_conflict(existing: Checkout, new: NewCheckout) -> Checkout:
    if not new.same_order_as(existing):
        raise Conflict(
            "order_id_conflict",
            f"order_id {new.order_id!r} already has a checkout with a different amount, "
            "currency or return_url.",
            field="order_id",
        )
    return existing


def find_by_order_id(
    session: Session, store_id: str, order_id: str, livemode: bool = True
) -> Checkout | None:
    return session.scalars(
        select(Checkout)
        .where(
            Checkout.store_id == store_id,
            Checkout.livemode == livemode,
            Checkout.order_id == order_id,
        )
        .options(selectinload(Checkout.attempts))
    ).one_or_none()


SHOP_API = "shop API"  # who cancelled, in the timeline: "by shop API", "by operator alice"


def cancel_checkout(
    session: Session,
    checkout_id: str,
    store_id: str,
    *,
    by: str = SHOP_API,
    livemode: bool | None = None,
) -> Checkout:
    """The shop's cancel: an open checkout with nothing paid (a live attempt may be paid)."""
    try:
        checkout, _was = cancel_unpaid(
            session, checkout_id, store_id, by=by, livemode=livemode, source=EventSource.API
        )
    except Conflict:
        session.rollback()
        raise
    session.commit()
    return checkout


def cancel_unpaid(
    session: Session,
    checkout_id: str,
    store_id: str | None,
    *,
    by: str,
    allow_pending: bool = False,
    livemode: bool | None = None,
    source: EventSource = EventSource.OPERATOR,
) -> tuple[Checkout, str | None]:
    """Cancel a checkout with nothing paid, in the caller's transaction (the caller commits).

    Open only, or also pending with `allow_pending` (an operator: the live attempt is still
    reconciled, and money it brings later is kept and flagged on the cancelled checkout).
    Returns the checkout and the status it had, or None if it was already cancelled (nothing
    changed). Raises Conflict for anything else; the caller rolls back.
    """

    get_checkout(session, checkout_id, store_id=store_id, livemode=livemode)  # 404: not ours
    session.rollback()
    state = load_state(session, checkout_id)  # decided under the row lock
    if state is None:
        raise NotFound("checkout_not_found", "No such checkout.")
    try:
        plan = cancel(state, by, allow_pending=allow_pending, source=source)
    except LedgerRefusal as refusal:
        raise Conflict(refusal.code, refusal.message) from refusal
    write_plan(session, state, plan, utcnow())
    was = None if state.status == CheckoutStatus.CANCELLED else str(state.status)
    return _reloaded(session, checkout_id), was


def _reloaded(session: Session, checkout_id: str) -> Checkout:
    """The checkout as this transaction now sees it (the ledger writes with Core)."""
    return (
        session.scalars(
            select(Checkout)
            .where(Checkout.id == checkout_id)
            .options(joinedload(Checkout.attempts))
            .execution_options(populate_existing=True)
        )
        .unique()
        .one()
    )


def _ensure_store(session: Session, store: StoreConfig) -> None:
    row = session.get(Store, store.id)
    if row is None:
        session.add(Store(id=store.id, name=store.name))
        try:
            session.commit()
        except IntegrityError:  # created by a concurrent request
            session.rollback()
    elif row.name != store.name:
        row.name = store.name
        session.commit()


def get_checkout(
    session: Session,
    checkout_id: str,
    store_id: str | None = None,
    livemode: bool | None = None,
) -> Checkout:
    """The checkout; NotFound if it is another store's, or of the other mode (a test key
    never sees a live checkout, nor a live key a test one)."""
    # One round trip: the checkout and its attempts (a handful at most) in one joined query.
    checkout = (
        session.scalars(
            select(Checkout)
            .where(Checkout.id == checkout_id)
            .options(joinedload(Checkout.attempts))
        )
        .unique()
        .one_or_none()
    )
    if (
        checkout is None
        or (store_id is not None and checkout.store_id != store_id)
        or (livemode is not None and checkout.livemode != livemode)
    ):
        raise NotFound("checkout_not_found", "No such checkout.")
    return checkout


def expire_if_due(session: Session, checkout: Checkout, now: datetime | None = None) -> bool:
    """Move an open checkout past its expiry to EXPIRED; True if it changed. `checkout` is
    refreshed when it changed."""

    now = now or utcnow()
    if checkout.status != CheckoutStatus.OPEN or now < checkout.expires_at:
        return False
    session.rollback()
    state = load_state(session, checkout.id)  # decided under the row lock
    if state is None:
        session.rollback()
        return False
    plan = checkout_deadline_passed(state, now)
    write_plan(session, state, plan, now)
    session.commit()
    if plan.checkout is None:
        return False
    session.refresh(checkout)
    return True


def mask_email(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None if not email else "***"
    local, _, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def mask_mobile(mobile: str | None) -> str | None:
    if not mobile:
        return None
    return "*" * max(len(mobile) - 4, 0) + mobile[-4:]


def mask_name(name: str | None) -> str | None:
    if not name:
        return None
    return name[:1] + "*" * (len(name) - 1)


def attempt_summary(attempt: PaymentAttempt) -> dict[str, Any]:
    return {
        "trade_no": attempt.trade_no,
        "method": attempt.method,
        "provider": attempt.provider,
        "status": attempt.status,
        "amount": attempt.amount,
        "amount_paid": attempt.amount_paid,
        "currency": attempt.currency,
        "platform_trade_no": attempt.platform_trade_no,
        "failure_code": attempt.failure_code,
        "failure_message": attempt.failure_message,
        "review_reason": attempt.review_reason,
        "payer": {
            "name": mask_name(attempt.payer_name),
            "email": mask_email(attempt.payer_email),
            "mobile": mask_mobile(attempt.payer_mobile),
        },
        "payment_instructions": payment_instructions_json(attempt),
        "created_at": attempt.created_at.isoformat(),
        "updated_at": attempt.updated_at.isoformat() if attempt.updated_at else None,
    }


def payment_instructions_json(attempt: PaymentAttempt) -> dict[str, Any] | None:
    """What the shopper needs to pay a bank transfer (VA, CLABE), a bank card deposit or a
    cash reference, for the shop to pass on (KakaoTalk, WhatsApp, e-mail); None for a
    redirect. Only the receiving side and the amount due: nothing of the payer's."""
    data = attempt.instructions
    if not data:
        return None
    amount = data.get("amount") or {}
    beneficiary = data.get("account_holder")
    if beneficiary and _same_name(beneficiary, attempt.payer_name):
        # Some banks name a virtual account after its depositor: that is the payer's name,
        # which the shop sees only masked.
        beneficiary = mask_name(beneficiary)
    return {
        "kind": data.get("kind"),
        "bank_name": data.get("bank_name"),
        "bank_code": data.get("bank_code"),
        "account_number": data.get("account_number"),
        "beneficiary": beneficiary,
        "reference": data.get("reference"),
        "amount": amount.get("amount", attempt.amount),
        "currency": amount.get("currency", attempt.currency),
        "expires_at": data.get("expires_at"),
    }


def _same_name(a: str, b: str | None) -> bool:
    def squeeze(text: str) -> str:
        return "".join(text.split()).casefold()

    return bool(b) and squeeze(a) == squeeze(b or "")
