"""Reconciliation: asking providers about attempts whose outcome we have not heard.

Notifies get lost (a firewall, an outage on our side, a provider bug) and create calls
time out with the payment possibly made. So attempts that stay PENDING or UNKNOWN are
queried with a per-attempt backoff (`next_query_at`, `query_count`), the answer goes
through the same state machine as a notify (source "query"), and deadlines are enforced:
a VA past its expiry plus a grace period expires (after one last query), and an open
checkout past its own expiry expires.

The provider is always called outside any transaction: a slow provider must not hold
row locks (or SQLite's write lock) that the notify handler needs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, literal, or_, select, update
from sqlalchemy.orm import Session

from checkout.config import DEFAULT_RECONCILE_AFTER, DEFAULT_VA_EXPIRY_GRACE
from checkout.domain.ledger import (
    CheckoutState,
    MoneyReporting,
    Verdict,
    create_unknown,
    deadline_passed,
    not_found_at_provider,
    provider_reported,
    stale_create_age,
)
from checkout.domain.states import (
    ATTEMPT_QUERYABLE,
    AttemptStatus,
    CheckoutStatus,
    EventSource,
)
from checkout.providers.base import PaymentUpdate
from checkout.providers.errors import OrderNotFound, ProviderError
from checkout.providers.http import Exchange, capture_exchanges
from checkout.services.catalog import Catalog
from checkout.services.checkouts import expire_if_due, get_checkout
from checkout.services.exchanges import record_exchanges
from checkout.store.ledger import load_state, write_plan
from checkout.store.models import Checkout, PaymentAttempt, utcnow

log = logging.getLogger(__name__)

SessionFactory = Callable[[], Session]

# Wait before the n-th next query of one attempt; the last value repeats (the cap).
BACKOFF: tuple[timedelta, ...] = (
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=5),
    timedelta(minutes=10),
    timedelta(minutes=30),
    timedelta(hours=1),
)
# Close to a VA's expiry the shopper is most likely paying: look more often.
VA_FINAL_WINDOW = timedelta(minutes=10)
VA_FINAL_INTERVAL = timedelta(minutes=1)
# "Not found" right after a timed-out create may only mean the create is still in flight
# at the provider; only later is it proof the payment never started.
UNKNOWN_SETTLE = timedelta(seconds=60)
# A provider that cannot answer must not keep a VA's checkout blocked for ever.
EXPIRE_WITHOUT_ANSWER_AFTER = timedelta(hours=1)
RETURN_PAGE_QUERY_AFTER = timedelta(seconds=10)


def query_backoff(query_count: int, now: datetime, va_expires_at: datetime | None) -> timedelta:
    """How long to wait after the `query_count`-th query (1-based) of an attempt."""
    delay = BACKOFF[min(max(query_count, 1), len(BACKOFF)) - 1]
    if va_expires_at is not None:
        window_starts = va_expires_at - VA_FINAL_WINDOW
        if now >= window_starts:
            delay = min(delay, VA_FINAL_INTERVAL)
        else:  # never sleep past the start of the final window
            delay = min(delay, max(window_starts - now, VA_FINAL_INTERVAL))
    return delay


@dataclass
class ReconcileReport:
    queried: int = 0
    changed: int = 0  # attempts whose status moved (query or expiry)
    failed_queries: int = 0
    expired_checkouts: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.queried + self.expired_checkouts


@dataclass(frozen=True)
class _Due:
    id: int
    provider: str
    trade_no: str
    platform_trade_no: str | None


@dataclass(frozen=True)
class _Answer:
    update: PaymentUpdate | None = None
    not_found: bool = False
    error: str | None = None  # the query failed: nothing is known
    exchanges: tuple[Exchange, ...] = ()  # the calls as sent and answered


def reconcile_due(
    session_factory: SessionFactory,
    catalog: Catalog,
    now: datetime | None = None,
    *,
    after: timedelta = DEFAULT_RECONCILE_AFTER,
    grace: timedelta = DEFAULT_VA_EXPIRY_GRACE,
    batch: int = 50,
) -> ReconcileReport:
    """Query due attempts, expire overdue VAs and checkouts; return what was done.

    `now` is the scheduling clock (tests pass a later time instead of sleeping).
    """
    now = now or utcnow()
    report = ReconcileReport()
    report.changed += _unstick_creating(session_factory, catalog, now, batch)
    for due in _claim_due(session_factory, now, after, grace, batch):
        answer = _ask(catalog, due)
        report.queried += 1
        if answer.error is not None:
            report.failed_queries += 1
        with session_factory() as session:
            if _apply_answer(session, catalog, due.id, answer, now, grace):
                report.changed += 1
            session.commit()
    report.expired_checkouts = _expire_open_checkouts(session_factory, now, batch)
    if report.total:
        log.info(
            "reconcile queried=%s changed=%s failed_queries=%s expired_checkouts=%s",
            report.queried,
            report.changed,
            report.failed_queries,
            report.expired_checkouts,
        )
    return report


def _status_in(column: Any, statuses: Iterable[str]) -> Any:
    """`column IN (...)` with the statuses written into the SQL, not bound: PostgreSQL's
    status indexes hold live rows only (store/models.py), and it uses such an index only where
    the query's own constants prove the rows are live; with bound values its generic plan
    (a statement prepared after five uses) read the whole table (bench/notes.md)."""
    return column.in_([literal(str(status), literal_execute=True) for status in sorted(statuses)])


def _unstick_creating(
    session_factory: SessionFactory, catalog: Catalog, now: datetime, batch: int
) -> int:
    """Attempts left `creating` longer than a create call can take (the process making the
    call died) become `unknown`: the payment may exist at the provider, so they are queried
    like any timed-out create."""
    moved = 0
    with session_factory() as session:
        candidates = session.execute(
            select(PaymentAttempt.id, PaymentAttempt.checkout_id, PaymentAttempt.provider)
            .where(_status_in(PaymentAttempt.status, [AttemptStatus.CREATING]))
            .order_by(PaymentAttempt.created_at)
            .limit(batch)
        ).all()
        session.rollback()
        for attempt_id, checkout_id, provider_name in candidates:
            provider = catalog.providers.get(provider_name)
            limit = (
                stale_create_age(provider.config.connect_timeout, provider.config.read_timeout)
                if provider is not None
                else stale_create_age(5, 20)
            )
            state = load_state(session, checkout_id)
            if state is None:
                session.rollback()
                continue
            attempt = state.attempt(attempt_id)
            if attempt.status != AttemptStatus.CREATING or now - attempt.created_at < limit:
                session.rollback()
                continue
            plan = create_unknown(
                state,
                attempt_id,
                "create_interrupted",
                "the create call never recorded an answer",
                EventSource.EXPIRY,
            )
            write_plan(session, state, plan, now)
            session.commit()
            moved += 1
    return moved


def _claim_due(
    session_factory: SessionFactory,
    now: datetime,
    after: timedelta,
    grace: timedelta,
    batch: int,
) -> list[_Due]:
    """Pick due attempts and push their next_query_at forward before querying.

    Moving the schedule in the claiming transaction is the lease: a second worker
    (SKIP LOCKED on PostgreSQL; SQLite serialises writers) does not query them again.
    """
    with session_factory() as session, session.begin():
        attempts = session.scalars(
            select(PaymentAttempt)
            .where(
                _status_in(PaymentAttempt.status, ATTEMPT_QUERYABLE),
                PaymentAttempt.created_at <= now - after,
                or_(
                    PaymentAttempt.next_query_at.is_(None),
                    PaymentAttempt.next_query_at <= now,
                    and_(
                        PaymentAttempt.deadline_at.is_not(None),
                        PaymentAttempt.deadline_at <= now - grace,
                    ),
                ),
            )
            .order_by(PaymentAttempt.next_query_at, PaymentAttempt.id)
            .limit(batch)
            .with_for_update(skip_locked=True)
        ).all()
        due = []
        for attempt in attempts:
            attempt.query_count = (attempt.query_count or 0) + 1
            attempt.next_query_at = now + query_backoff(
                attempt.query_count, now, attempt.deadline_at
            )
            due.append(
                _Due(attempt.id, attempt.provider, attempt.trade_no, attempt.platform_trade_no)
            )
    return due


def _ask(catalog: Catalog, due: _Due) -> _Answer:
    provider = catalog.providers.get(due.provider)
    if provider is None:
        return _Answer(error=f"provider {due.provider!r} is not configured")
    with capture_exchanges() as calls:
        try:
            answer = _Answer(update=provider.query_payment(due.trade_no, due.platform_trade_no))
        except OrderNotFound:
            answer = _Answer(not_found=True)
        except ProviderError as exc:
            log.warning(
                "query failed provider=%s trade_no=%s code=%s", due.provider, due.trade_no, exc.code
            )
            answer = _Answer(error=f"{exc.code}: {exc.message}")
    return replace(answer, exchanges=tuple(calls))


def _apply_answer(
    session: Session,
    catalog: Catalog,
    attempt_id: int,
    answer: _Answer,
    now: datetime,
    grace: timedelta,
) -> bool:
    """Apply one query's answer under the checkout's row lock; True if the attempt moved.

    The rule decides (domain/ledger.py): the provider's word, or "not found", and then, past
    the attempt's deadline plus `grace`, its expiry (the query was its last chance)."""
    session.rollback()
    checkout_id = session.scalar(
        select(PaymentAttempt.checkout_id).where(PaymentAttempt.id == attempt_id)
    )
    if checkout_id is None:
        return False
    state = load_state(session, checkout_id)
    assert state is not None
    attempt = state.attempt(attempt_id)
    before = attempt.status
    record_exchanges(session, attempt_id, "query", answer.exchanges)
    catalog.circuits.observed(answer.exchanges)  # before the commit (services/circuits.py)
    query_error = answer.error[:200] if answer.error else None
    if answer.update is not None:
        provider = catalog.providers.get(attempt.provider)
        reporting = provider.money_reporting if provider is not None else MoneyReporting.TOTAL
        plan = provider_reported(
            state, attempt_id, answer.update, reporting, EventSource.QUERY, now
        )
        log.info(
            "query trade_no=%s status=%s verdict=%s",
            attempt.trade_no,
            answer.update.status,
            plan.verdict,
        )
        if plan.verdict == Verdict.CONFLICT:
            query_error = (plan.detail or "conflict")[:200]
    elif answer.not_found:
        settled = now - attempt.created_at >= UNKNOWN_SETTLE
        plan = not_found_at_provider(state, attempt_id, settled, now)
        if attempt.status == AttemptStatus.PENDING:
            query_error = "the provider has no such order"
    else:
        plan = None
    if plan is not None:
        write_plan(session, state, plan, now)
        state = load_state(session, checkout_id) or state  # as written, for the deadline
    _expire_if_overdue(session, state, attempt_id, answer, now, grace)
    session.execute(
        update(PaymentAttempt)
        .where(PaymentAttempt.id == attempt_id)
        .values(last_queried_at=now, last_query_error=query_error)
    )
    after = session.scalar(select(PaymentAttempt.status).where(PaymentAttempt.id == attempt_id))
    return after != before


