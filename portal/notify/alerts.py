"""Alerts: an email within a minute of an offer, a forward, a reassignment or a pull-back;
reminders before an offer or a first contact runs late; escalations when one did.

The event's alerts are written by a lifecycle listener in the event's own transaction, so
an event that rolls back alerts nobody and one that commits alerts once. Reminders and
escalations come from a scan of the clocks, keyed so that a repeated scan writes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from sqlalchemy import exists, func, select, update
from sqlalchemy.orm import Session

from portal.core import lifecycle
from portal.core.access import visible_lead
from portal.core.assignment import ASSIGNED_EVENT
from portal.core.compliance import gate_limit, gate_reason, overdue_clause
from portal.core.lifecycle import accept_window
from portal.core.mail import build_message, public_url
from portal.core.models import (
    OPEN_STATUSES,
    Lead,
    LeadEvent,
    LeadStatus,
    Notification,
    NotificationKind,
    Offer,
    OfferResponse,
    Partner,
    PartnerKind,
    User,
    display_name,
    utcnow,
)
from portal.notify import services

K = NotificationKind
S = LeadStatus

#: the event kinds that alert the partner concerned, and how
_EVENT_ALERTS = {"offered", "forwarded", "withdrawn", "expired", "inquiry"}
#: what each kind is called in a subject and a heading
TITLES = {
    K.OFFER: "New lead offered",
    K.FORWARD: "Lead forwarded to you",
    K.REASSIGN: "Lead assigned to you",
    K.WITHDRAWN: "Lead taken back",
    K.REPEAT: "Prospect asked again",
    K.ASSIGNED: "Lead assigned to you",
    K.ACCEPT_REMINDER: "Reminder: offer waiting",
    K.CONTACT_REMINDER: "Reminder: first contact due",
    K.EXPIRED: "Offer expired unanswered",
    K.CONTACT_LATE: "First contact is late",
    K.GATE: "Partner held back by the compliance gate",
    K.COMPLIANCE_REMINDER: "Reminder: leads to bring up to date",
}
#: kinds whose email links to the lead (the recipient may still see it)
_LINKED = {K.OFFER, K.FORWARD, K.REASSIGN, K.REPEAT, K.ACCEPT_REMINDER, K.CONTACT_REMINDER,
           K.CONTACT_LATE, K.ASSIGNED}
#: kinds that go to those who chose "escalations only" too
ESCALATIONS = {K.EXPIRED, K.CONTACT_LATE, K.GATE, K.COMPLIANCE_REMINDER}


def head(lead: Lead) -> dict[str, Any]:
    """What any partner offered the lead may see of it, kept with the alert (the lead may
    have moved on by the time the email is written)."""
    region = (lead.region or "").removeprefix(f"{lead.country}-")
    place = ", ".join(p for p in (lead.city, region or lead.country) if p)
    if lead.postal_code:
        place = f"{place} {lead.postal_code}".strip()
    return {"rank": (lead.rank or "").capitalize() or "Unranked",
            "product_line": lead.product_line.name if lead.product_line else "Any product",
            "place": place or "No location given"}


# --- alerts written with their event -------------------------------------------------------


def _actor_partner(session: Session, event: LeadEvent) -> int | None:
    if event.actor_id is None:
        return None
    user = session.get(User, event.actor_id)
    return user.partner_id if user is not None else None


def _event_kind(event: LeadEvent) -> str | None:
    if event.kind == "offered":
        return K.REASSIGN if (event.data or {}).get("method") == "manual" else K.OFFER
    return {"forwarded": K.FORWARD, "withdrawn": K.WITHDRAWN,
            "expired": K.EXPIRED, "inquiry": K.REPEAT}.get(event.kind)


def _concerned(lead: Lead, event: LeadEvent) -> int | None:
    """The partner an event is news for: the one it names; for a repeat inquiry, the
    one holding the lead (nobody, when it is closed or with nobody yet)."""
    if event.kind == "inquiry":
        return lead.assigned_partner_id if lead.status in OPEN_STATUSES else None
    return event.partner_id


def on_lead_event(session: Session, lead: Lead, event: LeadEvent) -> None:
    """The lifecycle's listener: write the alerts this event causes, beside it."""
    if event.kind == ASSIGNED_EVENT:
        _assigned(session, lead, event)
        return
    if event.kind not in _EVENT_ALERTS:
        return
    kind = _event_kind(event)
    partner_id = _concerned(lead, event)
    if kind is None or partner_id is None:
        return
    if _actor_partner(session, event) == partner_id:
        return  # nobody is told what their own firm just did (a pull-back's re-offer)
    data = head(lead)
    # The salesperson working the lead hears of it rather than the whole firm; an offer
    # that moved away names who had it in its event (the lead has nobody by now).
    assignee_id = lead.assigned_user_id or (event.data or {}).get("assignee_id")
    if kind in (K.OFFER, K.FORWARD, K.REASSIGN):
        assignee_id = None  # news for the firm: nobody there works it yet
    held = _assignees(session, [(partner_id, assignee_id)])
    if kind == K.EXPIRED:
        recipients = _lead_people(_escalation_people(session, [partner_id]), held,
                                  partner_id, assignee_id, escalation=True)
    else:
        recipients = _lead_people(_alert_people(session, [partner_id]), held, partner_id,
                                  assignee_id, escalation=False)
    if kind == K.WITHDRAWN:
        data["reason"] = str((event.data or {}).get("reason") or "")[:300]
    if kind == K.REPEAT:
        data["comments"] = " ".join(str((event.data or {}).get("comments") or "").split())[:500]
    services.write(session, [
        {"key": f"{kind}:{event.id}:{user.id}", "user_id": user.id, "kind": str(kind),
         "lead_id": lead.id, "partner_id": partner_id, "data": data}
        for user in recipients])


