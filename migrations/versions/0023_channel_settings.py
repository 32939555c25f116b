"""channel settings: contact details hidden from partners until they accept

Revision ID: 0023_channel_settings
Revises: 0020_trust_auth
Create Date: 2026-12-03 18:20:00

One row of channel-wide settings a manager changes under Manage → Channel settings.
``hide_contacts_until_accepted`` (on by default; no row means the defaults): a partner
sees a prospect's phone, email and street address only once it accepted the offer.
"""
from alembic import op
import sqlalchemy as sa


revision = '0023_channel_settings'
down_revision = '0020_trust_auth'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'channel_settings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('hide_contacts_until_accepted', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.Column('updated_by_id', sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(['updated_by_id'], ['users.id'],
                                name=op.f('fk_channel_settings_updated_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_channel_settings')),
    )


def downgrade():
    op.drop_table('channel_settings')
