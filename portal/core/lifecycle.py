"""The lead lifecycle: the one place that changes a lead's state and writes its event.

Views, the API, the CLI, jobs and offline sync all call these functions. Each takes the
session, validates first, then changes the lead, bumps its ``version``, keeps the
partner's open-lead count and writes one immutable ``LeadEvent``. It may flush; it never
commits (the caller commits at its boundary).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import bindparam, case, event, func, inspect, select, update
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from portal.core import (
    localtime,
    rollups,  # noqa: F401  (its flush hook keeps the reports' counts)
)
from portal.core import transitions as table
from portal.core.checks import EARLIEST_DAY, clean_text, parse_day, parse_money
from portal.core.database import PortalSession
from portal.core.errors import (
    AtCapacity,
    InvalidInput,
    InvalidTransition,
    NotFound,
)
from portal.core.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    WORKING_STATUSES,
    Competitor,
    Lead,
    LeadEvent,
    LeadStatus,
    Offer,
    OfferResponse,
    Partner,
    User,
    utcnow,
)
from portal.core.models.codes import by_code

S = LeadStatus
#: the order of the working stages: an action never moves a lead back
_STAGE_ORDER = {s: i for i, s in enumerate(WORKING_STATUSES)}
LOST_REASONS = table.LOST_REASONS
DECLINE_REASONS = table.DECLINE_REASONS
CONTACT_CHANNELS = table.CONTACT_CHANNELS
#: the table's action for each working stage
_STAGE_ACTIONS = {S.CONTACTED: "contact", S.APPOINTMENT: "appointment", S.QUOTED: "quote"}
#: the largest amount a quote or a win may state (the forms and the API say so)
MAX_AMOUNT = Decimal("999999999.99")


@dataclass(frozen=True)
class Actor:
    """Who acts, for whom, from which device; recorded on every event."""

    user: User | None = None
    device: str = "web"
    partner_id: int | None = field(default=None)

    @classmethod
    def of(cls, user: User | None, device: str = "web") -> Actor:
        """The actor for a signed-in user (its partner, if any, comes along)."""
        return cls(user=user, device=device, partner_id=user.partner_id if user else None)

    @classmethod
    def system(cls, device: str = "job") -> Actor:
        """The portal itself (routing, expiry jobs, CLI)."""
        return cls(user=None, device=device)

    @property
    def is_staff(self) -> bool:
        return self.user is None or self.user.is_staff


def a_status(status: str) -> str:
    """"an offered", "a won": readable messages."""
    text = str(status).replace("_", " ")
    return ("an " if text[:1] in "aeiou" else "a ") + text


# --- the one guard: lock the lead, then ask the transition table ------------------------

#: Session.info key: the leads whose rows this transaction holds
_LOCKED = "portal.locked_leads"
#: Session.info key: lead id → the offers made to it, for the leads this transaction
#: created (nobody else can see those: all of their offers are in this session)
_MADE = "portal.offers_of_new_leads"


def lock(session: Session, lead: Lead) -> None:
    """Hold ``lead``'s row until this transaction ends, and read it as it is now.

    Every transition starts here, so of N simultaneous actions on one lead exactly one
    applies; the others wait, then see the lead as the first one left it and are refused
    by the table (409) or proceed if it still allows them. PostgreSQL takes the row lock
    (``FOR UPDATE``); SQLite's writing transactions already hold its write lock (``BEGIN
    IMMEDIATE``). A lead this transaction created needs no lock: nobody else sees it yet.
    """
    state = inspect(lead)
    if state.transient or state.pending:
        return
    held: set[Any] = session.info.setdefault(_LOCKED, set())
    if lead.id in held:
        return
    # Fetched, not only executed: the ORM refreshes the object as it reads the row.
    session.scalars(select(Lead).where(Lead.id == lead.id).with_for_update()
                    .execution_options(populate_existing=True)).one()
    held.add(lead.id)


def held(session: Session, leads: Iterable[Lead]) -> None:
    """Record that this transaction read ``leads`` with their rows locked (``SELECT … FOR
    UPDATE``, refreshed): a batch locks once, not once a lead."""
    session.info.setdefault(_LOCKED, set()).update(lead.id for lead in leads)


@event.listens_for(PortalSession, "after_transaction_end")
def _release(session: Session, transaction: SessionTransaction) -> None:
    # The database lets go of the rows when the transaction ends: so does the bookkeeping.
    if transaction.parent is None:
        session.info.pop(_LOCKED, None)
        session.info.pop(_MADE, None)


@event.listens_for(PortalSession, "after_soft_rollback")
def _forget_after_rollback(session: Session, _previous: SessionTransaction) -> None:
    # A rolled-back savepoint gives back the row locks taken inside it: forget them all
    # (locking again a row still held costs one statement; skipping a lock is a race).
    # Its offers are gone too: current_offer reads the database again.
    session.info.pop(_LOCKED, None)
    session.info.pop(_MADE, None)


def roles_of(actor: Actor, lead: Lead) -> frozenset[str]:
    """The table's roles ``actor`` holds towards ``lead``."""
    if actor.user is None:
        return frozenset({table.SYSTEM, table.STAFF})
    if actor.user.is_staff:
        return frozenset({table.STAFF})
    roles = {table.PARTNER}
    if actor.partner_id is not None:
        if actor.partner_id == lead.assigned_partner_id:
            roles.add(table.HOLDER)
        elif lead.assigned_partner is not None and (
                lead.assigned_partner.parent_id == actor.partner_id):
            roles.add(table.PARENT)
    return frozenset(roles)


def refusal(rule: table.Transition, status: str) -> str:
    """Why ``rule`` does not apply to a lead in ``status``, in words."""
    text = rule.refusal or f"cannot be {rule.action}"
    if not text.startswith("only"):
        text = f"{a_status(status)} lead {text}"
    if status == S.OFFERED and S.ACCEPTED in rule.sources:
        text += " (accept it first)"
    return text


