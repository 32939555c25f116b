"""One way to page a list: ``Page`` is what the ``pager`` macro shows; ``paginate`` pages
a query. (The inbox makes its ``Page`` itself: its unfiltered tabs take the total from
the tab counts it has already made.)"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

T = TypeVar("T")

#: the highest page number anyone asks for in earnest; beyond it, OFFSET would outgrow the
#: database's 64-bit integers (SQLite then fails outright)
MAX_PAGE = 10_000_000


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list: what the ``pager`` macro shows."""

    items: Sequence[T]
    number: int
    pages: int
    total: int
    capped: bool = False  #: the total is "at least": counting stopped at the cap


def paginate(session: Session, query: Select[Any], number: int, per_page: int,
             *, cap: int | None = None) -> Page[Any]:
    """Count (up to ``cap``, so counts stay cheap at a million rows) and fetch page
    ``number`` (1-based, clamped to the pages there are) of ``query``: two queries."""
    counted = query.order_by(None)
    if cap is not None:
        counted = counted.limit(cap + 1)
    total = session.scalar(select(func.count()).select_from(counted.subquery())) or 0
    capped = cap is not None and total > cap
    if capped and cap is not None:
        total = cap
    pages = max(1, math.ceil(total / per_page))
    number = min(max(1, number), pages, MAX_PAGE)
    items = session.scalars(query.limit(per_page).offset((number - 1) * per_page)).all()
    return Page(items=items, number=number, pages=pages, total=total, capped=capped)
