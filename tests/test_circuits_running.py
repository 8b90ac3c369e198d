"""A process's running circuit state (checkout/services/circuits.py): the calls it read from
provider_exchanges at most `refresh_seconds` ago, plus its own calls as it makes them.

The breakers here get a fake monotonic clock, so "the refresh interval passed" is a step of
the clock; the database is the test app's (SQLite, or PostgreSQL with TEST_DATABASE_URL),
or a fake one where a test needs to act in the middle of a read."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, select

from checkout.config import BreakerConfigError, refresh_seconds_from_config
from checkout.domain.circuit import BreakerSettings, CircuitState
from checkout.providers.http import Exchange
from checkout.sandbox.keys import TeemoPayKeyFiles
from checkout.services.circuits import MAX_CALLS_READ, CircuitBreakers
from checkout.services.exchanges import record_exchanges
from checkout.store.db import db as app_db
from checkout.store.models import PaymentAttempt
from tests.conftest import LiveApp
from tests.test_admin import add_operator, login
from tests.test_limits import add_attempts
from tests.test_routing import attempts, pay, refuse

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PROVIDER = "paypro_kr"
# Only runs of failures open it (the error rate needs more calls than any test makes).
RUNS = BreakerSettings(failures=3, min_calls=1000, cool_down_seconds=600)


class Clock:
    """The breakers' monotonic clock, moved by hand."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breakers(
    settings: BreakerSettings = RUNS, refresh: float = 0.5
) -> tuple[CircuitBreakers, Clock]:
    clock = Clock()
    return (
        CircuitBreakers({PROVIDER: settings}, refresh_seconds=refresh, monotonic=clock),
        clock,
    )


def exchange(outcome: str, provider: str = PROVIDER) -> Exchange:
    return Exchange(provider, "POST", "/create", b"{}", None, None, outcome, 0.1)


# ---------------------------------------------------------------- on the app's database
@contextmanager
def counted_reads(live_app: LiveApp) -> Iterator[list[str]]:
    """The statements that read provider_exchanges while the block runs."""
    engine = app_db.bound(live_app.app).engine
    reads: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "provider_exchanges" in statement:
            reads.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield reads
    finally:
        event.remove(engine, "before_cursor_execute", count)


def an_attempt(live_app: LiveApp) -> int:
    """An attempt for the calls' rows to belong to."""
    add_attempts(live_app, 1, provider=PROVIDER)
    with live_app.session() as session:
        return session.scalars(select(PaymentAttempt.id)).one()


def record(
    live_app: LiveApp, attempt_id: int, outcomes: list[str], own: CircuitBreakers | None
) -> None:
    """Calls recorded as payments.py records them: rows in one transaction, observed by the
    process that made them (`own`) before it commits; `own=None`: another process's."""
    exchanges = [exchange(outcome) for outcome in outcomes]
    with live_app.session() as session:
        record_exchanges(session, attempt_id, "create", exchanges)
        if own is not None:
            own.observed(exchanges)
        session.commit()


def state(
    live_app: LiveApp, circuits: CircuitBreakers, provider: str = PROVIDER, **kwargs: Any
) -> CircuitState:
    with live_app.session() as session:
        return circuits.view(session, provider, **kwargs).state


def test_between_refreshes_the_database_is_not_read(live_app: LiveApp) -> None:
    circuits, clock = breakers()
    with counted_reads(live_app) as reads:
        for at in (0.0, 0.2, 0.49):
            clock.now = at
            assert state(live_app, circuits) == CircuitState.CLOSED
        assert len(reads) == 1
        clock.now = 0.5  # the read is refresh_seconds old
        state(live_app, circuits)
        assert len(reads) == 2
        state(live_app, circuits, fresh=True)  # the console's: always a read
        assert len(reads) == 3


def test_own_failures_open_the_circuit_at_once(live_app: LiveApp) -> None:
    circuits, _clock = breakers()
    attempt_id = an_attempt(live_app)
    with counted_reads(live_app) as reads:
        assert state(live_app, circuits) == CircuitState.CLOSED
        record(live_app, attempt_id, ["http_5xx", "timeout"], circuits)
        assert state(live_app, circuits) == CircuitState.CLOSED
        record(live_app, attempt_id, ["refused"], circuits)  # the third in a row
        assert state(live_app, circuits) == CircuitState.OPEN
        assert len(reads) == 1  # the first view's: none since


