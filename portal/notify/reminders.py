"""A channel manager's compliance reminder, as each of the partner's users reads it: the
leads whose outcome is overdue and those still waiting for an answer, as they are when it
goes out (the lists are read then, like a digest's), each linked, then their inbox."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.core.compliance import overdue_clause, untouched_clause
from portal.core.mail import public_url
from portal.core.models import Lead, Notification, NotificationKind, Partner, User
from portal.notify import services
from portal.notify.alerts import TITLES, AlertEmail, LeadList, head

#: leads named in each list; the rest are "… and N more" (the inbox has them all)
LIST_MAX = 15


def _ago(delta: timedelta) -> str:
    hours = max(int(delta.total_seconds() // 3600), 0)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{hours} h" if hours else f"{max(int(delta.total_seconds() // 60), 1)} min"


def _line(lead: Lead, detail: str) -> tuple[str, str]:
    said = head(lead)
    return (f"{said['rank']} · {said['product_line']} · {said['place']} — {detail}",
            public_url("leads.lead", lead_id=lead.id))


def reminder_email(session: Session, row: Notification, user: User, now: datetime
                   ) -> AlertEmail | str:
    """The reminder as it reads now, or why there is nothing to send any more."""
    partner = session.get(Partner, row.partner_id) if row.partner_id else None
    if partner is None:
        return "The partner is gone."
    if user.partner_id != partner.id:
        return "The user no longer signs in for the partner."
    mine = Lead.assigned_partner_id == partner.id
    overdue = select(Lead).where(mine, overdue_clause(now))
    waiting = select(Lead).where(mine, untouched_clause())
    overdue_n = session.scalar(select(func.count()).select_from(overdue.subquery())) or 0
    waiting_n = session.scalar(select(func.count()).select_from(waiting.subquery())) or 0
    if not overdue_n and not waiting_n:
        return "Nothing is overdue or waiting any more."
    days = float(current_app.config["OUTCOME_DUE_DAYS"])
    inbox_overdue = public_url("leads.inbox", tab="overdue")
    inbox_new = public_url("leads.inbox", tab="new")
    lists = []
    if overdue_n:
        lines = [
            _line(lead, f"accepted {_ago(now - started)} ago, outcome "
                        f"{_ago(now - started - timedelta(days=days))} overdue")
            for lead in session.scalars(overdue.order_by(
                Lead.accepted_at, Lead.offered_at, Lead.id).limit(LIST_MAX))
            if (started := lead.accepted_at or lead.offered_at) is not None]
        lists.append(LeadList(f"Outcome overdue: {overdue_n:,}", lines,
                              max(overdue_n - len(lines), 0), inbox_overdue))
    if waiting_n:
        lines = [_line(lead, f"offered {_ago(now - lead.offered_at)} ago, not yet accepted")
                 for lead in session.scalars(waiting.order_by(Lead.offered_at, Lead.id)
                                             .limit(LIST_MAX))
                 if lead.offered_at is not None]
        lists.append(LeadList(f"Waiting for your answer: {waiting_n:,}", lines,
                              max(waiting_n - len(lines), 0), inbox_new))
    by = str((row.data or {}).get("by") or "Your channel manager")
    lines = [f"{by} asks {partner.name} to bring these leads up to date.",
             "Report each overdue lead's outcome (won, lost — to whom — or no interest), or "
             "its next stage if it is still alive; accept or decline each lead waiting "
             "for you."]
    parts = [f"{overdue_n:,} overdue"] if overdue_n else []
    if waiting_n:
        parts.append(f"{waiting_n:,} waiting")
    title = TITLES[NotificationKind.COMPLIANCE_REMINDER]
    link, label = ((inbox_overdue, "Open your overdue leads") if overdue_n
                   else (inbox_new, "Open your new offers"))
    return AlertEmail(
        kind=row.kind, title=title, subject=f"{title}: {', '.join(parts)}",
        user=user, head={"partner": partner.name, "code": partner.code}, lead=None,
        partner=partner, lines=lines, link=link, link_label=label,
        preferences_url=public_url("notify.preferences"),
        unsubscribe_url=public_url("notify.unsubscribe",
                                   token=services.unsubscribe_token(user, "alerts")),
        lists=tuple(lists))
