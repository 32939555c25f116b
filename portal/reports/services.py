"""The compliance list and its reminders: which partners sit on overdue outcomes and
untouched leads now, oldest first, and a channel manager's one-click reminder to a
partner's users (an email each through the notifications outbox, logged).

"Now", not a period: the list is what a partner could still act on, so it counts the
leads a partner holds today, as its inbox does (the Overdue and New offers tabs, the
compliance gate). The league table's overdue and untouched count a period's offers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from portal.core.compliance import overdue_clause, untouched_clause
from portal.core.errors import InvalidInput
from portal.core.models import (
    ComplianceReminder,
    Lead,
    NotificationKind,
    Partner,
    User,
    utcnow,
)
from portal.core.pagination import Page
from portal.notify import services as notify

#: a second reminder of the same partner within this time is the same click (sent once)
REMIND_AGAIN_AFTER = timedelta(minutes=1)


@dataclass
class ComplianceRow:
    """One partner on the compliance list, with its newest reminder."""

    partner: Partner
    overdue: int
    untouched: int
    oldest_overdue: datetime | None  #: the oldest overdue lead's offer
    oldest_untouched: datetime | None  #: the oldest untouched offer
    reminded: ComplianceReminder | None = None
    recipients: int = 0  #: who a reminder would reach now

    @property
    def oldest(self) -> datetime:
        return min(t for t in (self.oldest_overdue, self.oldest_untouched) if t is not None)


def _since() -> Any:
    # The offer's time; an old row with none has its accept.
    return func.coalesce(Lead.offered_at, Lead.accepted_at)


def _grouped(now: datetime, partner_ids: Iterable[int] | None) -> Any:
    """Overdue and untouched leads per partner (and the oldest of each), one grouped
    select over the leads that are either."""
    overdue, untouched, since = overdue_clause(now), untouched_clause(), _since()
    query = (select(Lead.assigned_partner_id.label("pid"),
                    func.count().filter(overdue).label("overdue"),
                    func.min(since).filter(overdue).label("oldest_overdue"),
                    func.count().filter(untouched).label("untouched"),
                    func.min(since).filter(untouched).label("oldest_untouched"))
             .where(Lead.assigned_partner_id.is_not(None), or_(overdue, untouched))
             .group_by(Lead.assigned_partner_id))
    if partner_ids is not None:
        query = query.where(Lead.assigned_partner_id.in_(sorted(partner_ids) or [0]))
    return query


def compliance_list(session: Session, *, partner_ids: Iterable[int] | None = None,
                    page: int = 1, per_page: int = 50, now: datetime | None = None
                    ) -> Page[ComplianceRow]:
    """One page of the partners with overdue outcomes or untouched leads now, the one
    with the oldest such offer first; each with its newest reminder and how many of its
    users a reminder would reach. A fixed few queries whatever the page holds."""
    now = now or utcnow()
    grouped = _grouped(now, partner_ids)
    total = session.scalar(select(func.count()).select_from(grouped.subquery())) or 0
    pages = max(1, math.ceil(total / per_page))
    page = min(max(1, page), pages)
    found = session.execute(grouped.order_by(func.min(_since()), Lead.assigned_partner_id)
                            .limit(per_page).offset((page - 1) * per_page)).all()
    ids = [row.pid for row in found]
    partners = {p.id: p for p in session.scalars(
        select(Partner).where(Partner.id.in_(ids or [0])).options(selectinload(Partner.parent)))}
    rows = [ComplianceRow(partners[r.pid], r.overdue, r.untouched, r.oldest_overdue,
                          r.oldest_untouched) for r in found]
    newest = select(func.max(ComplianceReminder.id)).where(
        ComplianceReminder.partner_id.in_(ids or [0])).group_by(ComplianceReminder.partner_id)
    reminded = {r.partner_id: r for r in session.scalars(
        select(ComplianceReminder).where(ComplianceReminder.id.in_(newest))
        .options(selectinload(ComplianceReminder.by_user)))}
    told = _recipients(session, ids)
    for row in rows:
        row.reminded = reminded.get(row.partner.id)
        row.recipients = len(told.get(row.partner.id, []))
    return Page(items=rows, number=page, pages=pages, total=total)


def _recipients(session: Session, partner_ids: Iterable[int]) -> dict[int, list[User]]:
    """Each partner's active users who take escalation emails (a reminder is one: those
    who chose "escalations only" get it too; those who turned alerts off do not)."""
    found: dict[int, list[User]] = {}
    for user, choice in notify.people(session, partner_ids):
        if choice.wants_escalations and user.partner_id is not None:
            found.setdefault(user.partner_id, []).append(user)
    return found


@dataclass(frozen=True)
class Reminded:
    """What a click on "Remind" did: a new reminder sent, or the one of a moment ago."""

    reminder: ComplianceReminder
    sent: bool  #: False: the partner was reminded within REMIND_AGAIN_AFTER already


def remind(session: Session, partner: Partner, by: User, *, now: datetime | None = None
           ) -> Reminded:
    """Email ``partner``'s users what is overdue and untouched (each a notification row,
    sent by its nudge after commit) and log it. A double click, or a second manager
    within a minute, sends nothing more: the partner's row is locked until this request
    commits, so the second waits and then finds the first's reminder. ``InvalidInput``
    when there is nothing to remind of, or nobody to tell."""
    now = now or utcnow()
    session.execute(select(Partner.id).where(Partner.id == partner.id).with_for_update())
    recent = session.scalars(
        select(ComplianceReminder)
        .where(ComplianceReminder.partner_id == partner.id,
               ComplianceReminder.created_at > now - REMIND_AGAIN_AFTER)
        .order_by(ComplianceReminder.id.desc()).limit(1)).first()
    if recent is not None:
        return Reminded(recent, sent=False)
    counts = session.execute(_grouped(now, [partner.id])).first()
    if counts is None:
        raise InvalidInput(f"{partner.name} has no overdue outcome and no untouched lead "
                           "now: no reminder sent.")
    people = _recipients(session, [partner.id]).get(partner.id, [])
    if not people:
        raise InvalidInput(f"Nobody at {partner.name} takes alert emails (no active user, "
                           "or all turned them off): no reminder sent. Call them instead.")
    reminder = ComplianceReminder(partner_id=partner.id, by_user_id=by.id, created_at=now,
                                  overdue=counts.overdue, untouched=counts.untouched,
                                  recipients=len(people))
    session.add(reminder)
    session.flush()
    kind = str(NotificationKind.COMPLIANCE_REMINDER)
    notify.write(session, [
        {"key": f"{kind}:{reminder.id}:{user.id}", "user_id": user.id, "kind": kind,
         "partner_id": partner.id,
         "data": {"by": by.name or by.email, "reminder_id": reminder.id}}
        for user in people], now=now)
    return Reminded(reminder, sent=True)
