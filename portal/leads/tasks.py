"""Follow-up tasks on a lead (call back, send quote, visit, other): add, tick off (and
undo), delete, and a user's tasks due today. Only the firm holding the lead, and staff,
see or change them (the transition table's ``task`` row); each add and tick-off is an
event on the lead's timeline, never a change of its status."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session, selectinload

from portal.core import lifecycle
from portal.core.access import held_by
from portal.core.checks import clean_text
from portal.core.errors import InvalidInput, NotFound
from portal.core.lifecycle import Actor
from portal.core.localtime import (
    local_day_bounds,
    local_text,
    parse_local,
    typed_zone,
    viewer_zone,
    zone,
)
from portal.core.models import (
    OPEN_STATUSES,
    Lead,
    Task,
    TaskKind,
    User,
    utcnow,
)
from portal.core.pagination import Page, paginate
from portal.core.tasks import open_task, owned_by

#: the longest note a task keeps
NOTE_MAX = 500


def _holder(lead: Lead) -> int | None:
    """The firm whose tasks a lead shows: the partner holding it (its own capture, when
    nobody else holds it)."""
    return lead.assigned_partner_id or lead.owner_partner_id


def may_see(lead: Lead, user: User) -> bool:
    """``user`` may see the lead's tasks: staff, or a user of the firm holding it."""
    return user.is_staff or (user.partner_id is not None and user.partner_id == _holder(lead))


def may_change(lead: Lead, user: User) -> bool:
    """``user`` may add and change tasks now: as ``may_see``, and the lead is open."""
    return may_see(lead, user) and lead.status in OPEN_STATUSES


def lead_tasks(session: Session, lead: Lead, user: User) -> list[Task]:
    """The lead's tasks for its holding firm, open ones first by due time ([] for a user
    who may not see them)."""
    if not may_see(lead, user):
        return []
    holder = _holder(lead)
    tasks = session.scalars(
        select(Task).where(Task.lead_id == lead.id, Task.partner_id == holder)
        .options(selectinload(Task.user), selectinload(Task.done_by))
        .order_by(Task.due_at, Task.id))
    found = list(tasks)
    done = [t for t in found if not t.is_open]
    done.sort(key=lambda t: t.done_at or t.cancelled_at or t.due_at, reverse=True)
    return [t for t in found if t.is_open] + done


def _checked(session: Session, lead: Lead, user: User) -> Actor:
    """Lock the lead and ask the transition table whether ``user`` may touch its tasks."""
    actor = Actor.of(user, device="web")
    lifecycle.check(session, lead, "task", actor)
    if not may_see(lead, user):  # a staff action for a firm: only the firm holding it
        raise NotFound("No such lead.")
    return actor


def add_task(session: Session, lead: Lead, user: User, *, kind: Any, day: Any, clock: Any,
             note: Any = "", time_zone: Any = "", now: datetime | None = None,
             device: str = "web") -> Task:
    """A new open task due on ``day`` at ``clock`` (``HH:MM``, the user's zone unless
    ``time_zone`` names one; 09:00 when no time is given), with its timeline event."""
    now = now or utcnow()
    actor = _checked(session, lead, user)
    actor = Actor(user=actor.user, device=device, partner_id=actor.partner_id)
    kind_text = clean_text(kind, "kind").strip() or TaskKind.CALL_BACK
    if kind_text not in set(TaskKind):
        raise InvalidInput("Pick what to do.", {
            "kind": f"Pick one of: {', '.join(k.value for k in TaskKind)}."})
    note_text = clean_text(note, "note").strip()
    if len(note_text) > NOTE_MAX:
        raise InvalidInput("The note is too long.", {"note": f"At most {NOTE_MAX} characters."})
    where = typed_zone(time_zone, "time_zone") or viewer_zone(session, user)
    today = now.astimezone(where).date()
    day_value, clock_value, moment = parse_local(
        day, clock or "09:00", where, today=today, day_field="due_date",
        clock_field="due_time", earliest=today - timedelta(days=1))
    assert moment is not None and clock_value is not None and day_value is not None
    task = Task(lead_id=lead.id, partner_id=_holder(lead), user_id=user.id, kind=kind_text,
                note=note_text, due_at=moment, time_zone=where.key, created_at=now)
    session.add(task)
    session.flush()
    lifecycle.record_event(session, lead, "task_added", actor, now=now,
                           partner_id=lead.assigned_partner_id,
                           data=_event_data(task, note_text))
    return task


def _event_data(task: Task, note: str = "") -> dict[str, Any]:
    data: dict[str, Any] = {"task": task.id, "title": task.label,
                            "due": local_text(task.due_at, zone(task.time_zone)),
                            "due_at": task.due_at.isoformat()}
    if note:
        data["note"] = note
    return data


def _task_of(session: Session, lead: Lead, task_id: Any) -> Task:
    try:
        number = int(task_id)
    except (TypeError, ValueError):
        raise NotFound("No such task.") from None
    task = session.get(Task, number) if 0 < number < 2**31 else None
    if task is None or task.lead_id != lead.id or task.partner_id != _holder(lead):
        raise NotFound("No such task.")
    return task


