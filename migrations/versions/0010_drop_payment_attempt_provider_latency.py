"""payment attempts: drop provider_latency_ms (every call's duration is in provider_exchanges)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-27 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('provider_latency_ms')


def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('provider_latency_ms', sa.Integer(), nullable=True))
