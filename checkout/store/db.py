"""The database: one engine per app, one session per request (bound with init_app)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar

from flask import Flask, current_app, g
from sqlalchemy import Engine, create_engine, event, exc, make_url
from sqlalchemy.orm import Session, sessionmaker

from checkout.store.errors import WriteTurnTimeout

try:
    import fcntl
except ImportError:  # Windows: SQLite's own busy wait only
    fcntl = None  # type: ignore[assignment]

T = TypeVar("T")

# Set by Database.reading(): the transaction about to begin only reads (SQLite: DEFERRED).
_reading: ContextVar[bool] = ContextVar("checkout_db_reading", default=False)


WRITE_WAIT_SECONDS = 10.0  # default wait for a turn to write (SQLite), as its busy timeout


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long one database wait may last, all well below gunicorn's 30 s worker timeout,
    so a held lock costs the requests behind it an error they can retry, never the worker.

    `lock`: PostgreSQL's lock_timeout (a row or table lock waited for); `statement`: its
    statement_timeout (one statement's run); `pool`: a request's wait for a pooled
    connection; `sqlite_busy`: SQLite's busy timeout and the wait for a write turn
    (SQLiteWriteQueue). Seconds; 0 turns PostgreSQL's two off (never for production).
    """

    lock: float = 5.0
    statement: float = 15.0
    pool: float = 5.0
    sqlite_busy: float = WRITE_WAIT_SECONDS


class SQLiteWriteQueue:
    """Writers to one SQLite file take turns in a queue instead of polling its lock.

    SQLite lets one writer in at a time; the others retry in sleeps that grow to 100 ms, so
    under load the lock sits free while every waiter sleeps (a third of the notifies a bare
    insert manages, p99 of seconds). Here a write transaction first takes a lock of this
    process (threads queue on it and wake at once) and then an flock on a file beside the
    database (one waiter per process, polled every millisecond or two). SQLite's own lock
    then never has to be waited for, except against a program outside this app.
    """

    def __init__(self, database_path: str, wait_seconds: float = WRITE_WAIT_SECONDS) -> None:
        self.path = database_path + ".write-lock"
        self.wait_seconds = wait_seconds
        self._thread_lock = threading.RLock()
        self._depth = 0  # nested write transactions of the thread holding the lock
        self._fd: int | None = None
        self._pid = 0

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait_seconds
        if not self._thread_lock.acquire(timeout=self.wait_seconds):
            raise WriteTurnTimeout(f"no turn to write to SQLite in {self.wait_seconds:g} s")
        try:
            self._depth += 1
            if self._depth == 1:
                self._lock_file(deadline)
        except BaseException:
            self._depth -= 1
            self._thread_lock.release()
            raise

    def release(self) -> None:
        try:
            self._depth -= 1
            if self._depth == 0 and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._thread_lock.release()

    def _lock_file(self, deadline: float) -> None:
        if self._fd is None or self._pid != os.getpid():
            # After a fork the inherited descriptor shares its lock with the parent: reopen.
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        pause = 0.0002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise WriteTurnTimeout(
                        f"no turn to write to SQLite in {self.wait_seconds:g} s"
                    ) from None
                time.sleep(pause)
                pause = min(pause * 2, 0.002)


_QUEUE = "sqlite_write_queue"  # connection.info: the queue this connection holds a turn of


def _sqlite_file(url: str) -> str | None:
    """The database file of a SQLite URL, or None for an in-memory database."""
    database = make_url(url).database
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        return None
    return os.path.abspath(database)