def check(session: Session, lead: Lead, action: str, actor: Actor,
          values: dict[str, Any] | None = None) -> table.Transition:
    """Lock ``lead`` and check ``action`` against the table: who, from which state, with
    which fields. Raises NotFound (not the actor's), InvalidTransition or InvalidInput."""
    rule = table.transition(action)
    lock(session, lead)
    if not rule.who & roles_of(actor, lead):
        raise NotFound("No such lead.")
    if not rule.allows(lead.status):
        raise InvalidTransition(refusal(rule, lead.status), lead.status)
    if values is not None:
        missing = rule.first_missing(values)
        if missing is not None:
            raise InvalidInput(missing.message, rule.missing(values))
    return rule


# --- events and bookkeeping -------------------------------------------------------------

#: Called with every event as it is written, in its transaction: what must happen exactly
#: when the event does (the notify area's alerts) is written beside it or not at all.
EventListener = Callable[[Session, Lead, LeadEvent], None]
_listeners: list[EventListener] = []


#: Session.info key: while set, events are history being loaded, not news
_HISTORY = "portal.core.lifecycle.history"


def on_event(listener: EventListener) -> EventListener:
    """Register ``listener`` for every event (an area does so at import, once)."""
    if listener not in _listeners:
        _listeners.append(listener)
    return listener


@contextmanager
def loading_history(session: Session) -> Iterator[None]:
    """Events written inside are past (the demo's months of history): the listeners are
    not called, so nobody is alerted of an offer made weeks ago."""
    session.info[_HISTORY] = True
    try:
        yield
    finally:
        session.info.pop(_HISTORY, None)



def record_event(
    session: Session,
    lead: Lead,
    kind: str,
    actor: Actor,
    *,
    now: datetime,
    from_status: str | None = None,
    to_status: str | None = None,
    partner_id: int | None = None,
    data: dict[str, Any] | None = None,
    event_id: uuid.UUID | None = None,
) -> LeadEvent:
    """Write one immutable event and bump the lead's version (the lead's row locked first,
    for writers that change no state: literature sent, nurture steps, conflict reviews)."""
    lock(session, lead)
    lead.version = (lead.version or 0) + 1
    lead.updated_at = now
    event = LeadEvent(
        id=event_id or uuid.uuid4(),
        lead_id=lead.id,
        kind=kind,
        from_status=from_status,
        to_status=to_status,
        actor_id=actor.user.id if actor.user else None,
        partner_id=partner_id if partner_id is not None else actor.partner_id,
        device=actor.device[:80],
        at=now,
        data=data or {},
    )
    session.add(event)
    if not session.info.get(_HISTORY):
        for listener in _listeners:
            listener(session, lead, event)
    return event


def _move(
    session: Session,
    lead: Lead,
    to_status: str,
    kind: str,
    actor: Actor,
    now: datetime,
    **event: Any,
) -> LeadEvent:
    from_status = lead.status
    lead.status = to_status
    return record_event(
        session, lead, kind, actor, now=now, from_status=from_status, to_status=to_status, **event
    )


#: the counter's statements, built once: every offer, decline and outcome runs one, and a
#: statement built anew costs more to construct and key for the cache than to execute
_ADJUST_OPEN = (
    update(Partner)
    .where(Partner.id == bindparam("partner"))
    .values(open_leads=case((Partner.open_leads + bindparam("delta") < 0, 0),
                            else_=Partner.open_leads + bindparam("delta")))
    .execution_options(synchronize_session=False)
)
_CLAIM_FORCED = (
    update(Partner)
    .where(Partner.id == bindparam("partner"))
    .values(open_leads=Partner.open_leads + 1, last_offered_at=bindparam("now"))
    .returning(Partner.open_leads)
    .execution_options(synchronize_session=False)
)
#: refused (no row) when the partner is full
_CLAIM = _CLAIM_FORCED.where(
    (Partner.capacity.is_(None)) | (Partner.open_leads < Partner.capacity))


def _adjust_open(session: Session, partner_id: int | None, delta: int) -> None:
    if partner_id is None or delta == 0:
        return
    session.execute(_ADJUST_OPEN, {"partner": partner_id, "delta": delta})
    # The UPDATE bypasses the session: a loaded Partner would keep showing the old count
    # (and a later recount or routing decision would read it), so let it reload.
    loaded = session.identity_map.get(identity_key(Partner, partner_id))
    if loaded is not None:
        session.expire(loaded, ["open_leads"])


def _unassign(lead: Lead) -> None:
    # Clear the relationship with the column: a loaded ``assigned_partner`` would otherwise
    # still name the old partner in this session (and could write its id back on flush).
    lead.assigned_partner = None
    lead.assigned_partner_id = None
    _drop_assignee(lead)


def _drop_assignee(lead: Lead) -> int | None:
    """The lead changes partner: its salesperson belonged to the old firm (portal.core.
    assignment). Returns who it was, for the event that moves it."""
    was = lead.assigned_user_id
    lead.assigned_user = None
    lead.assigned_user_id = None
    return was


def _with_assignee(data: dict[str, Any], assignee_id: int | None) -> dict[str, Any]:
    """The event's data, naming the salesperson who had the lead (their alert)."""
    return {**data, "assignee_id": assignee_id} if assignee_id is not None else data


def _claim_capacity(session: Session, partner: Partner, *, force: bool, now: datetime) -> None:
    """Count one more open lead for ``partner``, atomically refusing when it is full.

    A conditional UPDATE takes the row lock on PostgreSQL and the write lock on SQLite,
    so two routers working at once can never both fill the last place.
    """
    row = session.execute(_CLAIM_FORCED if force else _CLAIM,
                          {"partner": partner.id, "now": now}).first()
    if row is None:
        raise AtCapacity(f"{partner.code} is at capacity")
    # Keep the loaded object in step without reloading it.
    set_committed_value(partner, "open_leads", row[0])
    set_committed_value(partner, "last_offered_at", now)