def _assigned(session: Session, lead: Lead, event: LeadEvent) -> None:
    """A colleague gave ``lead`` to someone: "Lead assigned to you", unless they took it
    themselves or want no alerts."""
    assignee_id = (event.data or {}).get("assignee_id")
    partner_id = lead.assigned_partner_id
    if assignee_id is None or partner_id is None or assignee_id == event.actor_id:
        return
    held = _assignees(session, [(partner_id, assignee_id)])
    if assignee_id not in held or not held[assignee_id][1].wants_alerts:
        return
    by = session.get(User, event.actor_id) if event.actor_id else None
    services.write(session, [{
        "key": f"{K.ASSIGNED}:{event.id}:{assignee_id}", "user_id": assignee_id,
        "kind": str(K.ASSIGNED), "lead_id": lead.id, "partner_id": partner_id,
        "data": {**head(lead), "by": (by.name or by.email) if by else ""}}])


def _assignees(session: Session, pairs: Iterable[tuple[int | None, Any]]
               ) -> dict[int, tuple[User, services.Choices]]:
    """The assignees named in (partner, assignee) pairs that are active users of that
    partner, with what each wants (one query)."""
    pairs = [(p, u) for p, u in pairs if p is not None and isinstance(u, int)]
    if not pairs:
        return {}
    return {user.id: (user, choice) for user, choice in services.people(
        session, {p for p, _ in pairs}, user_ids={u for _, u in pairs})}


def _lead_people(firm: dict[int, list[User]], held: dict[int, tuple[User, services.Choices]],
                 partner_id: int, assignee_id: Any, *, escalation: bool) -> list[User]:
    """Who hears of one lead of ``partner_id``: the firm's people (``firm``), unless a
    salesperson works it. Then an alert goes to them alone (if they take alerts); an
    escalation goes to them as well as to the firm's administrators."""
    found = held.get(assignee_id) if isinstance(assignee_id, int) else None
    if found is None or found[0].partner_id != partner_id:
        return firm.get(partner_id, [])
    user, choice = found
    if not escalation:
        return [user] if choice.wants_alerts else []
    people = list(firm.get(partner_id, []))
    if choice.wants_escalations and all(other.id != user.id for other in people):
        people.append(user)
    return people


