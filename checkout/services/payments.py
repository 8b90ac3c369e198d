"""Starting a payment: one live attempt per checkout, the provider called outside any lock.

Every status change here is decided by domain/ledger.py and written by store/ledger.py."""

from __future__ import annotations

import logging
import random
import secrets
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from checkout.domain.errors import LedgerRefusal
from checkout.domain.ledger import (
    CheckoutState,
    CreateAnswer,
    NewAttempt,
    Plan,
    StartVerdict,
    abandon,
    claim,
    create_answered,
    create_refused,
    create_unknown,
    fail_over,
    start_decision,
)
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
from checkout.domain.states import AttemptStatus, EventSource
from checkout.metrics import observe_failover
from checkout.providers.base import (
    CreateResult,
    InstructionKind,
    MethodConfig,
    Payer,
    PaymentInstructions,
    PaymentRequest,
    ProviderConfig,
    RouteConfig,
)
from checkout.providers.errors import ProviderError, ProviderTimeout
from checkout.providers.http import Exchange, capture_exchanges
from checkout.services.catalog import Catalog
from checkout.services.checkouts import attempt_summary, get_checkout
from checkout.services.circuits import CircuitBreakers, Permit
from checkout.services.errors import (
    CheckoutClosed,
    InvalidRequest,
    NoRouteAvailable,
    PaymentNotStarted,
)
from checkout.services.exchanges import exchange_rows, record_exchanges
from checkout.services.ip_limits import (
    IpLimitVerdict,
    check_paypro_ip,
    next_day_start,
)
from checkout.services.shopper.page_reads import AttemptView, attempt_view_of
from checkout.store.ledger import load_state, load_state_for_claim, write_plan
from checkout.store.models import Checkout, PaymentAttempt, utcnow

