"""compliance_reminders: a channel manager's one-click reminder to a partner, logged

Revision ID: 0017_compliance_reminders
Revises: 0016_offer_facts
Create Date: 2026-12-03 09:00:00

The compliance list lets a channel manager remind a partner's users of its overdue
outcomes and untouched leads. Each click is a row (when, by whom, what there was, how many
were told); each email is a notification keyed on it. The list shows every partner's
newest row, and a second click within a minute finds it and sends nothing more.
"""
from alembic import op
import sqlalchemy as sa


revision = '0017_compliance_reminders'
down_revision = '0016_offer_facts'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'compliance_reminders',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('by_user_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('overdue', sa.Integer(), nullable=False),
        sa.Column('untouched', sa.Integer(), nullable=False),
        sa.Column('recipients', sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(['by_user_id'], ['users.id'],
                                name=op.f('fk_compliance_reminders_by_user_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_compliance_reminders_partner_id_partners'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_compliance_reminders')),
    )
    op.create_index('ix_compliance_reminders_partner_created', 'compliance_reminders',
                    ['partner_id', 'created_at'], unique=False)


def downgrade():
    op.drop_index('ix_compliance_reminders_partner_created',
                  table_name='compliance_reminders')
    op.drop_table('compliance_reminders')
