"""Codes (product lines, campaigns, sources, partners) are compared one way: ignoring case.

A code is stored and shown as it was entered (``web-form`` stays ``web-form``), and every
lookup, from the API, a form, a CSV file or a command, finds it whatever case it is
typed in. Each coded table has a unique index on ``lower(code)`` (migration 0011): it
refuses ``WEB`` beside ``web`` and serves these lookups, which compare ``lower(code)``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.sql.elements import BindParameter

__all__ = ["active_codes", "by_code", "code_in", "code_is"]


class _Coded(Protocol):
    code: Any
    active: Any


M = TypeVar("M", bound=_Coded)


def code_is(column: InstrumentedAttribute[str] | ColumnElement[str],
            code: str | BindParameter[str]) -> ColumnElement[bool]:
    """``column`` holds ``code`` ignoring case: the one comparison every code lookup uses."""
    if isinstance(code, BindParameter):
        # A prepared query's parameter is lowered by the database, not by the caller.
        return func.lower(column) == func.lower(code)
    # Lowered here rather than in SQL: the index expression is lower(code) alone, and
    # codes are ASCII (every form and import checks that), where both lowerings agree.
    return func.lower(column) == code.strip().lower()


def code_in(column: InstrumentedAttribute[str] | ColumnElement[str],
            codes: Iterable[str]) -> ColumnElement[bool]:
    """``column`` holds one of ``codes`` ignoring case (bulk lookups in imports)."""
    return func.lower(column).in_(sorted({code.strip().lower() for code in codes}))


def by_code(session: Session, model: type[M], code: str | None, *,
            active_only: bool = False) -> M | None:
    """The ``model`` row whose code is ``code`` in any case, or None."""
    code = (code or "").strip()
    if not code:
        return None
    query = select(model).where(code_is(model.code, code))
    if active_only:
        query = query.where(model.active.is_(True))
    return session.scalars(query).first()


def active_codes(session: Session, model: type[_Coded]) -> list[str]:
    """The active codes of ``model`` as entered, for messages that list the valid ones."""
    return list(session.scalars(
        select(model.code).where(model.active.is_(True)).order_by(func.lower(model.code))))