def _escalation_people(session: Session, partner_ids: Iterable[int]
                       ) -> dict[int, list[User]]:
    """For each partner, who hears of its escalations: its administrators and, for a
    dealer under a distributor, the distributor's; each unless they turned alerts off.
    A firm with nobody there tells all its users who take escalations, and failing
    those the channel managers: an escalation that reaches nobody is no escalation."""
    ids = sorted(set(partner_ids))
    if not ids:
        return {}
    parents = dict(session.execute(select(Partner.id, Partner.parent_id)
                                   .where(Partner.id.in_(ids))).all())
    firms = set(ids) | {p for p in parents.values() if p}
    admins: dict[int, list[User]] = {}
    for user, choice in services.people(session, firms, admins_only=True):
        if choice.wants_escalations and user.partner_id is not None:
            admins.setdefault(user.partner_id, []).append(user)
    found = {pid: admins.get(pid, []) + admins.get(parents.get(pid) or 0, []) for pid in ids}
    lonely = [pid for pid, users in found.items() if not users]
    if lonely:
        for user, choice in services.people(session, lonely):
            if choice.wants_escalations and user.partner_id is not None:
                found[user.partner_id].append(user)
        staff = [u for u, c in services.managers(session) if c.wants_escalations]
        for pid in lonely:
            found[pid] = found[pid] or staff
    return found


def _alert_people(session: Session, partner_ids: Iterable[int]) -> dict[int, list[User]]:
    """For each partner, its users who want every alert (one query for them all)."""
    found: dict[int, list[User]] = {}
    for user, choice in services.people(session, partner_ids):
        if choice.wants_alerts and user.partner_id is not None:
            found.setdefault(user.partner_id, []).append(user)
    return found


# --- reminders and escalations from the clocks ---------------------------------------------


def _config_hours(name: str, default: float) -> timedelta:
    return timedelta(hours=float(current_app.config.get(name, default)))


def _not_told(kind: str, since: Any) -> Any:
    """The lead has no ``kind`` notification written since ``since`` (its offer)."""
    return ~exists().where(Notification.lead_id == Lead.id, Notification.kind == kind,
                           Notification.created_at >= since)


def _lead_rows(kind: str, lead: Lead, since: datetime, users: Iterable[User],
               partner_id: int | None, **data: Any) -> list[dict[str, Any]]:
    stamp = since.strftime("%Y%m%dT%H%M%S")
    return [{"key": f"{kind}:{lead.id}:{stamp}:{user.id}", "user_id": user.id,
             "kind": kind, "lead_id": lead.id, "partner_id": partner_id,
             "data": {**head(lead), **data}}
            for user in users]


def accept_reminders(session: Session, now: datetime) -> int:
    """Offers that have used half their acceptance time unanswered: remind the partner.
    The clock is the offer's own (``expires_at``; a re-opened offer's window is new), one
    indexed range per kind of partner; leads reminded already are left out in SQL."""
    windows: dict[timedelta, list[str]] = {}
    for kind in PartnerKind:
        windows.setdefault(accept_window(str(kind)), []).append(str(kind))
    found: list[tuple[Offer, Lead]] = []
    for window, kinds in windows.items():
        found += session.execute(
            select(Offer, Lead).join(Lead, Lead.id == Offer.lead_id)
            .join(Partner, Partner.id == Offer.partner_id)
            .where(Offer.response == OfferResponse.PENDING, Offer.expires_at > now,
                   Offer.expires_at <= now + window / 2, Partner.kind.in_(kinds),
                   Lead.status == S.OFFERED, Lead.assigned_partner_id == Offer.partner_id,
                   _not_told(K.ACCEPT_REMINDER, Offer.offered_at))).all()
    people = _alert_people(session, [offer.partner_id for offer, _ in found])
    held = _assignees(session, [(offer.partner_id, lead.assigned_user_id)
                                for offer, lead in found])
    rows: list[dict[str, Any]] = []
    for offer, lead in found:
        rows += _lead_rows(K.ACCEPT_REMINDER, lead, offer.offered_at,
                           _lead_people(people, held, offer.partner_id,
                                        lead.assigned_user_id, escalation=False),
                           offer.partner_id, offer_id=offer.id)
    return len(services.write(session, rows, nudge=False, now=now))


