"""One lead: the lead page's facts, its actions (through the lifecycle, and routing on
where it applies), a distributor's pull-back, conflict review, partner settings."""


from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal.core import channel, lifecycle
from portal.core import transitions as table
from portal.core.errors import NotFound
from portal.core.lifecycle import Actor
from portal.core.models import (
    Competitor,
    Lead,
    LeadEvent,
    LeadStatus,
    Offer,
    Partner,
    PartnerKind,
    ProductLine,
    User,
    display_name,
    utcnow,
)
from portal.dispatch import services as routing_service
from portal.fulfilment.services import fulfilments_for
from portal.leads.actions import perform_action
from portal.leads.partner_inbox import (
    CONFLICT_EVENT,
    CONFLICT_REVIEWED_EVENT,
    LITERATURE_EVENTS,
    due_on,
    first_contact_due,
    is_overdue,
)
from portal.partners.services import partner_matches
from routing import Point, distance_km, longitude_scale

S = LeadStatus

# --- one lead ---------------------------------------------------------------------------------


@dataclass
class LeadView:
    """Everything the lead page shows besides the lead's own columns."""

    lead: Lead
    events: list[LeadEvent]
    offers: list[Offer]
    current_offer: Offer | None
    literature: list[LeadEvent]
    #: what literature was requested, sent, printed or failed (fulfilment records)
    fulfilments: list[Any]
    notes: list[LeadEvent]
    conflicts: list[LeadEvent]
    competitors: list[str]
    dealers: list[PartnerChoice]
    overdue: bool
    due: datetime | None
    now: datetime
    #: what the viewer may do: accept, decline, contact, …
    actions: list[str] = field(default_factory=list)
    #: the viewer may read the prospect's phone, email and street (``channel``)
    contacts: bool = True

    @property
    def name(self) -> str:
        """What the prospect is called here (never by an address the viewer may not read)."""
        lead = self.lead
        return display_name(lead.first_name, lead.last_name, lead.company,
                            lead.email if self.contacts else "")

    @property
    def contact_due(self) -> datetime | None:
        """Accepted and not yet contacted: when the first contact is due (a try that got
        no answer counts as the first contact: DESIGN §7)."""
        if self.lead.status != S.ACCEPTED or self.lead.first_contact_at is not None:
            return None
        return first_contact_due(self.lead.offered_at)


def available_actions(lead: Lead, user: User) -> list[str]:
    """The actions the lead page offers ``user`` for ``lead`` now, read from the table."""
    roles = set(lifecycle.roles_of(Actor.of(user), lead))
    partner = user.partner
    if table.HOLDER in roles and partner is not None and partner.kind == PartnerKind.DISTRIBUTOR:
        roles.add(table.DISTRIBUTOR)
    return table.actions_for(lead.status, roles)


def competitor_names(session: Session) -> list[str]:
    """The manufacturer's active competitor list, for the lost form."""
    return list(session.scalars(
        select(Competitor.name).where(Competitor.active.is_(True)).order_by(Competitor.name)))


@dataclass(frozen=True)
class PartnerChoice:
    """A partner as a picker offers it for one lead (a distributor's forward, a manager's
    reassign): where it is, how far from the prospect, what it sells, how full it is, and
    why not, when it cannot take the lead (``lifecycle.reassign_refusal``'s own words)."""

    partner: Partner
    km: float | None
    why_not: str

    @property
    def place(self) -> str:
        d = self.partner
        return ", ".join(part for part in (d.city, (d.region or "").partition("-")[2]) if part)

    @property
    def facts(self) -> str:
        """Town · distance · lines · load, as the picker shows them beside the name."""
        d = self.partner
        load = f"{d.open_leads}/{d.capacity} open" if d.capacity is not None \
            else f"{d.open_leads} open"
        lines = ", ".join(line.code for line in d.product_lines) or "no product lines"
        far = f"{self.km:,.0f} km" if self.km is not None else "distance unknown"
        return f"{self.place or 'no town'} · {far} · {lines} · {load}"

    @property
    def label(self) -> str:
        return f"{self.partner.name} ({self.partner.code}) · {self.facts}"