def make_engine(
    url: str,
    pool_size: int = 20,
    max_overflow: int = 0,
    timeouts: DatabaseTimeouts | None = None,
) -> Engine:
    """The engine for `url`. PostgreSQL: `pool_size` + `max_overflow` connections at most per
    process (every gunicorn worker has its own pool; keep workers x both < max_connections).
    Every connection carries `timeouts` (DatabaseTimeouts)."""
    timeouts = timeouts or DatabaseTimeouts()
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": timeouts.sqlite_busy},
            pool_timeout=timeouts.pool,
        )
        path = _sqlite_file(url)
        queue = (
            SQLiteWriteQueue(path, timeouts.sqlite_busy)
            if path is not None and fcntl is not None
            else None
        )

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
            if _reading.get():
                conn.exec_driver_sql("BEGIN")
                return
            if queue is not None:
                queue.acquire()
                conn.info[_QUEUE] = queue
            try:
                conn.exec_driver_sql("BEGIN IMMEDIATE")
            except BaseException:
                _give_turn_back(conn.info)
                raise

        # These fire just before the COMMIT or ROLLBACK goes out: the next writer may wait a
        # moment on SQLite's own lock, but a turn can never outlive its transaction.
        @event.listens_for(engine, "commit")
        @event.listens_for(engine, "rollback")
        def _sqlite_end(conn: Any) -> None:
            _give_turn_back(conn.info)

        @event.listens_for(engine, "checkin")
        def _sqlite_checkin(dbapi_conn: Any, record: Any) -> None:
            # A connection returned with its transaction still open (the pool rolls it back).
            _give_turn_back(record.info)

        return engine
    # Session settings sent with each connection's startup packet (no extra round trip): a
    # statement waiting on a lock (an operator's psql, a slow transaction) fails after
    # `lock` instead of holding its connection until the pool is empty; notifies answer
    # that with a retryable 503 (services/provider_notifies.py).
    options = (
        f"-c lock_timeout={round(timeouts.lock * 1000)}"
        f" -c statement_timeout={round(timeouts.statement * 1000)}"
    )
    engine = create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=timeouts.pool,
        connect_args={"options": options},
    )
    ping_when_idle(engine)
    _note_commits(engine)
    return engine


def _note_commits(engine: Engine) -> None:
    """Every COMMIT this engine sends marks the context's work as committed (`commit_sent`).

    Through the dialect's `do_commit` (each engine has a dialect of its own), not a `commit`
    event: an engine with any connection event makes each of its connections join the
    engine's event dispatch and fire it around every statement, a few per cent of a page's
    work on PostgreSQL (bench/notes.md)."""
    dialect = engine.dialect
    send_commit = dialect.do_commit

    def do_commit(dbapi_connection: Any) -> None:
        # A read in autocommit has nothing to commit (Database.reading).
        if not getattr(dbapi_connection, "autocommit", False):
            note_commit_sent()
        send_commit(dbapi_connection)

    dialect.do_commit = do_commit  # type: ignore[method-assign]


IDLE_PING_SECONDS = 1.0  # a pooled connection idle longer is pinged before it is used


