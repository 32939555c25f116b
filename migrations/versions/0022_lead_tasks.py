"""lead tasks: follow-up tasks on a lead (call back, send quote, visit) with a due time

Revision ID: 0022_lead_tasks
Revises: 0021_lead_assignee
Create Date: 2026-12-03 18:00:00

Each task belongs to the firm holding the lead and the user who set it; its one reminder
is marked by ``reminded_at``; the portal closes it (``cancelled_at``, with why) when the
lead leaves the firm. Appointment times and no-answer attempts need no column: they are
events.
"""
from alembic import op
import sqlalchemy as sa


revision = '0022_lead_tasks'
down_revision = '0021_lead_assignee'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'lead_tasks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('lead_id', sa.Uuid(), nullable=False),
        sa.Column('partner_id', sa.Integer(), nullable=True),
        sa.Column('user_id', sa.Integer(), nullable=True),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('note', sa.Text(), nullable=False),
        sa.Column('due_at', sa.DateTime(), nullable=False),
        sa.Column('time_zone', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('done_at', sa.DateTime(), nullable=True),
        sa.Column('done_by_id', sa.Integer(), nullable=True),
        sa.Column('cancelled_at', sa.DateTime(), nullable=True),
        sa.Column('cancel_reason', sa.String(length=200), nullable=False),
        sa.Column('reminded_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'],
                                name=op.f('fk_lead_tasks_lead_id_leads'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_lead_tasks_partner_id_partners'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_lead_tasks_user_id_users'), ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['done_by_id'], ['users.id'],
                                name=op.f('fk_lead_tasks_done_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_lead_tasks')),
    )
    op.create_index('ix_lead_tasks_lead_due', 'lead_tasks', ['lead_id', 'due_at'])
    op.create_index('ix_lead_tasks_user_open_due', 'lead_tasks',
                    ['user_id', 'done_at', 'cancelled_at', 'due_at'])
    op.create_index('ix_lead_tasks_partner_open_due', 'lead_tasks',
                    ['partner_id', 'done_at', 'cancelled_at', 'due_at'])
    op.create_index('ix_lead_tasks_reminded_due', 'lead_tasks', ['reminded_at', 'due_at'])


def downgrade():
    op.drop_index('ix_lead_tasks_reminded_due', table_name='lead_tasks')
    op.drop_index('ix_lead_tasks_partner_open_due', table_name='lead_tasks')
    op.drop_index('ix_lead_tasks_user_open_due', table_name='lead_tasks')
    op.drop_index('ix_lead_tasks_lead_due', table_name='lead_tasks')
    op.drop_table('lead_tasks')
