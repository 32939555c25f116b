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
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core import lifecycle
from portal.core.access import visible_lead
from portal.core.compliance import gate_limit, gate_reason, overdue_counts
from portal.core.mail import build_message, public_url
from portal.core.models import (
    Lead,
    LeadEvent,
    LeadStatus,
    Notification,
    NotificationKind,
    Offer,
    OfferResponse,
    Partner,
    User,
    display_name,
    utcnow,
)
from portal.notify import services

K = NotificationKind
S = LeadStatus

#: the event kinds that alert the partner concerned, and how
_EVENT_ALERTS = {"offered", "forwarded", "withdrawn", "expired"}
#: what each kind is called in a subject and a heading
TITLES = {
    K.OFFER: "New lead offered",
    K.FORWARD: "Lead forwarded to you",
    K.REASSIGN: "Lead assigned to you",
    K.WITHDRAWN: "Lead taken back",
    K.ACCEPT_REMINDER: "Reminder: offer waiting",
    K.CONTACT_REMINDER: "Reminder: first contact due",
    K.EXPIRED: "Offer expired unanswered",
    K.CONTACT_LATE: "First contact is late",
    K.GATE: "Partner held back by the compliance gate",
}
#: kinds whose email links to the lead (the recipient may still see it)
_LINKED = {K.OFFER, K.FORWARD, K.REASSIGN, K.ACCEPT_REMINDER, K.CONTACT_REMINDER,
           K.CONTACT_LATE}
#: kinds that go to those who chose "escalations only" too
ESCALATIONS = {K.EXPIRED, K.CONTACT_LATE, K.GATE}


def head(lead: Lead) -> dict[str, Any]:
    """What any partner offered the lead may see of it, kept with the alert (the lead may
    have moved on by the time the email is written)."""
    place = ", ".join(p for p in (lead.city, lead.region or lead.country) if p)
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
            "expired": K.EXPIRED}.get(event.kind)


def on_lead_event(session: Session, lead: Lead, event: LeadEvent) -> None:
    """The lifecycle's listener: write the alerts this event causes, beside it."""
    if event.kind not in _EVENT_ALERTS or event.partner_id is None:
        return
    kind = _event_kind(event)
    if kind is None:
        return
    partner_id = event.partner_id
    if _actor_partner(session, event) == partner_id:
        return  # nobody is told what their own firm just did (a pull-back's re-offer)
    data = head(lead)
    if kind == K.EXPIRED:
        recipients = _escalation_people(session, partner_id)
    else:
        recipients = [u for u, c in services.people(session, [partner_id]) if c.wants_alerts]
    if kind == K.WITHDRAWN:
        data["reason"] = str((event.data or {}).get("reason") or "")[:300]
    services.write(session, [
        {"key": f"{kind}:{event.id}:{user.id}", "user_id": user.id, "kind": str(kind),
         "lead_id": lead.id, "partner_id": partner_id, "data": data}
        for user in recipients])


def _escalation_people(session: Session, partner_id: int) -> list[User]:
    """The partner's administrators and, for a dealer under a distributor, the
    distributor's: each unless they turned alerts off."""
    partner = session.get(Partner, partner_id)
    ids = [partner_id] + ([partner.parent_id] if partner and partner.parent_id else [])
    return [u for u, c in services.people(session, ids, admins_only=True)
            if c.wants_escalations]


# --- reminders and escalations from the clocks ---------------------------------------------


def _config_hours(name: str, default: float) -> timedelta:
    return timedelta(hours=float(current_app.config.get(name, default)))


def _already(session: Session, kind: str, lead_ids: Iterable[Any]) -> dict[Any, datetime]:
    """For each lead, when its newest ``kind`` notification was written."""
    ids = list(set(lead_ids))
    found: dict[Any, datetime] = {}
    for start in range(0, len(ids), 500):
        for lead_id, created in session.execute(
                select(Notification.lead_id, Notification.created_at)
                .where(Notification.lead_id.in_(ids[start:start + 500]),
                       Notification.kind == kind)):
            if lead_id not in found or created > found[lead_id]:
                found[lead_id] = created
    return found


def _lead_rows(kind: str, lead: Lead, since: datetime, users: Iterable[User],
               partner_id: int | None) -> list[dict[str, Any]]:
    stamp = since.strftime("%Y%m%dT%H%M%S")
    return [{"key": f"{kind}:{lead.id}:{stamp}:{user.id}", "user_id": user.id,
             "kind": kind, "lead_id": lead.id, "partner_id": partner_id, "data": head(lead)}
            for user in users]


def accept_reminders(session: Session, now: datetime) -> int:
    """Offers that have used half their acceptance time unanswered: remind the partner."""
    lookback = now - timedelta(days=float(current_app.config.get("ALERT_LOOKBACK_DAYS", 7)))
    offers = session.execute(
        select(Offer, Lead).join(Lead, Lead.id == Offer.lead_id)
        .where(Offer.response == OfferResponse.PENDING, Offer.expires_at > now,
               Offer.offered_at > lookback, Lead.status == S.OFFERED,
               Lead.assigned_partner_id == Offer.partner_id)).all()
    half_used = [(offer, lead) for offer, lead in offers
                 if offer.expires_at is not None
                 and offer.offered_at + (offer.expires_at - offer.offered_at) / 2 <= now]
    done = _already(session, K.ACCEPT_REMINDER, [lead.id for _, lead in half_used])
    rows: list[dict[str, Any]] = []
    for offer, lead in half_used:
        if lead.id in done and done[lead.id] >= offer.offered_at:
            continue
        users = [u for u, c in services.people(session, [offer.partner_id]) if c.wants_alerts]
        rows += _lead_rows(K.ACCEPT_REMINDER, lead, offer.offered_at, users, offer.partner_id)
    return len(services.write(session, rows, nudge=False, now=now))


