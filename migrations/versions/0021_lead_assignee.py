"""lead assignee: the salesperson of the holding firm who works a lead

Revision ID: 0021_lead_assignee
Revises: 0023_channel_settings, 0025_campaign_form_brand
Create Date: 2026-12-03 18:00:00

A partner's administrator (or, where the firm allows it, any of its users) assigns a lead
the firm holds to one of its users; a user may take an unassigned one. ``leads.
assigned_user_id`` names that user (cleared whenever the lead changes partner), indexed
with the status for "My leads" and the per-salesperson counts; ``partners.
users_may_assign`` is the firm's choice.

It also joins main's two heads (0023 and 0025 both revise 0020) until the revisions are
renumbered into one line.
"""
import sqlalchemy as sa
from alembic import op

revision = '0021_lead_assignee'
down_revision = ('0023_channel_settings', '0025_campaign_form_brand')
branch_labels = None
depends_on = None


def upgrade():
    # Plain ADD COLUMNs, not a batch: on SQLite a batch copies the table, and dropping
    # the old ``leads`` would cascade to its events; ``partners`` has an expression index
    # (0011) a copy would lose.
    if op.get_bind().dialect.name == 'sqlite':
        # SQLite adds a column with its (named) reference in place; ALTER cannot add one.
        op.execute('ALTER TABLE leads ADD COLUMN assigned_user_id INTEGER '
                   'CONSTRAINT fk_leads_assigned_user_id_users REFERENCES users (id)')
    else:
        op.add_column('leads', sa.Column('assigned_user_id', sa.Integer(), nullable=True))
        op.create_foreign_key(op.f('fk_leads_assigned_user_id_users'), 'leads', 'users',
                              ['assigned_user_id'], ['id'])
    op.create_index('ix_leads_assigned_user_status', 'leads',
                    ['assigned_user_id', 'status'], unique=False)
    op.add_column('partners', sa.Column('users_may_assign', sa.Boolean(), nullable=False,
                                        server_default=sa.false()))


def downgrade():
    op.drop_column('partners', 'users_may_assign')
    op.drop_index('ix_leads_assigned_user_status', table_name='leads')
    if op.get_bind().dialect.name != 'sqlite':
        op.drop_constraint(op.f('fk_leads_assigned_user_id_users'), 'leads',
                           type_='foreignkey')
    op.drop_column('leads', 'assigned_user_id')
