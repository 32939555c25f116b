"""Background routing: a periodic sweep that expires overdue offers and routes what waits."""

from __future__ import annotations

from portal.core.errors import InvalidTransition
from portal.core.jobs import periodic
from portal.dispatch.services import (
    expire_overdue_offers,
    partner_index,
    pending_leads,
    route_lead,
)
from portal.extensions import db


def route_batch(limit: int = 500) -> tuple[int, int]:
    """Expire overdue offers and route up to ``limit`` pending leads; returns (expired, routed)."""
    expired = expire_overdue_offers(db.session, limit=limit)
    routed = 0
    leads = pending_leads(db.session, limit=limit)
    index = partner_index(db.session) if leads else None
    for lead in leads:
        try:
            route_lead(db.session, lead, index=index)
        except InvalidTransition:
            continue  # routed by someone else since the query read it
        routed += 1
    return len(expired), routed


@periodic(minute="*")
def routing_sweep() -> None:
    """Every minute: expire offers past their deadline, route leads still waiting."""
    route_batch()