def contact_clocks(session: Session, now: datetime) -> dict[str, int]:
    """Accepted leads with no first contact yet: a reminder a few hours before the
    contact SLA runs out, an escalation once it has."""
    sla = _config_hours("CONTACT_SLA_HOURS", 48)
    ahead = _config_hours("CONTACT_REMINDER_HOURS", 4)
    lookback = timedelta(days=float(current_app.config.get("ALERT_LOOKBACK_DAYS", 7)))
    # accepted_at >= offered_at: the first condition bounds the index range.
    leads = list(session.scalars(
        select(Lead).where(Lead.status == S.ACCEPTED, Lead.accepted_at > now - sla - lookback,
                           Lead.offered_at > now - sla - lookback,
                           Lead.offered_at <= now - sla + ahead,
                           Lead.first_contact_at.is_(None),
                           Lead.assigned_partner_id.is_not(None))))
    late = [lead for lead in leads if lead.offered_at is not None
            and lead.offered_at + sla <= now]
    soon = [lead for lead in leads if lead not in late]
    counts = {"contact_reminders": 0, "contact_late": 0}
    for kind, batch, counted in ((K.CONTACT_REMINDER, soon, "contact_reminders"),
                                 (K.CONTACT_LATE, late, "contact_late")):
        done = _already(session, kind, [lead.id for lead in batch])
        rows: list[dict[str, Any]] = []
        for lead in batch:
            assert lead.offered_at is not None and lead.assigned_partner_id is not None
            if lead.id in done and done[lead.id] >= lead.offered_at:
                continue
            if kind == K.CONTACT_LATE:
                users = _escalation_people(session, lead.assigned_partner_id)
            else:
                users = [u for u, c in services.people(session, [lead.assigned_partner_id])
                         if c.wants_alerts]
            rows += _lead_rows(kind, lead, lead.offered_at, users, lead.assigned_partner_id)
        counts[counted] = len(services.write(session, rows, nudge=False, now=now))
    return counts


def gate_changes(session: Session, now: datetime) -> int:
    """Partners the compliance gate has just started to hold back: tell the channel
    managers once per spell (``Partner.gated_at`` marks it; cleared when it lifts)."""
    limit = gate_limit()
    if limit is None:
        return 0
    partners = list(session.scalars(select(Partner).where(Partner.active.is_(True))))
    late = overdue_counts(session, [p.id for p in partners], now)
    rows: list[dict[str, Any]] = []
    for partner in partners:
        reason = gate_reason(late.get(partner.id, 0), limit)
        if reason is None:
            if partner.gated_at is not None:
                partner.gated_at = None
            continue
        if partner.gated_at is not None:
            continue
        partner.gated_at = now
        stamp = now.strftime("%Y%m%dT%H%M%S")
        rows += [{"key": f"gate:{partner.id}:{stamp}:{user.id}", "user_id": user.id,
                  "kind": str(K.GATE), "partner_id": partner.id,
                  "data": {"partner": partner.name, "code": partner.code, "reason": reason,
                           "overdue": late.get(partner.id, 0), "limit": limit}}
                 for user, choice in services.managers(session) if choice.wants_escalations]
    return len(services.write(session, rows, nudge=False, now=now))


def scan(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Every clock at once: reminders, escalations, the compliance gate."""
    now = now or utcnow()
    counts = {"accept_reminders": accept_reminders(session, now)}
    counts.update(contact_clocks(session, now))
    counts["gate"] = gate_changes(session, now)
    return counts


# --- the email ------------------------------------------------------------------------------


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


def _still_current(row: Notification, lead: Lead | None) -> str | None:
    """Why an alert about a lead has nothing left to say, or None when it still does."""
    if row.kind in (K.WITHDRAWN, K.EXPIRED, K.GATE):
        return None  # about something that happened: true however things went since
    if lead is None:
        return "The lead is gone."
    if lead.assigned_partner_id != row.partner_id:
        return "The lead has moved on to another partner."
    if row.kind in (K.OFFER, K.FORWARD, K.REASSIGN, K.ACCEPT_REMINDER) \
            and lead.status != S.OFFERED:
        return "The offer was answered already."
    if row.kind in (K.CONTACT_REMINDER, K.CONTACT_LATE) and lead.first_contact_at is not None:
        return "The first contact was made."
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
                 "Its overdue outcomes must be reported before routing offers it leads again."],
                "")
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
    if row.kind in (K.CONTACT_REMINDER, K.CONTACT_LATE):
        sla = _config_hours("CONTACT_SLA_HOURS", 48)
        due = (lead.offered_at or now) + sla
        when = (f"First contact due in {_hours_text(due - now)}" if due > now
                else f"First contact is {_hours_text(now - due)} late")
        return [when + ".", *asked], when.lower().replace("first contact ", "")
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
    stale = _still_current(row, lead)
    if stale:
        return stale
    if lead is not None and row.kind in _LINKED \
            and visible_lead(session, user, lead.id) is None:
        return "The recipient may not see this lead."
    lines, when = _lines(session, row, lead, now)
    partner = session.get(Partner, row.partner_id) if row.partner_id else None
    data = row.data or {}
    title = TITLES.get(K(row.kind), "Lead update")
    if row.kind == K.GATE:
        subject = f"{title}: {data.get('partner')}"
    else:
        subject = f"{title}: {data.get('rank')} · {data.get('product_line')} · {data.get('place')}"
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
