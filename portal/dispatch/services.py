"""Routing in the portal: feed the pure engine (``routing``) and act on its decision.

The engine decides; this module gathers its facts (a cached snapshot of partners and
their territories, the live load of the partners that matched) and carries the decision
out through ``portal.core.lifecycle`` — offer, auto-forward or the managers' queue — with the
explanation stored on the offer and the lead.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, selectinload

from portal.core import compliance as overdue
from portal.core import lifecycle
from portal.core.errors import AtCapacity, InvalidTransition
from portal.core.lifecycle import Actor
from portal.core.models import (
    Lead,
    LeadStatus,
    Offer,
    OfferResponse,
    Partner,
    PartnerKind,
    PostalCentroid,
    utcnow,
)
from portal.dispatch import geocoding
from routing import (
    Candidate,
    CentroidTable,
    Decision,
    Explanation,
    LeadFacts,
    LiveState,
    PartnerIndex,
    Point,
    TerritoryRule,
    normalise_postal_code,
)

#: how often a decision is retried when its partner fills up meanwhile
_CAPACITY_RETRIES = 5


# --- the partner snapshot -----------------------------------------------------------------


@dataclass
class _Snapshot:
    stamp: tuple[Any, ...]
    index: PartnerIndex


_snapshots: dict[str, _Snapshot] = {}
_snapshot_lock = threading.Lock()


def _stamp(session: Session) -> tuple[Any, ...]:
    # Every edit of a partner's routing facts sets its updated_at (see manage services);
    # count and max id catch deletions and inserts in the same second.
    row = session.execute(
        select(func.count(Partner.id), func.max(Partner.id), func.max(Partner.updated_at))
    ).one()
    return tuple(row)


def candidates_from(partners: Iterable[Partner]) -> Iterator[Candidate]:
    """Engine candidates for ``partners`` (territories and product lines loaded)."""
    for partner in partners:
        location = None
        if partner.latitude is not None and partner.longitude is not None:
            location = Point(partner.latitude, partner.longitude)
        yield Candidate(
            id=partner.id,
            code=partner.code,
            name=partner.name,
            kind=partner.kind,
            parent_id=partner.parent_id,
            country=partner.country or "US",
            location=location,
            product_lines=frozenset(line.code for line in partner.product_lines),
            territories=tuple(TerritoryRule(t.kind, t.value) for t in partner.territories),
        )


def build_index(session: Session) -> PartnerIndex:
    """A fresh index of every partner (10,000 partners build in about a second)."""
    partners = session.scalars(
        select(Partner).options(selectinload(Partner.territories),
                                selectinload(Partner.product_lines))
        .execution_options(yield_per=2000)
    )
    return PartnerIndex.build(candidates_from(partners))


def partner_index(session: Session) -> PartnerIndex:
    """The cached index, rebuilt when a partner's routing facts changed."""
    key = current_app.config["DATABASE_URL"]
    stamp = _stamp(session)
    cached = _snapshots.get(key)
    if cached is not None and cached.stamp == stamp:
        return cached.index
    with _snapshot_lock:
        cached = _snapshots.get(key)
        if cached is None or cached.stamp != stamp:
            cached = _Snapshot(stamp=stamp, index=build_index(session))
            _snapshots[key] = cached
    return cached.index


def live_state(session: Session, partner_ids: Iterable[int]) -> dict[int, LiveState]:
    """Load, capacity and pause state of just these partners, read now."""
    ids = sorted(set(partner_ids))
    states: dict[int, LiveState] = {}
    limit = overdue.gate_limit()
    for start in range(0, len(ids), 900):  # stay under SQLite's bound-parameter limit
        chunk = ids[start:start + 900]
        rows = session.execute(
            select(Partner.id, Partner.active, Partner.capacity, Partner.open_leads,
                   Partner.last_offered_at, Partner.paused_reason)
            .where(Partner.id.in_(chunk))
        )
        # The compliance gate: partners with too many overdue outcomes get no new offers.
        late = overdue.overdue_counts(session, chunk) if limit is not None else {}
        for pid, active, capacity, open_leads, last_offered_at, paused_reason in rows:
            states[pid] = LiveState(
                active=active, capacity=capacity, open_leads=open_leads,
                last_offered_at=last_offered_at,
                blocked_reason=(None if active or not paused_reason
                                else f"paused: {paused_reason}")
                or overdue.gate_reason(late.get(pid, 0), limit),
            )
    return states