if TYPE_CHECKING:
    from checkout.services.shopper.page_reads import CheckoutView

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StartOutcome:
    attempt: AttemptView  # as committed (a pure copy: the request's writes are Core)
    resumed: bool  # an attempt was already live: nothing new was sent to a provider

    @property
    def redirect_url(self) -> str | None:
        return self.attempt.redirect_url if not self.attempt.instructions else None


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
    loaded: Checkout | CheckoutView | None = None,
    rng: random.Random | None = None,
) -> StartOutcome:
    """Claim the checkout for a new attempt, call the provider, record its answer.

    Never a lock held across a provider call. `waiting` wraps the call (the web layer gives
    back its turn there: checkout/concurrency.py). `loaded`: the checkout as the caller read
    it in this request, for the methods it offers (they never change); its status is read
    again under the lock. `notify_url`: a URL, or a function of the provider instance chosen.
    `rng`: draws the order of weighted routes (tests pass a seeded one).

    A method with several routes (checkout/domain/routing.py): routes that cannot take this
    payment now are skipped before anything is written (NoRouteAvailable when none can); on
    a refusal that proves nothing was created, the refused attempt ends failed and a new
    attempt goes to the next route in the same submit, the checkout pending throughout (one
    ledger plan: domain/ledger.fail_over). Raises CheckoutClosed, InvalidRequest,
    NoRouteAvailable (nothing created) or PaymentNotStarted (the provider refused).
    """
    checkout = loaded if loaded is not None and loaded.id == checkout_id else None
    if checkout is None:
        checkout = get_checkout(session, checkout_id)
    offered = {m.code: m for m in catalog.methods_for(checkout.money, checkout.methods)}
    money, description = checkout.money, checkout.description
    session.rollback()  # end any read: the claim below begins the write transaction
    now = utcnow()
    state, drawn_id = load_state_for_claim(session, checkout_id)
    if state is None:
        raise CheckoutClosed("checkout_not_found", "No such checkout.")
    decision = start_decision(state, now, method_offered=method_code in offered)
    if decision.verdict == StartVerdict.EXPIRED:
        assert decision.plan is not None
        write_plan(session, state, decision.plan, now)
        session.commit()
        raise CheckoutClosed("checkout_closed", "This checkout is expired.")
    if decision.verdict != StartVerdict.GO:
        session.rollback()
    if decision.verdict == StartVerdict.CLOSED:
        raise CheckoutClosed("checkout_closed", f"This checkout is {decision.status}.")
    if decision.verdict == StartVerdict.RESUME:
        assert decision.attempt_id is not None
        return StartOutcome(_attempt(session, decision.attempt_id), resumed=True)
    if decision.verdict == StartVerdict.METHOD_NOT_AVAILABLE:
        raise InvalidRequest("method_not_available", "This payment method is not available.")
    if decision.verdict == StartVerdict.BUSY:  # pending with nothing live: another request
        raise CheckoutClosed("checkout_busy", "This checkout cannot take a payment now.")
    method = offered[method_code]

    # Which routes may take it, decided in this transaction: PayPro's per-IP rule is counted
    # under a lock on the IP held until the attempt is written (services/ip_limits.py).
    routes, skips = _eligible_routes(session, catalog, money, method, payer, rng)
    first = _next_route(session, catalog, routes, skips)
    if first is None:
        session.rollback()
        for skip in skips:
            _count_failover(skip)
        raise NoRouteAvailable(method, skips)
    route, permit = first
    total = len(method.candidates())
    try:
        new = _new_attempt(state, method, route, payer, _note(method, route, total, skips))
        trade_no = new.trade_no
        plan = claim(state, new)
        # Committed: the attempt exists before any provider call.
        attempt_id = write_plan(session, state, plan, now, attempt_id_drawn=drawn_id, commit=True)
    except BaseException:
        session.rollback()
        permit.release()
        raise
    assert attempt_id is not None
    for skip in skips:  # routes passed over before the first call: fail-overs too
        _count_failover(skip)
    noted = len(skips)
    request_for = _RequestFor(method, money, description, payer, notify_url, return_url, state)
    while True:
        try:
            outcome = _call_and_record(
                session,
                catalog,
                checkout_id,
                attempt_id,
                trade_no,
                route,
                request_for,
                waiting,
                last=not routes,
            )
        finally:
            permit.release()
        if not isinstance(outcome, _Refused):
            return outcome
        skip = outcome.skip
        skips.append(skip)
        _count_failover(skip)
        # On to the next route: the refused attempt ends failed and the next one starts in
        # one plan, the checkout pending throughout.
        session.rollback()
        state = load_state(session, checkout_id)
        assert state is not None
        if state.attempt(attempt_id).status != AttemptStatus.CREATING:
            session.rollback()  # a notify settled it meanwhile: it stays as it is
            return StartOutcome(_attempt(session, attempt_id), resumed=False)
        # PayPro's per-IP rule is counted again, under the IP's lock (services/ip_limits.py).
        ahead = _next_route(session, catalog, routes, skips, recheck_ip=(catalog, payer))
        now = utcnow()
        if ahead is None:
            write_plan(
                session,
                state,
                create_refused(state, attempt_id, outcome.code, outcome.message, now),
                now,
            )
            session.commit()
            raise NoRouteAvailable(method, skips)
        route, permit = ahead
        note = _note(method, route, total, skips[noted:])
        noted = len(skips)
        try:
            new = _new_attempt(state, method, route, payer, note)
            plan = fail_over(
                state,
                attempt_id,
                outcome.code,
                outcome.message,
                failover_note(skip, None),
                new,
            )
            written = write_plan(session, state, plan, now)
            session.commit()
            if written is not None:  # the next route's attempt, with the plan's trade number
                attempt_id, trade_no = written, new.trade_no
        except BaseException:
            session.rollback()
            permit.release()
            raise


@dataclass(frozen=True)
class _RequestFor:
    """What every route's PaymentRequest shares."""

    method: MethodConfig
    money: Money
    description: str | None
    payer: Payer
    notify_url: str | Callable[[str], str]
    return_url: str
    state: CheckoutState

    def build(self, trade_no: str, route: RouteConfig) -> PaymentRequest:
        notify = self.notify_url
        return PaymentRequest(
            trade_no=trade_no,
            amount=self.money,
            method=self.method.via(route),
            payer=self.payer,
            notify_url=notify(route.provider) if callable(notify) else notify,
            return_url=self.return_url,
            description=self.description,
            expires_at=self.state.expires_at,
        )


@dataclass(frozen=True)
class _Refused:
    """A refusal that proves nothing was created: the submit may go on to the next route."""

    skip: Skip
    code: str
    message: str


