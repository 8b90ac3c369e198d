"""Indexes only where a query reads them, partial where it reads part of the rows.

Every payment changes its checkout's and its attempt's status: each change writes a new row
version, and every index on the table takes an entry for it (the status columns are indexed,
so PostgreSQL cannot update in place). Gone: `ix_checkouts_store_id` (the leading column of
`uq_checkouts_store_order`), `ix_payment_attempts_provider` (a handful of values, no query
reads by it alone) and `ix_payment_attempts_next_query_at` (the reconciler's one query on it
reads live attempts through the status index). Partial: the status indexes hold live rows only on PostgreSQL (what the
expiry sweep and the reconciler read), the review queues flagged rows only, and
`header_nonce` TeemoPay's rows only. Each query's plan, before and after: bench/notes.md.

Revision ID: perf_partial_indexes
Revises: console_review_indexes
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "perf_partial_indexes"
down_revision = "console_review_indexes"
branch_labels = None
depends_on = None

NOT_NULL = {
    # index name: (table, column)
    "ix_checkouts_review_reason": ("checkouts", "review_reason"),
    "ix_payment_attempts_review_reason": ("payment_attempts", "review_reason"),
    "ix_notify_messages_header_nonce": ("notify_messages", "header_nonce"),
}
LIVE = {
    "ix_checkouts_status": ("checkouts", "status IN ('open', 'pending')"),
    "ix_payment_attempts_status": (
        "payment_attempts",
        "status IN ('creating', 'unknown', 'pending')",
    ),
}


def upgrade() -> None:
    op.drop_index("ix_checkouts_store_id", table_name="checkouts")
    op.drop_index("ix_payment_attempts_provider", table_name="payment_attempts")
    op.drop_index("ix_payment_attempts_next_query_at", table_name="payment_attempts")
    for name, (table, column) in NOT_NULL.items():
        op.drop_index(name, table_name=table)
        where = sa.text(f"{column} IS NOT NULL")
        op.create_index(name, table, [column], postgresql_where=where, sqlite_where=where)
    if op.get_bind().dialect.name == "postgresql":  # SQLite keeps them whole (store/models.py)
        for name, (table, where) in LIVE.items():
            op.drop_index(name, table_name=table)
            op.create_index(name, table, ["status"], postgresql_where=sa.text(where))


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, (table, _where) in LIVE.items():
            op.drop_index(name, table_name=table)
            op.create_index(name, table, ["status"])
    for name, (table, column) in NOT_NULL.items():
        op.drop_index(name, table_name=table)
        op.create_index(name, table, [column])
    op.create_index("ix_payment_attempts_next_query_at", "payment_attempts", ["next_query_at"])
    op.create_index("ix_payment_attempts_provider", "payment_attempts", ["provider"])
    op.create_index("ix_checkouts_store_id", "checkouts", ["store_id"])