class LazyLiveState(Mapping[int, LiveState]):
    """Live state read on demand: the engine looks only at the few candidates it examines
    (about three per lead), while a country rule may match hundreds."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._cache: dict[int, LiveState | None] = {}

    def __getitem__(self, partner_id: int) -> LiveState:
        if partner_id not in self._cache:
            self._cache[partner_id] = live_state(self._session, [partner_id]).get(partner_id)
        state = self._cache[partner_id]
        if state is None:
            raise KeyError(partner_id)
        return state

    def __iter__(self) -> Iterator[int]:
        return (pid for pid, state in self._cache.items() if state is not None)

    def __len__(self) -> int:
        return sum(1 for state in self._cache.values() if state is not None)


# --- the lead's facts ---------------------------------------------------------------------


def warm_up(session: Session) -> None:
    """Load what a process's first routing would otherwise wait for: the US postal
    centroids (about a second) and the partner snapshot. A web worker calls it before
    serving (wsgi.py), so the first inquiry is routed as fast as any other. A database
    not migrated yet is skipped: the snapshot is then built on first use."""
    CentroidTable.us()
    try:
        partner_index(session)
    except SQLAlchemyError as error:
        current_app.logger.warning("routing snapshot not built at start: %s", error)


#: new objects the cyclic collector lets pile up before it looks at them (Python's default
#: is 700). A report page builds ~100,000 small objects (rows, figures) that die with the
#: request; at 700 the collector ran through them again and again: 60 ms of a 300 ms
#: league table at 1,000,000 leads (227 ms before ``gc.freeze``), 12 ms at 50,000.
YOUNG_OBJECTS = 50_000


def freeze_start_up_objects() -> None:
    """Once, when a process has loaded what it keeps for its life (centroids, the first
    snapshot) and before it serves: collect the garbage of starting, then keep the
    collector from rescanning what is left, and let it look at new objects less often.
    Never on a rebuild: whatever is frozen is never collected, so a replaced snapshot
    (and the garbage around it) would stay."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_OBJECTS, older, oldest)


def centroid(session: Session, country: str, postal_code: str | None) -> Point | None:
    """A postal code's centre: the offline US table, else the imported GeoNames rows."""
    if not postal_code:
        return None
    if country == "US":
        return CentroidTable.us().get(country, postal_code)
    row = session.get(PostalCentroid, (country, postal_code))
    return Point(row.latitude, row.longitude) if row else None


def known_location(session: Session, lead: Lead) -> Point | None:
    """Where the lead is, as far as we know without asking a geocoder: its own position,
    else its postal code's centre (what routing measures from, and the pickers too)."""
    if lead.latitude is not None and lead.longitude is not None:
        return Point(lead.latitude, lead.longitude)
    country = (lead.country or "US").upper()
    return centroid(session, country, normalise_postal_code(country, lead.postal_code))


def excluded_partners(session: Session, lead: Lead) -> frozenset[int]:
    """Partners that declined this lead or let it expire: never offered it again."""
    if not lead.offers_count:
        return frozenset()  # never offered: nobody to exclude (saves a query per lead)
    return frozenset(
        session.scalars(
            select(Offer.partner_id).where(
                Offer.lead_id == lead.id,
                Offer.response.in_([OfferResponse.DECLINED, OfferResponse.EXPIRED]),
            )
        )
    )


def lead_facts(session: Session, lead: Lead) -> LeadFacts:
    """What the engine needs to know about ``lead``."""
    return lead_facts_and_notes(session, lead)[0]


def lead_facts_and_notes(session: Session, lead: Lead) -> tuple[LeadFacts, tuple[str, ...]]:
    """The lead's facts, and notes for its explanation (where an online location came from)."""
    country = (lead.country or "US").upper()
    postal = normalise_postal_code(country, lead.postal_code)
    notes: tuple[str, ...] = ()
    location = known_location(session, lead)
    if location is None and geocoding.enabled():
        query = geocoding.address_query(lead.address or "", lead.city or "", lead.region or "",
                                        lead.postal_code or "", country)
        if query is not None:
            found = geocoding.lookup(session, query, country=country)
            location, notes = found.point, (found.note,)
    return LeadFacts(
        country=country,
        postal_code=postal,
        region=lead.region or None,
        location=location,
        product_line=lead.product_line.code if lead.product_line else None,
        rank=lead.rank,
        excluded=excluded_partners(session, lead),
    ), notes


def _with_note(explanation: Explanation, note: str) -> Explanation:
    return replace(explanation, notes=(*explanation.notes, note))


# --- deciding and acting --------------------------------------------------------------------


def decide_for(session: Session, lead: Lead, facts: LeadFacts | None = None, *,
               parent_id: int | None = None, index: PartnerIndex | None = None) -> Decision:
    """The engine's decision for ``lead`` right now (no writes)."""
    index = index or partner_index(session)
    facts = facts or lead_facts(session, lead)
    return index.route(facts, LazyLiveState(session), parent_id=parent_id)


@dataclass
class RoutingResult:
    """What routing did with one lead."""

    lead: Lead
    partner: Partner | None = None
    forwarded_to: Partner | None = None
    explanation: Explanation | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return self.explanation.summary if self.explanation else ""