def contact_clocks(session: Session, now: datetime) -> dict[str, int]:
    """Accepted leads with no first contact yet: a reminder in the last few hours before
    the contact SLA runs out, an escalation once it has (looked for over
    ``ALERT_LOOKBACK_DAYS``). Leads told already are left out in SQL."""
    sla = _config_hours("CONTACT_SLA_HOURS", 48)
    ahead = _config_hours("CONTACT_REMINDER_HOURS", 4)
    lookback = timedelta(days=float(current_app.config.get("ALERT_LOOKBACK_DAYS", 7)))
    waiting = (Lead.status == S.ACCEPTED, Lead.first_contact_at.is_(None),
               Lead.assigned_partner_id.is_not(None))
    # accepted_at >= offered_at: the accepted_at bound narrows the index range.
    soon = list(session.scalars(select(Lead).where(
        *waiting, Lead.accepted_at > now - sla, Lead.offered_at > now - sla,
        Lead.offered_at <= now - sla + ahead, _not_told(K.CONTACT_REMINDER, Lead.offered_at))))
    late = list(session.scalars(select(Lead).where(
        *waiting, Lead.accepted_at > now - sla - lookback, Lead.offered_at > now - sla - lookback,
        Lead.offered_at <= now - sla, _not_told(K.CONTACT_LATE, Lead.offered_at))))
    partners = [lead.assigned_partner_id for lead in soon + late
                if lead.assigned_partner_id is not None]
    told = {K.CONTACT_REMINDER: _alert_people(session, partners),
            K.CONTACT_LATE: _escalation_people(session, partners)}
    held = _assignees(session, [(lead.assigned_partner_id, lead.assigned_user_id)
                                for lead in soon + late])
    counts = {}
    for kind, batch, counted in ((K.CONTACT_REMINDER, soon, "contact_reminders"),
                                 (K.CONTACT_LATE, late, "contact_late")):
        rows: list[dict[str, Any]] = []
        for lead in batch:
            assert lead.offered_at is not None and lead.assigned_partner_id is not None
            rows += _lead_rows(kind, lead, lead.offered_at,
                               _lead_people(told[kind], held, lead.assigned_partner_id,
                                            lead.assigned_user_id,
                                            escalation=kind == K.CONTACT_LATE),
                               lead.assigned_partner_id)
        counts[counted] = len(services.write(session, rows, nudge=False, now=now))
    return counts


def gate_changes(session: Session, now: datetime) -> int:
    """Partners the compliance gate has just started to hold back: tell the channel
    managers once per spell. ``Partner.gated_at`` marks a spell, set by a conditional
    UPDATE so that two sweeps at once tell them once; cleared when the gate lifts. One
    grouped query finds the partners over the limit (no list of every partner)."""
    limit = gate_limit()
    if limit is None:
        return 0
    over = dict(session.execute(
        select(Lead.assigned_partner_id, func.count())
        .where(Lead.assigned_partner_id.is_not(None), overdue_clause(now))
        .group_by(Lead.assigned_partner_id).having(func.count() > limit)).all())
    session.execute(update(Partner)
                    .where(Partner.gated_at.is_not(None), Partner.id.not_in(list(over) or [0]))
                    .values(gated_at=None), execution_options={"synchronize_session": False})
    fresh = list(session.scalars(select(Partner).where(
        Partner.id.in_(list(over) or [0]), Partner.gated_at.is_(None),
        Partner.active.is_(True)).order_by(Partner.id)))
    staff = [user for user, choice in services.managers(session) if choice.wants_escalations]
    rows: list[dict[str, Any]] = []
    for partner in fresh:
        taken = session.execute(
            update(Partner).where(Partner.id == partner.id, Partner.gated_at.is_(None))
            .values(gated_at=now), execution_options={"synchronize_session": False})
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            continue  # another sweep got there first
        stamp = now.strftime("%Y%m%dT%H%M%S")
        rows += [{"key": f"gate:{partner.id}:{stamp}:{user.id}", "user_id": user.id,
                  "kind": str(K.GATE), "partner_id": partner.id,
                  "data": {"partner": partner.name, "code": partner.code,
                           "reason": gate_reason(over[partner.id], limit),
                           "overdue": over[partner.id], "limit": limit}}
                 for user in staff]
    return len(services.write(session, rows, nudge=False, now=now))