def _expire_if_overdue(
    session: Session,
    state: CheckoutState,
    attempt_id: int,
    answer: _Answer,
    now: datetime,
    grace: timedelta,
) -> None:
    """An attempt still live at its deadline + grace expires, once the provider had its say
    (a VA past its expiry, a cashier payment the shopper abandoned)."""
    attempt = state.attempt(attempt_id)
    if attempt.status not in ATTEMPT_QUERYABLE or attempt.deadline_at is None:
        return
    deadline = attempt.deadline_at + grace
    if now < deadline:
        return
    if answer.error is not None and now < deadline + EXPIRE_WITHOUT_ANSWER_AFTER:
        return  # the last-chance query failed: ask again before giving up on the attempt
    detail = "va expired" if attempt.status == AttemptStatus.PENDING else "deadline passed"
    write_plan(session, state, deadline_passed(state, attempt_id, now, detail), now)


def _expire_open_checkouts(session_factory: SessionFactory, now: datetime, batch: int) -> int:
    with session_factory() as session:
        ids = session.scalars(
            select(Checkout.id)
            .where(_status_in(Checkout.status, [CheckoutStatus.OPEN]), Checkout.expires_at <= now)
            .order_by(Checkout.expires_at)
            .limit(batch)
        ).all()
        session.rollback()
        expired = 0
        for checkout_id in ids:
            if expire_if_due(session, get_checkout(session, checkout_id), now):
                expired += 1
            session.rollback()  # end any read transaction before the next checkout
    return expired


