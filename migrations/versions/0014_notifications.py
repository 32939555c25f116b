"""notifications: alerts and digests as rows; each user's email choices; firm defaults

Revision ID: 0014_notifications
Revises: 0013_nurture_send_status
Create Date: 2026-12-02 19:30:00

A dealer was never told of an offer and the digest setting saved but sent nothing. Every
alert and digest is now a row written in the transaction that causes it (or keyed on
user and period), sent by a nudge after commit and a sweeper (DESIGN §3).
``digest_preferences`` becomes ``mail_preferences``: the digest frequency as before, plus
alerts, the digest hour and a time zone, each empty for "my firm's default".
"""
from alembic import op
import sqlalchemy as sa


revision = '0014_notifications'
down_revision = '0013_nurture_send_status'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'mail_preferences',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('frequency', sa.String(length=8), nullable=True),
        sa.Column('alerts', sa.String(length=8), nullable=True),
        sa.Column('digest_hour', sa.Integer(), nullable=True),
        sa.Column('time_zone', sa.String(length=64), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_mail_preferences_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_mail_preferences')),
    )
    op.execute("INSERT INTO mail_preferences (user_id, frequency, updated_at) "
               "SELECT user_id, frequency, updated_at FROM digest_preferences")
    op.drop_table('digest_preferences')

    # Plain ADD COLUMN (no batch copy): the copy would lose the lower(code) index (0011).
    op.add_column('partners', sa.Column('alert_default', sa.String(length=8), nullable=False,
                                        server_default='every'))
    op.add_column('partners', sa.Column('digest_default', sa.String(length=8), nullable=False,
                                        server_default='daily'))
    op.add_column('partners', sa.Column('time_zone', sa.String(length=64), nullable=False,
                                        server_default=''))
    op.add_column('partners', sa.Column('gated_at', sa.DateTime(), nullable=True))

    op.create_table(
        'notifications',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=200), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=24), nullable=False),
        sa.Column('lead_id', sa.Uuid(), nullable=True),
        sa.Column('partner_id', sa.Integer(), nullable=True),
        sa.Column('period', sa.String(length=16), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(['lead_id'], ['leads.id'],
                                name=op.f('fk_notifications_lead_id_leads'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_notifications_partner_id_partners'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_notifications_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notifications')),
        sa.UniqueConstraint('key', name='uq_notifications_key'),
    )
    op.create_index('ix_notifications_status_next', 'notifications',
                    ['status', 'next_attempt_at'], unique=False)
    op.create_index('ix_notifications_lead_kind', 'notifications', ['lead_id', 'kind'],
                    unique=False)
    op.create_index('ix_notifications_user_kind_period', 'notifications',
                    ['user_id', 'kind', 'period'], unique=False)


def downgrade():
    op.drop_index('ix_notifications_user_kind_period', table_name='notifications')
    op.drop_index('ix_notifications_lead_kind', table_name='notifications')
    op.drop_index('ix_notifications_status_next', table_name='notifications')
    op.drop_table('notifications')
    op.drop_column('partners', 'gated_at')
    op.drop_column('partners', 'time_zone')
    op.drop_column('partners', 'digest_default')
    op.drop_column('partners', 'alert_default')
    op.create_table(
        'digest_preferences',
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('frequency', sa.String(length=8), nullable=False),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_digest_preferences_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('user_id', name=op.f('pk_digest_preferences')),
    )
    op.execute("INSERT INTO digest_preferences (user_id, frequency, updated_at) "
               "SELECT user_id, COALESCE(frequency, 'weekly'), updated_at "
               "FROM mail_preferences")
    op.drop_table('mail_preferences')
