"""The database: one engine per app, one session per request (bound with init_app)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

# Set by Database.reading(): the transaction about to begin only reads (SQLite: DEFERRED).
_reading: ContextVar[bool] = ContextVar("checkout_db_reading", default=False)


def make_engine(url: str, pool_size: int = 10, max_overflow: int = 10) -> Engine:
    """The engine for `url`. PostgreSQL: `pool_size` + `max_overflow` connections at most per
    process (every gunicorn worker has its own pool; keep workers x both < max_connections)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let pysqlite stop issuing its own BEGIN; we emit BEGIN IMMEDIATE below
            # so concurrent writers queue on the lock instead of failing to upgrade.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN" if _reading.get() else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, pool_pre_ping=True, pool_size=pool_size, max_overflow=max_overflow, pool_timeout=30
    )


@dataclass
class BoundDatabase:
    engine: Engine
    session_factory: sessionmaker[Session]


class Database:
    """Per-app engine and session factory (kept in app.extensions, not on this object)."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(
            app.config["DATABASE_URL"],
            pool_size=app.config.get("DATABASE_POOL_SIZE", 10),
            max_overflow=app.config.get("DATABASE_MAX_OVERFLOW", 10),
        )
        app.extensions["db"] = BoundDatabase(engine, sessionmaker(engine, expire_on_commit=False))
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def bound(app: Flask) -> BoundDatabase:
        return app.extensions["db"]

    @property
    def session(self) -> Session:
        """The session of the current request or app context (created on first use)."""
        if "db_session" not in g:
            g.db_session = self.bound(current_app).session_factory()
        return g.db_session

    @contextmanager
    def reading(self) -> Iterator[Session]:
        """The request's session for a block of reads that need no transaction.

        PostgreSQL: the block runs in autocommit (no BEGIN/COMMIT round trips; each statement
        sees a consistent snapshot, so load what belongs together in one statement). SQLite:
        a DEFERRED transaction (a shared read, no write lock), so readers do not wait for
        each other or for writers. Loaded objects stay usable (expire_on_commit=False); a
        later write begins its own transaction as usual. Inside a transaction already begun,
        the block simply reads in it.
        """
        session = self.session
        if session.in_transaction():
            yield session
            return
        if session.get_bind().dialect.name == "postgresql":
            session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        token = _reading.set(True)
        try:
            yield session
        finally:
            _reading.reset(token)
        session.commit()  # ends the read; the connection goes back to the pool

    def _close_session(self, _exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = Database()
