"""inbox indexes: leads by partner, status and overdue dates, and by closing time

Revision ID: 0009_inbox_index
Revises: 0008_imports
Create Date: 2026-12-01 09:50:00

The inbox counts a partner's overdue outcomes on every render. With (assigned_partner_id,
status) alone each working lead's row was read for its accepted_at / offered_at; with the
dates in the index the count reads the index only. The new index serves everything the
old one did (same leading columns), so the old one goes. The closed tab lists the newest
outcomes first: by (assigned_partner_id, closed_at) it reads one page of rows instead of
sorting a dealer's thousands of closed leads (3.4 ms -> 0.5 ms at 4,700).
"""
from alembic import op


revision = '0009_inbox_index'
down_revision = '0008_imports'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_assigned_status_accepted',
                              ['assigned_partner_id', 'status', 'accepted_at', 'offered_at'],
                              unique=False)
        batch_op.create_index('ix_leads_assigned_closed', ['assigned_partner_id', 'closed_at'],
                              unique=False)
        batch_op.drop_index('ix_leads_assigned_status')


def downgrade():
    with op.batch_alter_table('leads', schema=None) as batch_op:
        batch_op.create_index('ix_leads_assigned_status', ['assigned_partner_id', 'status'],
                              unique=False)
        batch_op.drop_index('ix_leads_assigned_closed')
        batch_op.drop_index('ix_leads_assigned_status_accepted')
