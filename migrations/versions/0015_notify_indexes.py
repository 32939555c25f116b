"""notifications: 64-bit ids on PostgreSQL; indexes for the digest planner, the outbox
page and the channel figures

Revision ID: 0015_notify_indexes
Revises: 0014_notifications
Create Date: 2026-12-03 07:00:00

The planner asks when each user last had a digest (user, kind, created_at); the managers'
outgoing-mail page counts the last day's rows (created_at); the manager digest (and the
channel reports) read offers by when they were made and leads by status and when they
closed, across all partners. Notification ids are consumed by every planned row, so they
get 64 bits where the database has them (SQLite's rowid is 64-bit already).
"""
from alembic import op
import sqlalchemy as sa


revision = '0015_notify_indexes'
down_revision = '0014_notifications'
branch_labels = None
depends_on = None


def upgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.alter_column('notifications', 'id', type_=sa.BigInteger(),
                        existing_type=sa.Integer())
        op.execute('ALTER SEQUENCE notifications_id_seq AS bigint')
    op.drop_index('ix_notifications_user_kind_period', table_name='notifications')
    op.create_index('ix_notifications_user_kind_created', 'notifications',
                    ['user_id', 'kind', 'created_at'])
    op.create_index('ix_notifications_created', 'notifications', ['created_at'])
    op.create_index('ix_offers_offered', 'offers', ['offered_at'])
    op.create_index('ix_leads_status_closed', 'leads', ['status', 'closed_at'])


def downgrade():
    op.drop_index('ix_leads_status_closed', table_name='leads')
    op.drop_index('ix_offers_offered', table_name='offers')
    op.drop_index('ix_notifications_created', table_name='notifications')
    op.drop_index('ix_notifications_user_kind_created', table_name='notifications')
    op.create_index('ix_notifications_user_kind_period', 'notifications',
                    ['user_id', 'kind', 'period'])
    if op.get_bind().dialect.name == 'postgresql':
        op.execute('ALTER SEQUENCE notifications_id_seq AS integer')
        op.alter_column('notifications', 'id', type_=sa.Integer(),
                        existing_type=sa.BigInteger())