def _choices(session: Session, lead: Lead | None, partners: Iterable[Partner]
             ) -> list[PartnerChoice]:
    """``partners`` as choices for ``lead``: eligible first, then nearest to the prospect."""
    here = routing_service.known_location(session, lead) if lead is not None else None
    found = []
    for partner in partners:
        km = None
        if here is not None and partner.latitude is not None and partner.longitude is not None:
            km = distance_km(here, Point(partner.latitude, partner.longitude))
        why_not = (lifecycle.reassign_refusal(lead, partner) or "") if lead is not None else ""
        found.append(PartnerChoice(partner, km, why_not))
    return sorted(found, key=lambda c: (bool(c.why_not), c.km is None, c.km or 0.0,
                                        c.partner.code))


def dealers_of(session: Session, partner_id: int | None, lead: Lead | None = None,
               limit: int = 500) -> list[PartnerChoice]:
    """A distributor's own dealers for the forward form, those that can take ``lead`` first
    and nearest to the prospect first, each with why it cannot (if so): what the
    lifecycle would refuse."""
    if partner_id is None:
        return []
    return _choices(session, lead, session.scalars(
        select(Partner).where(Partner.parent_id == partner_id)
        .options(selectinload(Partner.product_lines)).order_by(Partner.code).limit(limit)))


#: how many partners the reassign picker shows at once
PICKER_SIZE = 12


def reassign_choices(session: Session, lead: Lead, q: str = "", *, keep: str = "",
                     limit: int = PICKER_SIZE) -> list[PartnerChoice]:
    """The partners the reassign picker shows for ``lead``: those whose name, code or town
    holds ``q``, or without ``q`` the nearest ones that sell the lead's product line; each
    with why it is not eligible (paused, full, not selling the line), eligible first.
    ``keep`` (a code) is always among them: the pick a refused form shows again. The
    partner holding the lead now is left out."""
    query = select(Partner).options(selectinload(Partner.product_lines))
    if lead.assigned_partner_id is not None:
        query = query.where(Partner.id != lead.assigned_partner_id)
    q = " ".join(q.split())
    if q:
        query = query.where(partner_matches(q))
        # the closest spellings first: a code typed whole, then names that start with it
        query = query.order_by(func.lower(Partner.code) != q.lower(),
                               ~func.lower(Partner.name).startswith(q.lower(), autoescape=True),
                               Partner.name)
    else:
        query = query.where(Partner.active.is_(True))
        if lead.product_line_id is not None:
            query = query.where(Partner.product_lines.any(ProductLine.id == lead.product_line_id))
        here = routing_service.known_location(session, lead)
        if here is not None:
            # nearest by a flat-earth distance (the picker shows the true one): enough to
            # pick the dozen closest in one scan of the partners
            squeeze = longitude_scale(here.lat) ** 2
            query = query.where(Partner.latitude.is_not(None)).order_by(
                (Partner.latitude - here.lat) * (Partner.latitude - here.lat)
                + (Partner.longitude - here.lon) * (Partner.longitude - here.lon) * squeeze)
        query = query.order_by(Partner.code)
    partners = list(session.scalars(query.limit(limit)))
    if keep and all(p.code != keep for p in partners):
        kept = session.scalars(select(Partner).where(Partner.code == keep)
                               .options(selectinload(Partner.product_lines))).first()
        if kept is not None:
            partners.append(kept)
    return _choices(session, lead, partners)


def lead_events(session: Session, lead: Lead) -> list[LeadEvent]:
    """The lead's timeline, oldest first, with who and for which partner: in the order
    things happened (an event written later about an earlier moment, such as a pack
    sent while the history was loaded or an action synced from offline, takes its place
    by its time; the order of writing breaks ties)."""
    return list(session.scalars(
        select(LeadEvent).where(LeadEvent.lead_id == lead.id)
        .options(selectinload(LeadEvent.actor), selectinload(LeadEvent.partner))
        .order_by(LeadEvent.at, LeadEvent.seq)))


