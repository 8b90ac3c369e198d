"""Starting a payment: one live attempt per checkout, the provider called outside any lock.

Every status change here is decided by domain/ledger.py and written by services/ledger.py."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.domain.ledger import (
    CheckoutState,
    CreateAnswer,
    LedgerRefusal,
    NewAttempt,
    Plan,
    abandon,
    checkout_deadline_passed,
    claim,
    create_answered,
    create_refused,
    create_unknown,
)
from checkout.domain.money import Money
from checkout.domain.states import CHECKOUT_FINAL, AttemptStatus, CheckoutStatus, EventSource
from checkout.models import Checkout, PaymentAttempt, utcnow
from checkout.providers.base import (
    CreateResult,
    Payer,
    PaymentInstructions,
    PaymentRequest,
    ProviderError,
    ProviderTimeout,
)
from checkout.providers.http import Exchange, capture_exchanges
from checkout.services.catalog import Catalog
from checkout.services.checkouts import get_checkout
from checkout.services.errors import CheckoutClosed, InvalidRequest
from checkout.services.exchanges import record_exchanges
from checkout.services.ip_limits import claim_paypro_ip
from checkout.services.ledger import load_state, write_plan

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartOutcome:
    attempt: PaymentAttempt
    resumed: bool  # an attempt was already live: nothing new was sent to a provider

    @property
    def redirect_url(self) -> str | None:
        return self.attempt.redirect_url if not self.attempt.instructions else None


class PaymentNotStarted(Exception):
    """The provider refused or failed; the checkout is open again."""

    def __init__(self, attempt: PaymentAttempt, error: ProviderError | None) -> None:
        super().__init__(error.message if error else attempt.failure_message or "failed")
        self.attempt = attempt
        self.error = error
        self.retryable = bool(error and error.retryable)


def new_trade_no(now: datetime | None = None) -> str:
    """32 characters (TeemoPay's limit): UTC time to the second plus 72 random bits."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%d%H%M%S") + secrets.token_hex(9)


def start_payment(
    session: Session,
    catalog: Catalog,
    checkout_id: str,
    method_code: str,
    payer: Payer,
    notify_url: str,
    return_url: str,
    *,
    waiting: Callable[[], AbstractContextManager[Any]] = nullcontext,
    loaded: Checkout | None = None,
) -> StartOutcome:
    """Claim the checkout for a new attempt, call the provider, record its answer.

    Two transactions around the provider call, never a lock held across it. `waiting` wraps
    the call (the web layer gives back its turn there: checkout/concurrency.py). `loaded`: the
    checkout as the caller read it in this request, for the methods it offers (they never
    change); its status is read again under the lock. Raises CheckoutClosed, InvalidRequest,
    IpLimitReached (nothing created) or PaymentNotStarted (the provider refused).
    """
    checkout = loaded if loaded is not None and loaded.id == checkout_id else None
    if checkout is None:
        checkout = get_checkout(session, checkout_id)
    offered = {m.code: m for m in catalog.methods_for(checkout.money, checkout.methods)}
    money, description = checkout.money, checkout.description
    session.rollback()  # end any read: the claim below begins the write transaction
    now = utcnow()
    state = load_state(session, checkout_id)
    if state is None:
        raise CheckoutClosed("checkout_not_found", "No such checkout.")
    if state.status == CheckoutStatus.OPEN and now >= state.expires_at:
        write_plan(session, state, checkout_deadline_passed(state, now), now)
        session.commit()
        raise CheckoutClosed("checkout_closed", "This checkout is expired.")
    if state.status in CHECKOUT_FINAL:
        session.rollback()
        raise CheckoutClosed("checkout_closed", f"This checkout is {state.status}.")
    live = state.live_attempts()
    if live:
        session.rollback()
        return StartOutcome(_attempt(session, live[-1].id), resumed=True)
    method = offered.get(method_code)
    if method is None:
        session.rollback()
        raise InvalidRequest("method_not_available", "This payment method is not available.")
    provider = catalog.provider_for(method)
    try:
        # PayPro's per-IP daily rule, counted and claimed in this one transaction.
        configs = {name: p.config for name, p in catalog.providers.items()}
        claim_paypro_ip(session, configs, provider.config, payer.ip_address)
        plan = claim(
            state,
            NewAttempt(
                trade_no=new_trade_no(),
                provider=method.provider,
                method=method.code,
                amount=state.amount,
                currency=state.currency,
                payer={
                    "payer_name": payer.full_name,
                    "payer_email": payer.email,
                    "payer_mobile": payer.mobile,
                    "payer_ip": payer.ip_address,
                },
                deadline_at=state.expires_at,
            ),
        )
    except LedgerRefusal as refusal:  # pending with nothing live: another request is at work
        session.rollback()
        raise CheckoutClosed(
            "checkout_busy", "This checkout cannot take a payment now."
        ) from refusal
    except BaseException:
        session.rollback()
        raise
    attempt_id = write_plan(session, state, plan, now)
    assert attempt_id is not None
    session.commit()  # the attempt exists before any provider call
    attempt = _attempt(session, attempt_id)

    request = PaymentRequest(
        trade_no=attempt.trade_no,
        amount=money,
        method=method,
        payer=payer,
        notify_url=notify_url,
        return_url=return_url,
        description=description,
        expires_at=state.expires_at,
    )
    # The calls as sent and answered are stored with the outcome, for the operators.
    with capture_exchanges() as exchanges:
        try:
            with waiting():
                result = provider.create_payment(request)
        except ProviderTimeout as error:
            # The request may have reached the provider: the payment may exist there.
            # Failing it would let the shopper pay twice, so it stays live until a query tells.
            log.warning(
                "create_payment timed out provider=%s trade_no=%s: outcome unknown",
                error.provider,
                attempt.trade_no,
            )
            _record(
                session,
                checkout_id,
                attempt_id,
                exchanges,
                lambda s, e=error: create_unknown(
                    s, attempt_id, e.code, e.message, EventSource.CREATE
                ),
            )
            return StartOutcome(_attempt(session, attempt_id), resumed=False)
        except ProviderError as error:
            log.warning(
                "create_payment failed provider=%s trade_no=%s code=%s retryable=%s",
                error.provider,
                attempt.trade_no,
                error.code,
                error.retryable,
            )
            _record(
                session,
                checkout_id,
                attempt_id,
                exchanges,
                lambda s, e=error: create_refused(s, attempt_id, e.code, e.message, utcnow()),
            )
            raise PaymentNotStarted(_attempt(session, attempt_id), error) from error
    answer = create_answer_of(result)
    _record(
        session,
        checkout_id,
        attempt_id,
        exchanges,
        lambda s: create_answered(s, attempt_id, answer, utcnow()),
    )
    attempt = _attempt(session, attempt_id)
    if attempt.status == AttemptStatus.FAILED:
        raise PaymentNotStarted(attempt, None)
    return StartOutcome(attempt, resumed=False)


def choose_another_way(session: Session, checkout_id: str) -> bool:
    """The shopper leaves the live attempt (a cashier opened, bank details shown) to pay
    another way: it stops holding the checkout, which reopens for the new choice; it is still
    reconciled until final, and money it brings later is kept (a second payment is flagged as
    a duplicate). False when there is nothing to leave (nothing live, or an attempt whose
    outcome is unknown: it may be paid already)."""
    session.rollback()
    state = load_state(session, checkout_id)
    live = state.live_attempts() if state is not None else ()
    if state is None or not live:
        session.rollback()
        return False
    now = utcnow()
    try:
        plan = abandon(state, live[-1].id, now)
    except LedgerRefusal:
        session.rollback()
        return False
    write_plan(session, state, plan, now)
    session.commit()
    return True


def create_answer_of(result: CreateResult) -> CreateAnswer:
    """The provider's create answer as the ledger's rule takes it."""
    instructions = result.instructions
    return CreateAnswer(
        status=result.status,
        platform_trade_no=result.platform_trade_no,
        provider_status=result.provider_status,
        redirect_url=result.redirect_url,
        instructions=instructions_to_json(instructions) if instructions is not None else None,
        expires_at=instructions.expires_at if instructions is not None else None,
        failure_code=result.failure_code,
        failure_message=result.failure_message,
    )


def _attempt(session: Session, attempt_id: int) -> PaymentAttempt:
    """The attempt as committed now (the ledger writes with Core statements)."""
    attempt = session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id)
        .execution_options(populate_existing=True)
    ).one()
    session.commit()  # end the read
    return attempt


