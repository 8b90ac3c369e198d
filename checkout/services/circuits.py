"""Circuit breakers per provider instance: the pure decision (checkout/domain/circuit.py) fed
by the instance's recent calls in provider_exchanges, plus the half-open probe slot.

What is shared is the calls themselves (provider_exchanges); each process folds them into its
own state. It does not read them for every decision: one read of up to 500 rows per create
was most of a create's CPU under load (and PostgreSQL's). So each process keeps, per
instance, the calls it last read and the calls it made itself since (`observed`, called where
a call is recorded, before its transaction commits), and reads again once that read is
`refresh_seconds` old (config `circuit_refresh_seconds`, default 0.5; 0 reads on every
decision). A process's own calls count at once, so a failure burst in one worker trips its
circuit at once; another process's calls (other workers, the reconcile worker) count from the
next read after they commit: at most `refresh_seconds` later than when they commit.

A call is never counted twice: a read replaces the calls read before and drops the own calls
observed until it is taken in (after it finished). Each of those was observed before its row
was written, so the row is in the read or was committed after the read's snapshot; the latter
are missed until the next read, never longer. (Keeping the own calls observed after the read
*started* could count one twice: a thread can be paused between noting the start and the
database taking its snapshot, while another thread records and commits a call.)

Half-open lets exactly one request through per process: `acquire` hands out one probe
permit under a lock, and refuses others until it is released (after the probe's answer is
recorded, which this process observes at once) or has been held longer than `probe_timeout`
seconds (a thread that died). Across processes (gunicorn workers) each process may send one
probe per cool-down; they all read the same provider_exchanges, so the first probe answer
committed decides for all of them, each seeing it at its next read: a success closes every
process's circuit, a failure reopens it for another cool-down.

Configuration (README "Circuit breaker"): `[circuit_breaker]` for every instance, and
`[providers.<name>.circuit_breaker]` over it for one instance; keys `enabled`, `failures`,
`error_rate`, `min_calls`, `window_seconds`, `cool_down_seconds`; `circuit_refresh_seconds`
at the top level.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter
from typing import TYPE_CHECKING

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from checkout.config import DEFAULT_REFRESH_SECONDS
from checkout.domain.circuit import (
    BreakerSettings,
    Call,
    CircuitState,
    CircuitView,
    circuit_view,
    is_failure,
)
from checkout.store.models import ProviderExchange, utcnow

if TYPE_CHECKING:
    from checkout.providers.http import Exchange

MAX_CALLS_READ = 500  # newest calls folded per decision (the lookback bounds them too)
# Built once (every read uses it): an instance's newest calls since a moment, newest first.
_RECENT_CALLS = (
    select(ProviderExchange.created_at, ProviderExchange.outcome)
    .where(
        ProviderExchange.provider == bindparam("provider"),
        ProviderExchange.created_at >= bindparam("since"),
    )
    .order_by(ProviderExchange.created_at.desc(), ProviderExchange.id.desc())
    .limit(MAX_CALLS_READ)
)
_AT = attrgetter("at")


@dataclass
class Permit:
    """Leave to call an instance; a probe's must be released once its answer is stored."""

    breakers: CircuitBreakers
    provider: str
    probe: bool

    def release(self) -> None:
        if self.probe:
            self.breakers._end_probe(self.provider)
            self.probe = False


@dataclass
class _Recent:
    """One instance's calls as this process knows them (guarded by CircuitBreakers._lock)."""

    read: tuple[Call, ...] = ()  # provider_exchanges at the last read, oldest first
    read_at: float | None = None  # monotonic time that read started; None: never read
    read_number: int = 0  # which read it was: one started later replaces it, never older
    # This process's calls observed since that read was taken in, in the order observed; only the
    # newest MAX_CALLS_READ can count, which bounds an instance nobody asks about (reconcile).
    own: deque[Call] = field(default_factory=lambda: deque(maxlen=MAX_CALLS_READ))


