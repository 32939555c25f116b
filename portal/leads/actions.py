"""One entry point for a lead action from a page, the API or offline sync."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.orm import Session

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Lead, LeadStatus
from portal.dispatch.services import RoutingResult, route_lead


def perform_action(session: Session, lead: Lead, action: str, args: dict[str, Any],
                   actor: Actor, *, event_id: uuid.UUID | None = None
                   ) -> RoutingResult | None:
    """Apply ``action`` through the lifecycle; a decline or pull-back is routed on at once."""
    lifecycle.apply_action(session, lead, action, args, actor, event_id=event_id)
    if lead.status == LeadStatus.QUALIFIED and action in ("decline",):
        return route_lead(session, lead)
    return None