def _call_and_record(
    session: Session,
    catalog: Catalog,
    checkout_id: str,
    attempt_id: int,
    trade_no: str,
    route: RouteConfig,
    request_for: _RequestFor,
    waiting: Callable[[], AbstractContextManager[Any]],
    *,
    last: bool,
) -> StartOutcome | _Refused:
    """One provider call for the claimed attempt, and its answer through the ledger (or the
    refusal that sends the submit on to the next route, recorded with the next attempt).
    `trade_no`: the claimed attempt's (its plan's), so nothing is read before the call."""
    provider = catalog.providers[route.provider]
    request = request_for.build(trade_no, route)
    with capture_exchanges() as exchanges:
        try:
            with waiting():
                result = provider.create_payment(request)
        except ProviderTimeout as error:
            # The request may have reached the provider: the payment may exist there. Failing
            # it would let the shopper pay twice, so it stays live until a query tells; never
            # a fail-over either, for the same reason.
            log.warning(
                "create_payment timed out provider=%s trade_no=%s: outcome unknown",
                error.provider,
                trade_no,
            )
            recorded = _record(
                session,
                catalog.circuits,
                checkout_id,
                attempt_id,
                exchanges,
                lambda s, e=error: create_unknown(
                    s, attempt_id, e.code, e.message, EventSource.CREATE
                ),
            )
            return StartOutcome(recorded, resumed=False)
        except ProviderError as error:
            log.warning(
                "create_payment failed provider=%s trade_no=%s code=%s retryable=%s",
                error.provider,
                trade_no,
                error.code,
                error.retryable,
            )
            reason = failover_reason(
                error, provider.refusal_created_nothing(error.code, error.message)
            )
            skip = _failover(route, reason, error.code, last, exchanges)
            if skip is not None:
                _keep_exchanges(session, catalog.circuits, attempt_id, exchanges)
                return _Refused(skip, error.code, error.message)
            recorded = _record(
                session,
                catalog.circuits,
                checkout_id,
                attempt_id,
                exchanges,
                lambda s, e=error: create_refused(s, attempt_id, e.code, e.message, utcnow()),
            )
            raise PaymentNotStarted(recorded, error) from error
    if result.status == AttemptStatus.FAILED:
        code = result.failure_code or "declined"
        created_nothing = provider.refusal_created_nothing(code, result.failure_message or "")
        reason = SkipReason.PROVIDER_REFUSED if created_nothing else None
        skip = _failover(route, reason, code, last, exchanges)
        if skip is not None:
            _keep_exchanges(session, catalog.circuits, attempt_id, exchanges)
            return _Refused(skip, code, result.failure_message or "")
    answer = create_answer_of(result)
    event = None
    if answer.instructions:  # the attempt as stored, for the shop's event
        event = _instructions_event(_read_attempt(session, attempt_id), answer)
        session.commit()  # end the read
    attempt = _record(
        session,
        catalog.circuits,
        checkout_id,
        attempt_id,
        exchanges,
        lambda s: create_answered(s, attempt_id, answer, utcnow(), event),
    )
    if attempt.status == AttemptStatus.FAILED:
        raise PaymentNotStarted(attempt, None, result.failure_message or "")
    return StartOutcome(attempt, resumed=False)


def _instructions_event(attempt: PaymentAttempt, answer: CreateAnswer) -> dict[str, Any]:
    """The payment_instructions_issued event's data: the attempt as the shop's API shows it
    once the answer is recorded (pending, with its payment details)."""
    after = SimpleNamespace(
        **{c.key: getattr(attempt, c.key) for c in PaymentAttempt.__table__.columns}
    )
    after.status = AttemptStatus.PENDING
    after.instructions = dict(answer.instructions or {})
    after.platform_trade_no = answer.platform_trade_no or attempt.platform_trade_no
    after.provider_status = answer.provider_status
    return {"payment_attempt": attempt_summary(after)}  # type: ignore[arg-type]


def _keep_exchanges(
    session: Session, circuits: CircuitBreakers, attempt_id: int, exchanges: list[Exchange]
) -> None:
    session.rollback()
    circuits.observed(exchanges)  # before the commit (services/circuits.py)
    record_exchanges(session, attempt_id, "create", exchanges)
    session.commit()


def _new_attempt(
    state: CheckoutState, method: MethodConfig, route: RouteConfig, payer: Payer, note: str | None
) -> NewAttempt:
    return NewAttempt(
        trade_no=new_trade_no(),
        provider=route.provider,
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
        note=note,
    )


