"""The providers page: call statistics, failovers and circuits per provider instance."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from checkout.domain.circuit import CircuitView
from checkout.domain.routing import skips_in_note
from checkout.services.circuits import CircuitBreakers
from checkout.store.models import ProviderExchange, StateEvent, utcnow

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
    """Each instance's circuit from a read now: what every worker finds by its next read (a
    worker's own may be up to `circuit_refresh_seconds` old)."""
    return {name: circuits.view(session, name, fresh=True) for name in names}


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
