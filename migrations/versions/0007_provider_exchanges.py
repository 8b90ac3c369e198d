"""provider exchanges: every create and query call per attempt, masked

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 04:30:00.000000
"""
from alembic import op
import sqlalchemy as sa



revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'provider_exchanges',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=False),
        sa.Column('provider', sa.String(length=64), nullable=False),
        sa.Column('operation', sa.String(length=20), nullable=False),
        sa.Column('http_method', sa.String(length=10), nullable=False),
        sa.Column('path', sa.String(length=500), nullable=False),
        sa.Column('request_body', sa.Text(), nullable=True),
        sa.Column('response_status', sa.Integer(), nullable=True),
        sa.Column('response_body', sa.Text(), nullable=True),
        sa.Column('outcome', sa.String(length=32), nullable=False),
        sa.Column('duration_ms', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['attempt_id'], ['payment_attempts.id'], name=op.f('fk_provider_exchanges_attempt_id_payment_attempts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_provider_exchanges')),
    )
    with op.batch_alter_table('provider_exchanges', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_provider_exchanges_attempt_id'), ['attempt_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('provider_exchanges', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_provider_exchanges_attempt_id'))
    op.drop_table('provider_exchanges')
