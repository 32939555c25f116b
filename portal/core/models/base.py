"""Declarative base, naming convention and the UTC timestamp type."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, MetaData
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC: SQLite keeps no zone, PostgreSQL gets the same."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column; use portal.clock.utcnow()")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}


#: indexes that only migrations make, for one database: models cannot say them (PostgreSQL's
#: trigram index of the searched text, migration 0010), so autogenerate leaves them alone
MIGRATION_ONLY_INDEXES = frozenset({"ix_leads_search_trgm"})


def in_autogenerate(_object: Any, name: str | None, type_: str, reflected: bool,
                    _compare_to: Any) -> bool:
    """Alembic's ``include_object``: everything but ``MIGRATION_ONLY_INDEXES``."""
    return not (type_ == "index" and reflected and name in MIGRATION_ONLY_INDEXES)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)
