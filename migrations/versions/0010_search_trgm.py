"""text search index: trigrams of the searched columns (PostgreSQL)

Revision ID: 0010_search_trgm
Revises: 0009_inbox_index
Create Date: 2026-12-01 16:05:00

The managers' search finds each word anywhere in a lead's name, company, email, phone
(as typed and as E.164), postal code or city (``ILIKE '%word%'``). Without an index that
read all the leads: 2.6 s at 1,000,000 on PostgreSQL. A GIN index of the text's trigrams (pg_trgm) answers it from
the index. The expression is the one ``portal.leads.services._search_text`` renders, to
the character: PostgreSQL uses an expression index only for the same expression.

pg_trgm ships with PostgreSQL (contrib) and is a trusted extension since PostgreSQL 13:
a role with CREATE on the database may create it. Where it is missing, or this role may
not create it, the index is left out with a warning saying how to add it later, and
search still works, by reading the table. SQLite has no trigram index: nothing to do.
"""
import logging

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
    if not _has_trgm(bind):
        available = bind.scalar(sa.text(
            "SELECT count(*) FROM pg_available_extensions WHERE name = 'pg_trgm'"))
        if not available:
            _skip("pg_trgm is not installed on the server (PostgreSQL's contrib)")
            return
        # Creating it needs the database's CREATE privilege (an app role that does not own
        # the database lacks it) or, before PostgreSQL 13, a superuser: try in a savepoint
        # so a refusal leaves the rest of the upgrade standing.
        savepoint = bind.begin_nested()
        try:
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS pg_trgm"))
        except sa.exc.DBAPIError as error:
            savepoint.rollback()
            _skip(f"this role may not create the pg_trgm extension ({error.orig})")
            return
        savepoint.commit()
    op.execute(f"CREATE INDEX IF NOT EXISTS ix_leads_search_trgm ON leads USING gin "
               f"(({SEARCH_TEXT}) gin_trgm_ops)")


def _has_trgm(bind) -> bool:
    return bool(bind.scalar(sa.text(
        "SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")))


def _skip(why: str) -> None:
    logging.getLogger("alembic.runtime.migration").warning(
        "0010: no trigram index for the text search, %s; search works without it, by "
        "reading the table. To add it later, as the database owner: CREATE EXTENSION "
        "pg_trgm; then flask db downgrade 0009_inbox_index && flask db upgrade.", why)


def downgrade():
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP INDEX IF EXISTS ix_leads_search_trgm")
