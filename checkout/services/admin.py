"""The operator console's use cases: operators, search, audit, provider health, summaries."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, case, false, func, literal, null, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from checkout.domain.circuit import CircuitView
from checkout.domain.money import Money
from checkout.domain.payer import mobile_query_digits
from checkout.domain.states import AttemptStatus
from checkout.models import (
    Checkout,
    NotifyMessage,
    Operator,
    OperatorAction,
    OperatorSession,
    PaymentAttempt,
    ProviderExchange,
    StateEvent,
    UTCDateTime,
    WebhookEvent,
    utcnow,
)
from checkout.services.circuits import CircuitBreakers

PAGE_SIZE = 50
MIN_PASSWORD_LENGTH = 12
# Compared against when the name is unknown, so a wrong name costs as long as a wrong password.
_DUMMY_HASH = generate_password_hash("not-a-real-password-for-timing")


class OperatorError(ValueError):
    pass


def create_operator(session: Session, name: str, password: str) -> Operator:
    name = name.strip()
    if not name or len(name) > 64:
        raise OperatorError("the name must be 1 to 64 characters")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    operator = Operator(name=name, password_hash=generate_password_hash(password), active=True)
    session.add(operator)
    try:
        session.commit()
    except IntegrityError:
        session.rollback()
        raise OperatorError(f"an operator named {name!r} already exists") from None
    return operator


def _operator(session: Session, name: str) -> Operator:
    operator = session.scalars(select(Operator).where(Operator.name == name.strip())).one_or_none()
    if operator is None:
        raise OperatorError(f"no operator named {name.strip()!r}")
    return operator


def set_operator_active(session: Session, name: str, active: bool) -> Operator:
    """Deactivate (or reactivate) an operator: an inactive one cannot log in, and every
    session of theirs is revoked on the server at once."""
    operator = _operator(session, name)
    operator.active = active
    if not active:
        revoke_operator_sessions(session, operator.id, utcnow(), "deactivated")
    session.commit()
    return operator


def reset_password(session: Session, name: str, password: str) -> Operator:
    """A new password; every session opened before is revoked on the server, and the
    name's failed-login lock is lifted (the operator is told the new password)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"the password must be at least {MIN_PASSWORD_LENGTH} characters")
    operator = _operator(session, name)
    operator.password_hash = generate_password_hash(password)
    operator.failed_logins = 0
    operator.locked_until = None
    revoke_operator_sessions(session, operator.id, utcnow(), "password reset")
    session.commit()
    return operator


# ---------------------------------------------------------------- logins and sessions
# Wrong passwords for one name, from any address, before it locks; then each further one
# locks it for LOCK_BASE doubled per failure, at most LOCK_MAX. Attempts during a lock are
# refused unchecked (the right password too) and do not lengthen it.
FREE_FAILURES = 5
LOCK_BASE = timedelta(seconds=30)
LOCK_MAX = timedelta(minutes=15)
# A session's last_seen_at is written at most this often (the idle limit counts from it).
SEEN_EVERY = timedelta(seconds=30)


def lock_after(failures: int) -> timedelta | None:
    """How long `failures` wrong passwords in a row lock the name (None: not yet)."""
    if failures < FREE_FAILURES:
        return None
    return min(LOCK_BASE * 2 ** min(failures - FREE_FAILURES, 20), LOCK_MAX)


def authenticate(
    session: Session, name: str, password: str, at: datetime | None = None
) -> Operator | None:
    """The operator if `password` is theirs and the name is not locked; None otherwise,
    with the same answer and cost for an unknown name, a wrong password and a lock (a
    caller cannot tell which, so names cannot be probed).

    Each attempt is counted, and the lock its count earns is set, in one atomic UPDATE
    before the (slow) password check, and only while the name is not locked: guesses sent
    in parallel each take their own count, so at most FREE_FAILURES of them are ever
    checked before the lock holds. The right password clears both.
    """
    at = at or utcnow()
    operator = session.scalars(select(Operator).where(Operator.name == name)).one_or_none()
    claimed = None
    if operator is not None and operator.active:
        claimed = session.scalar(
            update(Operator)
            .where(
                Operator.id == operator.id,
                or_(Operator.locked_until.is_(None), Operator.locked_until <= at),
            )
            .values(failed_logins=Operator.failed_logins + 1, locked_until=_lock_for_next(at))
            .returning(Operator.failed_logins)
            .execution_options(synchronize_session=False)
        )
        session.commit()
    if operator is None or claimed is None:  # unknown, inactive or locked: nothing checked
        check_password_hash(_DUMMY_HASH, password)
        return None
    if not check_password_hash(operator.password_hash, password):
        return None  # counted, and locked if it was one too many, above
    session.refresh(operator)
    operator.failed_logins = 0
    operator.locked_until = None
    operator.last_login_at = at
    session.commit()
    return operator