def ping_when_idle(engine: Engine, idle_seconds: float | None = None) -> None:
    """Ping a pooled connection at checkout only if it sat idle for `idle_seconds`.

    SQLAlchemy's `pool_pre_ping` pings on every checkout: a round trip before every request's
    first statement (three per payment creation, which checks out three times). A connection
    handed back a moment ago was alive a moment ago; one idle longer (a restarted or failed
    over server, a firewall's idle cut) is pinged, and a dead one is replaced before use
    (DisconnectionError makes the pool connect anew; SQLAlchemy's documented pessimistic
    recipe). A server lost within the last second costs at most one failed statement per
    process: the first disconnect error invalidates the whole pool.
    """

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _ping_if_idle(dbapi_conn: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        limit = IDLE_PING_SECONDS if idle_seconds is None else idle_seconds
        if since is None or time.monotonic() - since < limit:
            return  # new, or returned a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_conn)
        except Exception as error:
            raise exc.DisconnectionError(f"pooled connection failed its ping: {error}") from error
        if not alive:
            raise exc.DisconnectionError("pooled connection failed its ping")


_IDLE_SINCE = "checkout_idle_since"


@contextmanager
def read_only_connection(engine: Engine) -> Iterator[Any]:
    """A pooled connection of its own for a few reads that need no transaction, set up as
    `Database.reading()` sets up the session (PostgreSQL in autocommit; SQLite a DEFERRED,
    shared-read transaction, so no write turn is taken), without the session's bookkeeping."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            yield conn.execution_options(isolation_level="AUTOCOMMIT")
        return
    token = _reading.set(True)
    try:
        with engine.connect() as conn:
            yield conn
            conn.commit()
    finally:
        _reading.reset(token)


def is_lock_timeout(error: BaseException) -> bool:
    """True for a wait that ran out (DatabaseTimeouts): PostgreSQL's lock_timeout (55P03)
    or statement_timeout (57014), SQLite's "database is locked", no write turn, no pooled
    connection. Such an error is worth retrying a moment later; nothing was written."""
    from sqlalchemy.exc import DBAPIError
    from sqlalchemy.exc import TimeoutError as PoolTimeout

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, WriteTurnTimeout | PoolTimeout):
            return True
        if isinstance(current, DBAPIError):
            original = current.orig
            code = getattr(original, "sqlstate", None) or getattr(original, "pgcode", None)
            if code in ("55P03", "57014"):
                return True
            if "database is locked" in str(original):
                return True
        current = current.__cause__ or current.__context__
    return False


# SQLSTATEs of a server that ended or refused the connection: class 08 (connection
# exception), 57P01-57P03 (admin or crash shutdown, cannot connect now).
_CONNECTION_LOST_STATES = ("57P01", "57P02", "57P03")


def is_connection_lost(error: BaseException) -> bool:
    """True for a statement (or a pooled connection's checkout) that failed because the
    server ended or refused the connection: a restart, a failover, a killed backend. The
    statement may be tried again on a new connection once the server is back; whether the
    request's work may be repeated is the caller's question (`commit_sent`)."""
    from sqlalchemy.exc import DBAPIError, DisconnectionError

    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DisconnectionError):
            return True
        if isinstance(current, DBAPIError):
            if current.connection_invalidated:
                return True
            code = getattr(current.orig, "sqlstate", None) or ""
            if code.startswith("08") or code in _CONNECTION_LOST_STATES:
                return True
        if _is_psycopg_connection_error(current):
            return True
        current = current.__cause__ or current.__context__
    return False


def _is_psycopg_connection_error(error: BaseException) -> bool:
    """psycopg's own: a connection that could not be made or was closed under us."""
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    if isinstance(error, psycopg.OperationalError):
        code = getattr(error, "sqlstate", None) or ""
        return code == "" or code.startswith("08") or code in _CONNECTION_LOST_STATES
    return isinstance(error, psycopg.InterfaceError)


def log_failure(logger: Any, error: BaseException, message: str, *args: Any) -> None:
    """Log a failed step of a loop that goes on (the worker): with its traceback, except
    for a database that is restarting or failing over, which is one line a round, not a
    traceback each."""
    if is_connection_lost(error):
        logger.warning(message + ": database unreachable (%s)", *args, type(error).__name__)
    else:
        logger.exception(message, *args)


def through_outage(step: Callable[[], T], pauses: tuple[float, ...] = (0.2, 0.5, 1.0, 2.0)) -> T:
    """`step()`, tried again after each pause while the database is unreachable (a restart
    or a failover is over in a second or two); any other error, or the last, propagates.
    For a small write that must not be lost to a blip: an outcome, a released claim."""
    for pause in pauses:
        try:
            return step()
        except Exception as error:
            if not is_connection_lost(error):
                raise
            time.sleep(pause)
    return step()


# The work of this request (or worker step) has sent a COMMIT: repeating it may repeat
# what was written. Set by `note_commit_sent`, read by `commit_sent`.
_commit_sent: ContextVar[bool] = ContextVar("checkout_db_commit_sent", default=False)


def note_commit_sent() -> None:
    """A COMMIT of written work is about to go out on this context's connection."""
    if not _reading.get():
        _commit_sent.set(True)


def commit_sent() -> bool:
    return _commit_sent.get()


def reset_commit_sent() -> None:
    _commit_sent.set(False)


def _give_turn_back(info: dict[str, Any]) -> None:
    queue = info.pop(_QUEUE, None)
    if queue is not None:
        queue.release()


@dataclass
class BoundDatabase:
    engine: Engine
    session_factory: sessionmaker[Session]


class Database:
    """Per-app engine and session factory (kept in app.extensions, not on this object)."""

    def init_app(self, app: Flask) -> None:
        engine = make_engine(
            app.config["DATABASE_URL"],
            pool_size=app.config.get("DATABASE_POOL_SIZE", 20),
            max_overflow=app.config.get("DATABASE_MAX_OVERFLOW", 0),
            timeouts=app.config.get("DATABASE_TIMEOUTS"),
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
