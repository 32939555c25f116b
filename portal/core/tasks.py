"""What the leads area, the reminders and the open list share about follow-up tasks: whose
a task is, the next one of each lead, and closing them when a lead leaves its firm.

The page, API and reminder code lives in the areas (``portal.leads.tasks``,
``portal.notify.task_reminders``); this stays below them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import ColumnElement, and_, func, select, update
from sqlalchemy.orm import Session, aliased

from portal.core.models import (
    OPEN_STATUSES,
    Lead,
    LeadEvent,
    Task,
    User,
)

#: what the task's closing says, by the event that took the lead from the firm
_LEFT_BECAUSE = {
    "declined": "the lead was declined",
    "expired": "the offer expired",
    "withdrawn": "the lead was taken back",
    "forwarded": "the lead was forwarded to a dealer",
    "won": "the lead was closed as won",
    "lost": "the lead was closed as lost",
    "no_interest": "the lead was closed: no interest",
    "disqualified": "the lead was disqualified",
    "merged": "the lead was merged into another",
}


def open_task() -> ColumnElement[bool]:
    """A WHERE clause: the task is neither done nor closed by the portal."""
    return and_(Task.done_at.is_(None), Task.cancelled_at.is_(None))


def recipient(session: Session, task: Task) -> User | None:
    """Who is reminded of ``task`` and lists it as theirs: the salesperson the lead is
    assigned to, else the user who set it."""
    return task.owner


def owned_by(user: User) -> ColumnElement[bool]:
    """A WHERE clause: the tasks ``recipient`` gives to ``user`` (the same rule, in SQL)."""
    held = aliased(Lead)  # the query may join the lead itself
    assignee = (select(held.assigned_user_id).where(held.id == Task.lead_id)
                .correlate(Task).scalar_subquery())
    return func.coalesce(assignee, Task.user_id) == user.id


def next_task_for(session: Session, lead_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Task]:
    """Each lead's next open task (the earliest due), for a list of leads: one query."""
    ids = sorted(set(lead_ids), key=str)
    if not ids:
        return {}
    first = (select(Task.id, func.row_number().over(
        partition_by=Task.lead_id, order_by=(Task.due_at, Task.id)).label("n"))
        .where(Task.lead_id.in_(ids), open_task()).subquery())
    tasks = session.scalars(select(Task).join(first, first.c.id == Task.id)
                            .where(first.c.n == 1))
    return {task.lead_id: task for task in tasks}


def close_when_lead_leaves(session: Session, lead: Lead, event: LeadEvent) -> None:
    """The lifecycle's listener: when ``event`` takes the lead from a firm (or closes it),
    that firm's open tasks on it are closed, saying why; a firm still holding an open
    lead keeps its own. One UPDATE, only for the events that can do so."""
    why = _LEFT_BECAUSE.get(event.kind)
    if why is None:
        return
    where = [Task.lead_id == lead.id, Task.done_at.is_(None), Task.cancelled_at.is_(None)]
    if lead.status in OPEN_STATUSES and lead.assigned_partner_id is not None:
        where.append(Task.partner_id != lead.assigned_partner_id)  # still its holder's
    now: datetime = event.at
    # "evaluate": tasks this session has loaded show the change without a reload.
    session.execute(update(Task).where(*where)
                    .values(cancelled_at=now, cancel_reason=why[:200])
                    .execution_options(synchronize_session="evaluate"))
