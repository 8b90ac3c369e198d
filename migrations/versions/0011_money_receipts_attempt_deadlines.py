"""money received as rows (payment_receipts), every attempt with a deadline, abandoned attempts

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-01 20:30:00.000000
"""
from alembic import op
import sqlalchemy as sa



revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'payment_receipts',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('checkout_id', sa.String(length=40), nullable=False),
        sa.Column('attempt_id', sa.Integer(), nullable=False),
        sa.Column('transfer_key', sa.String(length=64), nullable=False),
        sa.Column('amount', sa.BigInteger(), nullable=False),
        sa.Column('currency', sa.String(length=3), nullable=False),
        sa.Column('source', sa.String(length=20), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['attempt_id'], ['payment_attempts.id'], name=op.f('fk_payment_receipts_attempt_id_payment_attempts')),
        sa.ForeignKeyConstraint(['checkout_id'], ['checkouts.id'], name=op.f('fk_payment_receipts_checkout_id_checkouts')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_receipts')),
        sa.UniqueConstraint('attempt_id', 'transfer_key', name='uq_payment_receipts_attempt_key'),
    )
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('deadline_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('abandoned_at', sa.DateTime(timezone=True), nullable=True))
    # Money already received becomes one running-total row per attempt; deadlines are the
    # provider's or the checkout's, whichever is first.
    op.execute(
        "INSERT INTO payment_receipts (checkout_id, attempt_id, transfer_key, amount, currency,"
        " source, created_at, updated_at)"
        " SELECT checkout_id, id, 'total', amount_paid, currency, 'notify', updated_at, updated_at"
        " FROM payment_attempts WHERE amount_paid > 0"
    )
    op.execute(
        "UPDATE payment_attempts SET deadline_at = (SELECT CASE"
        " WHEN payment_attempts.expires_at IS NOT NULL"
        " AND payment_attempts.expires_at < checkouts.expires_at"
        " THEN payment_attempts.expires_at ELSE checkouts.expires_at END"
        " FROM checkouts WHERE checkouts.id = payment_attempts.checkout_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table('payment_attempts', schema=None) as batch_op:
        batch_op.drop_column('abandoned_at')
        batch_op.drop_column('deadline_at')
    op.drop_table('payment_receipts')
