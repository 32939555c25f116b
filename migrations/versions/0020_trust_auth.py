"""trust (auth): sign-ins that end at sign-out, API tokens kept as hashes, pair throttling

Revision ID: 0020_trust_auth
Revises: 0019_idempotency_fingerprint
Create Date: 2026-12-03 15:30:00

A session or remember cookie named only the user and its password version, so signing
out ended nothing: a copied cookie kept working for 14 days. Each sign-in is now a row
(``sign_ins``, the SHA-256 of the secret its cookies carry) that sign-out ends.

API tokens were signed, not stored: nobody could see or revoke one. Each is now a row
(``api_tokens``, its SHA-256, a shown prefix, a label, created / last used / expires /
revoked). Tokens issued before this revision stop working: programs ask for a new one.

Sign-in throttling counts an (account, address) pair: one more index on the attempts,
and one on their time for the sweeper.

A partner administrator who invited an address with an account elsewhere was told so
(account enumeration): ``partner_invitations`` keeps such an invitation, listed to the
inviter like any other, while the account's holder gets a notice.
"""
from alembic import op
import sqlalchemy as sa


revision = '0020_trust_auth'
down_revision = '0019_idempotency_fingerprint'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'sign_ins',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('ended_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_sign_ins_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_sign_ins')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_sign_ins_secret_hash')),
    )
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.create_index('ix_sign_ins_user_id', ['user_id'], unique=False)
        batch_op.create_index('ix_sign_ins_created_at', ['created_at'], unique=False)
    op.create_table(
        'api_tokens',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('secret_hash', sa.String(length=64), nullable=False),
        sa.Column('prefix', sa.String(length=16), nullable=False),
        sa.Column('label', sa.String(length=80), nullable=False),
        sa.Column('user_version', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=True),
        sa.Column('revoked_at', sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'],
                                name=op.f('fk_api_tokens_user_id_users'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
        sa.UniqueConstraint('secret_hash', name=op.f('uq_api_tokens_secret_hash')),
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index('ix_api_tokens_user_id', ['user_id'], unique=False)
    op.create_table(
        'partner_invitations',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('partner_id', sa.Integer(), nullable=False),
        sa.Column('email', sa.String(length=254), nullable=False),
        sa.Column('name', sa.String(length=120), nullable=False),
        sa.Column('partner_admin', sa.Boolean(), nullable=False),
        sa.Column('invited_by_id', sa.Integer(), nullable=True),
        sa.Column('invited_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['partner_id'], ['partners.id'],
                                name=op.f('fk_partner_invitations_partner_id_partners'),
                                ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['invited_by_id'], ['users.id'],
                                name=op.f('fk_partner_invitations_invited_by_id_users'),
                                ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_invitations')),
    )
    with op.batch_alter_table('partner_invitations', schema=None) as batch_op:
        batch_op.create_index('uq_partner_invitations_partner_id_email',
                              ['partner_id', 'email'], unique=True)
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.create_index('ix_login_attempts_email_address_at',
                              ['email', 'address', 'at'], unique=False)
        batch_op.create_index('ix_login_attempts_at', ['at'], unique=False)


def downgrade():
    with op.batch_alter_table('login_attempts', schema=None) as batch_op:
        batch_op.drop_index('ix_login_attempts_at')
        batch_op.drop_index('ix_login_attempts_email_address_at')
    with op.batch_alter_table('partner_invitations', schema=None) as batch_op:
        batch_op.drop_index('uq_partner_invitations_partner_id_email')
    op.drop_table('partner_invitations')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index('ix_api_tokens_user_id')
    op.drop_table('api_tokens')
    with op.batch_alter_table('sign_ins', schema=None) as batch_op:
        batch_op.drop_index('ix_sign_ins_created_at')
        batch_op.drop_index('ix_sign_ins_user_id')
    op.drop_table('sign_ins')
