"""Starting a payment: one live attempt per checkout, the provider called outside any lock."""

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

from checkout.domain.money import Money
from checkout.domain.states import CHECKOUT_FINAL, AttemptStatus, EventSource
from checkout.models import Checkout, PaymentAttempt
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
from checkout.services.checkouts import attempt_summary, expire_if_due, get_checkout
from checkout.services.errors import CheckoutClosed, InvalidRequest
from checkout.services.exchanges import record_exchanges
from checkout.services.lifecycle import (
    claim_checkout,
    record_attempt_created,
    reopen_if_idle,
    set_attempt_status,
)
from checkout.services.outbox import PAYMENT_INSTRUCTIONS_ISSUED, enqueue_event

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
    """Create the attempt, call the provider, record its answer (two transactions).

    `waiting` wraps the provider call (the web layer gives back its turn there:
    checkout/concurrency.py). `loaded`: the checkout as the caller read it in this request;
    reused unless it has a live attempt (then read again: what to resume must be current).
    A stale copy is otherwise harmless: the claim below only moves a checkout that is open.
    """
    if loaded is not None and loaded.id == checkout_id and loaded.live_attempt() is None:
        checkout = loaded
    else:
        checkout = get_checkout(session, checkout_id)
    expire_if_due(session, checkout)
    if checkout.status in CHECKOUT_FINAL:
        raise CheckoutClosed("checkout_closed", f"This checkout is {checkout.status}.")
    live = checkout.live_attempt()
    if live is not None:
        return StartOutcome(live, resumed=True)

    offered = {m.code: m for m in catalog.methods_for(checkout.money, checkout.methods)}
    method = offered.get(method_code)
    if method is None:
        raise InvalidRequest("method_not_available", "This payment method is not available.")

    # Claim the checkout: only one request can move it from OPEN to PENDING.
    if not claim_checkout(session, checkout):
        session.rollback()
        checkout = get_checkout(session, checkout_id)
        session.refresh(checkout)
        live = checkout.live_attempt()
        if live is not None:
            return StartOutcome(live, resumed=True)
        raise CheckoutClosed("checkout_busy", "This checkout cannot take a payment now.")
    attempt = PaymentAttempt(
        checkout_id=checkout.id,
        trade_no=new_trade_no(),
        provider=method.provider,
        method=method.code,
        amount=checkout.amount,
        currency=checkout.currency,
        status=AttemptStatus.CREATING,
        payer_name=payer.full_name,
        payer_email=payer.email,
        payer_mobile=payer.mobile,
        payer_ip=payer.ip_address,
    )
    session.add(attempt)
    record_attempt_created(session, attempt)
    session.commit()  # the attempt exists before any provider call

    provider = catalog.provider_for(method)
    request = PaymentRequest(
        trade_no=attempt.trade_no,
        amount=checkout.money,
        method=method,
        payer=payer,
        notify_url=notify_url,
        return_url=return_url,
        description=checkout.description,
        expires_at=checkout.expires_at,
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
            _record_unknown(session, attempt, error.code, error.message, exchanges)
            return StartOutcome(attempt, resumed=False)
        except ProviderError as error:
            log.warning(
                "create_payment failed provider=%s trade_no=%s code=%s retryable=%s",
                error.provider,
                attempt.trade_no,
                error.code,
                error.retryable,
            )
            _record_failure(session, attempt, error.code, error.message, exchanges)
            raise PaymentNotStarted(attempt, error) from error
    _record_result(session, attempt, result, exchanges)
    if attempt.status == AttemptStatus.FAILED:
        raise PaymentNotStarted(attempt, None)
    return StartOutcome(attempt, resumed=False)


def _take_answer(session: Session, attempt: PaymentAttempt, exchanges: list[Exchange]) -> None:
    """Re-read the attempt under its row lock, as the notify handler does (one query), and
    keep the calls made for it. A notify may have changed it while the provider answered."""
    session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.id == attempt.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    record_exchanges(session, attempt.id, "create", exchanges)


def _record_failure(
    session: Session,
    attempt: PaymentAttempt,
    code: str,
    message: str,
    exchanges: list[Exchange],
) -> None:
    session.expire_all()  # reopen_if_idle looks at every attempt of the checkout
    _take_answer(session, attempt, exchanges)
    attempt.failure_code = code[:64]
    attempt.failure_message = message[:500]
    if attempt.status == AttemptStatus.CREATING:
        set_attempt_status(
            session, attempt, AttemptStatus.FAILED, source=EventSource.CREATE, detail=code
        )
        reopen_if_idle(session, attempt.checkout, source=EventSource.CREATE)
    session.commit()


def _record_unknown(
    session: Session,
    attempt: PaymentAttempt,
    code: str,
    message: str,
    exchanges: list[Exchange],
) -> None:
    session.expire_all()  # a notify may already have settled it while we waited
    _take_answer(session, attempt, exchanges)
    if attempt.status == AttemptStatus.CREATING:
        attempt.failure_code = code[:64]
        attempt.failure_message = message[:500]
        set_attempt_status(
            session, attempt, AttemptStatus.UNKNOWN, source=EventSource.CREATE, detail=code
        )
    session.commit()


def _record_result(
    session: Session,
    attempt: PaymentAttempt,
    result: CreateResult,
    exchanges: list[Exchange],
) -> None:
    # The checkout is re-read under its own lock if it has to move (reopen_if_idle).
    if result.status == AttemptStatus.FAILED:
        session.expire_all()  # reopen_if_idle looks at every attempt of the checkout
    _take_answer(session, attempt, exchanges)
    attempt.platform_trade_no = result.platform_trade_no
    attempt.provider_status = result.provider_status
    attempt.redirect_url = result.redirect_url
    if result.instructions is not None:
        attempt.instructions = instructions_to_json(result.instructions)
        attempt.expires_at = result.instructions.expires_at
    if result.status == AttemptStatus.FAILED:
        attempt.failure_code = (result.failure_code or "declined")[:64]
        attempt.failure_message = (result.failure_message or "")[:500]
    if attempt.status == AttemptStatus.CREATING:
        # A notify may already have settled it while we waited; then keep that. A create
        # answer never carries the amount received, so "paid" waits for the notify/query.
        if result.status == AttemptStatus.FAILED:
            set_attempt_status(
                session,
                attempt,
                AttemptStatus.FAILED,
                source=EventSource.CREATE,
                detail=attempt.failure_code,
            )
            reopen_if_idle(session, attempt.checkout, source=EventSource.CREATE)
        else:
            set_attempt_status(session, attempt, AttemptStatus.PENDING, source=EventSource.CREATE)
            if attempt.instructions:
                # The shop may pass them on to the shopper (KakaoTalk, WhatsApp, e-mail).
                enqueue_event(
                    session,
                    attempt.checkout,
                    PAYMENT_INSTRUCTIONS_ISSUED,
                    {"payment_attempt": attempt_summary(attempt)},
                )
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
