"""The managers' lead search, the unassigned queue, bulk actions, and a partner as
managers see it."""


from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Select,
    and_,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from portal.core import lifecycle
from portal.core import transitions as table
from portal.core.access import visible_to
from portal.core.compliance import (
    gate_limit,
    gate_reason,
    overdue_counts,
    overdue_cutoff,
    overdue_parts,
    overdue_ranges,
)
from portal.core.errors import NotFound
from portal.core.lifecycle import Actor
from portal.core.models import (
    OPEN_STATUSES,
    Campaign,
    Lead,
    LeadStatus,
    Partner,
    User,
    utcnow,
)
from portal.core.models.codes import code_is
from portal.core.pagination import Page, paginate
from portal.dispatch import services as routing_service
from portal.leads.partner_inbox import (
    COUNT_CAP,
    SearchFilters,
    common_filters,
    list_options,
)
from portal.leads.services import routed_message

S = LeadStatus

# --- the managers' search, queue and bulk actions ----------------------------------------------


def partners_named(text: str) -> Select[Any]:
    """The partner whose code is ``text`` (any case); when no code is, the partners whose
    name holds it ("prairie" finds Prairie Tractor & Supply and Prairie Implement)."""
    other = aliased(Partner)
    return select(Partner.id).where(or_(code_is(Partner.code, text), and_(
        ~exists().where(code_is(other.code, text)),
        func.lower(Partner.name).contains(text.lower(), autoescape=True))))


def partners_matching(session: Session, text: str, limit: int = 5) -> list[Partner]:
    """The partners ``partners_named`` finds for ``text`` (a few, by name)."""
    return list(session.scalars(select(Partner).where(Partner.id.in_(partners_named(text)))
                                .order_by(Partner.name).limit(limit)))


def search_query(filters: SearchFilters, *, now: datetime | None = None) -> Select[Any]:
    """Leads across all partners matching ``filters``, newest first."""
    now = now or utcnow()
    query = select(Lead)
    if filters.status in {s.value for s in LeadStatus}:
        query = query.where(Lead.status == filters.status)
    if filters.partner:
        query = query.where(Lead.assigned_partner_id.in_(partners_named(filters.partner)))
    if filters.region:
        query = query.where(Lead.region == filters.region.strip().upper())
    if filters.campaign:
        query = query.where(Lead.campaign_id == select(Campaign.id).where(
            code_is(Campaign.code, filters.campaign)).scalar_subquery())
    if filters.overdue:
        cutoff = overdue_cutoff(now)
        # Implied (a lead is offered and accepted after it is created), and said outright:
        # the newest-first walk starts at the cutoff instead of reading the weeks of newer
        # leads, none of them overdue (0.37 s -> 1 ms on PostgreSQL at 1,000,000).
        # One index range per status and part, for generic plans (see counts_statement).
        query = query.where(or_(*overdue_ranges(cutoff)), Lead.created_at < cutoff)
    query = common_filters(query, product_line=filters.product_line, rank=filters.rank,
                            age=filters.age, q=filters.q, now=now)
    return list_options(query.order_by(Lead.created_at.desc(), Lead.id))


def search(session: Session, filters: SearchFilters, *, page: int, per_page: int) -> Page:
    """One page of the managers' lead search (the total is counted up to ``COUNT_CAP``)."""
    return paginate(session, search_query(filters), page, per_page, cap=COUNT_CAP)


def unassigned_queue(session: Session, *, page: int, per_page: int) -> Page:
    """Leads no partner fits, oldest first, each with its routing explanation."""
    query = list_options(
        select(Lead).where(Lead.status == S.UNASSIGNED).order_by(Lead.created_at, Lead.id))
    return paginate(session, query, page, per_page, cap=COUNT_CAP)


def queue_counts(session: Session) -> dict[str, int]:
    """The managers' dashboard: unassigned, waiting for routing, overdue outcomes."""
    unassigned = session.scalar(
        select(func.count()).select_from(Lead).where(Lead.status == S.UNASSIGNED)) or 0
    qualified = session.scalar(
        select(func.count()).select_from(Lead).where(Lead.status == S.QUALIFIED)) or 0
    # Each part an index-only read of (status, accepted_at, offered_at): an OR of them read
    # every working lead.
    late = sum(session.execute(select(*[
        select(func.count()).select_from(Lead).where(part).scalar_subquery()
        for part in overdue_parts(overdue_cutoff())])).one())
    return {"unassigned": unassigned, "qualified": qualified, "overdue": late}


BULK_ACTIONS: dict[str, str] = {
    "reassign": "Reassign to a partner",
    "reroute": "Route again",
    "duplicate": "Close as duplicate",
}
BULK_LIMIT = 200


@dataclass
class BulkPlan:
    """What a bulk action would do: the leads it applies to and those it skips, and why."""

    action: str
    apply: list[Lead]
    skip: list[tuple[Lead, str]]
    partner: Partner | None = None
    reason: str = ""


