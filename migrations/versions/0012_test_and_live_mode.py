"""test and live mode: checkouts.livemode, idempotency keys per mode, the events API's index

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every checkout and key so far was made with a live key (the keys there were).
    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint('uq_checkouts_store_order', type_='unique')
        batch_op.create_unique_constraint('uq_checkouts_store_order', ['store_id', 'livemode', 'order_id'])

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('livemode', sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.drop_constraint('uq_idempotency_keys_store_key', type_='unique')
        batch_op.create_unique_constraint('uq_idempotency_keys_store_key', ['store_id', 'livemode', 'key'])

    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.create_index('ix_webhook_events_store_id_id', ['store_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_events', schema=None) as batch_op:
        batch_op.drop_index('ix_webhook_events_store_id_id')

    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_constraint('uq_idempotency_keys_store_key', type_='unique')
        batch_op.create_unique_constraint('uq_idempotency_keys_store_key', ['store_id', 'key'])
        batch_op.drop_column('livemode')

    with op.batch_alter_table('checkouts', schema=None) as batch_op:
        batch_op.drop_constraint('uq_checkouts_store_order', type_='unique')
        batch_op.create_unique_constraint('uq_checkouts_store_order', ['store_id', 'order_id'])
        batch_op.drop_column('livemode')