class CircuitBreakers:
    """The app's breakers (one object per process, thread-safe)."""

    def __init__(
        self,
        settings: Mapping[str, BreakerSettings],
        *,
        probe_timeout: float = 120.0,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = dict(settings)
        self._probe_timeout = probe_timeout
        self._refresh_seconds = refresh_seconds
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._probing: dict[str, float] = {}  # instance -> when its probe started
        self._recent: dict[str, _Recent] = {}
        self._reads = 0  # reads started, numbering them

    def settings_for(self, provider: str) -> BreakerSettings:
        return self._settings.get(provider, BreakerSettings())

    def view(
        self,
        session: Session,
        provider: str,
        now: datetime | None = None,
        *,
        fresh: bool = False,
    ) -> CircuitView:
        """The instance's state from its recent calls: those read from the database at most
        `refresh_seconds` ago (`fresh`: read now) and this process's own since."""
        settings = self.settings_for(provider)
        if not settings.enabled:
            return CircuitView(CircuitState.CLOSED)
        now = now or utcnow()
        if self._refresh_seconds == 0:  # every decision reads, nothing kept
            return circuit_view(self._read(session, provider, now, settings), now, settings)
        number = 0  # this thread's read, if it reads
        with self._lock:
            recent = self._recent.setdefault(provider, _Recent())
            started = self._monotonic()
            stale = (
                fresh or recent.read_at is None or started - recent.read_at >= self._refresh_seconds
            )
            if stale:
                self._reads += 1
                number = self._reads
        if stale:  # two threads may both read; the later-started read is kept
            read = tuple(self._read(session, provider, now, settings))  # not under the lock
            with self._lock:
                if number > recent.read_number:
                    recent.read, recent.read_at, recent.read_number = read, started, number
                    # Each observed before its row was written: in this read, or in the next.
                    recent.own.clear()
        with self._lock:
            read, own = recent.read, list(recent.own)
        return circuit_view(_merged(read, own, now - settings.lookback), now, settings)

    def observed(self, exchanges: Iterable[Exchange], at: datetime | None = None) -> None:
        """Calls this process made, counted by its breakers at once. Call it when they are
        recorded, before the transaction commits (so a read never holds one that is
        observed after it: module docstring)."""
        if self._refresh_seconds == 0:  # every decision reads the database
            return
        at = at or utcnow()
        with self._lock:
            for exchange in exchanges:
                if self.settings_for(exchange.provider).enabled:
                    recent = self._recent.setdefault(exchange.provider, _Recent())
                    recent.own.append(Call(at, is_failure(exchange.outcome)))

    def _read(
        self, session: Session, provider: str, now: datetime, settings: BreakerSettings
    ) -> list[Call]:
        """The instance's newest calls in the lookback, oldest first (one indexed read)."""
        rows = (
            session.connection()
            .execute(_RECENT_CALLS, {"provider": provider, "since": now - settings.lookback})
            .all()
        )
        return [Call(at, is_failure(outcome)) for at, outcome in reversed(rows)]

    def acquire(
        self, session: Session, provider: str, now: datetime | None = None
    ) -> tuple[CircuitView, Permit | None]:
        """The instance's state, and a permit to call it (None: skip it now)."""
        view = self.view(session, provider, now)
        if view.state == CircuitState.CLOSED:
            return view, Permit(self, provider, probe=False)
        if view.state == CircuitState.OPEN:
            return view, None
        with self._lock:  # half-open: one probe at a time in this process
            started = self._probing.get(provider)
            if started is not None and self._monotonic() - started < self._probe_timeout:
                return view, None
            self._probing[provider] = self._monotonic()
        return view, Permit(self, provider, probe=True)

    def _end_probe(self, provider: str) -> None:
        with self._lock:
            self._probing.pop(provider, None)


def _merged(read: Sequence[Call], own: list[Call], since: datetime) -> list[Call]:
    """The calls read and this process's own, oldest first, within the lookback from `since`
    and the newest MAX_CALLS_READ of them (as one read now would find them)."""
    calls = list(read[bisect_left(read, since, key=_AT) :])
    own = sorted((c for c in own if c.at >= since), key=_AT)  # threads may append out of order
    if own and calls and own[0].at < calls[-1].at:
        calls = sorted(calls + own, key=_AT)  # stable: ties keep the database's order
    else:
        calls += own
    return calls[-MAX_CALLS_READ:]