def refresh_attempt(
    session: Session,
    catalog: Catalog,
    attempt: PaymentAttempt,
    *,
    min_interval: timedelta = RETURN_PAGE_QUERY_AFTER,
    grace: timedelta = DEFAULT_VA_EXPIRY_GRACE,
    now: datetime | None = None,
) -> bool:
    """Query one live attempt now, for a shopper who is waiting on a page.

    At most one query per attempt per `min_interval`, and none while the attempt moved
    (a notify arrived) within it; the claim is a conditional UPDATE, so two tabs cannot
    both query. Returns True if a query was made. The caller reloads what it shows.
    """
    now = now or utcnow()
    if attempt.status not in ATTEMPT_QUERYABLE:
        return False
    if attempt.updated_at is not None and now - attempt.updated_at < min_interval:
        return False
    session.commit()  # never hold a transaction (SQLite: the write lock) across the call
    threshold = now - min_interval
    claimed = session.execute(
        update(PaymentAttempt)
        .where(
            PaymentAttempt.id == attempt.id,
            PaymentAttempt.status.in_([str(s) for s in ATTEMPT_QUERYABLE]),
            or_(
                PaymentAttempt.last_queried_at.is_(None),
                PaymentAttempt.last_queried_at <= threshold,
            ),
        )
        .values(last_queried_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.commit()
    if claimed != 1:
        return False
    due = _Due(attempt.id, attempt.provider, attempt.trade_no, attempt.platform_trade_no)
    answer = _ask(catalog, due)
    _apply_answer(session, catalog, attempt.id, answer, now, grace)
    session.commit()
    session.expire_all()
    return True


def query_now(
    session: Session,
    catalog: Catalog,
    attempt: PaymentAttempt,
    *,
    grace: timedelta = DEFAULT_VA_EXPIRY_GRACE,
    now: datetime | None = None,
) -> None:
    """An operator's "query the provider now": any attempt, whatever its status.

    A failed or expired attempt is asked too: money the provider reports for it is kept
    (the state machine's late-money rule) and flagged, which is how "the customer paid but
    the order is open" gets fixed. The caller reloads what it shows.
    """
    now = now or utcnow()
    session.commit()  # never hold a transaction (SQLite: the write lock) across the call
    due = _Due(attempt.id, attempt.provider, attempt.trade_no, attempt.platform_trade_no)
    answer = _ask(catalog, due)
    _apply_answer(session, catalog, attempt.id, answer, now, grace)
    session.commit()
    session.expire_all()
