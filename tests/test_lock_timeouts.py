"""Lock and statement timeouts (issue 12 item 3): a row held under lock elsewhere (a slow
transaction, an operator's psql) costs a notify a retryable 503 at once, never the pool:
pages, /healthz and /readyz answer meanwhile, and nothing is lost."""

from __future__ import annotations

import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import create_engine, select, text

from checkout.config import ConfigError
from checkout.config import database_timeouts as _database_timeouts
from checkout.store.db import DatabaseTimeouts, make_engine
from checkout.store.models import NotifyMessage
from tests.conftest import LiveApp
from tests.support.shopper import FLOWS, create_checkout, get_checkout
from tests.test_flows import start
from tests.test_hostile_input import _signed_paypro_notify

ON_POSTGRESQL = (os.environ.get("TEST_DATABASE_URL") or "").startswith("postgres")


def _notify(live_app: LiveApp, body: bytes) -> tuple[int, float]:
    started = time.monotonic()
    resp = requests.post(
        f"{live_app.url}/notify/{FLOWS[0].instance}",
        data=body,
        headers={"Content-Type": "application/json"},
        timeout=30,
    )
    return resp.status_code, time.monotonic() - started


def _still_serving(live_app: LiveApp, checkout_url: str) -> None:
    for url in (f"{live_app.url}/healthz", f"{live_app.url}/readyz", checkout_url):
        started = time.monotonic()
        resp = requests.get(url, timeout=10)
        assert resp.status_code == 200, (url, resp.status_code)
        assert time.monotonic() - started < 3, url


def test_timeouts_default_far_below_gunicorns_and_are_checked() -> None:
    defaults = DatabaseTimeouts()
    assert (defaults.lock, defaults.statement, defaults.pool, defaults.sqlite_busy) == (
        5.0,
        15.0,
        5.0,
        10.0,
    )
    assert _database_timeouts({"database_lock_timeout": 0.5}).lock == 0.5
    for bad in ({"database_lock_timeout": "soon"}, {"database_statement_timeout": -1}):
        with pytest.raises(ConfigError):
            _database_timeouts(bad)


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL row locks (TEST_DATABASE_URL)")
def test_postgresql_connections_carry_lock_and_statement_timeouts() -> None:
    from checkout.config import normalise_database_url

    url = normalise_database_url(os.environ["TEST_DATABASE_URL"])
    engine = make_engine(url, timeouts=DatabaseTimeouts(lock=1.5, statement=7, pool=2))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "1500ms"
            assert conn.execute(text("SHOW statement_timeout")).scalar() == "7s"
        assert engine.pool.timeout() == 2
    finally:
        engine.dispose()


@pytest.mark.skipif(not ON_POSTGRESQL, reason="PostgreSQL row locks (TEST_DATABASE_URL)")
@pytest.mark.app_config(database_lock_timeout=1, database_pool_size=4)
def test_a_locked_attempt_makes_notifies_answer_503_at_once_and_nothing_else_waits(
    live_app: LiveApp,
) -> None:
    flow = FLOWS[0]
    checkout, _shopper, _resp = start(live_app, flow)
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    other = create_checkout(live_app.url)
    body = _signed_paypro_notify(attempt["trade_no"], '"15000"', "15000")

    holder = create_engine(live_app.app.config["DATABASE_URL"])
    conn = holder.connect()
    try:
        trans = conn.begin()
        conn.execute(
            text("SELECT id FROM payment_attempts WHERE trade_no = :t FOR UPDATE"),
            {"t": attempt["trade_no"]},
        )
        # Twice the pool's size in notifies at once: each gives its connection back after
        # the lock timeout, so the pool never runs dry and nobody waits 30 s.
        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(lambda _: _notify(live_app, body), range(8)))
            _still_serving(live_app, other["url"])
            _still_serving(live_app, checkout["url"])
        assert [status for status, _ in answers] == [503] * 8, answers
        assert max(seconds for _, seconds in answers) < 10, answers
        trans.rollback()
    finally:
        conn.close()
        holder.dispose()

    with live_app.session() as session:
        kept = session.scalars(select(NotifyMessage).order_by(NotifyMessage.id)).all()
    assert len(kept) == 8  # every message stored as received, unprocessed
    assert {(m.verdict, m.response_status) for m in kept} == {("received", 503)}
    assert all(m.body == body.decode() for m in kept)
    # The provider's retry, once the lock is gone, is applied.
    status, _ = _notify(live_app, body)
    assert status == 200
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"


@pytest.mark.skipif(ON_POSTGRESQL, reason="the SQLite equivalent (a writer outside the app)")
@pytest.mark.app_config(sqlite_busy_timeout=1)
def test_sqlite_held_by_an_outside_writer_costs_a_notify_a_503_within_the_busy_timeout(
    live_app: LiveApp,
) -> None:
    flow = FLOWS[0]
    checkout, _shopper, _resp = start(live_app, flow)
    [attempt] = get_checkout(live_app.url, checkout["id"])["payment_attempts"]
    other = create_checkout(live_app.url)
    body = _signed_paypro_notify(attempt["trade_no"], '"15000"', "15000")
    path = live_app.app.config["DATABASE_URL"].removeprefix("sqlite:///")
    outside = sqlite3.connect(path, isolation_level=None, timeout=0)
    try:
        outside.execute("BEGIN IMMEDIATE")  # an operator's sqlite3 shell mid-transaction
        status, seconds = _notify(live_app, body)
        assert status == 503 and seconds < 5, (status, seconds)
        _still_serving(live_app, other["url"])
        outside.execute("ROLLBACK")
    finally:
        outside.close()
    status, _ = _notify(live_app, body)  # the provider's retry
    assert status == 200
    assert get_checkout(live_app.url, checkout["id"])["status"] == "paid"
