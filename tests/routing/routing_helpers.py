"""Plain builders for routing tests (no fixtures: the core takes plain data)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from routing import Candidate, LeadFacts, LiveState, Point, parse_rules

DES_MOINES = Point(41.5868, -93.6250)
MASON_CITY = Point(43.1536, -93.2010)  # ZIP 50401
AMES = Point(42.0308, -93.6319)


def candidate(partner_id: int, territories: str = "zip:50401", **overrides: Any) -> Candidate:
    """A dealer in Iowa selling TRC and SPR, with the given territory rules."""
    fields: dict[str, Any] = {
        "id": partner_id,
        "code": f"D-{partner_id}",
        "name": f"Dealer {partner_id}",
        "kind": "dealer",
        "parent_id": None,
        "country": "US",
        "location": MASON_CITY,
        "product_lines": frozenset({"TRC", "SPR"}),
        "territories": parse_rules(territories),
    }
    fields.update(overrides)
    return Candidate(**fields)


def lead(**overrides: Any) -> LeadFacts:
    """A lead in Mason City, Iowa, for product line TRC."""
    fields: dict[str, Any] = {
        "country": "US",
        "postal_code": "50401",
        "region": "US-IA",
        "location": MASON_CITY,
        "product_line": "TRC",
        "rank": "hot",
        "excluded": frozenset(),
    }
    fields.update(overrides)
    return LeadFacts(**fields)


def live(
    active: bool = True,
    capacity: int | None = 10,
    open_leads: int = 0,
    last_offered_at: datetime | None = None,
    blocked_reason: str | None = None,
) -> LiveState:
    """A partner's live state; by default active, empty, never offered."""
    return LiveState(active, capacity, open_leads, last_offered_at, blocked_reason)


def all_live(*candidates: Candidate) -> dict[int, LiveState]:
    """Default live state for each candidate."""
    return {c.id: live() for c in candidates}
