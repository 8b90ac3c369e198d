"""Receipts the law asks for (issue 24): the shopper's (or the shop's) request, kept at
checkout; Korean cash receipts issued and cancelled with the money; what the shop sees.

Every decision is a rule of domain/receipts.py (or domain/cfdi.py); this module loads,
locks, calls the issuer and writes. The worker's step (`run_receipts`, one step of the
`flask worker` round beside reconciliation and refunds):

1. Decide: a KRW checkout whose money is settled (`receipt_due`) and whose store has an
   issuer gets its one decision under the checkout's row lock: a `cash_receipts` row with
   its management key (derived from our ids) written and committed before any call, or a
   "none" entry on the timeline (why nothing is issued).
2. Issue: each pending issue row, claimed (tries + 1, a lease) and committed, then
   `issue_once` outside any transaction: it queries the key first, so a crash between the
   call and our write, a timeout or a retry can never make a second receipt.
3. Follow: issued receipts are queried until the NTS filed (304) or refused (305) them.
4. Cancel: each refund that was sent gets a cancel receipt for its amount; refused with
   -14001021 until the original is filed, it is retried later (next_try_at).
The shop hears `receipt.issued`, `receipt.cancelled` and `receipt.failed`; the timeline
shows every state, try and Popbill answer, identities masked to their last four digits.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session

from checkout.config import Settings, StoreConfig
from checkout.domain import cfdi
from checkout.domain import receipts as rules
from checkout.domain.account_crypto import AccountCipher
from checkout.domain.errors import CfdiError, ReceiptError
from checkout.domain.money import Money
from checkout.domain.refunds import RefundStatus
from checkout.domain.states import CheckoutStatus, EventSource
from checkout.receipts.errors import IssuerAuthError, IssuerError, IssuerTimeout, MgtKeyInUse
from checkout.receipts.popbill.client import PopbillIssuer
from checkout.receipts.popbill.mapping import ReceiptDetails, ReceiptInfo
from checkout.receipts.registry import issuer_for, receipt_policy
from checkout.services.catalog import Catalog, method_kind
from checkout.services.errors import Conflict, InvalidRequest, NotFound
from checkout.store.db import log_failure
from checkout.store.ledger import write_receipt_change
from checkout.store.models import (
    CashReceipt,
    Checkout,
    PaymentAttempt,
    ReceiptRequest,
    Refund,
    StateEvent,
    utcnow,
)

log = logging.getLogger(__name__)
SessionFactory = Callable[[], Session]
IssuerFor = Callable[[StoreConfig, bool], PopbillIssuer | None]

RECEIPT_ISSUED = "receipt.issued"
RECEIPT_CANCELLED = "receipt.cancelled"
RECEIPT_FAILED = "receipt.failed"
RECEIPT_EVENT_TYPES = (RECEIPT_ISSUED, RECEIPT_CANCELLED, RECEIPT_FAILED)
# Not a status change: the buyer's invoice data, given on the form, for the shop's own PAC.
INVOICE_DATA_PROVIDED = "checkout.invoice_data_provided"
TIMELINE_KIND = "receipt"
# Paid in cash (VA, bank transfer, direct bank deposit); an e-wallet gives its own proof.
CASH_KINDS = frozenset({"bank_transfer", "cash"})  # services/catalog.MethodKind values
CLAIM_LEASE = timedelta(minutes=2)  # a claimed row is not claimed again while its call runs
FOLLOW_DELAY = timedelta(hours=6)  # between queries of an issued receipt until filed
MAX_DETAIL = 500
MAX_CHECKOUT_LIFETIME = timedelta(days=8)  # services/checkouts.MAX_LIFETIME and a day of grace


# ---------------------------------------------------------------- the request
@dataclass(frozen=True)
class ReceiptAsk:
    """What was asked for at checkout: a cash receipt choice (KRW) and/or invoice data
    (MXN). Both None: nothing asked."""

    choice: rules.ReceiptChoice | None = None
    invoice: cfdi.InvoiceData | None = None

    @property
    def empty(self) -> bool:
        return self.choice is None and self.invoice is None


CASH_RECEIPT_FIELD = "cash_receipt"
INVOICE_FIELD = "invoice_data"
INVOICE_KEYS = ("rfc", "name", "regimen_fiscal", "uso_cfdi", "postal_code", "email")


def parse_receipt_request(data: Mapping[str, Any], currency: str) -> ReceiptAsk:
    """The create-checkout body's `cash_receipt` (KRW) and `invoice_data` (MXN) objects,
    validated; InvalidRequest names the field."""
    choice = None
    invoice = None
    raw_choice = data.get(CASH_RECEIPT_FIELD)
    if raw_choice is not None:
        if currency != rules.KRW:
            raise InvalidRequest(
                "cash_receipt_not_krw",
                "cash_receipt is for KRW checkouts only.",
                field=CASH_RECEIPT_FIELD,
            )
        if not isinstance(raw_choice, Mapping):
            raise InvalidRequest(
                "invalid_cash_receipt",
                'cash_receipt must be an object: {"type": ..., "identity": ...}.',
                field=CASH_RECEIPT_FIELD,
            )
        kind, identity = raw_choice.get("type"), raw_choice.get("identity")
        if not isinstance(kind, str) or (identity is not None and not isinstance(identity, str)):
            raise InvalidRequest(
                "invalid_receipt_type",
                "cash_receipt.type is income_deduction, expense_proof or none; "
                "cash_receipt.identity a string.",
                field=f"{CASH_RECEIPT_FIELD}.type",
            )
        try:
            choice = rules.parse_choice(kind, identity)
        except ReceiptError as exc:
            where = "type" if exc.code == "invalid_receipt_type" else "identity"
            raise InvalidRequest(
                exc.code, exc.message, field=f"{CASH_RECEIPT_FIELD}.{where}"
            ) from None
    raw_invoice = data.get(INVOICE_FIELD)
    if raw_invoice is not None:
        if currency != "MXN":
            raise InvalidRequest(
                "invoice_data_not_mxn",
                "invoice_data is for MXN checkouts only.",
                field=INVOICE_FIELD,
            )
        if not isinstance(raw_invoice, Mapping) or not all(
            isinstance(raw_invoice.get(k, ""), str) for k in INVOICE_KEYS
        ):
            raise InvalidRequest(
                "invalid_invoice_data",
                f"invoice_data must be an object of strings: {', '.join(INVOICE_KEYS)}.",
                field=INVOICE_FIELD,
            )
        invoice = parse_invoice(
            {k: str(raw_invoice.get(k) or "") for k in INVOICE_KEYS}, field_prefix=INVOICE_FIELD
        )
    return ReceiptAsk(choice, invoice)


def parse_invoice(values: Mapping[str, str], *, field_prefix: str = "") -> cfdi.InvoiceData:
    """Invoice data from the form or the API (keys INVOICE_KEYS); InvalidRequest names the
    field that is wrong."""
    try:
        return cfdi.parse_invoice_data(
            rfc=values.get("rfc", ""),
            name=values.get("name", ""),
            regimen=values.get("regimen_fiscal", ""),
            uso=values.get("uso_cfdi", ""),
            postal_code=values.get("postal_code", ""),
            email=values.get("email") or None,
        )
    except CfdiError as exc:
        name = INVOICE_FIELD_OF_CODE.get(exc.code, "rfc")
        where = f"{field_prefix}.{name}" if field_prefix else name
        raise InvalidRequest(exc.code, exc.message, field=where) from None


# Which field a CfdiError code is about (for the API's `field` and the form's message).
INVOICE_FIELD_OF_CODE = {
    "invalid_name": "name",
    "invalid_regimen": "regimen_fiscal",
    "regimen_not_for_persona": "regimen_fiscal",
    "invalid_uso": "uso_cfdi",
    "uso_not_for_regimen": "uso_cfdi",
    "generic_rfc": "uso_cfdi",
    "invalid_postal_code": "postal_code",
}


def save_receipt_request(
    session: Session,
    checkout_id: str,
    ask: ReceiptAsk,
    cipher: AccountCipher,
    *,
    tell_shop: bool = False,
) -> None:
    """Keep what was asked (one row per checkout; a later answer replaces an earlier one
    while nothing is decided). The identity is sealed; only its masked copy is readable.
    With `tell_shop` (the shopper gave invoice data on the form), the shop hears
    `checkout.invoice_data_provided` with the data. Commits."""
    if ask.empty:
        return
    checkout = _lock(session, checkout_id)
    row = session.get(ReceiptRequest, checkout_id)
    if row is None:
        row = ReceiptRequest(checkout_id=checkout_id)
        session.add(row)
    fill_receipt_request(row, ask, cipher)
    if ask.invoice is not None and tell_shop:
        data = {INVOICE_FIELD: row.invoice_data}
        write_receipt_change(session, checkout, [], [(INVOICE_DATA_PROVIDED, data)], utcnow())
    session.commit()


def fill_receipt_request(row: ReceiptRequest, ask: ReceiptAsk, cipher: AccountCipher) -> None:
    """Write what `ask` holds into the checkout's request row (the identity sealed, only
    its masked copy readable). The caller adds the row and commits: a new checkout's
    request is written in the checkout's own transaction (services/checkouts.py)."""
    if ask.choice is not None:
        row.cash_receipt_kind = str(ask.choice.kind)
        identity = ask.choice.identity
        row.identity_token = cipher.encrypt(identity) if identity else None
        row.identity_masked = rules.mask_identity(identity) if identity else None
    if ask.invoice is not None:
        row.invoice_data = invoice_data_json(ask.invoice)