def set_done(session: Session, lead: Lead, user: User, task_id: Any, done: bool, *,
             now: datetime | None = None, device: str = "web") -> Task:
    """Tick a task off (an event on the timeline), or undo that (open again)."""
    now = now or utcnow()
    actor = _checked(session, lead, user)
    actor = Actor(user=actor.user, device=device, partner_id=actor.partner_id)
    task = _task_of(session, lead, task_id)
    if task.cancelled_at is not None:
        raise InvalidInput(f"This task was closed: {task.cancel_reason}.")
    if done == (task.done_at is not None):
        return task  # as asked already (a second click, another tab)
    task.done_at, task.done_by_id = (now, user.id) if done else (None, None)
    session.flush()
    lifecycle.record_event(session, lead, "task_done" if done else "task_reopened", actor,
                           now=now, partner_id=lead.assigned_partner_id,
                           data=_event_data(task))
    return task


def delete_task(session: Session, lead: Lead, user: User, task_id: Any, *,
                now: datetime | None = None, device: str = "web") -> None:
    """Remove a task set by mistake (the timeline keeps that it was there)."""
    now = now or utcnow()
    actor = _checked(session, lead, user)
    actor = Actor(user=actor.user, device=device, partner_id=actor.partner_id)
    task = _task_of(session, lead, task_id)
    data = _event_data(task)
    session.delete(task)
    session.flush()
    lifecycle.record_event(session, lead, "task_deleted", actor, now=now,
                           partner_id=lead.assigned_partner_id, data=data)


def task_json(task: Task) -> dict[str, Any]:
    """A task as the API gives it."""
    return {"id": task.id, "lead_id": str(task.lead_id), "kind": task.kind,
            "label": task.label, "note": task.note, "due_at": task.due_at.isoformat(),
            "time_zone": task.time_zone,
            "done": task.done_at is not None,
            "done_at": task.done_at.isoformat() if task.done_at else None,
            "closed": task.cancelled_at is not None, "closed_reason": task.cancel_reason,
            "owner": task.user.email if task.user else None}


# --- the user's tasks due today -------------------------------------------------------------


@dataclass(frozen=True)
class DueTask:
    """One row of "Tasks due today": the task and what the list says of its lead."""

    task: Task
    lead: Lead
    overdue: bool


def _due_by_end_of_today(session: Session, user: User, partner_id: int, *, firm: bool,
                         now: datetime) -> list[ColumnElement[bool]]:
    """The WHERE clauses (tasks joined to their leads) of the open tasks due by the end of
    ``user``'s day: theirs (``firm``: their firm's), on leads the firm holds."""
    mine = Task.partner_id == partner_id if firm else owned_by(user)
    return [mine, Task.partner_id == partner_id, open_task(),
            Task.due_at < zone_end(session, user, now), held_by(partner_id)]


def due_tasks(session: Session, user: User, *, firm: bool = False, now: datetime | None = None,
              page: int = 1, per_page: int = 50) -> tuple[Page[DueTask], int]:
    """``user``'s open tasks due by the end of their day, overdue first (by due time),
    each with its lead, on leads their firm holds; with ``firm`` the whole firm's. Also
    the number overdue (for the heading)."""
    now = now or utcnow()
    if user.partner_id is None:
        return Page(items=[], number=1, pages=1, total=0), 0
    query = (select(Task).join(Lead, Lead.id == Task.lead_id)
             .where(*_due_by_end_of_today(session, user, user.partner_id, firm=firm, now=now))
             .options(selectinload(Task.lead).selectinload(Lead.product_line),
                      selectinload(Task.user))
             .order_by(Task.due_at, Task.id))
    found = paginate(session, query, page, per_page)
    rows = [DueTask(task, task.lead, task.due_at <= now) for task in found.items]
    overdue = session.scalar(select(func.count()).select_from(
        query.where(Task.due_at <= now).order_by(None).subquery())) or 0
    return Page(items=rows, number=found.number, pages=found.pages,
                total=found.total), overdue


def due_counts(session: Session, user: User, *, now: datetime | None = None
               ) -> dict[str, int]:
    """``user``'s own open tasks due by the end of their day, and of those the overdue:
    one query (the dashboard's tile)."""
    now = now or utcnow()
    if user.partner_id is None:
        return {"today": 0, "overdue": 0}
    today, overdue = session.execute(
        select(func.count(), func.count(case((Task.due_at <= now, 1))))
        .select_from(Task).join(Lead, Lead.id == Task.lead_id)
        .where(*_due_by_end_of_today(session, user, user.partner_id, firm=False, now=now))
    ).one()
    return {"today": int(today or 0), "overdue": int(overdue or 0)}


def zone_end(session: Session, user: User, now: datetime) -> datetime:
    """The end of ``user``'s today, in UTC."""
    return local_day_bounds(now, viewer_zone(session, user))[1]