def scan(session: Session, now: datetime | None = None, *, gate: bool = True
         ) -> dict[str, int]:
    """Every clock at once: reminders, escalations and (unless ``gate`` is False: the
    minute's sweep leaves it to its own ten-minute job) the compliance gate."""
    now = now or utcnow()
    counts = {"accept_reminders": accept_reminders(session, now)}
    counts.update(contact_clocks(session, now))
    if gate:
        counts["gate"] = gate_changes(session, now)
    return counts


# --- the email ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LeadList:
    """A titled list of leads in an alert (a compliance reminder's overdue ones): each
    line's text and link, and where to see them all when the list stops short."""

    title: str
    lines: list[tuple[str, str]]
    more: int = 0
    more_link: str = ""


@dataclass(frozen=True)
class AlertEmail:
    """What one alert says, for its templates."""

    kind: str
    title: str
    subject: str
    user: User
    head: dict[str, Any]
    lead: Lead | None
    partner: Partner | None
    lines: list[str]
    link: str
    link_label: str
    preferences_url: str
    unsubscribe_url: str
    lists: tuple[LeadList, ...] = ()


def _still_current(session: Session, row: Notification, lead: Lead | None) -> str | None:
    """Why an alert about a lead has nothing left to say, or None when it still does."""
    if row.kind in (K.WITHDRAWN, K.EXPIRED, K.GATE):
        return None  # about something that happened: true however things went since
    if lead is None:
        return "The lead is gone."
    if lead.assigned_partner_id != row.partner_id:
        return "The lead has moved on to another partner."
    if row.kind == K.ASSIGNED and lead.assigned_user_id != row.user_id:
        return "The lead was assigned to someone else since."
    if row.kind in (K.OFFER, K.FORWARD, K.REASSIGN, K.ACCEPT_REMINDER) \
            and lead.status != S.OFFERED:
        return "The offer was answered already."
    if row.kind in (K.CONTACT_REMINDER, K.CONTACT_LATE):
        if lead.first_contact_at is not None:
            return "The first contact was made."
        if lead.status != S.ACCEPTED:
            return "The lead is no longer waiting for a first contact."
    offer_id = (row.data or {}).get("offer_id")
    if row.kind == K.ACCEPT_REMINDER and offer_id is not None:
        current = lifecycle.current_offer(session, lead)
        if current is None or current.id != offer_id:
            return "The offer was answered already."
    return None


