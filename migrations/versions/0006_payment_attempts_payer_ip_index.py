"""payment attempts: index on payer IP and creation time (PayPro's per-IP daily rule)

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 04:00:00.000000
"""
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.create_index(
            'ix_payment_attempts_payer_ip_created_at', ['payer_ip', 'created_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_payment_attempts_payer_ip_created_at')
