"""idempotency keys remember what was sent with them

Revision ID: 0019_idempotency_fingerprint
Revises: 0018_report_rollups
Create Date: 2026-12-03 15:10:00

A retry with the same ``Idempotency-Key`` answers with the first lead; the same key with a
different body is a client's mistake that used to drop the second inquiry silently. The
key now keeps a SHA-256 of the body it came with, so the second body is refused (422).
Keys stored before this have none and are replayed as before.
"""
from alembic import op
import sqlalchemy as sa


revision = '0019_idempotency_fingerprint'
down_revision = '0018_report_rollups'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.add_column(sa.Column('fingerprint', sa.String(length=64), nullable=True))


def downgrade():
    with op.batch_alter_table('idempotency_keys') as batch:
        batch.drop_column('fingerprint')