def test_another_process_calls_count_from_the_next_read_and_none_twice(
    live_app: LiveApp,
) -> None:
    circuits, clock = breakers(BreakerSettings(failures=4, min_calls=1000))
    attempt_id = an_attempt(live_app)
    assert state(live_app, circuits) == CircuitState.CLOSED  # read: nothing yet
    record(live_app, attempt_id, ["http_5xx", "http_5xx"], circuits)  # ours: 2 in a row
    record(live_app, attempt_id, ["timeout"], None)  # another worker's: not seen yet
    clock.now = 0.3
    assert state(live_app, circuits) == CircuitState.CLOSED
    # The next read holds all three rows; ours are not counted again (2 + 3 would open it).
    clock.now = 0.6
    assert state(live_app, circuits) == CircuitState.CLOSED
    record(live_app, attempt_id, ["timeout"], None)  # the other worker's fourth
    clock.now = 0.8
    assert state(live_app, circuits) == CircuitState.CLOSED
    clock.now = 1.1
    with live_app.session() as session:
        view = circuits.view(session, PROVIDER)
    assert view.state == CircuitState.OPEN and view.reason == "consecutive_failures"


def test_refresh_zero_reads_on_every_view_as_before(live_app: LiveApp) -> None:
    circuits, _clock = breakers(refresh=0)
    attempt_id = an_attempt(live_app)
    with counted_reads(live_app) as reads:
        # Observed but never stored (its transaction rolled back): only stored calls count.
        circuits.observed([exchange("timeout")] * 3)
        assert state(live_app, circuits) == CircuitState.CLOSED
        record(live_app, attempt_id, ["timeout", "timeout"], circuits)
        assert state(live_app, circuits) == CircuitState.CLOSED
        record(live_app, attempt_id, ["timeout"], None)
        assert state(live_app, circuits) == CircuitState.OPEN  # at once, from the read
        assert len(reads) == 3


# Reads may be 60 s old, so only a fresh read can show what this test writes behind the
# breakers' back.
@pytest.mark.app_config(
    circuit_refresh_seconds=60, circuit_breaker={"failures": 2, "cool_down_seconds": 600}
)
def test_the_console_shows_a_fresh_read(live_app: LiveApp) -> None:
    circuits = live_app.app.extensions["catalog"].circuits
    assert state(live_app, circuits) == CircuitState.CLOSED  # this process has read it
    record(live_app, an_attempt(live_app), ["http_5xx", "http_5xx"], None)  # another worker
    assert state(live_app, circuits) == CircuitState.CLOSED  # not read again yet
    add_operator(live_app)
    page = login(live_app).get(f"{live_app.url}/admin/providers").text
    row = page[page.index(f'id="circuit-{PROVIDER}"') :]
    assert 'class="state">open<' in row[: row.index("</tr>")]
    # The console's read is kept: the next payment in this process finds it open too.
    assert state(live_app, circuits) == CircuitState.OPEN


# ---------------------------------------------------------------- the call sites
# In these tests a worker's read may be 60 s old: only the calls it observes as it records
# them (services/payments.py, reconcile.py) can move its circuits while they run.
def app_circuits(live_app: LiveApp) -> CircuitBreakers:
    return live_app.app.extensions["catalog"].circuits


@pytest.mark.app_config(
    circuit_refresh_seconds=60,
    circuit_breaker={"failures": 2, "min_calls": 100, "cool_down_seconds": 1},
)
def test_a_workers_refused_and_answered_creates_move_its_circuit_at_once(
    live_app: LiveApp,
) -> None:
    sandbox = live_app.sandbox.state
    sandbox.inject_fault("paypro", "refuse", code="5000", count=None)
    for _ in range(2):
        checkout_id, resp = pay(live_app)
        assert resp.status_code == 303
        assert attempts(live_app, checkout_id) == [
            ("paypro_kr", "failed"),
            ("teemopay_kr", "pending"),
        ]
    checkout_id, _resp = pay(live_app)  # open: straight to TeemoPay
    assert attempts(live_app, checkout_id) == [("teemopay_kr", "pending")]
    sandbox.faults.clear()
    time.sleep(1.2)
    assert state(live_app, app_circuits(live_app)) == CircuitState.HALF_OPEN
    checkout_id, _resp = pay(live_app)  # the probe, answered: closes it
    assert attempts(live_app, checkout_id) == [("paypro_kr", "pending")]
    assert state(live_app, app_circuits(live_app)) == CircuitState.CLOSED


@pytest.mark.app_config(
    circuit_refresh_seconds=60, circuit_breaker={"failures": 1, "cool_down_seconds": 600}
)
@pytest.mark.provider_config(paypro_kr={"read_timeout": 0.5})
def test_a_workers_timed_out_create_counts_at_once(live_app: LiveApp) -> None:
    assert state(live_app, app_circuits(live_app)) == CircuitState.CLOSED  # read now
    live_app.sandbox.state.inject_fault("paypro", "read_timeout", delay=1.5)
    checkout_id, _resp = pay(live_app)
    assert attempts(live_app, checkout_id) == [("paypro_kr", "unknown")]
    assert state(live_app, app_circuits(live_app)) == CircuitState.OPEN


