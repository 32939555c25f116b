"""codes unique ignoring case: an index on lower(code) for every coded table

Revision ID: 0011_code_lower_indexes
Revises: 0010_search_trgm
Create Date: 2026-12-02 10:00:00

Codes are stored as entered and compared ignoring case (portal.core.models.codes): a source
made as ``web-form`` is found as ``WEB-FORM`` too. A unique index on ``lower(code)``
refuses ``WEB`` beside ``web`` in the database itself (the admin pages already refused
it; this closes the race and the paths that skip them) and is the index those lookups
use: ``lower(code) = ?`` cannot use the plain unique index on ``code``, and at 10,000
partners every API call naming one would read the table. SQLite (3.9+) and PostgreSQL
both use an index on an expression when the query says the same expression.

Rows that already differ only in case would make the index fail; the upgrade names
them instead, so an admin can rename one and run it again.
"""
from alembic import op
import sqlalchemy as sa


revision = '0011_code_lower_indexes'
down_revision = '0010_search_trgm'
branch_labels = None
depends_on = None

TABLES = ('product_lines', 'campaigns', 'sources', 'partners')


def upgrade():
    bind = op.get_bind()
    for table in TABLES:
        clashes = bind.execute(sa.text(
            f"SELECT lower(code) FROM {table} GROUP BY lower(code) HAVING count(*) > 1"
        )).scalars().all()
        if clashes:
            raise RuntimeError(
                f"{table}: codes differ only in case ({', '.join(sorted(clashes))}); "
                "rename one of each pair, then run the upgrade again.")
        op.create_index(f'uq_{table}_code_lower', table, [sa.text('lower(code)')],
                        unique=True)


def downgrade():
    for table in reversed(TABLES):
        op.drop_index(f'uq_{table}_code_lower', table_name=table)