def invoice_data_json(invoice: cfdi.InvoiceData) -> dict[str, Any]:
    return {
        "rfc": invoice.rfc,
        "persona": str(invoice.persona),
        "name": invoice.name,
        "regimen_fiscal": invoice.regimen,
        "uso_cfdi": invoice.uso,
        "postal_code": invoice.postal_code,
        "email": invoice.email,
    }


# ---------------------------------------------------------------- what the shop sees
KIND_OF_USAGE = {str(usage): str(kind) for kind, usage in rules.USAGE_OF_KIND.items()}


def _cancel_json(row: CashReceipt, refund_ids: Mapping[int, str]) -> dict[str, Any]:
    return {
        "refund_id": refund_ids.get(row.refund_id or 0),
        "amount": row.total,
        "partial": row.partial,
        "state": row.state,
        "confirmation_number": row.confirm_num,
        "trade_date": row.trade_date,
    }


def receipt_json(session: Session, checkout: Checkout) -> dict[str, Any] | None:
    """The checkout's cash receipt as the API, webhooks and pages show it: the request
    while nothing is decided, then the receipt (masked identity) with its cancels."""
    rows = session.scalars(
        select(CashReceipt).where(CashReceipt.checkout_id == checkout.id).order_by(CashReceipt.id)
    ).all()
    original = next((r for r in rows if r.kind == rules.ReceiptKind.ISSUE), None)
    if original is None:
        asked = session.get(ReceiptRequest, checkout.id)
        if asked is None or asked.cash_receipt_kind is None:
            return None
        return {
            "type": asked.cash_receipt_kind,
            "identity": asked.identity_masked,
            "state": "requested",
            "self_issued": False,
            "amount": None,
            "confirmation_number": None,
            "trade_date": None,
            "cancels": [],
        }
    refund_ids = dict(
        session.execute(
            select(Refund.id, Refund.public_id).where(Refund.checkout_id == checkout.id)
        ).all()
    )
    return {
        "type": KIND_OF_USAGE.get(original.usage, original.usage),
        "identity": original.identity_masked,
        "state": original.state,
        "self_issued": original.self_issued,
        "amount": original.total,
        "confirmation_number": original.confirm_num,
        "trade_date": original.trade_date,
        "cancels": [_cancel_json(r, refund_ids) for r in rows if r.kind == "cancel"],
    }


