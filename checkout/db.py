"""The database: one engine per app, one session per request (bound with init_app)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def make_engine(url: str) -> Engine:
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
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


@dataclass
class BoundDatabase:
    engine: Engine
    session_factory: sessionmaker[Session]


class Database:
    """Per-app engine and session factory (kept in app.extensions, not on this object)."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
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

    def _close_session(self, _exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


db = Database()
