"""Manual merge and unmerge of duplicate leads, on top of the lifecycle's merge events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from portal.capture.services import current_rules
from portal.capture.services import inquiry_facts as lead_facts
from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import CLOSED_STATUSES, Lead, LeadEvent, LeadStatus, utcnow
from portal.core.pagination import Page, paginate
from portal.leads.partner_inbox import matching_text
from routing.scoring import evaluate

MAX_MATCHES = 20


def _rescore(session: Session, lead: Lead, actor: Actor, now: datetime, reason: str) -> None:
    """Repeat inquiries count in the score: re-score after the count changed."""
    if lead.status in CLOSED_STATUSES or lead.status == LeadStatus.DISQUALIFIED:
        return
    verdict = evaluate(current_rules(session), lead_facts(lead))
    lifecycle.rescore(session, lead, score=verdict.score, rank=verdict.rank, reason=reason,
                      actor=actor, now=now)


def merge_leads(session: Session, keep: Lead, duplicate: Lead, actor: Actor, *,
                reason: str = "", now: datetime | None = None) -> LeadEvent:
    """Merge ``duplicate`` into ``keep`` by hand; ``keep`` gains its inquiries and score."""
    now = now or utcnow()
    event = lifecycle.merge(session, duplicate, keep, actor, reason=(reason or "").strip(),
                            now=now)
    _rescore(session, keep, actor, now, "merged a duplicate lead")
    return event


def unmerge_lead(session: Session, lead: Lead, actor: Actor, *, reason: str,
                 now: datetime | None = None) -> LeadEvent:
    """Undo the merge of ``lead``: it returns to its previous state; the kept lead gives
    back the inquiries it gained."""
    now = now or utcnow()
    event = lifecycle.unmerge(session, lead, actor, reason=reason, now=now)
    kept = session.get(Lead, uuid.UUID(event.data["from"]))
    if kept is not None:
        _rescore(session, kept, actor, now, "unmerged a duplicate lead")
    return event


def find_leads(session: Session, text: str) -> list[Lead]:
    """The leads the managers' lead search finds for ``text`` (any words of the name,
    company, email, phone, town or ZIP), or the lead with that id; newest first."""
    text = (text or "").strip()
    if len(text) < 2:
        return []
    parsed = _uuid(text)
    found = (Lead.id == parsed) if parsed is not None else and_(*matching_text(text))
    return list(session.scalars(
        select(Lead).where(found).order_by(Lead.created_at.desc()).limit(MAX_MATCHES)))


def likely_duplicates(session: Session, lead: Lead) -> list[Lead]:
    """Other leads with the same email, phone, or name and postal code, at any age."""
    clauses = []
    if lead.email_normalized:
        clauses.append(Lead.email_normalized == lead.email_normalized)
    if lead.phone_normalized:
        clauses.append(Lead.phone_normalized == lead.phone_normalized)
    if lead.first_name and lead.last_name and lead.postal_code:
        clauses.append((func.lower(Lead.last_name) == lead.last_name.lower())
                       & (func.lower(Lead.first_name) == lead.first_name.lower())
                       & (Lead.postal_code == lead.postal_code))
    if not clauses:
        return []
    return list(session.scalars(
        select(Lead).where(or_(*clauses), Lead.id != lead.id)
        .order_by(Lead.created_at.desc()).limit(MAX_MATCHES)))


@dataclass(frozen=True)
class MergeRow:
    """A merge in the list: the event, the lead merged away and the lead kept."""

    event: LeadEvent
    merged: Lead
    kept: Lead | None
    undoable: bool


def recent_merges(session: Session, number: int, per_page: int) -> Page[MergeRow]:
    """Merges, newest first, with both leads loaded in one query per page."""
    page = paginate(session, select(LeadEvent).where(LeadEvent.kind == "merged")
                    .order_by(LeadEvent.at.desc(), LeadEvent.seq.desc()), number, per_page)
    ids = {e.lead_id for e in page.items} | {
        parsed for e in page.items if (parsed := _uuid(e.data.get("into"))) is not None}
    leads = {lead.id: lead for lead in session.scalars(select(Lead).where(Lead.id.in_(ids)))} \
        if ids else {}
    rows = []
    for event in page.items:
        merged = leads[event.lead_id]
        # Only the merge that still defines the lead can be undone (not one already undone).
        undoable = (merged.status == LeadStatus.DISQUALIFIED
                    and merged.qualification_reason.startswith("merged into"))
        into = _uuid(event.data.get("into"))
        rows.append(MergeRow(event, merged, leads.get(into) if into else None, undoable))
    return Page(items=rows, number=page.number, pages=page.pages, total=page.total)


def _uuid(raw: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(raw).strip())
    except (TypeError, ValueError):
        return None
