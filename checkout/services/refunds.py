"""Refunds: asking for one, approving it, and sending the money out through payouts.

Every decision is a pure rule in `domain/refunds.py`; every write goes through
`store/ledger.write_refund_plan` under the checkout's row lock. Sending (`send_refunds`,
a step of the worker's round beside reconciliation):

1. A refund left `sending` longer than a payout call can take (its worker died during or
   after the call) becomes `unknown`.
2. Each approved refund with a destination is claimed under the store's and the checkout's
   row locks: the store's daily cap is checked there, per mode and currency (what
   `ledger.load_cap_day` reads, decided by `domain/refunds.check_daily_cap`; over it: it
   stays approved with a `hold_reason`, retried next round), then `sending`, its payout
   number assigned once and committed before any call.
3. The balance inquiry: short -> `failed` (`insufficient_balance`, nothing sent, the amount
   refundable again). An inquiry that itself fails does not stop the send: the provider's
   own refusal is the backstop.
4. The payout create, outside any transaction. Accepted -> `processing`; refused ->
   `failed` with the provider's reason; a timeout, a duplicate-number refusal or any
   answer of unclear outcome -> `unknown`.
5. `unknown` and `processing` refunds are queried under the same payout number (never a new
   one) until final; not found once the settle window has passed -> `failed`.
Payout notifies (`/notify/<instance>/payout`) go through the same rule, in the one notify
pipeline (services/provider_notifies.py).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from checkout.config import Settings
from checkout.domain import refunds as rules
from checkout.domain.accounts import (
    validate_korean_account,
    validate_mexican_account,
)
from checkout.domain.errors import AccountError, RefundError
from checkout.domain.money import Money
from checkout.domain.refunds import (
    ApprovalPolicy,
    NewRefund,
    RefundPlan,
    RefundSource,
    RefundState,
    RefundStatus,
)
from checkout.domain.states import CheckoutStatus
from checkout.providers.errors import (
    OrderNotFound,
    ProviderError,
    ProviderTimeout,
)
from checkout.providers.payouts import (
    AccountType,
    BankAccount,
    DuplicatePayout,
    InvalidPayout,
    PayoutProvider,
    PayoutRefused,
    PayoutRequest,
    new_payout_no,
)
from checkout.providers.registry import SPECS, holder_name_max_of
from checkout.services.errors import Conflict, Forbidden, InvalidRequest, NotFound, ServiceError
from checkout.store.db import log_failure
from checkout.store.ledger import load_cap_day, load_refunds, write_refund_plan
from checkout.store.models import (
    Checkout,
    PaymentAttempt,
    Refund,
    Store,
    new_public_id,
    utcnow,
)

log = logging.getLogger(__name__)
SessionFactory = Callable[[], Session]
SETTLE_WINDOW = timedelta(minutes=10)  # a payout not found this long after sending never started
QUERY_DELAYS = (30, 60, 120, 300, 900, 1800, 3600)  # seconds between queries, then hourly
MAX_REASON = 500


# ---------------------------------------------------------------- reading
def refund_json(refund: Refund, livemode: bool) -> dict[str, Any]:
    """The refund as the shop sees it: the account masked, never the full number or name."""
    return {
        "id": refund.public_id,
        "object": "refund",
        "livemode": livemode,
        "checkout_id": refund.checkout_id,
        "status": refund.status,
        "amount": refund.amount,
        "currency": refund.currency,
        "reason": refund.reason,
        "source": refund.source,
        "destination": refund.destination_masked,
        "payout_no": refund.payout_no,
        "failure_code": refund.failure_code,
        "failure_message": refund.failure_message,
        "hold_reason": refund.hold_reason,
        "requested_by": refund.requested_by,
        "approved_by": refund.approved_by,
        "created_at": refund.created_at.isoformat(),
        "completed_at": refund.completed_at.isoformat() if refund.completed_at else None,
    }


def _checkout_of(
    session: Session, checkout_id: str, store_id: str | None, livemode: bool | None
) -> Checkout:
    """The checkout, if it is the store's and of the key's mode; else 404 as for an unknown
    id (another mode's checkout is never seen, nor refunded)."""
    checkout = session.get(Checkout, checkout_id)
    if (
        checkout is None
        or (store_id is not None and checkout.store_id != store_id)
        or (livemode is not None and (checkout.livemode is not False) != livemode)
    ):
        raise NotFound("checkout_not_found", "No such checkout.")
    return checkout


def list_refunds(
    session: Session,
    checkout_id: str,
    store_id: str | None = None,
    livemode: bool | None = None,
) -> list[Refund]:
    _checkout_of(session, checkout_id, store_id, livemode)
    return list(
        session.scalars(select(Refund).where(Refund.checkout_id == checkout_id).order_by(Refund.id))
    )


def get_refund(
    session: Session,
    public_id: str,
    store_id: str | None = None,
    livemode: bool | None = None,
) -> Refund:
    """The refund; with `store_id`/`livemode`, only that store's of that mode (the mode is
    its checkout's), else 404 as for an unknown id."""
    query = select(Refund).where(Refund.public_id == public_id)
    if livemode is not None:
        query = query.join(Checkout, Checkout.id == Refund.checkout_id).where(
            Checkout.livemode == livemode
        )
    refund = session.scalars(query).one_or_none()
    if refund is None or (store_id is not None and refund.store_id != store_id):
        raise NotFound("refund_not_found", "No such refund.")
    return refund


def policy_of(settings: Settings) -> ApprovalPolicy:
    return ApprovalPolicy(settings.refund_approval_thresholds)


# ---------------------------------------------------------------- asking
@dataclass(frozen=True)
class RefundRequest:
    amount: Money
    reason: str
    destination: BankAccount | None


# The API's name of a domain account error where the domain's says less ("bad_length").
API_ACCOUNT_CODES = {"bad_length": "account_number_length"}


def parse_destination(
    data: Any, currency: str, payouts: PayoutProvider | None, provider_type: str
) -> BankAccount:
    """A destination account as the bank needs it (domain/accounts.py); InvalidRequest
    naming the field otherwise."""
    if not isinstance(data, Mapping):
        raise InvalidRequest(
            "invalid_destination", "destination must be an object.", field="destination"
        )
    values = {k: data.get(k) for k in ("bank_code", "account_number", "holder_name")}
    if currency == "MXN" and values["bank_code"] is None:
        values["bank_code"] = ""  # a CLABE names its bank
    for key, value in values.items():
        if not isinstance(value, str) or len(value) > 200:
            raise InvalidRequest(
                "invalid_destination",
                f"destination.{key} must be text.",
                field=f"destination.{key}",
            )
    banks = None
    if payouts is not None:
        listed = payouts.banks()
        banks = [b.code for b in listed] if listed else None
    try:
        if currency == "MXN":
            clabe = validate_mexican_account(
                values["bank_code"],
                values["account_number"],
                values["holder_name"],
                banks=banks,
                holder_name_max=holder_name_max_of(provider_type),
            )
            return BankAccount(clabe.bank_code, clabe.clabe, clabe.holder_name, AccountType.CLABE)
        account = validate_korean_account(
            values["bank_code"],
            values["account_number"],
            values["holder_name"],
            banks=banks,
            holder_name_max=holder_name_max_of(provider_type),
        )
        return BankAccount(account.bank_code, account.account_number, account.holder_name)
    except AccountError as exc:
        raise InvalidRequest(
            f"invalid_{API_ACCOUNT_CODES.get(exc.code, exc.code)}",
            exc.message,
            field=f"destination.{exc.field}",
        ) from None


def _paying_instance(session: Session, checkout_id: str) -> str | None:
    """The provider instance that took the money (the latest attempt with money in)."""
    return session.scalars(
        select(PaymentAttempt.provider)
        .where(PaymentAttempt.checkout_id == checkout_id, PaymentAttempt.amount_paid > 0)
        .order_by(PaymentAttempt.id.desc())
        .limit(1)
    ).first()


def parse_refund_request(
    session: Session,
    settings: Settings,
    checkout: Checkout,
    data: Any,
    payouts: Mapping[str, PayoutProvider],
) -> tuple[RefundRequest, str]:
    if not isinstance(data, Mapping):
        raise InvalidRequest("invalid_json", "The body must be a JSON object.")
    amount = data.get("amount")
    if not isinstance(amount, int) or isinstance(amount, bool):
        raise InvalidRequest(
            "invalid_amount", "amount must be a whole number of minor units.", field="amount"
        )
    if amount <= 0 or amount > 10**15:
        raise InvalidRequest("invalid_amount", "amount must be more than zero.", field="amount")
    currency = data.get("currency", checkout.currency)
    if currency != checkout.currency:
        raise InvalidRequest(
            "currency_mismatch", f"The checkout is in {checkout.currency}.", field="currency"
        )
    reason = data.get("reason")
    if not isinstance(reason, str) or not reason.strip() or len(reason) > MAX_REASON:
        raise InvalidRequest(
            "invalid_reason", "reason must be 1 to 500 characters.", field="reason"
        )
    instance = _paying_instance(session, checkout.id)
    if instance is None or instance not in settings.providers:
        raise Conflict("nothing_paid", "Nothing was paid on this checkout.")
    config = settings.providers[instance]
    destination = None
    if data.get("destination") is not None:
        destination = parse_destination(
            data["destination"], checkout.currency, payouts.get(instance), config.type
        )
    return RefundRequest(Money(amount, checkout.currency), reason.strip(), destination), instance


def create_refund(
    session: Session,
    settings: Settings,
    store_id: str,
    checkout_id: str,
    data: Any,
    *,
    source: RefundSource,
    requested_by: str,
    payouts: Mapping[str, PayoutProvider],
    idempotency_key: str | None = None,
    audit: Callable[[str], None] | None = None,
    livemode: bool | None = None,
) -> tuple[Refund, bool]:
    """A new refund, decided under the checkout's row lock. With an idempotency key that
    made one already, that refund (False: not created now). `audit(public_id)` adds the
    operator's audit row to the same transaction. With `livemode` (an API key's mode), a
    checkout of the other mode is 404."""
    session.rollback()
    checkout = _checkout_of(session, checkout_id, store_id, livemode)
    if idempotency_key is not None:
        idempotency_key = refund_key(idempotency_key, checkout.livemode is not False)
        existing = _by_key(session, store_id, idempotency_key, checkout.livemode)
        if existing is not None:
            return existing, False
    wanted, instance = parse_refund_request(session, settings, checkout, data, payouts)
    loaded = load_refunds(session, checkout_id)
    assert loaded is not None
    money, refunds = loaded
    token = masked = None
    if wanted.destination is not None:
        token = settings.account_cipher.encrypt_json(
            {
                "bank_code": wanted.destination.bank_code,
                "account_number": wanted.destination.account_number,
                "holder_name": wanted.destination.holder_name,
                "account_type": str(wanted.destination.account_type),
            }
        )
        masked = wanted.destination.masked()
    new = NewRefund(
        public_id=new_public_id("re"),
        amount=wanted.amount,
        reason=wanted.reason,
        source=source,
        provider=instance,
        requested_by=requested_by[:64],
        destination_token=token,
        destination_masked=masked,
        idempotency_key=idempotency_key,
    )
    try:
        plan = rules.request_refund(money, refunds, new, policy_of(settings))
    except RefundError as exc:
        session.rollback()
        raise _service_error(exc) from None
    try:
        refund_id = _write(session, money, checkout, plan)
        if audit is not None:
            audit(new.public_id)
        session.commit()
    except IntegrityError:
        session.rollback()  # a twin with the same key won
        if idempotency_key is not None:
            existing = _by_key(session, store_id, idempotency_key, checkout.livemode)
            if existing is not None:
                return existing, False
            raise Conflict(  # the key made a refund in the other mode: never shown here
                "idempotency_key_reused",
                "This Idempotency-Key was used with a different request.",
            ) from None
        raise
    refund = session.get(Refund, refund_id)
    assert refund is not None
    return refund, True


def refund_key(idempotency_key: str, livemode: bool) -> str:
    """The key as a refund keeps it: refunds' keys are unique per store, so a test refund's
    is set apart (hashed: a key may be 255 characters) and never blocks a live one."""
    if livemode:
        return idempotency_key
    return "test:" + hashlib.sha256(idempotency_key.encode()).hexdigest()


def _by_key(session: Session, store_id: str, key: str, livemode: bool) -> Refund | None:
    """The refund this key made in this mode (keys are unique per store, whatever the mode)."""
    return session.scalars(
        select(Refund)
        .join(Checkout, Checkout.id == Refund.checkout_id)
        .where(
            Refund.store_id == store_id,
            Refund.idempotency_key == key,
            Checkout.livemode == livemode,
        )
    ).one_or_none()


def _service_error(error: RefundError) -> ServiceError:
    if error.code in ("amount_not_positive",):
        return InvalidRequest(error.code, error.message, field="amount")
    if error.code == "currency_mismatch":
        return InvalidRequest(error.code, error.message, field="currency")
    if error.code == "reason_required":
        return InvalidRequest(error.code, error.message, field="reason")
    if error.code in ("same_operator", "approver_required"):
        return Forbidden(error.code, error.message)
    return Conflict(error.code, error.message)


def _write(
    session: Session, money: rules.CheckoutMoney, checkout: Checkout, plan: RefundPlan
) -> int:
    refund_id = write_refund_plan(
        session, money, checkout.store_id, checkout.order_id, plan, utcnow()
    )
    assert refund_id is not None
    return refund_id


def _decide(
    session: Session,
    refund_public_id: str,
    decide: Callable[[rules.CheckoutMoney, RefundState], RefundPlan],
    audit: Callable[[str], None] | None = None,
) -> tuple[Refund, RefundPlan]:
    """Load under lock, decide, write, commit (a RefundError becomes a ServiceError);
    `audit(public_id)` joins the same transaction."""
    session.rollback()
    row = get_refund(session, refund_public_id)
    checkout = session.get(Checkout, row.checkout_id)
    assert checkout is not None
    loaded = load_refunds(session, row.checkout_id)
    assert loaded is not None
    money, refunds = loaded
    state = next(r for r in refunds if r.id == row.id)
    try:
        plan = decide(money, state)
    except RefundError as exc:
        session.rollback()
        raise _service_error(exc) from None
    if plan.changes_anything or plan.review_reason != money.review_reason:
        write_refund_plan(session, money, checkout.store_id, checkout.order_id, plan, utcnow())
    if audit is not None:
        audit(refund_public_id)
    session.commit()
    session.refresh(row)
    return row, plan


Audit = Callable[[str], None] | None


def approve(session: Session, refund_public_id: str, approver: str, audit: Audit = None) -> Refund:
    decide = lambda m, r: rules.approve_refund(m, r, approver)  # noqa: E731
    return _decide(session, refund_public_id, decide, audit)[0]


def reject(session: Session, refund_public_id: str, by: str, audit: Audit = None) -> Refund:
    decide = lambda m, r: rules.reject_refund(m, r, by)  # noqa: E731
    return _decide(session, refund_public_id, decide, audit)[0]


def cancel(session: Session, refund_public_id: str, by: str, audit: Audit = None) -> Refund:
    decide = lambda m, r: rules.cancel_refund(m, r, by)  # noqa: E731
    return _decide(session, refund_public_id, decide, audit)[0]


def give_destination(
    session: Session,
    settings: Settings,
    refund_public_id: str,
    data: Mapping[str, Any],
    by: str,
    *,
    payouts: Mapping[str, PayoutProvider],
) -> Refund:
    """The shopper's account for a refund that has none (validated as the bank needs it)."""
    row = get_refund(session, refund_public_id)
    config = settings.providers.get(row.provider)
    if config is None:
        raise Conflict("provider_gone", "The refund's provider is not configured.")
    account = parse_destination(data, row.currency, payouts.get(row.provider), config.type)
    token = settings.account_cipher.encrypt_json(
        {
            "bank_code": account.bank_code,
            "account_number": account.account_number,
            "holder_name": account.holder_name,
            "account_type": str(account.account_type),
        }
    )
    decide = lambda m, r: rules.give_destination(m, r, token, account.masked(), by)  # noqa: E731
    return _decide(session, refund_public_id, decide)[0]


def excess_of(session: Session, checkout: Checkout) -> Money:
    """What a "return the excess" refund pre-fills (domain/refunds.excess_to_return)."""
    return rules.excess_to_return(
        CheckoutStatus(checkout.status),
        checkout.money,
        checkout.paid_money,
        _listed(session, checkout.id),
    )


def refundable_of(session: Session, checkout: Checkout) -> Money:
    return rules.refundable(checkout.paid_money, _listed(session, checkout.id))


def _listed(session: Session, checkout_id: str) -> list[_Listed]:
    rows = session.scalars(select(Refund).where(Refund.checkout_id == checkout_id)).all()
    return [_Listed(RefundStatus(r.status), r.money) for r in rows]


@dataclass(frozen=True)
class _Listed:
    status: RefundStatus
    amount: Money


# ---------------------------------------------------------------- sending
@dataclass
class SendReport:
    claimed: int = 0
    held: int = 0
    sent_calls: int = 0
    failed: int = 0
    unknown: int = 0
    queried: int = 0
    settled: int = 0
    errors: list[str] = field(default_factory=list)


def query_delay(query_count: int) -> timedelta:
    return timedelta(seconds=QUERY_DELAYS[min(query_count, len(QUERY_DELAYS) - 1)])


def stale_sending_age(settings: Settings, instance: str) -> timedelta:
    """Longer than a payout call can take: a `sending` refund older than this was left by a
    worker that died during or after the call."""
    config = settings.providers.get(instance)
    if config is None:
        return timedelta(minutes=5)
    # Two calls may run after the claim: the balance inquiry and the payout create.
    return timedelta(seconds=2 * (config.connect_timeout + config.read_timeout) + 30)


def send_refunds(
    session_factory: SessionFactory,
    settings: Settings,
    *,
    now: datetime | None = None,
    batch: int = 20,
    settle_window: timedelta = SETTLE_WINDOW,
    payouts_for: Callable[[str], PayoutProvider],
) -> SendReport:
    """One round of the refunds step (see the module's docstring). `payouts_for` gives an
    instance's payout client: the app's, built once (services/catalog.py)."""
    report = SendReport()
    build = payouts_for
    session = session_factory()
    try:
        _unstick_sending(session, settings, now or utcnow(), batch)
        approved = session.scalars(
            select(Refund.public_id)
            .where(Refund.status == RefundStatus.APPROVED, Refund.destination_token.is_not(None))
            .order_by(Refund.id)
            .limit(batch)
        ).all()
        session.rollback()
        for public_id in approved:
            try:
                _send_one(session, settings, public_id, build, report)
            except Exception as exc:  # one refund's trouble never stops the round
                session.rollback()
                log_failure(log, exc, "refund send failed refund=%s", public_id)
                report.errors.append(f"{public_id}: {type(exc).__name__}")
        moment = now or utcnow()
        due = session.scalars(
            select(Refund.public_id)
            .where(
                Refund.status.in_([RefundStatus.UNKNOWN, RefundStatus.PROCESSING]),
                (Refund.next_query_at.is_(None)) | (Refund.next_query_at <= moment),
            )
            .order_by(Refund.next_query_at)
            .limit(batch)
        ).all()
        session.rollback()
        for public_id in due:
            try:
                _query_one(session, public_id, build, report, moment, settle_window)
            except Exception as exc:
                session.rollback()
                log_failure(log, exc, "refund query failed refund=%s", public_id)
                report.errors.append(f"{public_id}: {type(exc).__name__}")
    finally:
        session.close()
    return report


def _unstick_sending(session: Session, settings: Settings, now: datetime, batch: int) -> None:
    rows = session.execute(
        select(Refund.public_id, Refund.provider, Refund.sending_at)
        .where(Refund.status == RefundStatus.SENDING)
        .limit(batch)
    ).all()
    session.rollback()
    for public_id, instance, sending_at in rows:
        if sending_at is None or now - sending_at < stale_sending_age(settings, instance):
            continue
        _decide(session, public_id, lambda m, r: rules.stale_sending(m, r, now, now))


def _send_one(
    session: Session,
    settings: Settings,
    public_id: str,
    build: Callable[[str], PayoutProvider],
    report: SendReport,
) -> None:
    row = get_refund(session, public_id)
    store = settings.stores.get(row.store_id)
    now = utcnow()
    # The store's row lock serialises claims across its checkouts (the daily cap); the
    # checkout's (load_refunds) is every refund write's lock. Always in this order.
    session.execute(select(Store.id).where(Store.id == row.store_id).with_for_update())
    checkout = session.get(Checkout, row.checkout_id)
    assert checkout is not None
    loaded = load_refunds(session, row.checkout_id)
    assert loaded is not None
    money, refunds = loaded
    state = next(r for r in refunds if r.id == row.id)
    if state.status != RefundStatus.APPROVED:
        session.rollback()  # another worker claimed it
        return
    cap = store.refund_daily_cap.get(row.currency) if store is not None else None
    if cap is not None:
        assert store is not None
        day = rules.store_day_bounds(now, store.timezone)
        todays = load_cap_day(session, row.store_id, money.livemode, row.currency, day)
        try:
            rules.check_daily_cap(
                state.amount,
                money.livemode,
                todays,
                Money(cap, row.currency),
                now,
                store.timezone,
            )
        except RefundError as exc:
            _write(session, money, checkout, rules.hold(money, state, exc.message))
            session.commit()
            report.held += 1
            return
    plan = rules.claim_for_sending(money, state, new_payout_no(now), now)
    _write(session, money, checkout, plan)
    session.commit()  # the payout number is on record before any call
    report.claimed += 1
    session.refresh(row)
    request = _payout_request(session, settings, row)
    amount, instance = row.money, row.provider
    session.rollback()  # no transaction is held during the balance inquiry or the payout call
    payouts = build(instance)
    try:
        balance = payouts.balance()
    except ProviderError as exc:
        balance = None
        log.warning("refund balance inquiry failed refund=%s code=%s", public_id, exc.code)
    if (
        balance is not None
        and balance.available.currency == amount.currency
        and balance.available.amount < amount.amount
    ):
        message = f"insufficient balance: {balance.available} available, {amount} needed"
        _apply(session, public_id, lambda m, r: rules.balance_short(m, r, message, utcnow()))
        report.failed += 1
        return
    report.sent_calls += 1
    try:
        result = payouts.create_payout(request)
    except ProviderTimeout as exc:
        _outcome_unknown(session, public_id, f"payout call timed out: {exc.code}", report)
        return
    except DuplicatePayout as exc:
        _outcome_unknown(session, public_id, f"payout number already known: {exc.code}", report)
        return
    except (PayoutRefused, InvalidPayout) as exc:
        code = str(getattr(exc, "reason", exc.code))
        said = f"{exc.code}: {exc.message}"
        _apply(session, public_id, lambda m, r: rules.payout_refused(m, r, code, said, utcnow()))
        report.failed += 1
        return
    except ProviderError as exc:
        # Anything else may have reached the provider: ask, never guess.
        _outcome_unknown(session, public_id, f"payout call failed: {exc.code}", report)
        return
    when = utcnow()
    _apply(
        session,
        public_id,
        lambda m, r: rules.payout_reported(
            m,
            r,
            str(result.status),
            "create",
            when,
            platform_payout_no=result.platform_payout_no,
            failure_code=result.failure_code,
            failure_message=result.failure_message,
            next_query_at=when + query_delay(0),
        ),
    )


def _outcome_unknown(session: Session, public_id: str, detail: str, report: SendReport) -> None:
    now = utcnow()
    _apply(
        session, public_id, lambda m, r: rules.payout_timed_out(m, r, detail, now + query_delay(0))
    )
    report.unknown += 1


def _apply(
    session: Session,
    public_id: str,
    decide: Callable[[rules.CheckoutMoney, RefundState], RefundPlan],
) -> RefundPlan:
    return _decide(session, public_id, decide)[1]


def _payout_request(session: Session, settings: Settings, row: Refund) -> PayoutRequest:
    assert row.payout_no is not None and row.destination_token is not None
    sealed = settings.account_cipher.decrypt_json(row.destination_token)
    config = settings.providers.get(row.provider)
    spec = SPECS.get(config.type) if config is not None else None
    if spec is not None:  # the bank code as the provider names the bank
        sealed["bank_code"] = spec.payout_bank_code(row.currency, sealed["bank_code"])
    payer = session.execute(
        select(PaymentAttempt.payer_mobile, PaymentAttempt.payer_email)
        .where(PaymentAttempt.checkout_id == row.checkout_id, PaymentAttempt.amount_paid > 0)
        .order_by(PaymentAttempt.id.desc())
        .limit(1)
    ).first()
    return PayoutRequest(
        payout_no=row.payout_no,
        amount=row.money,
        destination=BankAccount(
            sealed["bank_code"],
            sealed["account_number"],
            sealed["holder_name"],
            AccountType(sealed.get("account_type", AccountType.BANK_ACCOUNT)),
        ),
        notify_url=f"{settings.public_base_url}/notify/{row.provider}/payout",
        mobile=payer.payer_mobile if payer else None,
        email=payer.payer_email if payer else None,
        remark=f"refund {row.public_id}"[:64],
    )


def _query_one(
    session: Session,
    public_id: str,
    build: Callable[[str], PayoutProvider],
    report: SendReport,
    now: datetime,
    settle_window: timedelta,
) -> None:
    row = get_refund(session, public_id)
    payout_no, instance, count = row.payout_no, row.provider, row.query_count
    session.rollback()
    if payout_no is None:
        return
    report.queried += 1
    later = now + query_delay(count + 1)
    try:
        update = build(instance).query_payout(payout_no)
    except OrderNotFound:
        plan = _apply(
            session,
            public_id,
            lambda m, r: rules.payout_not_found(m, r, now, settle_window, later),
        )
        report.settled += plan.status == RefundStatus.FAILED
        return
    except ProviderError as exc:
        error = exc.code
        _apply(session, public_id, lambda m, r: rules.reschedule_query(m, r, later, error))
        return
    plan = _apply(session, public_id, lambda m, r: _reported(m, r, update, "query", later))
    report.settled += plan.status in (RefundStatus.SENT, RefundStatus.FAILED)


def _reported(
    money: rules.CheckoutMoney,
    refund: RefundState,
    update: Any,
    source: str,
    later: datetime | None,
) -> RefundPlan:
    plan = rules.payout_reported(
        money,
        refund,
        str(update.status),
        source,
        utcnow(),
        platform_payout_no=update.platform_payout_no,
        failure_code=update.failure_code,
        failure_message=update.failure_message,
        next_query_at=later,
    )
    if (
        not plan.changes_anything
        and later is not None
        and plan.review_reason == money.review_reason
    ):
        return rules.reschedule_query(money, refund, later, "still processing")
    return plan


__all__ = [
    "Forbidden",
    "SendReport",
    "approve",
    "cancel",
    "create_refund",
    "get_refund",
    "list_refunds",
    "refund_json",
    "reject",
    "send_refunds",
]