def receipt_fields(session: Session, checkout: Checkout) -> dict[str, Any]:
    """The checkout JSON's `cash_receipt` and `invoice_data` (null when nothing asked)."""
    asked = session.get(ReceiptRequest, checkout.id)
    return {
        CASH_RECEIPT_FIELD: receipt_json(session, checkout),
        INVOICE_FIELD: asked.invoice_data if asked is not None else None,
    }


# ---------------------------------------------------------------- the worker's step
@dataclass
class ReceiptReport:
    decided: int = 0
    issued: int = 0
    cancelled: int = 0
    retrying: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def default_issuer_for(settings: Settings) -> IssuerFor:
    return lambda store, livemode: issuer_for(
        store, livemode=livemode, sandbox_url=settings.sandbox_url
    )


def run_receipts(
    session_factory: SessionFactory,
    settings: Settings,
    catalog: Catalog,
    *,
    now: datetime | None = None,
    batch: int = 20,
    issuers: IssuerFor | None = None,
    after_call: Callable[[str], None] | None = None,
) -> ReceiptReport:
    """One round of the receipts step (see the module's docstring). `after_call(mgt_key)`
    runs after a successful issuer call, before our write (tests inject a crash there)."""
    report = ReceiptReport()
    issuers = issuers or default_issuer_for(settings)
    stores = {sid: s for sid, s in settings.stores.items() if s.cash_receipts is not None}
    if not stores:
        return report  # no store issues receipts
    session = session_factory()
    try:
        since = (now or utcnow()) - rules.ISSUE_WINDOW
        for checkout_id in _due_checkouts(session, list(stores), since, batch):
            _guard(
                report,
                checkout_id,
                session,
                lambda c=checkout_id: _decide(session, settings, catalog, stores, c, report),
            )
        cancels_since = (now or utcnow()) - rules.CANCEL_WINDOW
        for checkout_id, refund_id in _sent_refunds(session, list(stores), cancels_since, batch):
            _guard(
                report,
                checkout_id,
                session,
                lambda c=checkout_id, r=refund_id: _decide_cancel(session, stores, c, r, report),
            )
        moment = now or utcnow()  # after the decisions: their rows are due at once
        for receipt_id in _rows_due(session, moment, batch):
            _guard(
                report,
                str(receipt_id),
                session,
                lambda r=receipt_id: _work_on(
                    session, settings, stores, issuers, r, moment, report, after_call
                ),
            )
    finally:
        session.close()
    return report