@pytest.mark.app_config(
    circuit_refresh_seconds=60, circuit_breaker={"failures": 1, "cool_down_seconds": 600}
)
def test_a_refusal_answered_as_a_failed_payment_counts_at_once(live_app: LiveApp) -> None:
    """TeemoPay's status 3 "Unstable network" is an answer (HTTP 200), stored as a refusal:
    observed as the refusal it is recorded as."""
    refuse(live_app, "paypro", "0100019")
    refuse(live_app, "teemopay", "3", message="Unstable network")
    checkout_id, resp = pay(live_app)
    assert resp.status_code == 303
    assert attempts(live_app, checkout_id)[-1] == ("diamondpay_kr", "pending")
    circuits = app_circuits(live_app)
    assert state(live_app, circuits, "paypro_kr") == CircuitState.OPEN
    assert state(live_app, circuits, "teemopay_kr") == CircuitState.OPEN
    assert state(live_app, circuits, "diamondpay_kr") == CircuitState.CLOSED


@pytest.mark.app_config(
    circuit_refresh_seconds=60, circuit_breaker={"failures": 1, "cool_down_seconds": 600}
)
def test_a_query_made_by_a_worker_counts_at_once(live_app: LiveApp) -> None:
    from checkout.extensions import catalog_of
    from checkout.services.reconcile import query_now

    checkout_id, _resp = pay(live_app)
    assert attempts(live_app, checkout_id) == [("paypro_kr", "pending")]
    assert state(live_app, app_circuits(live_app)) == CircuitState.CLOSED
    live_app.sandbox.state.inject_fault("paypro", "http_500", endpoint="query")
    with live_app.session() as session:
        attempt = session.scalars(select(PaymentAttempt)).one()
    with live_app.app.app_context(), live_app.session() as session:
        query_now(session, catalog_of(live_app.app), attempt)  # an operator's, in this worker
    assert state(live_app, app_circuits(live_app)) == CircuitState.OPEN


# ---------------------------------------------------------------- a fake database
class FakeDatabase:
    """A session whose only statement is the breakers' read of provider_exchanges: rows of
    (created_at, outcome), read as a snapshot. `before_snapshot`/`after_snapshot` run once in
    the next read, as another thread would meanwhile."""

    def __init__(self) -> None:
        self.rows: list[tuple[datetime, str]] = []
        self.reads = 0
        self.before_snapshot: Callable[[], None] | None = None
        self.after_snapshot: Callable[[], None] | None = None

    def connection(self) -> FakeDatabase:
        return self

    def execute(self, _statement: object, params: dict[str, Any]) -> FakeResult:
        self.reads += 1
        self._run("before_snapshot")
        since = params["since"]
        newest_first = sorted((r for r in self.rows if r[0] >= since), reverse=True)
        result = FakeResult(newest_first[:MAX_CALLS_READ])
        self._run("after_snapshot")
        return result

    def _run(self, name: str) -> None:
        hook = getattr(self, name)
        setattr(self, name, None)
        if hook is not None:
            hook()


@dataclass
class FakeResult:
    rows: list[tuple[datetime, str]]

    def all(self) -> list[tuple[datetime, str]]:
        return self.rows


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def view_state(circuits: CircuitBreakers, db: FakeDatabase, seconds: float) -> CircuitState:
    return circuits.view(db, PROVIDER, at(seconds)).state  # type: ignore[arg-type]


def test_a_call_recorded_during_a_read_is_counted_once() -> None:
    """Another thread observes a call while a read runs: if its row made the read's
    snapshot it counts from the read only; if not, from the next read."""
    circuits, clock = breakers(BreakerSettings(failures=2, min_calls=1000))
    db = FakeDatabase()

    def recorded(seconds: float) -> Callable[[], None]:
        def another_thread() -> None:  # observed before its commit, as payments.py does
            circuits.observed([exchange("timeout")], at(seconds))
            db.rows.append((at(seconds), "timeout"))

        return another_thread

    db.before_snapshot = recorded(1)  # committed before the snapshot: in the read
    assert view_state(circuits, db, 2) == CircuitState.CLOSED  # one failure, not two
    circuits.observed([exchange("timeout")], at(3))  # ours, after the read: the second
    assert view_state(circuits, db, 4) == CircuitState.OPEN

    circuits, clock = breakers(BreakerSettings(failures=2, min_calls=1000))
    db = FakeDatabase()
    db.after_snapshot = recorded(1)  # committed after the snapshot: missed by this read
    assert view_state(circuits, db, 2) == CircuitState.CLOSED
    circuits.observed([exchange("timeout")], at(3))
    db.rows.append((at(3), "timeout"))
    assert view_state(circuits, db, 4) == CircuitState.CLOSED  # the first one missed ...
    clock.now = 0.5
    assert view_state(circuits, db, 5) == CircuitState.OPEN  # ... until the next read
    assert db.reads == 2