def _record(
    session: Session,
    checkout_id: str,
    attempt_id: int,
    exchanges: list[Exchange],
    decide: Callable[[CheckoutState], Plan],
) -> None:
    """Decide on the provider's answer under the checkout's lock (a notify may have changed
    the attempt while the provider answered), write it and the calls made for it."""
    session.rollback()
    state = load_state(session, checkout_id)
    assert state is not None
    write_plan(session, state, decide(state), utcnow())
    record_exchanges(session, attempt_id, "create", exchanges)
    session.commit()


def instructions_to_json(instructions: PaymentInstructions) -> dict[str, Any]:
    data = asdict(instructions)
    data["kind"] = str(instructions.kind)
    data["amount"] = {
        "amount": instructions.amount.amount,
        "currency": instructions.amount.currency,
    }
    data["expires_at"] = instructions.expires_at.isoformat() if instructions.expires_at else None
    return data


def instructions_from_json(data: dict[str, Any]) -> PaymentInstructions:
    from checkout.providers.base import InstructionKind

    values = dict(data)
    values["kind"] = InstructionKind(values["kind"])
    values["amount"] = Money(values["amount"]["amount"], values["amount"]["currency"])
    if values.get("expires_at"):
        values["expires_at"] = datetime.fromisoformat(values["expires_at"])
    return PaymentInstructions(**values)