def lead_view(session: Session, lead: Lead, user: User, *, now: datetime | None = None
              ) -> LeadView:
    """The lead page's facts: timeline, offers, literature, notes, what may be done."""
    now = now or utcnow()
    events = lead_events(session, lead)
    offers: list[Offer] = []
    if user.is_staff:
        offers = list(session.scalars(
            select(Offer).where(Offer.lead_id == lead.id)
            .options(selectinload(Offer.partner), selectinload(Offer.by_user))
            .order_by(Offer.id)
        ))
    actions = available_actions(lead, user)
    competitors = competitor_names(session) if "lost" in actions else []
    dealers = dealers_of(session, user.partner_id, lead) if "forward" in actions else []
    reviewed = {str(e.data.get("conflict")) for e in events
                if e.kind == CONFLICT_REVIEWED_EVENT}
    current = lifecycle.current_offer(session, lead) if lead.assigned_partner_id else None
    return LeadView(
        lead=lead, events=events, offers=offers, current_offer=current,
        literature=[e for e in events if e.kind in LITERATURE_EVENTS],
        fulfilments=fulfilments_for(session, lead),
        # Notes typed on their own, and those typed with an action (a stage, an outcome).
        # (A task's note stays with the task: the tasks card shows it.)
        notes=[e for e in events if e.kind == "note" or (
            (e.data or {}).get("note") and not e.kind.startswith("task_"))],
        conflicts=[e for e in events
                   if e.kind == CONFLICT_EVENT and str(e.id) not in reviewed],
        competitors=competitors, dealers=dealers, overdue=is_overdue(lead, now),
        due=due_on(lead), now=now, actions=actions,
        contacts=channel.contact_reader(session, user)(lead),
    )


# --- actions ------------------------------------------------------------------------------------


#: the page actions this area carries out itself (with routing, or on the conflict log)
AREA_ACTIONS = ("pull_back", "route", "review_conflict")
#: every action the lead page posts: the table's API actions and the area's own
PAGE_ACTIONS = (*table.API_ACTIONS, *AREA_ACTIONS)


@dataclass
class ActionResult:
    """What an action did, in words for the person who asked."""

    message: str
    routing: routing_service.RoutingResult | None = None


_DONE = {
    "contact": "Contact recorded.",
    "appointment": "Appointment recorded.",
    "attempt": "Attempt recorded: it counts as follow-up. Try them again soon.",
    "quote": "Quote recorded.",
    "won": "Won: well done. The outcome is recorded.",
    "lost": "Lost: the outcome and reason are recorded.",
    "no_interest": "No interest: the outcome is recorded.",
    "note": "Note added.",
    "reopen": "Lead re-opened.",
}


def run_action(session: Session, lead: Lead, action: str, args: dict[str, Any],
               user: User) -> ActionResult:
    """Carry out one page action for ``user`` through the lifecycle (and routing)."""
    actor = Actor.of(user, device="web")
    if action == "pull_back":
        return pull_back(session, lead, user, reason=str(args.get("reason") or ""))
    if action == "route":
        if not user.is_staff:
            raise NotFound("lead not found")
        routed = routing_service.route_lead(session, lead, actor=actor)
        return ActionResult(routed_message(routed), routed)
    if action == "review_conflict":
        return review_conflict(session, lead, user, event_id=str(args.get("event") or ""),
                               note=str(args.get("note") or ""))
    routed = perform_action(session, lead, action, args, actor)
    session.flush()
    if action == "accept":
        return ActionResult(f"Accepted {lead.name or 'the prospect'}: the lead is yours. "
                            "Contact them soon.")
    if action == "decline":
        onward = ("the lead goes to another partner." if routed is None or routed.partner
                  else "no other partner fits, so the manufacturer's team takes it from here.")
        return ActionResult(f"Declined {lead.name or 'the prospect'}: {onward}", routed)
    if action == "forward":
        dealer = lead.assigned_partner
        offer = lifecycle.current_offer(session, lead)
        time_left = (f"it has until {offer.expires_at:%Y-%m-%d %H:%M} UTC to accept"
                     if offer is not None and offer.expires_at is not None
                     else "it is the dealer's to accept")
        return ActionResult(f"Forwarded to {dealer.name if dealer else 'your dealer'}: "
                            f"{time_left}.")
    if action == "reassign":
        partner = lead.assigned_partner
        return ActionResult(f"Reassigned to {partner.name} ({partner.code})." if partner
                            else "Reassigned.")
    return ActionResult(_DONE.get(action, "Done."))