def route_lead(session: Session, lead: Lead, *, actor: Actor | None = None,
               now: datetime | None = None, index: PartnerIndex | None = None
               ) -> RoutingResult:
    """Offer a qualified (or queued) lead to the best partner, or queue it with the reason."""
    now = now or utcnow()
    actor = actor or Actor.system("routing")
    lifecycle.check(session, lead, "route", actor)
    result = RoutingResult(lead=lead)
    max_offers = int(current_app.config["MAX_OFFERS"])
    if (lead.offers_count or 0) >= max_offers:
        summary = (f"No further offers: {lead.offers_count} partners were offered this lead "
                   f"(limit {max_offers}); a channel manager decides.")
        explanation = Explanation(summary=summary, level=None, considered=())
        lifecycle.mark_unassigned(session, lead, actor, explanation=explanation.to_dict(),
                                  now=now)
        result.explanation = explanation
        return result

    index = index or partner_index(session)
    facts, facts_notes = lead_facts_and_notes(session, lead)
    filled: list[str] = []
    for _attempt in range(_CAPACITY_RETRIES):
        decision = decide_for(session, lead, facts, index=index)
        explanation = decision.explanation
        for note in facts_notes:
            explanation = _with_note(explanation, note)
        for code in filled:
            explanation = _with_note(explanation, f"{code} filled up while routing; skipped")
        if decision.partner_id is None:
            lifecycle.mark_unassigned(session, lead, actor, explanation=explanation.to_dict(),
                                      now=now)
            result.explanation = explanation
            return result
        partner = session.get(Partner, decision.partner_id)
        assert partner is not None  # the index was built from these rows
        try:
            # The capacity claim is the offer's first write: a refusal leaves nothing behind.
            lifecycle.offer(session, lead, partner, actor, method="rule",
                            explanation=explanation.to_dict(), now=now)
        except AtCapacity:
            filled.append(partner.code)
            facts = replace(facts, excluded=facts.excluded | {partner.id})
            continue
        result.partner, result.explanation = partner, explanation
        if partner.kind == PartnerKind.DISTRIBUTOR and partner.forwarding == "auto":
            _auto_forward(session, lead, partner, facts, index, actor, now, result)
        return result
    explanation = Explanation(
        summary="Every partner that fits filled up while routing; queued for a manager.",
        level=None, considered=(), notes=tuple(f"{c} filled up" for c in filled))
    lifecycle.mark_unassigned(session, lead, actor, explanation=explanation.to_dict(), now=now)
    result.explanation = explanation
    return result


def _auto_forward(session: Session, lead: Lead, distributor: Partner, facts: LeadFacts,
                  index: PartnerIndex, actor: Actor, now: datetime,
                  result: RoutingResult) -> None:
    """Second tier: an auto-forwarding distributor passes the lead to one of its dealers."""
    decision = decide_for(session, lead, facts, parent_id=distributor.id, index=index)
    if decision.partner_id is None:
        note = (f"{distributor.code} forwards automatically, but none of its own dealers "
                f"fits ({decision.explanation.summary.rstrip('.')}); the lead waits in "
                f"{distributor.code}'s inbox.")
        result.notes.append(note)
        lead.routing = _with_note(result.explanation or decision.explanation, note).to_dict()
        return
    dealer = session.get(Partner, decision.partner_id)
    assert dealer is not None
    try:
        lifecycle.forward(session, lead, dealer, actor, reason="automatic forwarding",
                          explanation=decision.explanation.to_dict(), now=now)
    except AtCapacity:
        result.notes.append(f"{dealer.code} filled up; the lead waits in "
                            f"{distributor.code}'s inbox")
        return
    result.forwarded_to = dealer
    result.explanation = decision.explanation


def expire_overdue_offers(session: Session, *, now: datetime | None = None,
                          limit: int = 500) -> list[RoutingResult]:
    """Expire offers past their acceptance deadline and route each lead on."""
    now = now or utcnow()
    leads = session.scalars(
        select(Lead)
        .join(Offer, (Offer.lead_id == Lead.id) & (Offer.partner_id == Lead.assigned_partner_id))
        .where(Lead.status == LeadStatus.OFFERED, Offer.response == OfferResponse.PENDING,
               Offer.expires_at < now)
        .order_by(Offer.expires_at)
        .limit(limit)
        .with_for_update(of=Lead, skip_locked=True)
        .execution_options(populate_existing=True)
    ).unique().all()
    lifecycle.held(session, leads)
    results = []
    index = partner_index(session) if leads else None
    for lead in leads:
        try:
            lifecycle.expire(session, lead, now=now)
        except InvalidTransition:
            continue  # answered or moved on since the query read it: nothing to expire
        results.append(route_lead(session, lead, now=now, index=index))
    return results


def pending_leads(session: Session, *, limit: int) -> list[Lead]:
    """Qualified leads waiting for a partner, oldest first."""
    # Locked as they are read (rows another router holds are left to it), read as they
    # are now, and marked held: routing each one needs no lock statement of its own.
    leads = list(session.scalars(
        select(Lead).where(Lead.status == LeadStatus.QUALIFIED)
        .options(selectinload(Lead.product_line))
        .order_by(Lead.created_at, Lead.id).limit(limit)
        .with_for_update(of=Lead, skip_locked=True)
        .execution_options(populate_existing=True)
    ))
    lifecycle.held(session, leads)
    return leads