def _guard(report: ReceiptReport, what: str, session: Session, step: Callable[[], None]) -> None:
    try:
        step()
    except Exception as exc:  # one receipt's trouble never stops the round
        session.rollback()
        log_failure(log, exc, "receipt step failed for %s", what)
        report.errors.append(f"{what}: {type(exc).__name__}")


def _due_checkouts(
    session: Session, store_ids: list[str], since: datetime, batch: int
) -> list[str]:
    """KRW checkouts with money received whose receipt is not decided yet, settled within
    the issue window (a store turning receipts on does not issue for its old sales; the
    console's "issue now" still can)."""
    # Correlated NOT EXISTS on indexed columns (state_events.checkout_id,
    # cash_receipts.checkout_id), and created_at (indexed) bounding the scan: a checkout
    # settles within its lifetime (at most 7 days) after it was created.
    decided = exists().where(
        StateEvent.checkout_id == Checkout.id, StateEvent.kind == TIMELINE_KIND
    )
    has_row = exists().where(
        CashReceipt.checkout_id == Checkout.id, CashReceipt.kind == rules.ReceiptKind.ISSUE
    )
    found = session.scalars(
        select(Checkout.id)
        .where(
            Checkout.created_at >= since - MAX_CHECKOUT_LIFETIME,
            Checkout.store_id.in_(store_ids),
            Checkout.currency == rules.KRW,
            Checkout.amount_paid > 0,
            Checkout.updated_at >= since,
            Checkout.status.in_(
                [CheckoutStatus.PAID, CheckoutStatus.EXPIRED, CheckoutStatus.CANCELLED]
            ),
            ~decided,
            ~has_row,
        )
        .order_by(Checkout.updated_at)
        .limit(batch)
    ).all()
    session.rollback()
    return list(found)


def _sent_refunds(
    session: Session, store_ids: list[str], since: datetime, batch: int
) -> list[tuple[str, int]]:
    """Sent refunds of checkouts with an issued receipt and no cancel receipt yet."""
    with_cancel = exists().where(CashReceipt.refund_id == Refund.id)
    issued = exists().where(
        CashReceipt.checkout_id == Refund.checkout_id,
        CashReceipt.kind == rules.ReceiptKind.ISSUE,
        CashReceipt.confirm_num.is_not(None),
    )
    rows = session.execute(
        select(Refund.checkout_id, Refund.id)
        .where(
            Refund.store_id.in_(store_ids),
            Refund.status == RefundStatus.SENT,
            Refund.updated_at >= since,  # sent within the cancel window
            issued,
            ~with_cancel,
        )
        .order_by(Refund.id)
        .limit(batch)
    ).all()
    session.rollback()
    return [(c, r) for c, r in rows]


def _rows_due(session: Session, now: datetime, batch: int) -> list[int]:
    """Pending issues and cancels to try, issued receipts to follow to the NTS filing."""
    found = session.scalars(
        select(CashReceipt.id)
        .where(
            CashReceipt.state.in_([rules.ReceiptState.PENDING, rules.ReceiptState.ISSUED]),
            CashReceipt.next_try_at.is_not(None),
            CashReceipt.next_try_at <= now,
        )
        .order_by(CashReceipt.next_try_at)
        .limit(batch)
    ).all()
    session.rollback()
    return list(found)


def _lock(session: Session, checkout_id: str) -> Checkout:
    checkout = session.scalars(
        select(Checkout).where(Checkout.id == checkout_id).with_for_update()
    ).one()
    return checkout


def _paying_method(session: Session, checkout_id: str) -> str | None:
    return session.scalar(
        select(PaymentAttempt.method)
        .where(PaymentAttempt.checkout_id == checkout_id, PaymentAttempt.amount_paid > 0)
        .order_by(PaymentAttempt.id.desc())
        .limit(1)
    )


def _choice_of(session: Session, checkout_id: str, cipher: AccountCipher) -> rules.ReceiptChoice:
    asked = session.get(ReceiptRequest, checkout_id)
    if asked is None or asked.cash_receipt_kind is None:
        return rules.ReceiptChoice(rules.IdentityKind.NONE)
    identity = cipher.decrypt(asked.identity_token) if asked.identity_token else None
    return rules.ReceiptChoice(rules.IdentityKind(asked.cash_receipt_kind), identity)


