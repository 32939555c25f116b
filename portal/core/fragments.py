"""What busy pages repeat, made once and reused: HTML fragments, checked query strings.

A partner's inbox shows the same filter bar on every visit with the same query string;
rendering WTForms fields is slow (about 40 µs a field), so the rendered bar, and what the
filter form makes of a query string, are kept here per distinct input. Nothing that
changes from request to request (a CSRF token, the URL a form returns to) goes in: such
forms are rendered each time. Each kind of thing is kept in a pool of its own, so that
many distinct searches cannot push out the few fragments every page uses.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from flask import current_app

T = TypeVar("T")

#: a bound on what one pool keeps (each entry is a few KB at most)
MAX_ENTRIES = 512


def remembered(pool: str, key: Hashable, make: Callable[[], T]) -> T:
    """``make()``'s result (a fragment's HTML, or what a form makes of a query string),
    made once per ``key`` in ``pool`` in this app; the caller must not change it.

    ``key`` must hold everything the result depends on. A full pool is emptied. When
    templates reload on change (debug), nothing is kept, so an edited template shows at
    once.
    """
    if current_app.jinja_env.auto_reload:
        return make()
    pools: dict[str, dict[Hashable, Any]] = current_app.extensions.setdefault(
        "portal.core.fragments", {})
    kept = pools.setdefault(pool, {})
    try:
        return kept[key]  # type: ignore[no-any-return]
    except KeyError:
        pass
    if len(kept) >= MAX_ENTRIES:
        kept.clear()
    made = kept[key] = make()
    return made