def test_an_older_read_finishing_last_does_not_replace_a_newer_one() -> None:
    circuits, _clock = breakers(BreakerSettings(failures=1, cool_down_seconds=600))
    db = FakeDatabase()

    def meanwhile() -> None:  # after the first read's snapshot: a failure, a fresh read
        db.rows.append((at(1), "timeout"))
        assert view_state_fresh(circuits, db, 2) == CircuitState.OPEN

    db.after_snapshot = meanwhile
    assert view_state(circuits, db, 3) == CircuitState.OPEN  # the newer read is kept
    assert view_state(circuits, db, 4) == CircuitState.OPEN
    assert db.reads == 2


def view_state_fresh(circuits: CircuitBreakers, db: FakeDatabase, seconds: float) -> CircuitState:
    return circuits.view(db, PROVIDER, at(seconds), fresh=True).state  # type: ignore[arg-type]


def test_calls_older_than_the_lookback_drop_out_between_reads() -> None:
    settings = BreakerSettings(failures=1, window_seconds=60, cool_down_seconds=30)
    lookback = settings.lookback.total_seconds()  # 60 + 2 x 30
    circuits, _clock = breakers(settings, refresh=3600)
    db = FakeDatabase()
    db.rows.append((at(0), "timeout"))
    assert view_state(circuits, db, 1) == CircuitState.OPEN
    assert view_state(circuits, db, lookback + 1) == CircuitState.CLOSED  # the read's call
    circuits.observed([exchange("timeout")], at(lookback + 2))
    assert view_state(circuits, db, lookback + 3) == CircuitState.OPEN
    assert view_state(circuits, db, 2 * lookback + 3) == CircuitState.CLOSED  # our call
    assert db.reads == 1


def test_between_reads_the_newest_calls_are_folded_as_a_read_would_bound_them() -> None:
    """500 successes read, then 499 failures of ours: of the newest 500 calls all but one
    failed (all 999 together: less than half)."""
    settings = BreakerSettings(
        failures=10000, error_rate=0.5, min_calls=10, window_seconds=3600, cool_down_seconds=3600
    )
    circuits, _clock = breakers(settings)
    db = FakeDatabase()
    db.rows.extend((at(i), "ok") for i in range(MAX_CALLS_READ))
    assert view_state(circuits, db, 600) == CircuitState.CLOSED
    for i in range(MAX_CALLS_READ - 1):
        circuits.observed([exchange("http_5xx")], at(600 + i))
    view = circuits.view(db, PROVIDER, at(1200))  # type: ignore[arg-type]
    assert view.state == CircuitState.OPEN and view.reason == "error_rate"
    assert db.reads == 1


def test_calls_count_for_their_instance_and_a_disabled_breaker_never_reads() -> None:
    circuits = CircuitBreakers(
        {PROVIDER: RUNS, "off": BreakerSettings(enabled=False)}, monotonic=Clock()
    )
    db = FakeDatabase()
    for name in (PROVIDER, "teemopay_kr"):  # read once: calls observed since count
        circuits.view(db, name, at(0))  # type: ignore[arg-type]
    circuits.observed([exchange("timeout", "off")] * 5, at(1))
    circuits.observed([exchange("timeout", "teemopay_kr")] * 5, at(1))
    assert circuits.view(db, "off", at(2)).state == CircuitState.CLOSED  # type: ignore[arg-type]
    assert db.reads == 2  # a disabled breaker never reads
    assert view_state(circuits, db, 2) == CircuitState.CLOSED  # none of them PayPro's
    # TeemoPay's five in a row (the default thresholds) open its circuit.
    assert circuits.view(db, "teemopay_kr", at(2)).state == CircuitState.OPEN  # type: ignore[arg-type]


# ---------------------------------------------------------------- configuration
def test_refresh_seconds_are_configured_and_checked() -> None:
    assert refresh_seconds_from_config({}) == 0.5
    assert refresh_seconds_from_config({"circuit_refresh_seconds": 0}) == 0.0
    assert refresh_seconds_from_config({"circuit_refresh_seconds": 60}) == 60.0
    for bad in (-1, 61, "soon", True, None):
        with pytest.raises(BreakerConfigError, match="circuit_refresh_seconds"):
            refresh_seconds_from_config({"circuit_refresh_seconds": bad})


def test_a_bad_refresh_stops_the_app_at_start(
    tmp_path: Path, teemopay_keys: TeemoPayKeyFiles
) -> None:
    from checkout import create_app
    from checkout.config import ConfigError
    from tests.support.app_config import test_config

    config = test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:9",
        database_url=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        instance_path=tmp_path,
        teemopay_keys=teemopay_keys,
    )
    config["circuit_refresh_seconds"] = 120
    with pytest.raises(ConfigError, match="circuit_refresh_seconds"):
        create_app(config)