def plan_bulk(session: Session, user: User, action: str, ids: Iterable[str], *,
              partner_code: str = "", reason: str = "") -> BulkPlan:
    """Check a bulk action before it runs: nothing is written here."""
    if not user.is_staff:
        raise NotFound("lead not found")
    if action not in BULK_ACTIONS:
        raise lifecycle.InvalidInput("Pick an action.", {"action": "Pick an action."})
    lead_ids = []
    for raw in ids:
        try:
            lead_ids.append(uuid.UUID(str(raw)))
        except ValueError:
            continue
    if not lead_ids:
        raise lifecycle.InvalidInput("Tick the leads to change first.",
                                     {"ids": "Tick at least one lead."})
    if len(lead_ids) > BULK_LIMIT:
        raise lifecycle.InvalidInput(f"At most {BULK_LIMIT} leads at once.",
                                     {"ids": f"Tick at most {BULK_LIMIT} leads."})
    reason = " ".join((reason or "").split())
    partner = None
    if action == "reassign":
        partner = _one_partner(session, partner_code)
    if action in ("reassign", "duplicate") and not reason:
        raise lifecycle.InvalidInput("Say why.", {"reason": "A reason is required."})
    leads = list(session.scalars(
        list_options(select(Lead).where(Lead.id.in_(lead_ids), visible_to(user))
                      .order_by(Lead.created_at, Lead.id))
    ))
    plan = BulkPlan(action=action, apply=[], skip=[], partner=partner, reason=reason)
    for lead in leads:
        problem = _bulk_problem(action, lead, partner)
        if problem is None and action == "reassign" and partner is not None:
            # Eligible for this lead, counting the leads the plan already gives it.
            refusal = lifecycle.reassign_refusal(lead, partner, adding=len(plan.apply))
            problem = f"{partner.code} {refusal}" if refusal else None
        if problem:
            plan.skip.append((lead, problem))
        else:
            plan.apply.append(lead)
    return plan


def _one_partner(session: Session, text: str) -> Partner:
    """The partner a bulk reassign names by its code, or by a part of its name that only
    it has; else a refusal naming the candidates (their codes tell them apart)."""
    text = " ".join((text or "").split())
    if not text:
        raise lifecycle.InvalidInput("Name the partner to reassign to.",
                                     {"partner": "Enter the partner's code or name."})
    found = partners_matching(session, text, limit=6)
    if len(found) == 1:
        return found[0]
    if not found:
        raise lifecycle.InvalidInput("No partner has that code or name.",
                                     {"partner": f"No partner's code or name holds “{text}”."})
    named = "; ".join(f"{p.name} ({p.code})" for p in found[:5])
    more = ", and more" if len(found) > 5 else ""
    raise lifecycle.InvalidInput("Several partners match: enter the code of one.",
                                 {"partner": f"Several match “{text}”: {named}{more}. "
                                             "Enter the code of one."})


def _bulk_problem(action: str, lead: Lead, partner: Partner | None) -> str | None:
    status = lead.status
    if action == "reassign":
        if not table.transition("reassign").allows(status):
            return f"{lifecycle.a_status(status)} lead cannot be reassigned (re-open it first)"
        if partner is not None and lead.assigned_partner_id == partner.id:
            return f"already with {partner.code}"
    elif action == "reroute":
        # Taken back first if a partner holds it, then routed.
        if not (table.transition("withdraw").allows(status)
                or table.transition("route").allows(status)):
            return f"{lifecycle.a_status(status)} lead is not routed"
    elif action == "duplicate":
        if not table.transition("disqualify").allows(status):
            return f"already closed ({status.replace('_', ' ')})"
    return None


def run_bulk(session: Session, user: User, plan: BulkPlan) -> list[str]:
    """Carry out a confirmed plan; any failure raises and the caller rolls all of it back."""
    actor = Actor.of(user, device="web")
    done: list[str] = []
    for lead in plan.apply:
        if plan.action == "reassign":
            assert plan.partner is not None
            lifecycle.reassign(session, lead, plan.partner, actor, reason=plan.reason)
            done.append(f"{lead.name}: reassigned to {plan.partner.code}")
        elif plan.action == "reroute":
            if lead.status in OPEN_STATUSES:
                lifecycle.withdraw(session, lead, actor,
                                   reason=plan.reason or "routed again by a manager")
            routed = routing_service.route_lead(session, lead, actor=actor)
            done.append(f"{lead.name}: {routed_message(routed)}")
        else:
            lifecycle.disqualify(session, lead, actor, reason=f"duplicate: {plan.reason}")
            done.append(f"{lead.name}: closed as duplicate")
    session.flush()
    return done


# --- a partner, as managers see it ------------------------------------------------------------


@dataclass
class PartnerOverview:
    """A partner's load, compliance and people, for the managers' partner page."""

    partner: Partner
    by_status: dict[str, int]
    overdue: int
    gate: str | None
    users: list[User]
    dealers: list[Partner]


def partner_overview(session: Session, partner: Partner) -> PartnerOverview:
    """Counts by status, overdue outcomes, users and dealers of one partner."""
    by_status = dict(session.execute(
        select(Lead.status, func.count()).where(Lead.assigned_partner_id == partner.id)
        .group_by(Lead.status)
    ).all())
    late = overdue_counts(session, [partner.id]).get(partner.id, 0)
    users = list(session.scalars(
        select(User).where(User.partner_id == partner.id).order_by(User.email).limit(200)))
    dealers = list(session.scalars(
        select(Partner).where(Partner.parent_id == partner.id).order_by(Partner.code)
        .limit(200)))
    return PartnerOverview(partner=partner, by_status=by_status, overdue=late,
                           gate=gate_reason(late, gate_limit()), users=users, dealers=dealers)


