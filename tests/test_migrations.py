"""The Alembic migrations build exactly the schema the models describe."""

from __future__ import annotations

import os
from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from checkout.cli import upgrade_database
from checkout.config import normalise_database_url
from checkout.store.models import Base


def test_migrations_match_models(tmp_path: Path) -> None:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = normalise_database_url(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        url = f"sqlite:///{tmp_path / 'migrated.sqlite3'}"
        engine = create_engine(url)
    upgrade_database(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    engine.dispose()
    assert diff == []


def test_console_search_columns_are_indexed_and_resent_events_keep_their_due_time(
    tmp_path: Path,
) -> None:
    """0008: the list's sort and filter columns are indexed; an event resent before the
    upgrade (attempts 0, due again later than created) counts as pending since then."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import inspect

    from checkout.cli import alembic_config

    url = f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
    command.upgrade(alembic_config(url), "0007")
    engine = create_engine(url)
    created, resent = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 1, 4, tzinfo=UTC)
    with engine.begin() as conn:
        conn.execute(
            text("INSERT INTO stores (id, name, created_at) VALUES ('s', 'S', :t)"), {"t": created}
        )
        conn.execute(
            text(
                "INSERT INTO checkouts (id, store_id, order_id, amount, currency, amount_paid, "
                "return_url, event_seq, status, expires_at, created_at, updated_at) VALUES "
                "('co_1', 's', 'o', 1, 'KRW', 0, 'https://x', 2, 'paid', :t, :t, :t)"
            ),
            {"t": created},
        )
        for seq, (attempts, due) in enumerate(((0, resent), (3, resent)), start=1):
            conn.execute(
                text(
                    "INSERT INTO webhook_events (public_id, store_id, checkout_id, type, seq, "
                    "payload, status, attempts, next_attempt_at, created_at) VALUES "
                    "(:id, 's', 'co_1', 'checkout.paid', :seq, '{}', 'pending', :n, :due, :t)"
                ),
                {"id": f"evt_{seq}", "seq": seq, "n": attempts, "due": due, "t": created},
            )
    upgrade_database(url)
    indexed = {tuple(ix["column_names"]) for ix in inspect(engine).get_indexes("checkouts")}
    assert {("created_at",), ("order_id",), ("status",)} <= indexed
    with engine.connect() as conn:
        since = dict(
            conn.execute(text("SELECT public_id, pending_since FROM webhook_events")).all()
        )
    engine.dispose()
    assert str(since["evt_1"]).startswith("2026-01-04")  # resent: due again on the 4th
    assert str(since["evt_2"]).startswith("2026-01-01")  # retrying since it was created


def test_partial_indexes_keep_the_models_predicates(tmp_path: Path) -> None:
    """Alembic's comparison above does not look at an index's WHERE: every partial index the
    models declare (perf_partial_indexes) is partial in the migrated database, on the same
    values, and every other index is whole."""
    import re

    from sqlalchemy import inspect

    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        url = normalise_database_url(url)
        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    else:
        url = f"sqlite:///{tmp_path / 'partial.sqlite3'}"
        engine = create_engine(url)
    upgrade_database(url)
    dialect = engine.dialect.name

    def words(predicate: object) -> set[str]:
        """The predicate's quoted values, and whether it says IS NOT NULL."""
        said = "" if predicate is None else str(predicate)
        values = set(re.findall(r"'([^']*)'", said))
        return values | {"not null"} if "NOT NULL" in said.upper() else values

    declared = {}
    for table in Base.metadata.sorted_tables:
        for index in table.indexes:
            declared[index.name] = words(index.dialect_options[dialect].get("where"))
    if dialect == "sqlite":
        with engine.connect() as conn:
            found = {
                name: words(sql.split(" WHERE ", 1)[1] if " WHERE " in sql else "")
                for name, sql in conn.execute(
                    text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql != ''")
                ).all()
            }
    else:
        inspector = inspect(engine)
        found = {
            ix["name"]: words(ix.get("dialect_options", {}).get("postgresql_where"))
            for table in Base.metadata.sorted_tables
            for ix in inspector.get_indexes(table.name)
        }
    engine.dispose()
    assert {name: found.get(name) for name in declared} == declared
    assert declared["ix_checkouts_review_reason"] == {"not null"}
    if dialect == "postgresql":
        assert declared["ix_payment_attempts_status"] == {"creating", "unknown", "pending"}
