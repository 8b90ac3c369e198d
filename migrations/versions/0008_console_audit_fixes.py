"""console: outbox pending_since, notify claimed trade number and our answer, search indexes

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-23 09:00:00.000000
"""
from alembic import op
import sqlalchemy as sa



revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_checkouts_created_at'), ['created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_checkouts_order_id'), ['order_id'], unique=False)

    with op.batch_alter_table('notify_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('claimed_trade_no', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('response_body', sa.Text(), nullable=True))
        batch_op.create_index(batch_op.f('ix_notify_messages_claimed_trade_no'), ['claimed_trade_no'], unique=False)

    with op.batch_alter_table('provider_exchanges', schema=None) as batch_op:
        batch_op.create_index('ix_provider_exchanges_provider_created_at', ['provider', 'created_at'], unique=False)

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.add_column(sa.Column('pending_since', sa.DateTime(timezone=True), nullable=True))
    # An event resent by an operator has attempts = 0 and next_attempt_at = the resend time;
    # any other event became due when it was created.
    op.execute(
        "UPDATE webhook_events SET pending_since = "
        "CASE WHEN attempts = 0 THEN next_attempt_at ELSE created_at END"
    )
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.alter_column('pending_since', existing_type=sa.DateTime(timezone=True), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_column('pending_since')

    with op.batch_alter_table('provider_exchanges', schema=None) as batch_op:
        batch_op.drop_index('ix_provider_exchanges_provider_created_at')

    with op.batch_alter_table('notify_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_messages_claimed_trade_no'))
        batch_op.drop_column('response_body')
        batch_op.drop_column('claimed_trade_no')

    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_checkouts_order_id'))
        batch_op.drop_index(batch_op.f('ix_checkouts_created_at'))
