"""The database pool per process is configurable and checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from checkout import create_app
from checkout.config import ConfigError
from checkout.sandbox.keys import TeemoPayKeyFiles
from checkout.store.db import Database
from tests.support import app_config


def _config(tmp_path: Path, keys: TeemoPayKeyFiles, **extra: object) -> dict:
    raw = app_config.test_config(
        sandbox_url="http://127.0.0.1:9",
        public_base_url="http://127.0.0.1:8000",
        database_url="postgresql://postgres@127.0.0.1:5432/unused",  # never connected to
        instance_path=tmp_path,
        teemopay_keys=keys,
    )
    raw.update(extra)
    return raw


def test_pool_size_and_overflow_reach_the_engine(
    tmp_path: Path, teemopay_keys: TeemoPayKeyFiles
) -> None:
    app = create_app(
        _config(tmp_path, teemopay_keys, database_pool_size=3, database_max_overflow="4")
    )
    pool = Database.bound(app).engine.pool
    assert (pool.size(), pool._max_overflow) == (3, 4)  # type: ignore[attr-defined]
    default = create_app(_config(tmp_path, teemopay_keys))
    pool = Database.bound(default).engine.pool
    assert (pool.size(), pool._max_overflow) == (20, 0)  # type: ignore[attr-defined]


@pytest.mark.parametrize("value", ["ten", -1, None])
def test_a_bad_pool_size_stops_the_start(
    tmp_path: Path, teemopay_keys: TeemoPayKeyFiles, value: object
) -> None:
    with pytest.raises(ConfigError, match="database_pool_size"):
        create_app(_config(tmp_path, teemopay_keys, database_pool_size=value))


# ---------------------------------------------------------------- pings only when idle
def _pg_url() -> str:
    import os

    url = os.environ.get("TEST_DATABASE_URL", "")
    if not url.startswith("postgres"):
        pytest.skip("PostgreSQL only (TEST_DATABASE_URL)")
    from checkout.config import normalise_database_url

    return normalise_database_url(url)


def _pid(engine: object) -> int:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        return int(conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one())


def test_a_connection_back_a_moment_ago_is_not_pinged(monkeypatch: pytest.MonkeyPatch) -> None:
    from checkout.store.db import make_engine

    engine = make_engine(_pg_url(), pool_size=1)
    pings: list[object] = []
    real = engine.dialect.do_ping
    monkeypatch.setattr(engine.dialect, "do_ping", lambda c: pings.append(c) or real(c))
    first = _pid(engine)
    assert _pid(engine) == first  # the same pooled connection, reused at once
    assert pings == []
    engine.dispose()


def test_an_idle_connection_killed_by_the_server_is_replaced_before_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server (a restart, a failover, an idle cut) ends a pooled connection while it is
    idle: the next request gets a new one, not an error."""
    from sqlalchemy import create_engine

    import checkout.store.db
    from checkout.store.db import make_engine

    url = _pg_url()
    engine = make_engine(url, pool_size=1)
    first = _pid(engine)
    admin = create_engine(url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"SELECT pg_terminate_backend({first})")
    admin.dispose()
    monkeypatch.setattr(checkout.store.db, "IDLE_PING_SECONDS", 0.0)  # idle long enough, at once
    assert _pid(engine) != first
    engine.dispose()


# ---------------------------------------------------------------- what was committed
def test_a_commit_marks_the_work_as_sent_a_read_in_autocommit_does_not() -> None:
    """The retry after a lost connection (web/unavailable.py) runs a request again only if
    nothing of it was committed: every COMMIT the engine sends is noted, a read's is not."""
    from checkout.store.db import commit_sent, make_engine, reset_commit_sent

    engine = make_engine(_pg_url(), pool_size=1)
    assert not engine.dispatch.commit  # no connection events: connections need not join them
    reset_commit_sent()
    with engine.connect() as conn:
        reading = conn.execution_options(isolation_level="AUTOCOMMIT")
        reading.exec_driver_sql("SELECT 1")
        reading.commit()
    assert not commit_sent()
    with engine.connect() as conn:
        conn.exec_driver_sql("SELECT 1")
        conn.rollback()
    assert not commit_sent()
    with engine.begin() as conn:
        conn.exec_driver_sql("SELECT 1")
    assert commit_sent()
    reset_commit_sent()
    engine.dispose()
