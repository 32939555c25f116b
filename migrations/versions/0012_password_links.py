"""password links: each invitation or reset email is a row the job and its sweeper send

Revision ID: 0012_password_links
Revises: 0011_code_lower_indexes
Create Date: 2026-12-02 10:00:00

Invitation and reset emails were queued as jobs carrying the finished link, before the
request committed: a request that rolled back still mailed a link, and a lost job lost
the email. Now the request writes a row, the job is nudged after commit, and a sweeper
sends what a lost nudge or a mail-server outage left pending (DESIGN §3).
"""
from alembic import op
import sqlalchemy as sa


revision = '0012_password_links'
down_revision = '0011_code_lower_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'password_links',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('purpose', sa.String(length=8), nullable=False),
        sa.Column('user_version', sa.Integer(), nullable=False),
        sa.Column('status', sa.String(length=10), nullable=False),
        sa.Column('attempts', sa.Integer(), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(), nullable=False),
        sa.Column('claimed_at', sa.DateTime(), nullable=True),
        sa.Column('requested_at', sa.DateTime(), nullable=False),
        sa.Column('sent_at', sa.DateTime(), nullable=True),
        sa.Column('last_error', sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_password_links_user_id_users'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_password_links')),
    )
    with op.batch_alter_table('password_links', schema=None) as batch_op:
        batch_op.create_index('ix_password_links_status_next', ['status', 'next_attempt_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('password_links', schema=None) as batch_op:
        batch_op.drop_index('ix_password_links_status_next')
    op.drop_table('password_links')