def current_offer(session: Session, lead: Lead) -> Offer | None:
    """The pending or accepted offer that put the lead with its partner now. For a lead
    this transaction created, the offer in hand: not written yet (no id) before a flush."""
    made = session.info.get(_MADE, {}).get(lead.id)
    if made is not None:  # a lead of this transaction's: its offers are all in hand
        return next((o for o in reversed(made) if o.partner_id == lead.assigned_partner_id),
                    None)
    return session.scalars(
        select(Offer)
        .where(Offer.lead_id == lead.id, Offer.partner_id == lead.assigned_partner_id)
        .order_by(Offer.id.desc())
        .limit(1)
    ).first()


def _close_offer(offer: Offer | None, response: str, now: datetime, reason: str = "") -> None:
    if offer is not None and offer.response in (OfferResponse.PENDING, OfferResponse.ACCEPTED):
        offer.response = response
        offer.responded_at = now
        if reason:
            offer.decline_reason = reason


def accept_sla(partner: Partner) -> timedelta:
    """How long ``partner`` has to accept an offer (config ``ACCEPT_SLA_HOURS``)."""
    return accept_window(partner.kind)


def accept_window(kind: str) -> timedelta:
    """How long a partner of this kind has to accept an offer: ``ACCEPT_SLA_HOURS``, one
    number or one per kind of partner."""
    hours = current_app.config["ACCEPT_SLA_HOURS"]
    if isinstance(hours, dict):
        hours = hours.get(kind, 24)
    return timedelta(hours=float(hours))


# --- capture and qualification ------------------------------------------------------------


def capture(session: Session, lead: Lead, actor: Actor, *, now: datetime | None = None,
            data: dict[str, Any] | None = None) -> Lead:
    """Add a new lead in ``captured`` with its ``captured`` event."""
    now = now or utcnow()
    lead.status = S.CAPTURED
    lead.created_at = lead.created_at or now
    lead.updated_at = now
    lead.version = 0
    if lead.id is None:
        lead.id = uuid.uuid4()
    session.add(lead)
    held(session, [lead])  # a row this transaction inserts is its own until it commits
    session.info.setdefault(_MADE, {})[lead.id] = []
    record_event(session, lead, "captured", actor, now=now, to_status=S.CAPTURED,
                 data=data or {})
    return lead


