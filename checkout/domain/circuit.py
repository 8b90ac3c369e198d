"""The circuit breaker's decision, pure: a provider instance's recent calls in, its state out.

Fold over the calls, oldest first (README "Circuit breaker"):
- closed: a failure adds to the run of consecutive failures, a success ends it; the
  circuit opens on `failures` consecutive failures, or when, over the last `window_seconds`,
  at least `min_calls` calls were made and the share that failed is above `error_rate`.
- open: calls during the cool-down are ignored (calls already under way when it opened, or
  another process's); the first call after the cool-down is the probe: a success closes it
  (the counts start again), a failure opens it for another cool-down.
- at `now`: open with its cool-down over is half-open: one probe may go.

Nothing but the calls themselves (the provider_exchanges table) is shared: every process
folds the same calls into the same state, once it has read them. A process reads them again
once its last read is `circuit_refresh_seconds` old and folds its own calls in as it makes
them (services/circuits.py), so another process's calls reach it up to that much later.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# provider_exchanges.outcome values that count as a success; everything else (timeouts,
# refused connections, HTTP 5xx/4xx, "refused" refusals that created nothing) is a failure.
SUCCESS_OUTCOMES = frozenset({"ok"})


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"  # the cool-down is over: one probe call decides


@dataclass(frozen=True)
class BreakerSettings:
    """Thresholds ([circuit_breaker] in the config; per instance under its provider table)."""

    enabled: bool = True
    failures: int = 5  # consecutive failures that open the circuit
    error_rate: float = 0.5  # share of failed calls over the window above which it opens
    min_calls: int = 10  # calls the window needs before its error rate counts
    window_seconds: float = 60.0
    cool_down_seconds: float = 30.0

    @property
    def lookback(self) -> timedelta:
        """How far back calls are read: the window plus enough cool-downs that a run of
        failed probes alone opens the circuit again."""
        return timedelta(seconds=self.window_seconds + (self.failures + 1) * self.cool_down_seconds)


@dataclass(frozen=True)
class Call:
    at: datetime
    failed: bool


@dataclass(frozen=True)
class CircuitView:
    state: CircuitState
    reason: str | None = None  # "consecutive_failures" | "error_rate" while open
    opened_at: datetime | None = None
    retry_at: datetime | None = None  # the end of the cool-down

    @property
    def allows_calls(self) -> bool:
        return self.state != CircuitState.OPEN


def is_failure(outcome: str) -> bool:
    return outcome not in SUCCESS_OUTCOMES


def circuit_view(calls: Iterable[Call], now: datetime, settings: BreakerSettings) -> CircuitView:
    """The state after `calls` (oldest first), as seen at `now`."""
    if not settings.enabled:
        return CircuitView(CircuitState.CLOSED)
    cool_down = timedelta(seconds=settings.cool_down_seconds)
    window = timedelta(seconds=settings.window_seconds)
    opened_at: datetime | None = None
    reason: str | None = None
    run = 0
    recent: deque[Call] = deque()
    failed = 0  # the failed calls in `recent`, kept as calls come and go (not counted again)
    for call in calls:
        if opened_at is not None:
            if call.at < opened_at + cool_down:
                continue
            if call.failed:
                opened_at = call.at  # the probe failed: another cool-down
                continue
            opened_at, reason, run = None, None, 0  # the probe passed
            recent.clear()
            failed = 0
            continue
        run = run + 1 if call.failed else 0
        recent.append(call)
        failed += call.failed
        while recent and recent[0].at <= call.at - window:
            failed -= recent.popleft().failed
        if run >= settings.failures:
            opened_at, reason = call.at, "consecutive_failures"
        elif len(recent) >= settings.min_calls and failed / len(recent) > settings.error_rate:
            opened_at, reason = call.at, "error_rate"
        if opened_at is not None:
            run = 0
            recent.clear()
            failed = 0
    if opened_at is None:
        return CircuitView(CircuitState.CLOSED)
    retry_at = opened_at + cool_down
    state = CircuitState.OPEN if now < retry_at else CircuitState.HALF_OPEN
    return CircuitView(state, reason, opened_at, retry_at)