def routed_message(routed: routing_service.RoutingResult) -> str:
    if routed.partner is None:
        return f"Still unassigned: {routed.summary}"
    target = routed.forwarded_to or routed.partner
    return f"Offered to {target.code}. {routed.summary}"


def pull_back(session: Session, lead: Lead, user: User, *, reason: str) -> ActionResult:
    """A distributor takes a lead back from one of its dealers into its own hands.

    Two lifecycle steps, each an event on the timeline: the dealer's offer is withdrawn and
    the lead is offered to the distributor by hand, to forward to another dealer or to
    accept (as any offer, with its time to answer): a pull-back is not an accept, so no
    outcome clock starts and the reports do not count an accept nobody made.
    """
    actor = Actor.of(user, device="web")
    reason = " ".join((reason or "").split())
    # The table's row: the lead locked, held by one of this distributor's dealers, a reason.
    lifecycle.check(session, lead, "pull_back", actor, {"reason": reason})
    partner, dealer = user.partner, lead.assigned_partner
    assert partner is not None and dealer is not None
    now = utcnow()
    lifecycle.withdraw(session, lead, actor, reason=f"pulled back by {partner.code}: {reason}",
                       now=now)
    # force: the lead was the distributor's before it passed it on, so capacity and a
    # pause do not stop it coming back.
    lifecycle.offer(session, lead, partner, actor, method="manual",
                    reason=f"pulled back from {dealer.code}: {reason}", force=True, now=now)
    session.flush()
    return ActionResult(f"Pulled back from {dealer.name}: the lead is with you again, "
                        "to forward to another dealer or to accept.")


def review_conflict(session: Session, lead: Lead, user: User, *, event_id: str,
                    note: str) -> ActionResult:
    """A manager marks an offline conflict on the lead as reviewed (an audited event)."""
    lifecycle.check(session, lead, "review_conflict", Actor.of(user))
    try:
        conflict_id = uuid.UUID(event_id)
    except ValueError:
        raise lifecycle.InvalidInput("Unknown conflict.") from None
    conflict = session.scalars(
        select(LeadEvent).where(LeadEvent.lead_id == lead.id, LeadEvent.id == conflict_id,
                                LeadEvent.kind == CONFLICT_EVENT)
    ).first()
    if conflict is None:
        raise lifecycle.InvalidInput("Unknown conflict.")
    lifecycle.record_event(session, lead, CONFLICT_REVIEWED_EVENT, Actor.of(user),
                           now=utcnow(), data={"conflict": str(conflict.id),
                                               "note": note.strip()[:2000]})
    session.flush()
    return ActionResult("Conflict marked as reviewed.")


# --- partner settings -------------------------------------------------------------------------


def set_capacity(session: Session, partner: Partner, capacity: int | None) -> None:
    """The most open leads the partner takes at once (None: no limit)."""
    if capacity is not None and not 0 <= capacity <= 100_000:
        raise lifecycle.InvalidInput("Capacity is out of range.",
                                     {"capacity": "Enter 0 to 100000, or leave empty."})
    partner.capacity = capacity
    partner.updated_at = utcnow()
    session.flush()