def qualify(
    session: Session,
    lead: Lead,
    outcome: str,
    *,
    reason: str,
    score: int,
    rank: str | None,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """Record the rules' verdict: ``qualified``, ``nurture`` or ``disqualified``."""
    now = now or utcnow()
    if outcome not in table.transition("qualify").targets:
        raise InvalidInput(f"unknown qualification {outcome!r}")
    check(session, lead, "qualify", actor)
    lead.score, lead.rank, lead.qualification_reason = score, rank, reason[:300]
    _move(session, lead, outcome, outcome, actor, now,
          data={"reason": reason, "score": score, "rank": rank})


def rescore(
    session: Session,
    lead: Lead,
    *,
    score: int,
    rank: str | None,
    reason: str,
    actor: Actor,
    now: datetime | None = None,
) -> None:
    """New score and rank (a repeat inquiry, nurture engagement); the stage stays."""
    now = now or utcnow()
    check(session, lead, "rescore", actor)
    if score == lead.score and rank == lead.rank:
        return
    old = {"score": lead.score, "rank": lead.rank}
    lead.score, lead.rank = score, rank
    record_event(session, lead, "rescored", actor, now=now,
                 data={"reason": reason, "score": score, "rank": rank, "was": old})


def record_inquiry(session: Session, lead: Lead, actor: Actor, *, data: dict[str, Any],
                   now: datetime | None = None) -> LeadEvent:
    """The same person inquired again: the repeat is an event on the existing lead."""
    now = now or utcnow()
    check(session, lead, "inquiry", actor)
    lead.inquiries = (lead.inquiries or 1) + 1
    return record_event(session, lead, "inquiry", actor, now=now, data=data)


# --- routing: offers, forwarding, expiry ------------------------------------------------


def offer(
    session: Session,
    lead: Lead,
    partner: Partner,
    actor: Actor,
    *,
    method: str = "rule",
    explanation: dict[str, Any] | None = None,
    reason: str = "",
    force: bool = False,
    now: datetime | None = None,
) -> Offer:
    """Offer ``lead`` to ``partner`` (routing decision, manual reassign or forward)."""
    now = now or utcnow()
    check(session, lead, "offer", actor)
    if not partner.active and not force:
        raise InvalidInput(f"{partner.code} is paused and takes no new leads")
    _claim_capacity(session, partner, force=force, now=now)
    item = _place(session, lead, partner, actor, method=method, reason=reason,
                  explanation=explanation, now=now)
    _move(session, lead, S.OFFERED, "offered", actor, now, partner_id=partner.id,
          data={"method": method, "reason": reason,
                "summary": (explanation or {}).get("summary", "")})
    return item


def _place(session: Session, lead: Lead, partner: Partner, actor: Actor, *, method: str,
           reason: str, explanation: dict[str, Any] | None, now: datetime) -> Offer:
    """The offer row and the lead's assignment, for an offer and a forward alike."""
    # The response is set here, not left to the column's default: a lead of this
    # transaction's finds its offer before any flush (current_offer), and the default
    # only arrives with the INSERT.
    item = Offer(lead_id=lead.id, partner_id=partner.id, offered_at=now,
                 response=OfferResponse.PENDING, decline_reason="", competitor_other="",
                 expires_at=now + accept_sla(partner), method=method,
                 by_user_id=actor.user.id if actor.user else None, reason=reason[:300],
                 explanation=explanation, lead_created_at=lead.created_at or now,
                 product_line_id=_id_of(lead.product_line, lead.product_line_id),
                 campaign_id=_id_of(lead.campaign, lead.campaign_id),
                 source_id=_id_of(lead.source, lead.source_id),
                 rank=lead.rank, region=lead.region or "")
    session.add(item)
    made = session.info.get(_MADE, {}).get(lead.id)
    if made is not None:
        made.append(item)
    lead.assigned_partner_id = partner.id
    lead.assigned_partner = partner
    _drop_assignee(lead)
    lead.offered_at = now
    lead.accepted_at = None
    lead.offers_count = (lead.offers_count or 0) + 1
    if explanation is not None:
        lead.routing = explanation
    return item


def _id_of(related: Any, column: int | None) -> int | None:
    """A lead's catalog reference, set through the relationship or the column: a lead not
    yet flushed has the object and no id in the column."""
    return related.id if related is not None else column


def mark_unassigned(session: Session, lead: Lead, actor: Actor, *,
                    explanation: dict[str, Any] | None, reason: str = "",
                    now: datetime | None = None) -> None:
    """No partner fits: the lead waits in the managers' queue with the reason."""
    now = now or utcnow()
    check(session, lead, "unassign", actor)
    _unassign(lead)
    lead.routing = explanation
    summary = reason or (explanation or {}).get("summary", "")
    _move(session, lead, S.UNASSIGNED, "unassigned", actor, now, data={"summary": summary})


def _give_back(session: Session, lead: Lead, offer_row: Offer | None, response: str,
               kind: str, actor: Actor, now: datetime, reason: str = "",
               event_id: uuid.UUID | None = None) -> None:
    """The partner lets go of an offered lead: it returns to routing."""
    partner_id, assignee_id = lead.assigned_partner_id, lead.assigned_user_id
    _close_offer(offer_row, response, now, reason)
    _adjust_open(session, partner_id, -1)
    _unassign(lead)
    lead.offered_at = None
    _move(session, lead, S.QUALIFIED, kind, actor, now, partner_id=partner_id,
          data=_with_assignee({"reason": reason} if reason else {}, assignee_id),
          event_id=event_id)


def decline(session: Session, lead: Lead, actor: Actor, *, reason: str,
            now: datetime | None = None, event_id: uuid.UUID | None = None) -> None:
    """The partner declines the offer (reason required); the caller re-routes."""
    now = now or utcnow()
    reason = (reason or "").strip()
    check(session, lead, "decline", actor, {"reason": reason})
    reason = DECLINE_REASONS.get(reason, reason)[:300]
    _give_back(session, lead, current_offer(session, lead), OfferResponse.DECLINED,
               "declined", actor, now, reason, event_id=event_id)


def expire(session: Session, lead: Lead, *, now: datetime | None = None) -> None:
    """The offer was not accepted in time; the caller re-routes."""
    now = now or utcnow()
    check(session, lead, "expire", Actor.system())
    pending = current_offer(session, lead)
    if pending is not None and pending.expires_at is not None and pending.expires_at > now:
        # Declined and offered again (or accepted and re-opened) since the sweep looked.
        raise InvalidTransition("the offer is not past its deadline", lead.status)
    _give_back(session, lead, pending, OfferResponse.EXPIRED,
               "expired", Actor.system(), now, "not accepted in time")


def forward_refusal(lead: Lead, dealer: Partner) -> tuple[str, str] | None:
    """Why ``dealer`` cannot be forwarded ``lead`` — (why, what to pick instead) — or None:
    paused, or not selling the lead's product line. (A full dealer is refused by the
    capacity claim itself, atomically; the forward form names the full ones from the
    counter it read.)"""
    if not dealer.active:
        return ("is paused" + (f": {dealer.paused_reason}" if dealer.paused_reason else ""),
                "Pick a dealer that is not paused.")
    line = lead.product_line
    if line is not None and line not in dealer.product_lines:
        return (f"does not sell {line.name.lower()}",
                f"Pick a dealer that sells {line.name.lower()}.")
    return None


def forward(session: Session, lead: Lead, dealer: Partner, actor: Actor, *,
            reason: str = "", explanation: dict[str, Any] | None = None,
            now: datetime | None = None) -> Offer:
    """A distributor passes its lead to one of its own dealers (same acceptance flow)."""
    now = now or utcnow()
    check(session, lead, "forward", actor)
    distributor_id = lead.assigned_partner_id
    if dealer.parent_id is None or dealer.parent_id != distributor_id:
        raise InvalidInput(
            f"{dealer.code} is not one of this distributor's dealers",
            {"partner": "Pick one of your own dealers."},
        )
    if not actor.is_staff:
        # The compliance gate holds for a hand-made forward too (routing checks it itself;
        # a channel manager may still override).
        from portal.core.compliance import gate_limit, gate_reason, overdue_counts

        limit = gate_limit()
        if limit is not None:
            late = overdue_counts(session, [dealer.id], now).get(dealer.id, 0)
            blocked = gate_reason(late, limit)
            if blocked:
                raise InvalidInput(f"{dealer.code} gets no new leads now: {blocked}",
                                   {"partner": f"{dealer.code} is held back: {blocked}."})
    refused = forward_refusal(lead, dealer)
    if refused is not None:
        why, pick = refused
        raise InvalidInput(f"{dealer.code} takes no forward: {why}", {"partner": pick})
    _claim_capacity(session, dealer, force=False, now=now)
    _close_offer(current_offer(session, lead), OfferResponse.FORWARDED, now)
    _adjust_open(session, distributor_id, -1)
    item = _place(session, lead, dealer, actor, method="forward", reason=reason,
                  explanation=explanation, now=now)
    _move(session, lead, S.OFFERED, "forwarded", actor, now, partner_id=dealer.id,
          data={"from_partner_id": distributor_id, "to": dealer.code, "reason": reason})
    return item


def withdraw(session: Session, lead: Lead, actor: Actor, *, reason: str,
             now: datetime | None = None) -> None:
    """Take a lead back from its partner (manager reassign, distributor pull-back)."""
    now = now or utcnow()
    check(session, lead, "withdraw", actor)
    partner_id, assignee_id = lead.assigned_partner_id, lead.assigned_user_id
    _close_offer(current_offer(session, lead), OfferResponse.WITHDRAWN, now, reason)
    _adjust_open(session, partner_id, -1)
    _unassign(lead)
    lead.offered_at = lead.accepted_at = None
    _move(session, lead, S.QUALIFIED, "withdrawn", actor, now, partner_id=partner_id,
          data=_with_assignee({"reason": reason}, assignee_id))


def reassign_refusal(lead: Lead, partner: Partner, *, adding: int = 0) -> str | None:
    """Why ``partner`` is not eligible for ``lead`` (paused, not selling its product line,
    or full with ``adding`` more leads on their way to it), or None."""
    refused = forward_refusal(lead, partner)
    if refused is not None:
        return refused[0]
    open_now = (partner.open_leads or 0) + adding
    if partner.capacity is not None and open_now >= partner.capacity:
        return f"is full: {open_now:,} open of {partner.capacity:,}"
    return None


def reassign(session: Session, lead: Lead, partner: Partner, actor: Actor, *, reason: str,
             override: bool = False, now: datetime | None = None) -> Offer:
    """A manager moves a lead to ``partner`` by hand, with a reason. A partner that is not
    eligible (``reassign_refusal``) is refused, unless the manager overrides: the override
    and what it overrode are logged with the offer."""
    now = now or utcnow()
    reason = (reason or "").strip()
    check(session, lead, "reassign", actor, {"reason": reason, "partner": partner.code})
    refusal = reassign_refusal(lead, partner)
    if refusal is not None:
        if not override:
            raise InvalidInput(
                f"{partner.code} {refusal}. Pick an eligible partner, or override with your "
                "reason (the override is logged).", {"partner": f"{partner.code} {refusal}."})
        reason = f"override: {partner.code} {refusal}. {reason}"
    if lead.status in OPEN_STATUSES:
        withdraw(session, lead, actor, reason=reason, now=now)
    if lead.status in (S.NURTURE, S.CAPTURED):
        _move(session, lead, S.QUALIFIED, "qualified", actor, now,
              data={"reason": f"reassigned by hand: {reason}"})
    return offer(session, lead, partner, actor, method="manual", reason=reason, force=True,
                 now=now)


# --- the partner's work -------------------------------------------------------------------


def accept(session: Session, lead: Lead, actor: Actor, *, now: datetime | None = None,
           event_id: uuid.UUID | None = None) -> None:
    """The partner takes the offer: the outcome clock starts."""
    now = now or utcnow()
    check(session, lead, "accept", actor)
    _close_offer_accepted(current_offer(session, lead), now)
    lead.accepted_at = now
    _move(session, lead, S.ACCEPTED, "accepted", actor, now, partner_id=lead.assigned_partner_id,
          event_id=event_id)


def _close_offer_accepted(offer_row: Offer | None, now: datetime) -> None:
    if offer_row is not None and offer_row.response == OfferResponse.PENDING:
        offer_row.response = OfferResponse.ACCEPTED
        offer_row.responded_at = now
        offer_row.accepted_at = now


def parse_amount(raw: Any, *, required: bool, field_name: str = "amount") -> Decimal | None:
    """A money amount from a form or JSON as written (``checks.parse_money``): 0 to
    ``MAX_AMOUNT``, two decimals at most, never rounded or guessed at."""
    amount = parse_money(raw, field_name, maximum=MAX_AMOUNT)
    if amount is None and required:
        raise InvalidInput("An amount is required.", {field_name: "Enter the amount."})
    return amount


def _note(data: dict[str, Any], limit: int = 2000, name: str = "note") -> str:
    """A note as sent (text, at most ``limit`` characters): refused, never cut short."""
    text = clean_text(data.get(name), name).strip()
    if len(text) > limit:
        raise InvalidInput("The note is too long.", {name: f"At most {limit} characters."})
    return text


def advance(session: Session, lead: Lead, stage: str, actor: Actor, *,
            data: dict[str, Any] | None = None, now: datetime | None = None,
            event_id: uuid.UUID | None = None) -> None:
    """Record progress: ``contacted``, ``appointment`` or ``quoted`` (never backwards)."""
    now = now or utcnow()
    data = dict(data or {})
    action = _STAGE_ACTIONS.get(stage)
    if action is None:
        raise InvalidInput(f"unknown stage {stage!r}")
    check(session, lead, action, actor)
    if _STAGE_ORDER[stage] < _STAGE_ORDER[lead.status]:
        raise InvalidTransition(f"the lead is already past {stage}", lead.status)
    event: dict[str, Any] = {}
    if stage == S.CONTACTED:
        channel = clean_text(data.get("channel"), "channel").strip() or "phone"
        if channel not in table.CONTACT_CHANNELS:
            raise InvalidInput("Unknown contact channel.",
                               {"channel": f"Pick one of: {', '.join(table.CONTACT_CHANNELS)}."})
        event["channel"] = channel
    elif stage == S.APPOINTMENT:
        event.update(_appointment(session, data, actor, now))
    else:
        amount = parse_amount(data.get("amount"), required=True)
        lead.quote_amount = amount
        event["amount"] = str(amount)
    if note := _note(data):
        event["note"] = note
    _first_contact(session, lead, now)
    _move(session, lead, stage, stage if stage != S.CONTACTED else "contacted", actor, now,
          partner_id=lead.assigned_partner_id, data=event, event_id=event_id)


def _first_contact(session: Session, lead: Lead, now: datetime) -> None:
    """The partner followed the lead up (DESIGN §7): the lead's first contact and this
    partner's, on its offer (what the channel reports and their rollups count)."""
    if lead.first_contact_at is None:
        lead.first_contact_at = now
    worked = current_offer(session, lead)
    if worked is not None and worked.contacted_at is None:
        worked.contacted_at = now  # this partner's first contact (the channel reports)


def _appointment(session: Session, data: dict[str, Any], actor: Actor, now: datetime
                 ) -> dict[str, Any]:
    """An appointment's day and, optionally, its time of day (``HH:MM``) in ``time_zone``
    (an IANA name; default the actor's own zone): the event keeps what was typed and, with
    a time, the moment in UTC (``at``). Older appointments have only a day."""
    if data.get("date") in (None, ""):
        raise InvalidInput("An appointment needs a date.", {"date": "Enter the date."})
    where = (localtime.typed_zone(data.get("time_zone"), "time_zone")
             or localtime.zone_of(session, actor.user))
    day, clock, moment = localtime.parse_local(
        data.get("date"), data.get("time"), where, today=now.date())
    found: dict[str, Any] = {"date": day.isoformat()}
    if clock is not None and moment is not None:
        found.update(time=clock.strftime("%H:%M"), time_zone=where.key,
                     at=moment.isoformat())
    return found


def attempt(session: Session, lead: Lead, actor: Actor, *, data: dict[str, Any] | None = None,
            now: datetime | None = None, event_id: uuid.UUID | None = None) -> LeadEvent:
    """A contact attempt that reached nobody ("Called, no answer"): the stage stays, the
    timeline shows each try, and it counts as follow-up (DESIGN §7: the partner's first
    contact, for the reports, the contact reminders and the compliance gate)."""
    now = now or utcnow()
    data = dict(data or {})
    check(session, lead, "attempt", actor)
    channel = clean_text(data.get("channel"), "channel").strip() or "phone"
    if channel not in table.ATTEMPT_CHANNELS:
        raise InvalidInput("Unknown contact channel.", {
            "channel": f"Pick one of: {', '.join(table.ATTEMPT_CHANNELS)}."})
    event: dict[str, Any] = {"channel": channel, "result": table.ATTEMPT_CHANNELS[channel]}
    if note := _note(data):
        event["note"] = note
    _first_contact(session, lead, now)
    return record_event(session, lead, "attempted", actor, now=now, data=event,
                        partner_id=lead.assigned_partner_id, event_id=event_id)


def close(session: Session, lead: Lead, outcome: str, actor: Actor, *,
          data: dict[str, Any] | None = None, now: datetime | None = None,
          event_id: uuid.UUID | None = None) -> None:
    """Report the outcome: ``won`` (amount), ``lost`` (reason, competitor) or ``no_interest``."""
    now = now or utcnow()
    data = dict(data or {})
    if outcome not in CLOSED_STATUSES:
        raise InvalidInput(f"unknown outcome {outcome!r}")
    check(session, lead, outcome, actor, data)
    event: dict[str, Any] = {}
    if outcome == S.WON:
        amount = parse_amount(data.get("amount"), required=False)
        # From the day the lead came in to today; a day's grace either side, as the
        # dealer's today may be a day off UTC's.
        captured = (lead.created_at or now).date() - timedelta(days=1)
        won_on = parse_day(
            data.get("date"), "date", today=now.date(), earliest=max(EARLIEST_DAY, captured),
            latest=(now + timedelta(days=1)).date(),
            too_early=f"Enter the day the sale was made: {captured.isoformat()} or later "
                      "(the lead came in then).",
            too_late="Enter the day the sale was made (today or before).")
        lead.won_amount = amount
        event.update(amount=str(amount) if amount is not None else None,
                     date=won_on.isoformat() if won_on else None)
    elif outcome == S.LOST:
        reason = clean_text(data.get("reason"), "reason").strip()
        if reason not in table.LOST_REASONS:
            raise InvalidInput("Say why the lead was lost.",
                               {"reason": f"Pick one of: {', '.join(table.LOST_REASONS)}."})
        lead.lost_reason = reason
        event["reason"] = reason
        if reason == "competitor":
            name = clean_text(data.get("competitor"), "competitor").strip()
            if len(name) > 120:
                raise InvalidInput("The competitor's name is too long.",
                                   {"competitor": "At most 120 characters."})
            if not name:
                raise InvalidInput("Name the competitor who won it.",
                                   {"competitor": "Pick or type the competitor."})
            known = session.scalars(
                select(Competitor).where(func.lower(Competitor.name) == name.lower())
            ).first()
            lead.lost_competitor = known
            lead.lost_competitor_id = known.id if known else None
            lead.lost_competitor_other = "" if known else name
            event["competitor"] = known.name if known else name
    if note := _note(data):
        event["note"] = note
    lead.closed_at = now
    _offer_outcome(current_offer(session, lead), lead, outcome, now)
    _adjust_open(session, lead.assigned_partner_id, -1)
    _move(session, lead, outcome, outcome, actor, now, partner_id=lead.assigned_partner_id,
          data=event, event_id=event_id)


def _offer_outcome(offer_row: Offer | None, lead: Lead, outcome: str | None,
                   now: datetime | None) -> None:
    """The outcome on the offer of the partner who reported it (None: re-opened)."""
    if offer_row is None:
        return
    offer_row.outcome, offer_row.closed_at = outcome, now
    offer_row.amount = lead.won_amount if outcome == S.WON else None
    offer_row.lost_reason = lead.lost_reason if outcome == S.LOST else None
    offer_row.competitor_id = lead.lost_competitor_id if outcome == S.LOST else None
    offer_row.competitor_other = lead.lost_competitor_other if outcome == S.LOST else ""


def add_note(session: Session, lead: Lead, actor: Actor, *, text: str,
             now: datetime | None = None, event_id: uuid.UUID | None = None) -> LeadEvent:
    """A note on the lead's timeline; the state does not change."""
    now = now or utcnow()
    text = _note({"text": text}, 5000, "text")
    check(session, lead, "note", actor, {"text": text})
    return record_event(session, lead, "note", actor, now=now, data={"text": text},
                        partner_id=lead.assigned_partner_id, event_id=event_id)


# --- the manager's corrections ------------------------------------------------------------


def reopen(session: Session, lead: Lead, actor: Actor, *, reason: str,
           now: datetime | None = None) -> None:
    """A manager re-opens a closed or disqualified lead, with a reason (audited)."""
    now = now or utcnow()
    reason = (reason or "").strip()
    check(session, lead, "reopen", actor, {"reason": reason})
    if lead.status in CLOSED_STATUSES and lead.assigned_partner_id is not None:
        target = S.ACCEPTED
        _adjust_open(session, lead.assigned_partner_id, +1)
        _offer_outcome(current_offer(session, lead), lead, None, None)
    else:
        target = S.QUALIFIED
        _unassign(lead)
    lead.closed_at = None
    lead.won_amount = None
    lead.lost_reason = None
    lead.lost_competitor = None  # the relationship too, or it would write its id back
    lead.lost_competitor_id = None
    lead.lost_competitor_other = ""
    _move(session, lead, target, "reopened", actor, now, data={"reason": reason})


def disqualify(session: Session, lead: Lead, actor: Actor, *, reason: str,
               now: datetime | None = None) -> None:
    """A manager rules a lead out (spam, test, invalid, duplicate)."""
    now = now or utcnow()
    reason = (reason or "").strip()
    check(session, lead, "disqualify", actor, {"reason": reason})
    if lead.status in OPEN_STATUSES:
        _close_offer(current_offer(session, lead), OfferResponse.WITHDRAWN, now, reason)
        _adjust_open(session, lead.assigned_partner_id, -1)
    lead.qualification_reason = reason[:300]
    _move(session, lead, S.DISQUALIFIED, "disqualified", actor, now, data={"reason": reason})


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def merge(session: Session, lead: Lead, into: Lead, actor: Actor, *, reason: str = "",
          now: datetime | None = None) -> LeadEvent:
    """A manager merges duplicate ``lead`` into ``into``: it is disqualified as merged, its
    inquiries count on ``into``, and a partner holding it lets go (events on both leads)."""
    now = now or utcnow()
    if lead.id == into.id:
        raise InvalidInput("A lead cannot be merged into itself.",
                           {"merge": "Pick two different leads."})
    # Both rows, in one order, so two merges of the same pair cannot deadlock.
    for held in sorted((lead, into), key=lambda one: str(one.id)):
        lock(session, held)
    check(session, lead, "merge", actor)
    if into.status == S.DISQUALIFIED:
        raise InvalidInput("A disqualified lead cannot take a merge.",
                           {"keep": "Keep a lead that is not disqualified."})
    partner_id = lead.assigned_partner_id
    offer_row = current_offer(session, lead) if lead.status in OPEN_STATUSES else None
    if offer_row is not None and offer_row.id is None:
        session.flush()  # an offer made in this transaction: its id, for unmerge
    # Everything unmerge needs to put the lead back exactly as it was.
    previous = {
        "status": lead.status, "partner_id": partner_id,
        "offer_id": offer_row.id if offer_row else None,
        "offer_response": offer_row.response if offer_row else None,
        "qualification_reason": lead.qualification_reason, "score": lead.score,
        "rank": lead.rank, "offered_at": _iso(lead.offered_at),
        "accepted_at": _iso(lead.accepted_at),
    }
    if lead.status in OPEN_STATUSES:
        _close_offer(offer_row, OfferResponse.WITHDRAWN, now, "merged into another lead")
        _adjust_open(session, partner_id, -1)
    _unassign(lead)
    lead.offered_at = lead.accepted_at = None
    added = lead.inquiries or 1
    into.inquiries = (into.inquiries or 1) + added
    lead.qualification_reason = f"merged into {into.name} (lead {into.id})"[:300]
    event = _move(session, lead, S.DISQUALIFIED, "merged", actor, now, partner_id=partner_id,
                  data={"into": str(into.id), "reason": reason, "inquiries": added,
                        "previous": previous})
    record_event(session, into, "merged_in", actor, now=now,
                 data={"from": str(lead.id), "reason": reason, "inquiries": added,
                       "merge_event": str(event.id)})
    return event


def last_merge(session: Session, lead: Lead) -> LeadEvent | None:
    """The merge that made ``lead`` what it is now, if its latest state change was a merge."""
    latest = session.scalars(
        select(LeadEvent)
        .where(LeadEvent.lead_id == lead.id, LeadEvent.to_status.is_not(None))
        .order_by(LeadEvent.seq.desc())
        .limit(1)
    ).first()
    return latest if latest is not None and latest.kind == "merged" else None


def unmerge(session: Session, lead: Lead, actor: Actor, *, reason: str,
            now: datetime | None = None) -> LeadEvent:
    """Undo a merge: ``lead`` returns to the state (and partner) it had, ``into`` gives back
    its inquiries; audited on both leads."""
    now = now or utcnow()
    reason = (reason or "").strip()
    # Both leads' rows before any write, in one order (as merge takes them), so an unmerge
    # and an action on the kept lead cannot wait on each other.
    seen = last_merge(session, lead)
    into_id = uuid.UUID(seen.data["into"]) if seen is not None else None
    into = session.get(Lead, into_id) if into_id is not None else None
    for row in sorted((one for one in (lead, into) if one is not None),
                      key=lambda one: str(one.id)):
        lock(session, row)
    check(session, lead, "unmerge", actor, {"reason": reason})
    merged = last_merge(session, lead)
    if merged is None or merged.data.get("into") != (str(into_id) if into_id else None):
        raise InvalidTransition("only a merged lead can be unmerged", lead.status)
    previous: dict[str, Any] = merged.data.get("previous") or {}
    status = str(previous.get("status") or S.QUALIFIED)
    partner_id = previous.get("partner_id")
    if status in OPEN_STATUSES and partner_id is not None:
        partner = session.get(Partner, partner_id)
        # It held this lead before the merge: give it back even if it filled up meanwhile.
        _adjust_open(session, partner_id, +1)
        lead.assigned_partner = partner
        lead.assigned_partner_id = partner_id
        lead.offered_at = _parse_iso(previous.get("offered_at"))
        lead.accepted_at = _parse_iso(previous.get("accepted_at"))
        offer_row = session.get(Offer, previous["offer_id"]) if previous.get("offer_id") else None
        if offer_row is not None and offer_row.response == OfferResponse.WITHDRAWN:
            offer_row.response = previous.get("offer_response") or OfferResponse.PENDING
            offer_row.decline_reason = ""
            if offer_row.response == OfferResponse.PENDING and partner is not None:
                # The partner could not act while it was merged away: a fresh window.
                offer_row.responded_at = None
                offer_row.expires_at = now + accept_sla(partner)
    elif status in OPEN_STATUSES:
        status = S.QUALIFIED
    lead.qualification_reason = str(previous.get("qualification_reason") or "")[:300]
    lead.score = int(previous.get("score") or 0)
    lead.rank = previous.get("rank")
    event = _move(session, lead, status, "unmerged", actor, now, partner_id=partner_id,
                  data={"reason": reason, "from": merged.data["into"],
                        "merge_event": str(merged.id)})
    if into is not None:
        into.inquiries = max(1, (into.inquiries or 1) - int(merged.data.get("inquiries") or 1))
        record_event(session, into, "unmerged_out", actor, now=now,
                     data={"lead": str(lead.id), "reason": reason,
                           "inquiries": merged.data.get("inquiries")})
    return event


def _parse_iso(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


# --- one entry point for the API and offline sync -----------------------------------------


def apply_action(session: Session, lead: Lead, action: str, args: dict[str, Any],
                 actor: Actor, *, now: datetime | None = None,
                 event_id: uuid.UUID | None = None) -> None:
    """Apply ``POST /leads/{id}/actions`` semantics (DESIGN §6) through the functions above.

    ``forward`` and ``reassign`` name a partner by code; re-routing after a decline is the
    caller's job (``portal.dispatch.services``), so this stays free of routing.
    """
    now = now or utcnow()
    handler = _ACTIONS.get(action)
    if handler is None:
        raise InvalidInput(f"Unknown action {action!r}.",
                           {"action": f"One of: {', '.join(table.API_ACTIONS)}."})
    handler(session, lead, args, actor, now, event_id)


def _text(args: dict[str, Any], name: str) -> str:
    return clean_text(args.get(name), name)


def _flag(args: dict[str, Any], name: str) -> bool:
    """A yes/no argument: JSON true/false, or a form's checkbox ("y", "on", "true")."""
    raw = args.get(name)
    if isinstance(raw, bool) or raw is None:
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("", "n", "no", "off", "false", "0"):
        return False
    if isinstance(raw, str) and raw.strip().lower() in ("y", "yes", "on", "true", "1"):
        return True
    raise InvalidInput(f"{name} is true or false.", {name: "Send true or false."})


def _partner_named(session: Session, args: dict[str, Any]) -> Partner:
    code = _text(args, "partner").strip()
    partner = by_code(session, Partner, code)
    if partner is None:
        raise InvalidInput("Unknown partner.", {"partner": f"No partner with code {code!r}."})
    return partner


_Handler = Callable[[Session, Lead, dict[str, Any], Actor, datetime, "uuid.UUID | None"], Any]


def _stage(stage: str) -> _Handler:
    def run(session: Session, lead: Lead, args: dict[str, Any], actor: Actor, now: datetime,
            event_id: uuid.UUID | None) -> None:
        advance(session, lead, stage, actor, data=args, now=now, event_id=event_id)
    return run


def _outcome(outcome: str) -> _Handler:
    def run(session: Session, lead: Lead, args: dict[str, Any], actor: Actor, now: datetime,
            event_id: uuid.UUID | None) -> None:
        close(session, lead, outcome, actor, data=args, now=now, event_id=event_id)
    return run


#: each API action of the table, and the lifecycle function that carries it out
_ACTIONS: dict[str, _Handler] = {
    "accept": lambda s, lead, a, who, now, eid: accept(s, lead, who, now=now, event_id=eid),
    "decline": lambda s, lead, a, who, now, eid: decline(
        s, lead, who, reason=_text(a, "reason"), now=now, event_id=eid),
    **{action: _stage(stage) for stage, action in _STAGE_ACTIONS.items()},
    **{outcome: _outcome(outcome) for outcome in (S.WON, S.LOST, S.NO_INTEREST)},
    "attempt": lambda s, lead, a, who, now, eid: attempt(
        s, lead, who, data=a, now=now, event_id=eid),
    "note": lambda s, lead, a, who, now, eid: add_note(
        s, lead, who, text=_text(a, "text") or _text(a, "note"), now=now, event_id=eid),
    "forward": lambda s, lead, a, who, now, eid: forward(
        s, lead, _partner_named(s, a), who, reason=_text(a, "reason"), now=now),
    "reassign": lambda s, lead, a, who, now, eid: reassign(
        s, lead, _partner_named(s, a), who, reason=_text(a, "reason"),
        override=_flag(a, "override"), now=now),
    "reopen": lambda s, lead, a, who, now, eid: reopen(
        s, lead, who, reason=_text(a, "reason"), now=now),
    "disqualify": lambda s, lead, a, who, now, eid: disqualify(
        s, lead, who, reason=_text(a, "reason"), now=now),
}
assert set(_ACTIONS) == set(table.API_ACTIONS), "every API action of the table is carried out"


def recount_open_leads(session: Session) -> int:
    """Recompute every partner's open-lead count from the leads (repair tool); returns changes."""
    counts = dict(
        session.execute(
            select(Lead.assigned_partner_id, func.count())
            .where(Lead.status.in_(list(OPEN_STATUSES)), Lead.assigned_partner_id.is_not(None))
            .group_by(Lead.assigned_partner_id)
        ).all()
    )
    changed = 0
    for partner in session.scalars(select(Partner)):
        want = counts.get(partner.id, 0)
        if partner.open_leads != want:
            partner.open_leads = want
            changed += 1
    return changed
