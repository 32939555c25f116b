"""text search index: trigrams of the searched columns (PostgreSQL)

Revision ID: 0010_search_trgm
Revises: 0009_inbox_index
Create Date: 2026-12-01 16:05:00

The managers' search finds each word anywhere in a lead's name, company, email, phone
(as typed and as E.164), postal code or city (``ILIKE '%word%'``). Without an index that
read all the leads: 2.6 s at 1,000,000 on PostgreSQL. A GIN index of the text's trigrams (pg_trgm) answers it from
the index. The expression is the one ``portal.leads.services._search_text`` renders, to
the character: PostgreSQL uses an expression index only for the same expression.

pg_trgm ships with PostgreSQL (contrib) and is a trusted extension: the database's owner
may create it. Where it is not installed the index is left out and search still works,
by reading the table. SQLite has no trigram index: nothing to do there.
"""
from alembic import op
import sqlalchemy as sa


revision = '0010_search_trgm'
down_revision = '0009_inbox_index'
branch_labels = None
depends_on = None

SEARCH_TEXT = (
    "coalesce(first_name, '') || ' ' || coalesce(last_name, '') || ' ' || "
    "coalesce(company, '') || ' ' || coalesce(email, '') || ' ' || "
    "coalesce(phone, '') || ' ' || coalesce(phone_normalized, '') || ' ' || "
    "coalesce(postal_code, '') || ' ' || coalesce(city, '')"
)


def upgrade():
    bind = op.get_bind()
    if bind.dialect.name != 'postgresql':
        return
    available = bind.scalar(sa.text(
        "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"))
    if not available:
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.execute(f"CREATE INDEX ix_leads_search_trgm ON leads USING gin (({SEARCH_TEXT}) "
               "gin_trgm_ops)")


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_leads_search_trgm")