def decide_receipt(
    session: Session,
    settings: Settings,
    catalog: Catalog,
    checkout_id: str,
) -> CashReceipt | None:
    """Decide a checkout's one receipt now (the worker's step 1, or "issue now"); returns
    its row, or None when none is owed (the reason is on the timeline). Commits."""
    checkout = _lock(session, checkout_id)
    store = settings.stores.get(checkout.store_id)
    if store is None or store.cash_receipts is None:
        session.rollback()
        raise Conflict("no_issuer", "This store has no cash-receipt issuer configured.")
    existing = _issue_row(session, checkout_id)
    if existing is not None:
        session.rollback()
        return existing
    more_possible = checkout.status not in (
        CheckoutStatus.PAID,
        CheckoutStatus.EXPIRED,
        CheckoutStatus.CANCELLED,
    )
    if checkout.currency != rules.KRW or not rules.receipt_due(
        checkout.status, amount_paid=checkout.amount_paid, more_money_possible=more_possible
    ):
        session.rollback()
        raise Conflict("receipt_not_due", "The checkout's money is not settled yet.")

    method = catalog.methods.get(_paying_method(session, checkout_id) or "")
    plan = rules.receipt_for_payment(
        checkout_id=checkout_id,
        choice=_choice_of(session, checkout_id, settings.account_cipher),
        received=Money(checkout.amount_paid, checkout.currency),
        cash_method=method is not None and method_kind(method) in CASH_KINDS,
        policy=receipt_policy(store.cash_receipts),
    )
    now = utcnow()
    if isinstance(plan, rules.NoReceipt):
        write_receipt_change(
            session, checkout, [("none", f"no cash receipt: {plan.reason}")], [], now
        )
        session.commit()
        return None
    row = CashReceipt(
        checkout_id=checkout_id,
        store_id=checkout.store_id,
        livemode=checkout.livemode,
        kind=str(rules.ReceiptKind.ISSUE),
        mgt_key=plan.mgt_key,
        usage=str(plan.usage),
        identity_token=None if plan.self_issued else settings.account_cipher.encrypt(plan.identity),
        identity_masked=plan.masked_identity,
        self_issued=plan.self_issued,
        taxable=plan.taxable,
        partial=False,
        total=plan.amounts.total,
        supply_cost=plan.amounts.supply_cost,
        tax=plan.amounts.tax,
        service_fee=plan.amounts.service_fee,
        state=str(rules.ReceiptState.PENDING),
        tries=0,
        next_try_at=now,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    detail = (
        f"cash receipt decided: {plan.usage} to {plan.masked_identity}, "
        f"KRW {plan.amounts.total} (key {plan.mgt_key})"
    )
    write_receipt_change(session, checkout, [("pending", detail)], [], now)
    session.commit()  # the key is on record before any call
    return row


def _decide(
    session: Session,
    settings: Settings,
    catalog: Catalog,
    stores: Mapping[str, StoreConfig],
    checkout_id: str,
    report: ReceiptReport,
) -> None:
    try:
        row = decide_receipt(session, settings, catalog, checkout_id)
    except Conflict:
        return
    if row is not None:
        report.decided += 1


def _issue_row(session: Session, checkout_id: str) -> CashReceipt | None:
    return session.scalars(
        select(CashReceipt).where(
            CashReceipt.checkout_id == checkout_id, CashReceipt.kind == rules.ReceiptKind.ISSUE
        )
    ).one_or_none()


def _decide_cancel(
    session: Session,
    stores: Mapping[str, StoreConfig],
    checkout_id: str,
    refund_id: int,
    report: ReceiptReport,
) -> None:
    checkout = _lock(session, checkout_id)
    original = _issue_row(session, checkout_id)
    refund = session.get(Refund, refund_id)
    already = session.scalar(select(CashReceipt.id).where(CashReceipt.refund_id == refund_id))
    if original is None or original.confirm_num is None or refund is None or already:
        session.rollback()
        return
    cancelled = session.scalar(
        select(func.coalesce(func.sum(CashReceipt.total), 0)).where(
            CashReceipt.checkout_id == checkout_id,
            CashReceipt.kind == rules.ReceiptKind.CANCEL,
            CashReceipt.state != rules.ReceiptState.REFUSED,
        )
    )
    now = utcnow()
    try:
        plan = rules.cancel_for_refund(
            checkout_id=checkout_id,
            refund_id=refund.public_id,
            original=rules.IssuedReceipt(
                original.mgt_key,
                original.confirm_num,
                original.trade_date or "",
                rules.ReceiptAmounts(
                    original.total, original.supply_cost, original.tax, original.service_fee
                ),
                int(cancelled or 0),
            ),
            refund=refund.money,
            taxable=original.taxable,
        )
    except ReceiptError as exc:
        # E.g. a refund of money beyond the receipt (an overpayment): nothing to cancel.
        write_receipt_change(
            session,
            checkout,
            [("none", f"no cancel receipt for refund {refund.public_id}: {exc.message}")],
            [],
            now,
        )
        # Mark it decided so it is not looked at again.
        session.add(_cancel_row(checkout, original, refund, None, now, refused=exc.code))
        session.commit()
        return
    session.add(_cancel_row(checkout, original, refund, plan, now))
    detail = (
        f"cancel receipt decided for refund {refund.public_id}: KRW {plan.amounts.total}"
        f" ({'partial' if plan.partial else 'full'}, key {plan.mgt_key})"
    )
    write_receipt_change(session, checkout, [("pending", detail)], [], now)
    session.commit()
    report.decided += 1


def _cancel_row(
    checkout: Checkout,
    original: CashReceipt,
    refund: Refund,
    plan: rules.CancelPlan | None,
    now: datetime,
    refused: str | None = None,
) -> CashReceipt:
    return CashReceipt(
        checkout_id=checkout.id,
        refund_id=refund.id,
        store_id=checkout.store_id,
        livemode=checkout.livemode,
        kind=str(rules.ReceiptKind.CANCEL),
        mgt_key=plan.mgt_key if plan else rules.cancel_mgt_key(checkout.id, refund.public_id),
        usage=original.usage,
        identity_masked=original.identity_masked,
        self_issued=original.self_issued,
        taxable=original.taxable,
        partial=plan.partial if plan else False,
        total=plan.amounts.total if plan else 0,  # 0: no cancel receipt (refused)
        supply_cost=plan.amounts.supply_cost if plan else 0,
        tax=plan.amounts.tax if plan else 0,
        service_fee=plan.amounts.service_fee if plan else 0,
        state=str(rules.ReceiptState.REFUSED if refused else rules.ReceiptState.PENDING),
        org_confirm_num=original.confirm_num,
        org_trade_date=original.trade_date,
        last_error_code=refused,
        tries=0,
        next_try_at=None if refused else now,
        created_at=now,
        updated_at=now,
    )


@dataclass(frozen=True)
class _Claimed:
    receipt_id: int
    checkout_id: str
    kind: str
    state: str
    mgt_key: str
    tries: int
    created_at: datetime


def _claim(session: Session, receipt_id: int, now: datetime) -> _Claimed | None:
    """Take a due row under the checkout's lock (tries + 1, a lease), committed before the
    call: a second worker leaves it alone while the call runs."""
    checkout_id = session.scalar(
        select(CashReceipt.checkout_id).where(CashReceipt.id == receipt_id)
    )
    if checkout_id is None:
        return None
    _lock(session, checkout_id)
    row = session.get(CashReceipt, receipt_id, populate_existing=True)
    assert row is not None
    if (
        row.next_try_at is None
        or row.next_try_at > now
        or row.state
        not in (
            rules.ReceiptState.PENDING,
            rules.ReceiptState.ISSUED,
        )
    ):
        session.rollback()
        return None
    if row.state == rules.ReceiptState.PENDING:
        row.tries = (row.tries or 0) + 1
    row.next_try_at = now + CLAIM_LEASE
    row.updated_at = now
    claimed = _Claimed(
        row.id, checkout_id, row.kind, row.state, row.mgt_key, row.tries, row.created_at
    )
    session.commit()
    return claimed


def _work_on(
    session: Session,
    settings: Settings,
    stores: Mapping[str, StoreConfig],
    issuers: IssuerFor,
    receipt_id: int,
    now: datetime,
    report: ReceiptReport,
    after_call: Callable[[str], None] | None,
) -> None:
    claimed = _claim(session, receipt_id, now)
    if claimed is None:
        return
    row = session.get(CashReceipt, receipt_id)
    checkout = session.get(Checkout, claimed.checkout_id)
    assert row is not None and checkout is not None
    store = stores.get(row.store_id)
    issuer = issuers(store, row.livemode) if store is not None else None
    if issuer is None:
        _failed(session, receipt_id, "no_issuer", "the store has no issuer any more", now, report)
        return
    details = ReceiptDetails(
        order_number=checkout.order_id[:40],
        item_name=(checkout.description or store.name if store else checkout.order_id)[:100],
        memo=f"checkout {checkout.id}",
    )
    issue_plan = _issue_plan(settings, row) if row.kind == rules.ReceiptKind.ISSUE else None
    cancel_plan = _cancel_plan(row) if row.kind == rules.ReceiptKind.CANCEL else None
    session.rollback()  # no transaction is held during the issuer's call
    try:
        if claimed.state == rules.ReceiptState.ISSUED:
            info = issuer.query(claimed.mgt_key)
        elif issue_plan is not None:
            info = issuer.issue_once(issue_plan, details)
        else:
            assert cancel_plan is not None
            info = _cancel_once(issuer, cancel_plan)
    except IssuerError as exc:
        _call_failed(session, claimed, exc, now, report)
        return
    if after_call is not None:
        after_call(claimed.mgt_key)
    _answered(session, claimed, info, utcnow(), report)


def _issue_plan(settings: Settings, row: CashReceipt) -> rules.IssuePlan:
    identity = (
        rules.SELF_ISSUED_NUMBER
        if row.self_issued
        else settings.account_cipher.decrypt(row.identity_token or "")
    )
    return rules.IssuePlan(
        row.mgt_key,
        rules.TradeUsage(row.usage),
        identity,
        rules.ReceiptAmounts(row.total, row.supply_cost, row.tax, row.service_fee),
        row.self_issued,
        row.taxable,
    )


def _cancel_plan(row: CashReceipt) -> rules.CancelPlan:
    return rules.CancelPlan(
        row.mgt_key,
        row.org_confirm_num or "",
        row.org_trade_date or "",
        partial=row.partial,
        amounts=rules.ReceiptAmounts(row.total, row.supply_cost, row.tax, row.service_fee),
    )


def _cancel_once(issuer: PopbillIssuer, plan: rules.CancelPlan) -> ReceiptInfo:
    """A cancel receipt unless one exists under its key (an earlier try got through)."""
    found = issuer.find(plan.mgt_key)
    if found is not None:
        return found
    with contextlib.suppress(MgtKeyInUse):  # a concurrent or earlier try issued it
        issuer.cancel(plan)
    return issuer.query(plan.mgt_key)


def _masked(text: str) -> str:
    """Popbill's messages may echo an identity: digits runs keep their last four."""
    return re.sub(r"\d{5,}", lambda m: rules.mask_identity(m.group(0)), text)[:300]


def _answered(
    session: Session, claimed: _Claimed, info: ReceiptInfo, now: datetime, report: ReceiptReport
) -> None:
    checkout = _lock(session, claimed.checkout_id)
    row = session.get(CashReceipt, claimed.receipt_id, populate_existing=True)
    assert row is not None
    before = rules.ReceiptState(row.state)
    after = rules.advance(before, info.state)
    row.state = str(after)
    row.state_code = info.state_code
    row.confirm_num = row.confirm_num or info.confirm_num
    row.trade_date = row.trade_date or info.trade_date
    row.nts_result_code = info.nts_result_code
    row.last_error_code = None
    row.last_error_message = None
    row.updated_at = now
    if before == rules.ReceiptState.PENDING:
        row.issued_at = now
    # A cancel receipt is done once issued; an original is followed until the NTS answers.
    following = row.kind == rules.ReceiptKind.ISSUE and after == rules.ReceiptState.ISSUED
    row.next_try_at = now + FOLLOW_DELAY if following else None
    events: list[tuple[str, dict[str, Any]]] = []
    if after != before:
        what = "cancel receipt" if row.kind == rules.ReceiptKind.CANCEL else "cash receipt"
        detail = (
            f"{what} {after} (Popbill {info.state_code}"
            f"{', NTS ' + info.nts_result_code if info.nts_result_code else ''}): "
            f"{row.identity_masked}, KRW {row.total}, confirmation {row.confirm_num}"
            f" (try {row.tries})"
        )
        if before == rules.ReceiptState.PENDING:
            kind = RECEIPT_CANCELLED if row.kind == rules.ReceiptKind.CANCEL else RECEIPT_ISSUED
            events.append((kind, {}))
            if row.kind == rules.ReceiptKind.CANCEL:
                report.cancelled += 1
            else:
                report.issued += 1
        if after == rules.ReceiptState.FILING_FAILED:
            events.append((RECEIPT_FAILED, {}))
            report.failed += 1
        session.flush()
        write_receipt_change(
            session, checkout, [(str(after), detail)], _with_receipt(session, checkout, events), now
        )
    session.commit()


def _with_receipt(
    session: Session, checkout: Checkout, events: list[tuple[str, dict[str, Any]]]
) -> list[tuple[str, dict[str, Any]]]:
    if not events:
        return []
    data = {CASH_RECEIPT_FIELD: receipt_json(session, checkout)}
    return [(kind, {**data, **extra}) for kind, extra in events]


def _call_failed(
    session: Session, claimed: _Claimed, exc: IssuerError, now: datetime, report: ReceiptReport
) -> None:
    said = _masked(f"{exc.code}: {exc.message}")
    if claimed.state == rules.ReceiptState.ISSUED:
        # Following an issued receipt: ask again later; nothing is lost meanwhile.
        _retry_at(session, claimed, now + FOLLOW_DELAY, exc, said, report, "query failed")
        return
    unknown = isinstance(exc, IssuerTimeout) or (not exc.not_sent and exc.http_status is None)
    # Credentials refused: the configuration is being fixed, not the receipt; try again.
    if exc.retryable or unknown or isinstance(exc, IssuerAuthError):
        kind = rules.ReceiptKind(claimed.kind)
        when = rules.next_try_at(kind, claimed.tries, claimed.created_at, now)
        if when is not None:
            _retry_at(session, claimed, when, exc, said, report, "will retry")
            return
    _failed(session, claimed.receipt_id, exc.code, said, now, report)


def _retry_at(
    session: Session,
    claimed: _Claimed,
    when: datetime,
    exc: IssuerError,
    said: str,
    report: ReceiptReport,
    note: str,
) -> None:
    checkout = _lock(session, claimed.checkout_id)
    row = session.get(CashReceipt, claimed.receipt_id, populate_existing=True)
    assert row is not None
    row.next_try_at = when
    row.last_error_code = exc.code[:64]
    row.last_error_message = said
    row.updated_at = utcnow()
    what = "cancel receipt" if row.kind == rules.ReceiptKind.CANCEL else "cash receipt"
    detail = f"{what} try {row.tries} failed, {note} at {when.isoformat()}: {said}"
    write_receipt_change(session, checkout, [(row.state, detail)], [], utcnow())
    session.commit()
    report.retrying += 1


def _failed(
    session: Session,
    receipt_id: int,
    code: str,
    said: str,
    now: datetime,
    report: ReceiptReport,
) -> None:
    row = session.get(CashReceipt, receipt_id)
    assert row is not None
    checkout = _lock(session, row.checkout_id)
    session.refresh(row)
    row.state = str(rules.ReceiptState.REFUSED)
    row.next_try_at = None
    row.last_error_code = code[:64]
    row.last_error_message = said[:MAX_DETAIL]
    row.updated_at = now
    session.flush()
    what = "cancel receipt" if row.kind == rules.ReceiptKind.CANCEL else "cash receipt"
    detail = f"{what} refused after {row.tries} tries: {said}"
    write_receipt_change(
        session,
        checkout,
        [(str(rules.ReceiptState.REFUSED), detail[:MAX_DETAIL])],
        _with_receipt(session, checkout, [(RECEIPT_FAILED, {})]),
        now,
    )
    session.commit()
    report.failed += 1


# ---------------------------------------------------------------- console actions
def issue_now(
    session: Session, settings: Settings, catalog: Catalog, checkout_id: str
) -> CashReceipt | None:
    """The console's "issue now": decide the receipt if it is not yet, and make its row due
    at once (the worker's next round, or this request's caller, issues it)."""
    row = decide_receipt(session, settings, catalog, checkout_id)
    if row is None:
        return None
    return retry(session, row.id, from_refused=False)


def retry(session: Session, receipt_id: int, *, from_refused: bool = True) -> CashReceipt:
    """The console's "retry": a refused (or waiting) issue or cancel is due again now."""
    row = session.get(CashReceipt, receipt_id)
    if row is None:
        raise NotFound("receipt_not_found", "No such receipt.")
    checkout = _lock(session, row.checkout_id)
    session.refresh(row)
    allowed = {rules.ReceiptState.PENDING} | (
        {rules.ReceiptState.REFUSED} if from_refused else set()
    )
    if row.state not in allowed or (row.state == "refused" and row.total <= 0):
        session.rollback()
        raise Conflict("receipt_not_retryable", f"A {row.state} receipt cannot be retried.")
    now = utcnow()
    was = row.state
    row.state = str(rules.ReceiptState.PENDING)
    row.next_try_at = now
    row.created_at = now if was == rules.ReceiptState.REFUSED else row.created_at
    row.updated_at = now
    write_receipt_change(
        session,
        checkout,
        [("pending", f"{row.kind} receipt due now (operator)")],
        [],
        now,
        source=EventSource.OPERATOR,
    )
    session.commit()
    return row


def issuer_status(store: StoreConfig | None) -> str | None:
    """For the console: None when the store issues receipts, else why not."""
    if store is None or store.cash_receipts is None:
        return "This store has no cash-receipt issuer: no receipt is issued."
    return None


def shopper_receipt(session: Session, checkout_id: str) -> dict[str, Any] | None:
    """The shopper's paid page: the issued receipt's type and masked number, or None."""
    row = session.scalars(
        select(CashReceipt).where(
            CashReceipt.checkout_id == checkout_id,
            CashReceipt.kind == rules.ReceiptKind.ISSUE,
            CashReceipt.state.in_([rules.ReceiptState.ISSUED, rules.ReceiptState.FILED]),
        )
    ).one_or_none()
    if row is None:
        return None
    return {
        "type": KIND_OF_USAGE.get(row.usage, row.usage),
        "identity": row.identity_masked,
        "self_issued": row.self_issued,
        "confirmation_number": row.confirm_num,
    }
