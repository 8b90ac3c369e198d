"""Circuit breakers per provider instance: the pure decision (checkout/domain/circuit.py) fed
by the instance's recent calls in provider_exchanges, plus the half-open probe slot.

Half-open lets exactly one request through per process: `acquire` hands out one probe
permit under a lock, and refuses others until it is released (after the probe's answer is
committed, so the next reader sees it) or has been held longer than `probe_timeout`
seconds (a thread that died). Across processes (gunicorn workers) each process may send one
probe per cool-down; they all read the same provider_exchanges, so the first probe answer
committed decides for all of them: a success closes every process's circuit, a failure
reopens it for another cool-down.

Configuration (README "Circuit breaker"): `[circuit_breaker]` for every instance, and
`[providers.<name>.circuit_breaker]` over it for one instance; keys `enabled`, `failures`,
`error_rate`, `min_calls`, `window_seconds`, `cool_down_seconds`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from checkout.domain.circuit import (
    BreakerSettings,
    Call,
    CircuitState,
    CircuitView,
    circuit_view,
    is_failure,
)
from checkout.models import ProviderExchange, utcnow

MAX_CALLS_READ = 500  # newest calls folded per decision (the lookback bounds them too)
# Built once (every create reads it): an instance's newest calls since a moment, newest first.
_RECENT_CALLS = (
    select(ProviderExchange.created_at, ProviderExchange.outcome)
    .where(
        ProviderExchange.provider == bindparam("provider"),
        ProviderExchange.created_at >= bindparam("since"),
    )
    .order_by(ProviderExchange.created_at.desc(), ProviderExchange.id.desc())
    .limit(MAX_CALLS_READ)
)
SETTING_KEYS = {f.name for f in fields(BreakerSettings)}


class BreakerConfigError(ValueError):
    """A [circuit_breaker] table that cannot work; the message names the key."""


def breaker_settings(table: Any, base: BreakerSettings, where: str) -> BreakerSettings:
    """`base` with the keys of a `[circuit_breaker]` table over it, each checked."""
    if table is None:
        return base
    if not isinstance(table, Mapping):
        raise BreakerConfigError(f"{where} must be a table")
    unknown = set(table) - SETTING_KEYS
    if unknown:
        raise BreakerConfigError(
            f"{where}: unknown key(s) {', '.join(sorted(unknown))}; "
            f"known: {', '.join(sorted(SETTING_KEYS))}"
        )
    values: dict[str, Any] = {}
    for key, value in table.items():
        if key == "enabled":
            if not isinstance(value, bool):
                raise BreakerConfigError(f"{where}.enabled must be true or false")
        elif key in ("failures", "min_calls"):
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 10000:
                raise BreakerConfigError(f"{where}.{key} must be a whole number 1 to 10000")
        elif key == "error_rate":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
                raise BreakerConfigError(f"{where}.error_rate must be between 0 and 1 (e.g. 0.5)")
            value = float(value)
        elif (
            isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 86400
        ):
            raise BreakerConfigError(f"{where}.{key} must be seconds, more than 0 up to 86400")
        else:
            value = float(value)
        values[key] = value
    return replace(base, **values)


def breaker_settings_from_config(
    raw: Mapping[str, Any], instances: Mapping[str, Mapping[str, Any]]
) -> dict[str, BreakerSettings]:
    """Each instance's thresholds; `instances` maps instance names to their settings."""
    default = breaker_settings(raw.get("circuit_breaker"), BreakerSettings(), "circuit_breaker")
    return {
        name: breaker_settings(
            settings.get("circuit_breaker"), default, f"providers.{name}.circuit_breaker"
        )
        for name, settings in instances.items()
    }


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


class CircuitBreakers:
    """The app's breakers (one object per process, thread-safe)."""

    def __init__(
        self,
        settings: Mapping[str, BreakerSettings],
        *,
        probe_timeout: float = 120.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = dict(settings)
        self._probe_timeout = probe_timeout
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._probing: dict[str, float] = {}  # instance -> when its probe started

    def settings_for(self, provider: str) -> BreakerSettings:
        return self._settings.get(provider, BreakerSettings())

    def view(self, session: Session, provider: str, now: datetime | None = None) -> CircuitView:
        """The instance's state from its recent calls (one indexed read)."""
        settings = self.settings_for(provider)
        if not settings.enabled:
            return CircuitView(CircuitState.CLOSED)
        now = now or utcnow()
        rows = (
            session.connection()
            .execute(_RECENT_CALLS, {"provider": provider, "since": now - settings.lookback})
            .all()
        )
        calls = [Call(at, is_failure(outcome)) for at, outcome in reversed(rows)]
        return circuit_view(calls, now, settings)

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

    def probing(self, provider: str) -> bool:
        with self._lock:
            return provider in self._probing

    def _end_probe(self, provider: str) -> None:
        with self._lock:
            self._probing.pop(provider, None)
