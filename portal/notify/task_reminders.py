"""A follow-up task's reminder: one email to its owner when it falls due.

The minute's clock scan (``alerts.scan``) finds open tasks that are due and not yet
reminded, writes one ``Notification`` per task (keyed on the task and its due time, so a
repeated or concurrent scan writes nothing more) and marks the task reminded in the same
transaction. An owner whose alert emails are off gets nothing (the task is marked all
the same); "escalations only" still gets it: it is the reminder they set themselves. At
send time the task is read again: done, deleted or closed meanwhile, nothing goes.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.core import channel
from portal.core.access import visible_lead
from portal.core.localtime import local_text, zone
from portal.core.mail import public_url
from portal.core.models import Lead, Notification, NotificationKind, Task, User
from portal.core.tasks import open_task, recipient
from portal.notify import services
from portal.notify.alerts import TITLES, AlertEmail, head

K = NotificationKind
#: tasks reminded per scan at most (the next minute's scan takes the rest)
BATCH = 500


def due_reminders(session: Session, now: datetime) -> int:
    """Write the reminders of the open tasks due by ``now`` (looked for over
    ``ALERT_LOOKBACK_DAYS``) and mark them reminded; the number of emails written."""
    lookback = timedelta(days=float(current_app.config.get("ALERT_LOOKBACK_DAYS", 7)))
    due = list(session.scalars(
        select(Task).where(Task.reminded_at.is_(None), Task.due_at <= now,
                           Task.due_at > now - lookback, open_task())
        .order_by(Task.due_at, Task.id).limit(BATCH)))
    if not due:
        return 0
    rows: list[dict[str, Any]] = []
    for task in due:
        user = recipient(session, task)
        if user is None or not user.active:
            continue
        if not services.choices(session, user).wants_escalations:
            continue  # alert emails off: nothing, ever (the task is marked all the same)
        lead = session.get(Lead, task.lead_id)
        stamp = task.due_at.strftime("%Y%m%dT%H%M")
        rows.append({"key": f"{K.TASK_REMINDER}:{task.id}:{stamp}:{user.id}",
                     "user_id": user.id, "kind": str(K.TASK_REMINDER),
                     "lead_id": task.lead_id, "partner_id": task.partner_id,
                     "data": {**(head(lead) if lead else {}), "task_id": task.id,
                              "due_at": task.due_at.isoformat()}})
    session.execute(update(Task).where(Task.id.in_([t.id for t in due]),
                                       Task.reminded_at.is_(None))
                    .values(reminded_at=now).execution_options(synchronize_session=False))
    return len(services.write(session, rows, nudge=False, now=now))


def task_email(session: Session, row: Notification, user: User, now: datetime
               ) -> AlertEmail | str:
    """The reminder as it reads now, or why there is nothing to send any more."""
    data = row.data or {}
    task = session.get(Task, data.get("task_id")) if data.get("task_id") else None
    if task is None:
        return "The task was deleted."
    if task.done_at is not None:
        return "The task was done already."
    if task.cancelled_at is not None:
        return f"The task was closed: {task.cancel_reason}."
    lead = session.get(Lead, task.lead_id)
    if lead is None or visible_lead(session, user, lead.id) is None:
        return "The recipient may not see this lead."
    name = channel.shown_name(lead, channel.contact_reader(session, user)(lead))
    where = zone(services.choices(session, user).time_zone)
    title = TITLES[K.TASK_REMINDER]
    lines = [f"{task.label}: due {local_text(task.due_at, where)}.",
             f"Lead: {name or 'Unnamed prospect'}"
             + (f", {lead.company}" if lead.company and lead.company != name else "")]
    if task.note:
        lines.append(f"Your note: {task.note}")
    lines.append("Tick it off on the lead's page once it is done.")
    said = head(lead)
    return AlertEmail(
        kind=row.kind, title=title,
        subject=f"{title}: {task.label} · {name or said['place']} "
                f"(due {local_text(task.due_at, where)})",
        user=user, head=said, lead=lead, partner=None, lines=lines,
        link=public_url("leads.lead", lead_id=lead.id), link_label="Open the lead",
        preferences_url=public_url("notify.preferences"),
        unsubscribe_url=public_url("notify.unsubscribe",
                                   token=services.unsubscribe_token(user, "alerts")))
