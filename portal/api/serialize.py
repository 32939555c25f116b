"""Lead JSON (DESIGN §6): the same shape for capture, reads, actions and sync."""

from __future__ import annotations

from typing import Any

from portal.core.models import Lead, LeadEvent


def event_json(event: LeadEvent) -> dict[str, Any]:
    """One timeline event."""
    return {
        "id": str(event.id),
        "kind": event.kind,
        "from": event.from_status,
        "to": event.to_status,
        "at": event.at.isoformat(),
        "partner": event.partner.code if event.partner else None,
        "actor": event.actor.email if event.actor else None,
        "device": event.device,
        "data": event.data or {},
    }


def lead_json(lead: Lead, *, contacts: bool, events: bool = True) -> dict[str, Any]:
    """The lead as the API returns it; without ``contacts`` (a partner that has not
    accepted it, ``core.channel``) its email, phone and street are null and
    ``contacts_hidden`` says why."""
    body: dict[str, Any] = {
        "id": str(lead.id),
        "status": lead.status,
        "rank": lead.rank,
        "score": lead.score,
        "qualification_reason": lead.qualification_reason,
        "first_name": lead.first_name,
        "last_name": lead.last_name,
        "company": lead.company,
        "email": lead.email if contacts else None,
        "phone": lead.phone if contacts else None,
        "address": lead.address if contacts else None,
        "contacts_hidden": not contacts,
        "city": lead.city,
        "region": lead.region,
        "postal_code": lead.postal_code,
        "country": lead.country,
        "product_line": lead.product_line.code if lead.product_line else None,
        "campaign": lead.campaign.code if lead.campaign else None,
        "source": lead.source.code if lead.source else None,
        "comments": lead.comments,
        "wants_literature": lead.wants_literature,
        "answers": lead.answers or {},
        "external_id": lead.external_id,
        "assigned_partner": lead.assigned_partner.code if lead.assigned_partner else None,
        "owner_partner": lead.owner_partner.code if lead.owner_partner else None,
        #: the salesperson of the holding partner who works it (portal.core.assignment)
        "assignee": lead.assigned_user.email if lead.assigned_user else None,
        "assignee_name": (lead.assigned_user.name or lead.assigned_user.email)
        if lead.assigned_user else None,
        "routing": lead.routing,
        "inquiries": lead.inquiries,
        "quote_amount": str(lead.quote_amount) if lead.quote_amount is not None else None,
        "won_amount": str(lead.won_amount) if lead.won_amount is not None else None,
        "lost_reason": lead.lost_reason,
        "lost_to": lead.competitor_name or None,
        "version": lead.version,
        "created_at": lead.created_at.isoformat(),
        "updated_at": lead.updated_at.isoformat(),
        "offered_at": lead.offered_at.isoformat() if lead.offered_at else None,
        "accepted_at": lead.accepted_at.isoformat() if lead.accepted_at else None,
    }
    if events:
        body["events"] = [event_json(e) for e in lead.events]
    return body
