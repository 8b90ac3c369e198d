"""Statements compiled once per shape and run through the driver: the ledger's hot path.

SQLAlchemy compiles a Core statement once, but on every execution it still builds the
statement, coerces each value, computes the statement's cache key and looks it up; for a
notify (one locked read, one data-modifying statement) that was most of the request's CPU,
and statements with many values (the CTEs of a whole Plan) missed the cache and were
compiled again each time. Here a statement is built and compiled once per (dialect, shape):
its SQL string is kept with the bind processors of its parameters and the result
processors of its columns, and each execution only processes the values and hands the SQL
to the driver.

On PostgreSQL (psycopg) the SQL is kept with PostgreSQL's own `$n` placeholders and run on
the driver's raw cursor: psycopg parses a `%(name)s` query on every call unless it is short
(a whole Plan is not), and the text of a shape never changes, so the driver prepares it
after a few uses and the server skips parsing and planning too. Several statements go in
one round trip (psycopg's pipeline mode), each still a statement of its own. Elsewhere
(SQLite) through SQLAlchemy's `exec_driver_sql`.

A shape is any hashable value that fixes the SQL text (which columns, how many rows); its
builder makes the statement with a `bindparam` per value. Values always travel as bound
parameters, never in the SQL text.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Connection, Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql import ClauseElement
from sqlalchemy.sql.elements import BindParameter

from checkout.store.db import note_commit_sent

Processor = Callable[[Any], Any]
Row = tuple[Any, ...]
Statement = tuple[Hashable, Callable[[], ClauseElement], Mapping[str, Any]]
# Distinct shapes kept per process. Shapes are few (which columns a use case sets, how many
# rows); past this, a statement is compiled for its one use and not kept, so no input can
# grow the cache without bound.
SHAPES_KEPT = 4096
_PYFORMAT = re.compile(r"%%|%\((\w+)\)s")


@dataclass(frozen=True)
class Prepared:
    sql: str
    order: tuple[str, ...] | None  # parameter order, for positional placeholders
    binds: tuple[tuple[str, Processor | None], ...]
    results: tuple[Processor | None, ...]
    raw: bool  # psycopg's raw cursor ($n placeholders)

    def values(self, params: Mapping[str, Any]) -> Any:
        processed = {
            name: (processor(params[name]) if processor is not None else params[name])
            for name, processor in self.binds
        }
        if self.order is None:
            return processed
        return tuple(processed[name] for name in self.order)

    def rows(self, fetched: Sequence[Any]) -> list[Row]:
        processors = self.results
        if not any(processors):
            return [tuple(row) for row in fetched]
        return [
            tuple(p(v) if p is not None else v for p, v in zip(processors, row, strict=True))
            for row in fetched
        ]


_cache: dict[Hashable, Prepared] = {}
_cache_lock = threading.Lock()


def param(name: str, column: Column[Any]) -> BindParameter[Any]:
    """A bound parameter typed as `column` (its bind processor is the column's)."""
    return bindparam(name, type_=column.type)


def prepare(dialect: Dialect, shape: Hashable, build: Callable[[], ClauseElement]) -> Prepared:
    key = (type(dialect), dialect.paramstyle, dialect.server_version_info, shape)
    prepared = _cache.get(key)
    if prepared is None:
        prepared = _compile(dialect, build())
        with _cache_lock:
            if len(_cache) < SHAPES_KEPT:
                _cache[key] = prepared
    return prepared


def _compile(dialect: Dialect, statement: ClauseElement) -> Prepared:
    compiled = statement.compile(dialect=dialect)
    prefetch = [
        *getattr(compiled, "insert_prefetch", ()),
        *getattr(compiled, "update_prefetch", ()),
    ]
    if prefetch:  # a Python-side default the builder did not supply a value for
        raise RuntimeError(f"prepared statement lacks values for {prefetch}")
    binds = tuple(
        (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
        for name, bind in compiled.binds.items()
    )
    results = tuple(
        entry[3].dialect_impl(dialect).result_processor(dialect, None)
        for entry in getattr(compiled, "_result_columns", ())
    )
    if dialect.driver == "psycopg" and dialect.paramstyle == "pyformat":
        sql, order = _dollar_placeholders(compiled.string)
        return Prepared(sql, order, binds, results, raw=True)
    order = tuple(compiled.positiontup) if compiled.positional else None  # type: ignore[arg-type]
    return Prepared(compiled.string, order, binds, results, raw=False)


def _dollar_placeholders(sql: str) -> tuple[str, tuple[str, ...]]:
    """`%(name)s` as `$n` (a name used twice keeps its number) and `%%` as `%`."""
    order: list[str] = []

    def number(match: re.Match[str]) -> str:
        name = match.group(1)
        if name is None:
            return "%"
        if name not in order:
            order.append(name)
        return f"${order.index(name) + 1}"

    return _PYFORMAT.sub(number, sql), tuple(order)


def run(
    connection: Connection, statements: Sequence[Statement], *, commit: bool = False
) -> list[list[Row]]:
    """Run `statements` in order in the connection's transaction; the rows of each (empty
    for a statement that returns none), each value through its column's result processor.
    On psycopg several go in one round trip (the transaction's BEGIN included): each is
    still a statement of its own with its own snapshot, so a read after a row lock sees
    what the lock's previous holder committed. `commit`: on psycopg the transaction's
    COMMIT goes in the same round trip, after the statements (the caller's own commit then
    finds nothing to do at the server); elsewhere the caller's commit does it."""
    batch = [
        (prepare(connection.dialect, shape, build), params) for shape, build, params in statements
    ]
    if batch and batch[0][0].raw:
        return _run_psycopg(connection, batch, commit=commit)
    out = []
    for prepared, params in batch:
        result = connection.exec_driver_sql(prepared.sql, prepared.values(params))
        out.append(prepared.rows(result.fetchall()) if result.returns_rows else [])
    return out


def rows(
    connection: Connection,
    shape: Hashable,
    build: Callable[[], ClauseElement],
    params: Mapping[str, Any],
) -> list[Row]:
    """The rows of one prepared statement (see `run`)."""
    return run(connection, [(shape, build, params)])[0]


def _run_psycopg(
    connection: Connection,
    batch: Sequence[tuple[Prepared, Mapping[str, Any]]],
    *,
    commit: bool = False,
) -> list[list[Row]]:
    import psycopg

    raw = connection.connection.driver_connection
    assert raw is not None
    sent = [(prepared, prepared.values(params)) for prepared, params in batch]
    cursors: list[Any] = []
    try:
        if len(sent) == 1 and not commit:
            cursors.append(psycopg.RawCursor(raw))
            cursors[0].execute(sent[0][0].sql, sent[0][1])
        else:
            with raw.pipeline():
                for prepared, values in sent:
                    cursors.append(psycopg.RawCursor(raw))
                    cursors[-1].execute(prepared.sql, values)
                if commit:
                    note_commit_sent()
                    ending = psycopg.RawCursor(raw)
                    ending.execute("COMMIT")
                    ending.close()
        # Only a statement that returned rows may be fetched (its status, not `description`,
        # which builds every column's description anew).
        fetched = [c.fetchall() if _returned_rows(c) else [] for c in cursors]
    except psycopg.Error as error:
        # Raised as SQLAlchemy raises a driver's error (the callers' lock-timeout and retry
        # handling reads it so), and a broken connection does not go back to the pool.
        if raw.broken:
            connection.invalidate(error)
        raise DBAPIError.instance(
            sent[0][0].sql, sent[0][1], error, psycopg.Error, dialect=connection.dialect
        ) from error
    finally:
        for cursor in cursors:
            cursor.close()
    return [prepared.rows(got) for (prepared, _), got in zip(sent, fetched, strict=True)]


def _returned_rows(cursor: Any) -> bool:
    from psycopg.pq import ExecStatus

    result = cursor.pgresult
    return result is not None and result.status == ExecStatus.TUPLES_OK


def with_defaults(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """`values` plus every column's Python-side default the caller left out (what an ORM or
    Core insert would add), so the insert's shape names every value it sends."""
    out = dict(values)
    for key, arg in _python_defaults(table):
        if key not in out:
            out[key] = arg(None) if callable(arg) else arg
    return out


@functools.cache
def _python_defaults(table: Table) -> tuple[tuple[str, Any], ...]:
    """The table's columns with a Python-side default (not an autoincrement key): read once
    per table, not for every row of every write."""
    return tuple(
        (column.key, column.default.arg)  # type: ignore[union-attr]
        for column in table.columns
        if column.default is not None
        and hasattr(column.default, "arg")
        and not (column.primary_key and column.autoincrement in (True, "auto"))
    )


def columns_key(values: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(values))


def prefixed(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{prefix}{k}": v for k, v in values.items()}


def row_params(prefix: str, rows_: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Multi-row values as flat parameters: `<prefix><row>_<column>`."""
    out: dict[str, Any] = {}
    for i, row in enumerate(rows_):
        for key, value in row.items():
            out[f"{prefix}{i}_{key}"] = value
    return out
