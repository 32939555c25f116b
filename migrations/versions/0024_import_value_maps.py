"""lead import: value mapping, dry run; product-line aliases

Revision ID: 0024_import_value_maps
Revises: 0023_channel_settings
Create Date: 2026-12-03 18:00:00

A leads CSV says "Compact tractors", "this month" or "$20k-50k" where the portal needs the
product line's code and the standard answers. ``product_lines.aliases`` holds the other
names a line goes by (matched ignoring case, like its code and name); an import keeps
the value picks its person made (``lead_imports.value_map``: field → file value → code)
and when its mapping was last saved for a dry run (``checked_at``) with the dry run's
result (``dry_run``: counts and sample rows, written by a background job), which the
Import button needs.
"""
from alembic import op
import sqlalchemy as sa


revision = '0024_import_value_maps'
down_revision = '0023_channel_settings'
branch_labels = None
depends_on = None


def upgrade():
    op.add_column('product_lines', sa.Column('aliases', sa.JSON(), nullable=False,
                                             server_default='[]'))
    for column in (sa.Column('value_map', sa.JSON(), nullable=False, server_default='{}'),
                   sa.Column('checked_at', sa.DateTime(), nullable=True),
                   sa.Column('dry_run', sa.JSON(), nullable=True)):
        op.add_column('lead_imports', column)


def downgrade():
    with op.batch_alter_table('lead_imports') as batch:
        for name in ('dry_run', 'checked_at', 'value_map'):
            batch.drop_column(name)
    with op.batch_alter_table('product_lines') as batch:
        batch.drop_column('aliases')
