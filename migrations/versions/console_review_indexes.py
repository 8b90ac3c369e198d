"""Indexes for the console's "waiting" queue: checkouts and attempts flagged for review.

Revision ID: console_review_indexes
Revises: 0014
"""

from __future__ import annotations

from alembic import op

revision = "console_review_indexes"
down_revision = "receipts_0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_checkouts_review_reason", "checkouts", ["review_reason"])
    op.create_index("ix_payment_attempts_review_reason", "payment_attempts", ["review_reason"])


def downgrade() -> None:
    op.drop_index("ix_payment_attempts_review_reason", table_name="payment_attempts")
    op.drop_index("ix_checkouts_review_reason", table_name="checkouts")
