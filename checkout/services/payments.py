"""Starting a payment: one live attempt per checkout, the provider called outside any lock."""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.domain.money import Money
from checkout.domain.routing import (
    Skip,
    SkipReason,
    failover_note,
    failover_reason,
    order_routes,
    payer_fits,
    route_note,
)
from checkout.domain.states import CHECKOUT_FINAL, AttemptStatus, EventSource
from checkout.metrics import observe_failover
from checkout.models import Checkout, PaymentAttempt
from checkout.providers.base import (
    CreateResult,
    MethodConfig,
    Payer,
    PaymentInstructions,
    PaymentRequest,
    ProviderError,
    ProviderTimeout,
    RouteConfig,
)
from checkout.providers.http import Exchange, capture_exchanges
from checkout.services.catalog import Catalog
from checkout.services.checkouts import expire_if_due, get_checkout
from checkout.services.circuits import Permit
from checkout.services.errors import CheckoutClosed, InvalidRequest
from checkout.services.exchanges import record_exchanges
from checkout.services.ip_limits import check_paypro_ip, next_day_start
from checkout.services.lifecycle import (
    claim_checkout,
    record_attempt_created,
    reopen_if_idle,
    set_attempt_status,
)

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
    notify_url: str | Callable[[str], str],
    return_url: str,
    *,
    waiting: Callable[[], AbstractContextManager[Any]] = nullcontext,
    loaded: Checkout | None = None,
    rng: random.Random | None = None,
) -> StartOutcome:
    """Create the attempt, call the provider, record its answer (two transactions per route).

    `waiting` wraps the provider call (the web layer gives back its turn there:
    checkout/concurrency.py). `loaded`: the checkout as the caller read it in this request;
    reused unless it has a live attempt (then read again: what to resume must be current).
    A stale copy is otherwise harmless: the claim below only moves a checkout that is open.
    `notify_url`: a URL, or a function of the provider instance chosen. `rng`: draws the
    order of weighted routes (tests pass a seeded one).

    A method with several routes (checkout/domain/routing.py): routes that cannot take this
    payment now are skipped before anything is written (NoRouteAvailable when none can);
    on a refusal that proves nothing was created, the refused attempt ends failed and a new
    attempt goes to the next route in the same submit, the checkout pending throughout.
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

    # Which routes may take it, before anything is written (reads only).
    routes, skips = _eligible_routes(session, catalog, checkout.money, method, payer, rng)
    permit: Permit | None = None
    while routes and permit is None:
        view, permit = catalog.circuits.acquire(session, routes[0].provider)
        if permit is None:
            skips.append(Skip(routes.pop(0).provider, SkipReason.CIRCUIT_OPEN, None, view.retry_at))
    # End the reading transaction before the claim writes: a write upgraded from an old read
    # can fail at once on SQLite when another request wrote meanwhile.
    session.commit()
    if permit is None:
        raise NoRouteAvailable(method, skips)

    # Claim the checkout: only one request can move it from OPEN to PENDING.
    if not claim_checkout(session, checkout):
        permit.release()
        session.rollback()
        checkout = get_checkout(session, checkout_id)
        session.refresh(checkout)
        live = checkout.live_attempt()
        if live is not None:
            return StartOutcome(live, resumed=True)
        raise CheckoutClosed("checkout_busy", "This checkout cannot take a payment now.")

    for skip in skips:  # routes passed over before the first call: fail-overs too
        _count_failover(skip)
    total = len(method.candidates())
    noted = 0  # each attempt's note lists the routes left since the one before it
    for index, route in enumerate(routes):
        if index > 0:  # the first route's permit was taken before the claim
            view, permit = catalog.circuits.acquire(session, route.provider)
            if permit is None:
                skips.append(Skip(route.provider, SkipReason.CIRCUIT_OPEN, None, view.retry_at))
                _count_failover(skips[-1])
                continue
        assert permit is not None
        last = index == len(routes) - 1
        try:
            outcome = _start_at(
                session,
                catalog,
                checkout,
                method,
                route,
                payer,
                notify_url,
                return_url,
                waiting=waiting,
                note=route_note(
                    method.code, route.provider, _position(method, route), total, skips[noted:]
                ),
                last=last,
            )
        finally:
            permit.release()
            permit = None
        noted = len(skips)
        if isinstance(outcome, StartOutcome):
            return outcome
        skips.append(outcome)  # refused without creating anything: on to the next route
        _count_failover(outcome)
    # Every route after the one that failed over was skipped (circuits opened meanwhile).
    session.expire_all()
    reopen_if_idle(session, get_checkout(session, checkout_id), source=EventSource.CREATE)
    session.commit()
    raise NoRouteAvailable(method, skips)


def _start_at(
    session: Session,
    catalog: Catalog,
    checkout: Checkout,
    method: MethodConfig,
    route: RouteConfig,
    payer: Payer,
    notify_url: str | Callable[[str], str],
    return_url: str,
    *,
    waiting: Callable[[], AbstractContextManager[Any]],
    note: str,
    last: bool,
) -> StartOutcome | Skip:
    """One attempt at one route (the checkout is claimed): its outcome, or the Skip that
    sends the same submit on to the next route (never for the last one)."""
    routed = method.via(route)
    attempt = PaymentAttempt(
        checkout_id=checkout.id,
        trade_no=new_trade_no(),
        provider=route.provider,
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
    record_attempt_created(session, attempt, note if len(method.candidates()) > 1 else None)
    session.commit()  # the attempt exists before any provider call

    provider = catalog.providers[route.provider]
    request = PaymentRequest(
        trade_no=attempt.trade_no,
        amount=checkout.money,
        method=routed,
        payer=payer,
        notify_url=notify_url(route.provider) if callable(notify_url) else notify_url,
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
            # Failing it would let the shopper pay twice, so it stays live until a query
            # tells. Never a fail-over either, for the same reason.
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
            reason = failover_reason(
                error, provider.refusal_created_nothing(error.code, error.message)
            )
            skip = _failover(route, reason, error.code, last, exchanges)
            _record_failure(
                session,
                attempt,
                error.code,
                error.message,
                exchanges,
                reopen=skip is None,
                detail=failover_note(skip, None) if skip else None,
            )
            if skip is not None and attempt.status == AttemptStatus.FAILED:
                return skip  # (a notify that settled it meanwhile would keep it here)
            raise PaymentNotStarted(attempt, error) from error
    skip = None
    if result.status == AttemptStatus.FAILED:
        code = result.failure_code or "declined"
        created_nothing = provider.refusal_created_nothing(code, result.failure_message or "")
        reason = SkipReason.PROVIDER_REFUSED if created_nothing else None
        skip = _failover(route, reason, code, last, exchanges)
    _record_result(
        session,
        attempt,
        result,
        exchanges,
        reopen=skip is None,
        detail=failover_note(skip, None) if skip else None,
    )
    if skip is not None and attempt.status == AttemptStatus.FAILED:
        return skip
    if attempt.status == AttemptStatus.FAILED:
        raise PaymentNotStarted(attempt, None)
    return StartOutcome(attempt, resumed=False)


def _failover(
    route: RouteConfig,
    reason: SkipReason | None,
    code: str,
    last: bool,
    exchanges: list[Exchange],
) -> Skip | None:
    """The Skip that moves on from `route`, or None (no proof nothing was created, or no
    route left). A refusal's answer is stored as outcome "refused": the circuit breaker
    counts it as a failure, the providers page shows it."""
    if reason == SkipReason.PROVIDER_REFUSED and exchanges:
        exchanges[-1] = replace(exchanges[-1], outcome=REFUSED_OUTCOME)
    if reason is None or last:
        return None
    return Skip(route.provider, reason, code[:64])


REFUSED_OUTCOME = "refused"  # provider_exchanges.outcome of a refusal that created nothing


def _position(method: MethodConfig, route: RouteConfig) -> int:
    return next(i for i, r in enumerate(method.candidates(), 1) if r.provider == route.provider)


def _count_failover(skip: Skip) -> None:
    log.info("payment fails over provider=%s reason=%s", skip.provider, skip.reason)
    observe_failover(skip.provider, str(skip.reason))


def _eligible_routes(
    session: Session,
    catalog: Catalog,
    amount: Money,
    method: MethodConfig,
    payer: Payer,
    rng: random.Random | None,
) -> tuple[list[RouteConfig], list[Skip]]:
    """The method's routes in the order to try, less those that cannot take this payment
    now (amount, payer's details, our per-IP rule); circuits are checked at each turn."""
    configs = {name: p.config for name, p in catalog.providers.items()}
    routes: list[RouteConfig] = []
    skips: list[Skip] = []
    for route in order_routes(method.candidates(), rng):
        provider = catalog.providers[route.provider]
        if provider.currency != amount.currency or not provider.supports_amount(amount):
            skips.append(Skip(route.provider, SkipReason.AMOUNT))
            continue
        rules = provider.payer_rules(method.via(route))
        if not payer_fits(rules, payer, datetime.now(ZoneInfo(rules.timezone)).date()):
            skips.append(Skip(route.provider, SkipReason.PAYER_RULES))
            continue
        verdict = check_paypro_ip(session, configs, provider.config, payer.ip_address)
        if not verdict.allowed:
            limit = verdict.max_successes if verdict.reason == "successes" else verdict.max_attempts
            skips.append(
                Skip(
                    route.provider,
                    SkipReason.IP_LIMIT,
                    verdict.reason,
                    next_day_start(provider.config),
                    limit,
                )
            )
            continue
        routes.append(route)
    return routes, skips


class NoRouteAvailable(Exception):
    """No route of the method can take this payment now; nothing was written or sent
    (or, after a fail-over, every attempt made ended failed and the checkout is open)."""

    def __init__(self, method: MethodConfig, skips: list[Skip]) -> None:
        super().__init__(f"no route for {method.code}: " + "; ".join(s.describe() for s in skips))
        self.method = method
        self.skips = skips

    @property
    def retry_at(self) -> datetime | None:
        """When the soonest cause ends, if every cause has a known end."""
        ends = [s.retry_at for s in self.skips]
        if not ends or any(e is None for e in ends):
            return None
        return min(e for e in ends if e is not None)


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
    *,
    reopen: bool = True,
    detail: str | None = None,
) -> None:
    """`reopen=False`: the same submit goes on to another route, the checkout stays
    pending; `detail` then says so on the timeline."""
    session.expire_all()  # reopen_if_idle looks at every attempt of the checkout
    _take_answer(session, attempt, exchanges)
    attempt.failure_code = code[:64]
    attempt.failure_message = message[:500]
    if attempt.status == AttemptStatus.CREATING:
        set_attempt_status(
            session,
            attempt,
            AttemptStatus.FAILED,
            source=EventSource.CREATE,
            detail=detail or code,
        )
        if reopen:
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
    *,
    reopen: bool = True,
    detail: str | None = None,
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
                detail=detail or attempt.failure_code,
            )
            if reopen:
                reopen_if_idle(session, attempt.checkout, source=EventSource.CREATE)
        else:
            set_attempt_status(session, attempt, AttemptStatus.PENDING, source=EventSource.CREATE)
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
