"""Who may see which lead: one rule for pages, fragments, exports, API and sync."""

from __future__ import annotations

import uuid
from typing import Any

from flask import abort
from sqlalchemy import ColumnElement, and_, or_, select, true
from sqlalchemy.orm import Session

from portal.core.models import Lead, Partner, PartnerKind, User


def held_by(partner_id: int) -> ColumnElement[bool]:
    """A WHERE clause: the leads a partner holds, i.e. offered or assigned to it, and its
    own captures that no other partner holds now. A lead a manager reassigned away from the
    partner that captured it is the new holder's alone, with its notes and outcome."""
    return or_(Lead.assigned_partner_id == partner_id,
               and_(Lead.owner_partner_id == partner_id, Lead.assigned_partner_id.is_(None)))


def visible_to(user: User) -> ColumnElement[bool]:
    """A WHERE clause: staff see every lead; a partner sees the leads it holds, and a
    distributor also those held by its own dealers."""
    if user.is_staff:
        return true()
    partner_id = user.partner_id
    if partner_id is None:
        return Lead.id.is_(None)  # a partner user without a partner sees nothing
    clauses: list[ColumnElement[bool]] = [held_by(partner_id)]
    partner = user.partner
    if partner is not None and partner.kind == PartnerKind.DISTRIBUTOR:
        dealers = select(Partner.id).where(Partner.parent_id == partner_id)
        clauses.append(Lead.assigned_partner_id.in_(dealers))
    return or_(*clauses)


def parse_lead_id(raw: Any) -> uuid.UUID | None:
    """A lead id from a URL, or None when it is not a UUID."""
    try:
        return uuid.UUID(str(raw))
    except (TypeError, ValueError):
        return None


def visible_lead(session: Session, user: User, raw_id: Any) -> Lead | None:
    """The lead if ``user`` may see it, else None (callers answer 404, never 403)."""
    lead_id = parse_lead_id(raw_id)
    if lead_id is None:
        return None
    return session.scalars(select(Lead).where(Lead.id == lead_id, visible_to(user))).first()


def visible_lead_or_404(session: Session, user: User, raw_id: Any) -> Lead:
    """The lead if ``user`` may see it; otherwise 404 (no existence leak)."""
    lead = visible_lead(session, user, raw_id)
    if lead is None:
        abort(404)
    return lead