def _lock_for_next(at: datetime) -> Any:
    """SQL for the lock the attempt being counted earns (NULL while still free)."""
    count = Operator.failed_logins + 1
    steps = range(FREE_FAILURES, FREE_FAILURES + 12)  # past these, LOCK_MAX
    return case(
        (count < FREE_FAILURES, null()),
        *[(count == n, literal(at + lock_after(n), UTCDateTime())) for n in steps],  # type: ignore[operator]
        else_=literal(at + LOCK_MAX, UTCDateTime()),
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def open_session(
    session: Session, operator: Operator, at: datetime, remote_addr: str | None
) -> str:
    """A new server-side session; returns the token for the cookie (stored only hashed)."""
    token = secrets.token_urlsafe(32)
    session.add(
        OperatorSession(
            token_sha256=_token_hash(token),
            operator_id=operator.id,
            created_at=at,
            last_seen_at=at,
            remote_addr=(remote_addr or "")[:64] or None,
        )
    )
    session.commit()
    return token


def session_operator(
    session: Session, token: str, at: datetime, idle: timedelta, max_age: timedelta
) -> Operator | None:
    """The operator whose live session `token` is, or None: unknown, revoked, idle longer
    than `idle`, older than `max_age` or of an inactive operator (those are revoked now)."""
    row = session.scalars(
        select(OperatorSession).where(OperatorSession.token_sha256 == _token_hash(token))
    ).one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    reason = None
    if at - row.last_seen_at > idle:
        reason = "idle"
    elif at - row.created_at > max_age:
        reason = "expired"
    elif not row.operator.active:
        reason = "deactivated"
    if reason is not None:
        row.revoked_at, row.revoked_reason = at, reason
        session.commit()
        return None
    if at - row.last_seen_at > SEEN_EVERY:  # not a write on every page
        row.last_seen_at = at
        session.commit()
    return row.operator


def revoke_session(session: Session, token: str, at: datetime, reason: str) -> None:
    session.execute(
        update(OperatorSession)
        .where(
            OperatorSession.token_sha256 == _token_hash(token),
            OperatorSession.revoked_at.is_(None),
        )
        .values(revoked_at=at, revoked_reason=reason)
    )
    session.commit()


def revoke_operator_sessions(session: Session, operator_id: int, at: datetime, reason: str) -> None:
    """Every live session of the operator ends (in the caller's transaction)."""
    session.execute(
        update(OperatorSession)
        .where(OperatorSession.operator_id == operator_id, OperatorSession.revoked_at.is_(None))
        .values(revoked_at=at, revoked_reason=reason)
    )


def record_action(
    session: Session,
    operator: str,
    action: str,
    checkout_id: str | None,
    *,
    target: str | None = None,
    detail: str | None = None,
) -> None:
    """Add an audit row to the caller's transaction (the caller commits)."""
    session.add(
        OperatorAction(
            operator=operator,
            action=action,
            checkout_id=checkout_id,
            target=target[:64] if target else None,
            detail=detail[:500] if detail else None,
            created_at=utcnow(),
        )
    )


def operator_cancel(session: Session, operator: str, checkout_id: str) -> str:
    """Cancel for an operator (open, or pending with nothing paid) and record the action
    with what really happened, in one transaction; returns that outcome for the page."""
    from checkout.services.checkouts import cancel_unpaid
    from checkout.services.errors import Conflict

    try:
        _checkout, was = cancel_unpaid(
            session, checkout_id, None, by=f"operator {operator}", allow_pending=True
        )
    except Conflict as exc:
        session.rollback()
        outcome = f"Not cancelled: {exc.message}"
    else:
        outcome = (
            "Already cancelled; nothing changed."
            if was is None
            else f"Checkout cancelled (was {was})."
        )
    record_action(session, operator, "cancel", checkout_id, detail=outcome)
    session.commit()
    return outcome


def operator_mark_review(session: Session, operator: str, checkout_id: str, reason: str) -> str:
    """Flag the checkout for review (the shop hears of it: checkout.review_required)."""
    from checkout.domain.ledger import flag_for_review
    from checkout.services.ledger import load_state, write_plan

    session.rollback()
    state = load_state(session, checkout_id)
    if state is None:
        return "No such checkout."
    write_plan(session, state, flag_for_review(state, reason, operator), utcnow())
    previous = state.review_reason
    record_action(
        session,
        operator,
        "mark_review",
        checkout_id,
        detail=f"{reason}" + (f"; was: {previous}" if previous else ""),
    )
    session.commit()
    return "Marked for review."


def operator_resolve_review(session: Session, operator: str, checkout_id: str, note: str) -> str:
    """Clear the checkout's review flag and its attempts' (checkout.review_resolved)."""
    from checkout.domain.ledger import resolve_review
    from checkout.services.ledger import load_state, write_plan

    session.rollback()
    state = load_state(session, checkout_id)
    if state is None:
        return "No such checkout."
    write_plan(session, state, resolve_review(state), utcnow())
    cleared = [f"{a.trade_no}: {a.review_reason}" for a in state.attempts if a.review_reason]
    record_action(
        session,
        operator,
        "resolve_review",
        checkout_id,
        detail=f"resolved by {operator}: {state.review_reason or '(attempts only)'}"
        + (f"; attempts: {', '.join(cleared)}" if cleared else "")
        + (f"; note: {note}" if note else ""),
    )
    session.commit()
    return f"Review resolved by {operator}."


# ---------------------------------------------------------------- search
@dataclass
class CheckoutFilter:
    order_id: str = ""
    trade_no: str = ""  # ours or the provider's (platform trade number)
    store: str = ""
    provider: str = ""
    status: str = ""
    date_from: date | None = None
    date_to: date | None = None
    payer: str = ""  # e-mail or mobile: exact, or the end of it
    needs_review: bool = False
    mode: str = ""  # "live", "test" (made with a test key) or "" for both

    def apply(self, query: Select[Any]) -> Select[Any]:
        if self.needs_review:
            query = query.where(needs_review())
        if self.mode in ("live", "test"):
            query = query.where(Checkout.livemode == (self.mode == "live"))
        if self.order_id:
            query = query.where(Checkout.order_id == self.order_id)
        if self.store:
            query = query.where(Checkout.store_id == self.store)
        if self.status:
            query = query.where(Checkout.status == self.status)
        if self.date_from:
            query = query.where(Checkout.created_at >= _day_start(self.date_from))
        if self.date_to:
            query = query.where(Checkout.created_at < _day_start(self.date_to + timedelta(1)))
        attempt_filters = []
        if self.trade_no:
            attempt_filters.append(
                or_(
                    PaymentAttempt.trade_no == self.trade_no,
                    PaymentAttempt.platform_trade_no == self.trade_no,
                )
            )
        if self.provider:
            attempt_filters.append(PaymentAttempt.provider == self.provider)
        if self.payer:
            attempt_filters.append(payer_condition(self.payer))
        if attempt_filters:
            query = query.where(
                Checkout.id.in_(select(PaymentAttempt.checkout_id).where(*attempt_filters))
            )
        return query


def payer_condition(typed: str) -> Any:
    """An e-mail (case-insensitive) or a mobile (digits only, as stored), exact or its end.

    A value with "@" or a letter is an e-mail (or its end, "example.com"); anything else is
    a mobile number, whatever spaces, dashes or country code were typed.
    """
    value = typed.strip()
    if "@" in value or any(c.isalpha() for c in value):
        email = func.lower(PaymentAttempt.payer_email)
        lowered = value.lower()
        return or_(email == lowered, email.endswith(lowered, autoescape=True))
    digits = mobile_query_digits(value)
    if not digits:
        return false()
    return or_(
        PaymentAttempt.payer_mobile == digits,
        PaymentAttempt.payer_mobile.endswith(digits, autoescape=True),
    )


def needs_review() -> Any:
    """Checkouts waiting for an operator: flagged themselves, or through one of their
    attempts (attempt flags are copied to the checkout; this also covers older rows)."""
    return or_(
        Checkout.review_reason.is_not(None),
        Checkout.id.in_(
            select(PaymentAttempt.checkout_id).where(PaymentAttempt.review_reason.is_not(None))
        ),
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def search_checkouts(
    session: Session, flt: CheckoutFilter, page: int = 1
) -> tuple[list[Checkout], int, dict[str, int]]:
    """(one page of checkouts, newest first; total matching; counts by status)."""
    base = flt.apply(select(Checkout))
    total = session.scalar(select(func.count()).select_from(base.subquery())) or 0
    rows = session.scalars(
        base.order_by(Checkout.created_at.desc(), Checkout.id)
        .limit(PAGE_SIZE)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    status_query = flt.apply(select(Checkout.status, func.count()).group_by(Checkout.status))
    counts = {status: n for status, n in session.execute(status_query).all()}
    return list(rows), total, counts


def notifies(
    session: Session, verdict: str = "", page: int = 1, *, trade_no: str = ""
) -> tuple[list[NotifyMessage], int]:
    """The inbox, newest first; by verdict, and by trade number (verified or only claimed)."""
    query = select(NotifyMessage)
    if verdict:
        query = query.where(NotifyMessage.verdict == verdict)
    if trade_no:
        query = query.where(
            or_(NotifyMessage.trade_no == trade_no, NotifyMessage.claimed_trade_no == trade_no)
        )
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = session.scalars(
        query.order_by(NotifyMessage.id.desc())
        .limit(PAGE_SIZE)
        .offset((max(page, 1) - 1) * PAGE_SIZE)
    ).all()
    return list(rows), total


def freshness_flags(
    session: Session, rows: list[NotifyMessage], max_ages: Mapping[str, int]
) -> dict[int, list[str]]:
    """Why each notify's freshness headers look wrong (notify id -> reasons): for providers
    that send them (`max_ages`: instance -> window in seconds), a timestamp outside the window
    or missing, and, for any, a nonce some earlier notify of the same instance carried (a
    replay). Shown, never acted on: a replay applies as a duplicate and moves no money."""
    nonces = {n.header_nonce for n in rows if n.header_nonce}
    first: dict[tuple[str, str], int] = {}
    if nonces:
        for provider, nonce, first_id in session.execute(
            select(NotifyMessage.provider, NotifyMessage.header_nonce, func.min(NotifyMessage.id))
            .where(NotifyMessage.header_nonce.in_(nonces))
            .group_by(NotifyMessage.provider, NotifyMessage.header_nonce)
        ):
            first[(provider, nonce)] = first_id
    flags: dict[int, list[str]] = {}
    for n in rows:
        found = []
        max_age = max_ages.get(n.provider)
        if max_age is not None:
            if n.header_timestamp is None:
                found.append("no usable timestamp header")
            else:
                skew = (n.received_at - n.header_timestamp).total_seconds()
                if skew > max_age:
                    found.append(
                        f"stale: sent {int(skew)} s before it arrived (window {max_age} s)"
                    )
                elif skew < -max_age:
                    found.append(f"timestamp {int(-skew)} s in the future (window {max_age} s)")
            if not n.header_nonce:
                found.append("no nonce header")
        if n.header_nonce:
            seen = first.get((n.provider, n.header_nonce))
            if seen is not None and seen != n.id:
                found.append(f"nonce seen before (notify #{seen}): a replay")
        if found:
            flags[n.id] = found
    return flags


# The providers page's windows: (label, how far back).
STATS_WINDOWS: tuple[tuple[str, timedelta], ...] = (
    ("1 h", timedelta(hours=1)),
    ("24 h", timedelta(hours=24)),
)


@dataclass
class CallStats:
    """One provider instance's calls (create and query) over one window, from the per-call
    records (`provider_exchanges`), so every gunicorn worker's and the worker's calls count."""

    calls: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)  # every outcome but "ok" -> calls
    # Nearest-rank percentiles of every call's duration (answered or not), in ms.
    p50_ms: int | None = None
    p95_ms: int | None = None

    @property
    def errors(self) -> int:
        return sum(self.outcomes.values())

    @property
    def error_rate(self) -> float | None:
        return self.errors / self.calls if self.calls else None


def provider_stats(
    session: Session, now: datetime | None = None
) -> dict[str, dict[str, CallStats]]:
    """Per provider instance, per window (STATS_WINDOWS): calls, the ones not `ok` by outcome
    (timeouts, connection errors, HTTP errors), and p50/p95 latency."""
    now = now or utcnow()
    stats: dict[str, dict[str, CallStats]] = {}
    for label, span in STATS_WINDOWS:
        since = now - span
        rows = session.execute(
            select(ProviderExchange.provider, ProviderExchange.outcome, func.count())
            .where(ProviderExchange.created_at >= since)
            .group_by(ProviderExchange.provider, ProviderExchange.outcome)
        ).all()
        for provider, outcome, n in rows:
            entry = stats.setdefault(provider, {}).setdefault(label, CallStats())
            entry.calls += n
            if outcome != "ok":
                entry.outcomes[outcome] = entry.outcomes.get(outcome, 0) + n
        for provider, windows in stats.items():
            entry = windows.get(label)
            if entry is None or not entry.calls:
                continue
            entry.p50_ms = _duration_percentile(session, provider, since, 0.50, entry.calls)
            entry.p95_ms = _duration_percentile(session, provider, since, 0.95, entry.calls)
    return stats


def failover_stats(
    session: Session, now: datetime | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """Per provider instance, per window (STATS_WINDOWS): payments that left it for another
    route, by reason, from the attempts' timeline (each created attempt's routing note)."""
    from checkout.domain.routing import skips_in_note

    now = now or utcnow()
    longest = max(span for _label, span in STATS_WINDOWS)
    rows = session.execute(
        select(StateEvent.created_at, StateEvent.detail).where(
            StateEvent.kind == "attempt",
            StateEvent.from_status.is_(None),
            StateEvent.created_at >= now - longest,
            StateEvent.detail.like("%; skipped %"),
        )
    ).all()
    stats: dict[str, dict[str, dict[str, int]]] = {}
    for at, detail in rows:
        for provider, reason in skips_in_note(detail):
            for label, span in STATS_WINDOWS:
                if at >= now - span:
                    by_reason = stats.setdefault(provider, {}).setdefault(label, {})
                    by_reason[reason] = by_reason.get(reason, 0) + 1
    return stats


def circuit_views(
    session: Session, circuits: CircuitBreakers, names: list[str]
) -> dict[str, CircuitView]:
    """Each instance's circuit as the next payment would find it."""
    return {name: circuits.view(session, name) for name in names}


def _duration_percentile(
    session: Session, provider: str, since: datetime, quantile: float, samples: int
) -> int | None:
    """The nearest-rank percentile: the smallest duration with `quantile` of the calls at or
    below it. The database sorts and skips (SQLite has no percentile function)."""
    rank = max(math.ceil(quantile * samples), 1)
    return session.scalar(
        select(ProviderExchange.duration_ms)
        .where(ProviderExchange.provider == provider, ProviderExchange.created_at >= since)
        .order_by(ProviderExchange.duration_ms)
        .offset(rank - 1)
        .limit(1)
    )


def database_ready(session: Session) -> bool:
    try:
        session.execute(text("SELECT 1"))
        return True
    except Exception:
        return False
    finally:
        session.rollback()


# ---------------------------------------------------------------- daily summary
def store_label(store_id: str, livemode: bool) -> str:
    """A store as the summary counts it: test-mode checkouts apart from live ones."""
    return store_id if livemode else f"{store_id} [test]"


def format_amount(amount: int, currency: str) -> str:
    """Minor units as the currency's units with its code: "KRW 15000", "MXN 150.00"."""
    return f"{currency} {Money(amount, currency).format_plain()}"


def format_amounts(amounts: Mapping[str, int]) -> str:
    return ", ".join(format_amount(a, c) for c, a in sorted(amounts.items())) or "-"


def _add(amounts: dict[str, int], currency: str, amount: int | None) -> None:
    if amount:
        amounts[currency] = amounts.get(currency, 0) + int(amount)


@dataclass
class StoreDay:
    """A store's checkouts created on the day, by their status now."""

    created: int = 0
    statuses: dict[str, int] = field(default_factory=dict)
    due: dict[str, int] = field(default_factory=dict)  # currency -> minor units
    paid: dict[str, int] = field(default_factory=dict)


@dataclass
class ProviderDay:
    """A store's payment attempts started on the day at one provider, by their status now:
    each attempt counts at its own provider."""

    attempts: int = 0
    paid: int = 0  # paid or partially paid
    failed: int = 0
    expired: int = 0
    live: int = 0  # still creating, pending or unknown
    amount_paid: dict[str, int] = field(default_factory=dict)


@dataclass
class DailySummary:
    day: date
    checkouts: dict[str, StoreDay]
    attempts: dict[tuple[str, str], ProviderDay]  # (store, provider instance)
    review: list[Checkout]  # waiting for review, whatever day they were created


def daily_summary(session: Session, day: date) -> DailySummary:
    """Checkouts created on `day` (UTC) per store; attempts started on `day` per store and
    provider (a checkout that failed at one provider and was paid at another counts a
    failure for the first and a payment for the second); and every checkout awaiting review."""
    start, end = _day_start(day), _day_start(day + timedelta(1))
    checkouts: dict[str, StoreDay] = {}
    for store, livemode, status, currency, n, due, paid in session.execute(
        select(
            Checkout.store_id,
            Checkout.livemode,
            Checkout.status,
            Checkout.currency,
            func.count(),
            func.sum(Checkout.amount),
            func.sum(Checkout.amount_paid),
        )
        .where(Checkout.created_at >= start, Checkout.created_at < end)
        .group_by(Checkout.store_id, Checkout.livemode, Checkout.status, Checkout.currency)
    ):
        row = checkouts.setdefault(store_label(store, livemode), StoreDay())
        row.created += n
        row.statuses[status] = row.statuses.get(status, 0) + n
        _add(row.due, currency, due)
        _add(row.paid, currency, paid)
    attempts: dict[tuple[str, str], ProviderDay] = {}
    for store, livemode, provider, status, currency, n, paid in session.execute(
        select(
            Checkout.store_id,
            Checkout.livemode,
            PaymentAttempt.provider,
            PaymentAttempt.status,
            PaymentAttempt.currency,
            func.count(),
            func.sum(PaymentAttempt.amount_paid),
        )
        .join(Checkout, Checkout.id == PaymentAttempt.checkout_id)
        .where(PaymentAttempt.created_at >= start, PaymentAttempt.created_at < end)
        .group_by(
            Checkout.store_id,
            Checkout.livemode,
            PaymentAttempt.provider,
            PaymentAttempt.status,
            PaymentAttempt.currency,
        )
    ):
        entry = attempts.setdefault((store_label(store, livemode), provider), ProviderDay())
        entry.attempts += n
        if status in (AttemptStatus.PAID, AttemptStatus.PARTIALLY_PAID):
            entry.paid += n
        elif status == AttemptStatus.FAILED:
            entry.failed += n
        elif status == AttemptStatus.EXPIRED:
            entry.expired += n
        else:
            entry.live += n
        _add(entry.amount_paid, currency, paid)
    review = session.scalars(
        select(Checkout).where(needs_review()).order_by(Checkout.created_at)
    ).all()
    return DailySummary(day, checkouts, attempts, list(review))


def review_reason_of(checkout: Checkout) -> str:
    """The checkout's flag, or its attempts' (rows flagged before flags were copied)."""
    if checkout.review_reason:
        return checkout.review_reason
    return "; ".join(
        f"attempt {a.trade_no}: {a.review_reason}" for a in checkout.attempts if a.review_reason
    )


def outbox_backlog(session: Session, now: datetime | None = None) -> tuple[int, float]:
    """(pending webhook events, age in seconds of the oldest one; 0 when none).

    The age counts from when each event last became due (`pending_since`: created, or
    resent by an operator), so resending a days-old event does not look like a stuck worker.
    """
    count, oldest = session.execute(
        select(func.count(), func.min(WebhookEvent.pending_since)).where(
            WebhookEvent.status == "pending"
        )
    ).one()
    if not count or oldest is None:
        return 0, 0.0
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=UTC)
    return int(count), max(((now or utcnow()) - oldest).total_seconds(), 0.0)


def counts_by(session: Session, column: Any) -> Mapping[str, int]:
    return {key: n for key, n in session.execute(select(column, func.count()).group_by(column))}