def _hours_text(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    hours, minutes = divmod(minutes, 60)
    if hours >= 48:
        return f"{hours // 24} days"
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{max(minutes, 1)} min"


def _lines(session: Session, row: Notification, lead: Lead | None, now: datetime
           ) -> tuple[list[str], str]:
    """The body's lines, and the short "what to do by when" for the subject."""
    data = row.data or {}
    if row.kind == K.GATE:
        return ([f"{data.get('partner')} ({data.get('code')}) gets no new offers: "
                 f"{data.get('reason')}.",
                 "It is offered leads again once it reports its overdue outcomes."],
                "")
    if row.kind == K.REPEAT:
        assert lead is not None
        said = data.get("comments")
        return ([("They wrote: \u201c" + said + "\u201d") if said
                 else "They filled in the form again.",
                 "Get back to them while the interest is fresh.",
                 *[line for line in _asked(lead) if not line.startswith("They wrote")]], "")
    if row.kind == K.WITHDRAWN:
        why = data.get("reason") or "no reason given"
        return [f"This lead is no longer yours: {why}.",
                "It no longer appears in your inbox."], ""
    if row.kind == K.EXPIRED:
        partner = session.get(Partner, row.partner_id) if row.partner_id else None
        who = partner.name if partner else "The partner"
        return [f"{who} did not accept this offer in time; it has gone back to routing.",
                "Offers that expire count against the partner's acceptance rate."], ""
    assert lead is not None
    asked = _asked(lead)
    if row.kind == K.ASSIGNED:
        by = data.get("by") or "A colleague"
        return [f"{by} assigned this lead to you: it is yours to work, and its reminders "
                "now come to you.", *asked], ""
    if row.kind in (K.CONTACT_REMINDER, K.CONTACT_LATE):
        sla = _config_hours("CONTACT_SLA_HOURS", 48)
        due = (lead.offered_at or now) + sla
        when = (f"First contact due in {_hours_text(due - now)}" if due > now
                else f"First contact is {_hours_text(now - due)} late")
        short = (f"due in {_hours_text(due - now)}" if due > now
                 else f"{_hours_text(now - due)} late")
        return [when + ".", *asked], short
    offer = lifecycle.current_offer(session, lead)
    left = ""
    if offer is not None and offer.expires_at is not None:
        left = f"{_hours_text(offer.expires_at - now)} to accept"
    lines = [f"You have {left}; then it goes to another partner." if left else
             "Accept it or decline it with a reason."]
    if row.kind == K.REASSIGN and offer is not None and offer.reason:
        lines.append(f"Assigned by the channel manager: {offer.reason}")
    return lines + asked, left


def _asked(lead: Lead) -> list[str]:
    """What the prospect asked: their comments and answers (not their contact details:
    the lead's page shows those to whoever signs in and may see them)."""
    lines = []
    if lead.comments:
        text = " ".join(lead.comments.split())
        lines.append(f"They wrote: \u201c{text[:500]}{'…' if len(text) > 500 else ''}\u201d")
    answers = {k: v for k, v in (lead.answers or {}).items() if v not in (None, "")}
    for name in ("timeline", "budget", "role"):
        if name in answers:
            lines.append(f"{name.capitalize()}: {str(answers[name]).replace('_', ' ')}")
    if lead.company:
        lines.append(f"Company: {lead.company}")
    return lines


def alert_email(session: Session, row: Notification, user: User, now: datetime
                ) -> AlertEmail | str:
    """The alert as it reads now, or why it has nothing to say any more."""
    lead = session.get(Lead, row.lead_id) if row.lead_id else None
    stale = _still_current(session, row, lead)
    if stale:
        return stale
    if lead is not None and row.kind in _LINKED \
            and visible_lead(session, user, lead.id) is None:
        return "The recipient may not see this lead."
    lines, when = _lines(session, row, lead, now)
    partner = session.get(Partner, row.partner_id) if row.partner_id else None
    data = row.data or {}
    if row.kind == K.REPEAT and lead is not None:
        data = {**data, **head(lead)}  # the repeat rescored it after the alert was written
    title = TITLES.get(K(row.kind), "Lead update")
    if row.kind == K.GATE:
        subject = f"{title}: {data.get('partner')}"
    else:
        said = f"{title} by {data['by']}" if row.kind == K.ASSIGNED and data.get("by") else title
        subject = f"{said}: {data.get('rank')} · {data.get('product_line')} · {data.get('place')}"
        if when:
            subject += f" ({when})"
    if row.kind in _LINKED and lead is not None:
        link, label = public_url("leads.lead", lead_id=lead.id), "Open the lead"
    elif row.kind == K.GATE and partner is not None:
        link, label = public_url("leads.partner", code=partner.code), "See the partner"
    else:
        link, label = public_url("leads.inbox"), "Open your inbox"
    return AlertEmail(
        kind=row.kind, title=title, subject=subject, user=user, head=data, lead=lead,
        partner=partner, lines=lines, link=link, link_label=label,
        preferences_url=public_url("notify.preferences"),
        unsubscribe_url=public_url("notify.unsubscribe",
                                   token=services.unsubscribe_token(user, "alerts")))


def alert_message(email: AlertEmail) -> EmailMessage:
    """The email for one alert: plain text and HTML, with the unsubscribe headers."""
    context = {"email": email, "name": display_name(email.user.name, "", "", email.user.email)}
    return build_message(
        email.user.email, email.subject,
        render_template("emails/alert.txt", **context),
        render_template("emails/alert.html", **context),
        headers=unsubscribe_headers(email.unsubscribe_url))


def unsubscribe_headers(url: str) -> dict[str, str]:
    """RFC 2369 / 8058: mail clients offer a one-click unsubscribe with these."""
    return {"List-Unsubscribe": f"<{url}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"}
