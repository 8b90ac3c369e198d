"""The reconciler's queries reach PostgreSQL's partial status indexes in every plan.

The status indexes hold live rows only (store/models.py, migration perf_partial_indexes), and the
planner uses a partial index only where the query's own constants prove its predicate. With
the statuses bound, a statement prepared by the driver (psycopg prepares one after five uses)
got a generic plan that read the whole table; `reconcile._status_in` writes them into the SQL.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, select, text

from checkout.cli import upgrade_database
from checkout.config import normalise_database_url
from checkout.domain.states import ATTEMPT_QUERYABLE, AttemptStatus, CheckoutStatus
from checkout.services.reconcile import _status_in
from checkout.store.models import Checkout, PaymentAttempt
from checkout.store.statements import _dollar_placeholders

URL = os.environ.get("TEST_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith("postgresql"), reason="partial status indexes are PostgreSQL's"
)
NOW = datetime(2026, 12, 7, tzinfo=UTC)
QUERIES = {
    "ix_checkouts_status": select(Checkout.id)
    .where(_status_in(Checkout.status, [CheckoutStatus.OPEN]), Checkout.expires_at <= NOW)
    .order_by(Checkout.expires_at)
    .limit(100),
    "ix_payment_attempts_status": select(PaymentAttempt.id)
    .where(_status_in(PaymentAttempt.status, ATTEMPT_QUERYABLE))
    .order_by(PaymentAttempt.next_query_at, PaymentAttempt.id)
    .limit(50),
}
QUERIES["ix_payment_attempts_status (creating)"] = (
    select(PaymentAttempt.id)
    .where(_status_in(PaymentAttempt.status, [AttemptStatus.CREATING]))
    .order_by(PaymentAttempt.created_at)
    .limit(100)
)


@pytest.mark.parametrize("index", list(QUERIES))
def test_a_prepared_generic_plan_uses_the_partial_status_index(index: str) -> None:
    url = normalise_database_url(URL)
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    upgrade_database(url)
    compiled = QUERIES[index].compile(
        dialect=engine.dialect, compile_kwargs={"render_postcompile": True}
    )
    sql, order = _dollar_placeholders(compiled.string)
    args = ", ".join(f"'{compiled.params[name]}'" for name in order)
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL plan_cache_mode = force_generic_plan")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # the index if it can be used
        conn.exec_driver_sql(f"PREPARE reconcile_query AS {sql}")
        plan = "\n".join(
            conn.exec_driver_sql(f"EXPLAIN (COSTS OFF) EXECUTE reconcile_query({args})").scalars()
        )
        conn.exec_driver_sql("DEALLOCATE reconcile_query")
    engine.dispose()
    assert index.split()[0] in plan, plan
