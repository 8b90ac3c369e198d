"""cash receipts (Popbill) and the shopper's receipt request (cash receipt, factura data)

Revision ID: receipts_0015
Revises: 0014
Create Date: 2026-12-07 01:00:00.000000
"""

from alembic import op
import sqlalchemy as sa



revision = "receipts_0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "receipt_requests",
        sa.Column("checkout_id", sa.String(length=40), nullable=False),
        sa.Column("cash_receipt_kind", sa.String(length=20), nullable=True),
        sa.Column("identity_token", sa.Text(), nullable=True),
        sa.Column("identity_masked", sa.String(length=32), nullable=True),
        sa.Column("invoice_data", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["checkouts.id"],
            name=op.f("fk_receipt_requests_checkout_id_checkouts"),
        ),
        sa.PrimaryKeyConstraint("checkout_id", name=op.f("pk_receipt_requests")),
    )
    op.create_table(
        "cash_receipts",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("checkout_id", sa.String(length=40), nullable=False),
        sa.Column("refund_id", sa.Integer(), nullable=True),
        sa.Column("store_id", sa.String(length=64), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("mgt_key", sa.String(length=24), nullable=False),
        sa.Column("usage", sa.String(length=16), nullable=False),
        sa.Column("identity_token", sa.Text(), nullable=True),
        sa.Column("identity_masked", sa.String(length=32), nullable=False),
        sa.Column("self_issued", sa.Boolean(), nullable=False),
        sa.Column("taxable", sa.Boolean(), nullable=False),
        sa.Column("partial", sa.Boolean(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("supply_cost", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("service_fee", sa.BigInteger(), nullable=False),
        sa.Column("state", sa.String(length=20), nullable=False),
        sa.Column("state_code", sa.Integer(), nullable=True),
        sa.Column("confirm_num", sa.String(length=24), nullable=True),
        sa.Column("trade_date", sa.String(length=8), nullable=True),
        sa.Column("org_confirm_num", sa.String(length=24), nullable=True),
        sa.Column("org_trade_date", sa.String(length=8), nullable=True),
        sa.Column("nts_result_code", sa.String(length=16), nullable=True),
        sa.Column("tries", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error_code", sa.String(length=64), nullable=True),
        sa.Column("last_error_message", sa.String(length=500), nullable=True),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["checkout_id"],
            ["checkouts.id"],
            name=op.f("fk_cash_receipts_checkout_id_checkouts"),
        ),
        sa.ForeignKeyConstraint(
            ["refund_id"], ["refunds.id"], name=op.f("fk_cash_receipts_refund_id_refunds")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_receipts")),
        sa.UniqueConstraint("mgt_key", name=op.f("uq_cash_receipts_mgt_key")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_cash_receipts_refund_id")),
    )
    op.create_index(
        op.f("ix_cash_receipts_checkout_id"), "cash_receipts", ["checkout_id"], unique=False
    )
    op.create_index(
        "ix_cash_receipts_state_next_try_at",
        "cash_receipts",
        ["state", "next_try_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_cash_receipts_state_next_try_at", table_name="cash_receipts")
    op.drop_index(op.f("ix_cash_receipts_checkout_id"), table_name="cash_receipts")
    op.drop_table("cash_receipts")
    op.drop_table("receipt_requests")
