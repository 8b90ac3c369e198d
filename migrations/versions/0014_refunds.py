"""refunds (money back through payouts) and their timeline in state_events (refund_id)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-01 21:00:00.000000
"""

from alembic import op
import sqlalchemy as sa


revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("public_id", sa.String(length=40), nullable=False),
        sa.Column("checkout_id", sa.String(length=40), nullable=False),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("source", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("destination_token", sa.Text(), nullable=True),
        sa.Column("destination_masked", sa.String(length=64), nullable=True),
        sa.Column("payout_no", sa.String(length=32), nullable=True),
        sa.Column("platform_payout_no", sa.String(length=64), nullable=True),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=True),
        sa.Column("idempotency_key", sa.String(length=255), nullable=True),
        sa.Column("failure_code", sa.String(length=64), nullable=True),
        sa.Column("failure_message", sa.String(length=500), nullable=True),
        sa.Column("hold_reason", sa.String(length=200), nullable=True),
        sa.Column("sending_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_query_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("query_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_id"], ["checkouts.id"], name=op.f("fk_refunds_checkout_id_checkouts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_refunds")),
        sa.UniqueConstraint("payout_no", name=op.f("uq_refunds_payout_no")),
        sa.UniqueConstraint("public_id", name=op.f("uq_refunds_public_id")),
        sa.UniqueConstraint("store_id", "idempotency_key", name="uq_refunds_store_idempotency_key"),
    )
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_refunds_checkout_id"), ["checkout_id"], unique=False)
        batch_op.create_index(
            "ix_refunds_status_next_query_at", ["status", "next_query_at"], unique=False
        )
    with op.batch_alter_table("state_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("refund_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_state_events_refund_id_refunds"), "refunds", ["refund_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("state_events", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_state_events_refund_id_refunds"), type_="foreignkey"
        )
        batch_op.drop_column("refund_id")
    with op.batch_alter_table("refunds", schema=None) as batch_op:
        batch_op.drop_index("ix_refunds_status_next_query_at")
        batch_op.drop_index(batch_op.f("ix_refunds_checkout_id"))
    op.drop_table("refunds")
