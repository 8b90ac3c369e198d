"""fewer indexes on the tables every notify writes: only those a query uses

notify_messages.provider, webhook_events.store_id and state_events.attempt_id were never
searched; the outbox worker's query (pending, due, oldest first) gets one index on
(status, next_attempt_at) instead of one on each.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 08:00:00.000000
"""
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('notify_messages', schema=None) as batch_op:
        batch_op.drop_index('ix_notify_messages_provider')
    with op.batch_alter_table('state_events', schema=None) as batch_op:
        batch_op.drop_index('ix_state_events_attempt_id')
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_store_id')
        batch_op.drop_index('ix_webhook_events_status')
        batch_op.drop_index('ix_webhook_events_next_attempt_at')
        batch_op.create_index(
            'ix_webhook_events_status_next_attempt_at', ['status', 'next_attempt_at'], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_status_next_attempt_at')
        batch_op.create_index('ix_webhook_events_next_attempt_at', ['next_attempt_at'], unique=False)
        batch_op.create_index('ix_webhook_events_status', ['status'], unique=False)
        batch_op.create_index('ix_webhook_events_store_id', ['store_id'], unique=False)
    with op.batch_alter_table('state_events', schema=None) as batch_op:
        batch_op.create_index('ix_state_events_attempt_id', ['attempt_id'], unique=False)
    with op.batch_alter_table('notify_messages', schema=None) as batch_op:
        batch_op.create_index('ix_notify_messages_provider', ['provider'], unique=False)
