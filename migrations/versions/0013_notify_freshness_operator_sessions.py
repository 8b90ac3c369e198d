"""console sessions on the server, per-account login lockout, notify freshness headers

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-01 20:00:00.000000
"""
from alembic import op
import sqlalchemy as sa



revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'operator_sessions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('token_sha256', sa.String(length=64), nullable=False),
        sa.Column('operator_id', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('remote_addr', sa.String(length=64), nullable=True),
        sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('revoked_reason', sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(['operator_id'], ['operators.id'], name=op.f('fk_operator_sessions_operator_id_operators')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_operator_sessions')),
        sa.UniqueConstraint('token_sha256', name=op.f('uq_operator_sessions_token_sha256')),
    )
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_operator_sessions_operator_id'), ['operator_id'], unique=False)
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failed_logins', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table('notify_messages', schema=None) as batch_op:
        batch_op.add_column(sa.Column('header_timestamp', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('header_nonce', sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f('ix_notify_messages_header_nonce'), ['header_nonce'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('notify_messages', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_notify_messages_header_nonce'))
        batch_op.drop_column('header_nonce')
        batch_op.drop_column('header_timestamp')
    with op.batch_alter_table('operators', schema=None) as batch_op:
        batch_op.drop_column('locked_until')
        batch_op.drop_column('failed_logins')
    with op.batch_alter_table('operator_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_operator_sessions_operator_id'))
    op.drop_table('operator_sessions')