def _note(method: MethodConfig, route: RouteConfig, total: int, skips: list[Skip]) -> str | None:
    """The new attempt's timeline note: its route, and what was passed over before it."""
    if total <= 1:
        return None
    return route_note(method.code, route.provider, _position(method, route), total, skips)


def _next_route(
    session: Session,
    catalog: Catalog,
    routes: list[RouteConfig],
    skips: list[Skip],
    *,
    recheck_ip: tuple[Catalog, Payer] | None = None,
) -> tuple[RouteConfig, Permit] | None:
    """Take routes off the front of `routes` until one may be called now (its circuit lets
    it, and, on a fail-over, the per-IP rule still does); the ones passed over go to
    `skips`."""
    configs = {name: p.config for name, p in catalog.providers.items()}
    while routes:
        route = routes.pop(0)
        if recheck_ip is not None:
            provider = catalog.providers[route.provider]
            verdict = check_paypro_ip(session, configs, provider.config, recheck_ip[1].ip_address)
            if not verdict.allowed:
                skips.append(_ip_skip(route, provider.config, verdict))
                continue
        view, permit = catalog.circuits.acquire(session, route.provider)
        if permit is None:
            skips.append(Skip(route.provider, SkipReason.CIRCUIT_OPEN, None, view.retry_at))
            continue
        return route, permit
    return None


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
            skips.append(_ip_skip(route, provider.config, verdict))
            continue
        routes.append(route)
    return routes, skips


def _ip_skip(route: RouteConfig, config: ProviderConfig, verdict: IpLimitVerdict) -> Skip:
    limit = verdict.max_successes if verdict.reason == "successes" else verdict.max_attempts
    return Skip(route.provider, SkipReason.IP_LIMIT, verdict.reason, next_day_start(config), limit)


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


def _attempt(session: Session, attempt_id: int) -> AttemptView:
    """The attempt as committed now (the ledger writes with Core statements)."""
    attempt = _read_attempt(session, attempt_id)
    session.commit()  # end the read
    return attempt_view_of(attempt)


def _read_attempt(session: Session, attempt_id: int) -> PaymentAttempt:
    """The attempt as this transaction sees it (an object the session held is refreshed)."""
    return session.scalars(
        select(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id)
        .execution_options(populate_existing=True)
    ).one()


def _record(
    session: Session,
    circuits: CircuitBreakers,
    checkout_id: str,
    attempt_id: int,
    exchanges: list[Exchange],
    decide: Callable[[CheckoutState], Plan],
) -> AttemptView:
    """Decide on the provider's answer under the checkout's lock (a notify may have changed
    the attempt while the provider answered), and write it with the calls made for it (one
    statement on PostgreSQL); the attempt as written, from the snapshot and the plan."""
    session.rollback()
    circuits.observed(exchanges)  # before the commit (services/circuits.py)
    state = load_state(session, checkout_id)
    assert state is not None
    now = utcnow()
    plan = decide(state)
    rows = exchange_rows(attempt_id, "create", exchanges, now)
    write_plan(session, state, plan, now, exchanges=rows, commit=True)
    return attempt_after(state, plan, attempt_id)


def attempt_after(state: CheckoutState, plan: Plan, attempt_id: int) -> AttemptView:
    """The attempt as `plan` leaves it. Its cashier link and payment details: only the create
    answer sets them (create_answered), so where the plan does not, the claimed attempt has
    none."""
    before = state.attempt(attempt_id)
    values: dict[str, Any] = {}
    for change in plan.attempts:
        if change.attempt_id == attempt_id:
            values.update(change.values)
    return AttemptView(
        id=before.id,
        trade_no=before.trade_no,
        status=str(values.get("status", before.status)),
        method=before.method,
        provider=before.provider,
        amount=before.amount,
        currency=before.currency,
        amount_paid=values.get("amount_paid", before.amount_paid),
        redirect_url=values.get("redirect_url"),
        instructions=values.get("instructions"),
        platform_trade_no=values.get("platform_trade_no", before.platform_trade_no),
    )


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

    values = dict(data)
    values["kind"] = InstructionKind(values["kind"])
    values["amount"] = Money(values["amount"]["amount"], values["amount"]["currency"])
    if values.get("expires_at"):
        values["expires_at"] = datetime.fromisoformat(values["expires_at"])
    return PaymentInstructions(**values)
