"""Assignment within a firm: which of the holding partner's users works a lead.

Not a lifecycle state: the lead's status stays as it is. Each change is an ``assigned``
event on the lead's timeline ("Assigned to Ann Lee by Bob Smith"), written through
``lifecycle.record_event`` so its listeners (the assignee's email) run beside it. The
assignee belongs to the firm holding the lead: the lifecycle clears it whenever the lead
changes partner (offer, forward, decline, expiry, pull-back, reassignment, merge), and a
user who leaves the firm (deactivated, moved, no longer a partner user) lets go of theirs.

Who may: a partner's administrators, or any of its users where the firm allows it
(``Partner.users_may_assign``), assign a lead it holds to one of its active users or
back to nobody; any user may take an unassigned lead ("Assign to me") and give back
their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.core import lifecycle
from portal.core.errors import DomainError, InvalidInput, NotFound
from portal.core.lifecycle import Actor
from portal.core.models import OPEN_STATUSES, Lead, Partner, Role, User, utcnow

#: the timeline event of an assignment (no state change)
ASSIGNED_EVENT = "assigned"


class NotAllowed(DomainError):
    """The user sees the lead but may not assign it that way: 403 with what to do."""

    status = 403
    code = "forbidden"


def person(user: User | None) -> str:
    """How a user is named on the timeline and in lists."""
    if user is None:
        return "nobody"
    return user.name or user.email


def may_assign_others(user: User, partner: Partner | None = None) -> bool:
    """``user`` may give its firm's leads to any colleague (not only take them)."""
    partner = partner or user.partner
    return (not user.is_staff and partner is not None and user.partner_id == partner.id
            and (user.partner_admin or partner.users_may_assign))


def salespeople(session: Session, partner_id: int | None) -> list[User]:
    """The users a lead of ``partner_id`` may be assigned to: its active partner users."""
    if partner_id is None:
        return []
    return list(session.scalars(
        select(User).where(User.partner_id == partner_id, User.active.is_(True),
                           User.role == Role.PARTNER)
        .order_by(func.lower(User.name), User.email).limit(500)))


def find_salesperson(session: Session, partner_id: int, *, user_id: Any = None,
                     email: Any = None) -> User:
    """One active user of ``partner_id``, by id or email; anyone else (another firm's
    user, a deactivated one, no such account) is refused alike, so nothing tells them
    apart."""
    user: User | None = None
    if user_id is not None:
        try:
            number = int(str(user_id))
        except ValueError:
            number = 0
        user = session.get(User, number) if 0 < number < 2**31 else None
    elif isinstance(email, str):
        user = session.scalars(select(User).where(
            User.email == email.strip().lower())).first()
    if (user is None or user.partner_id != partner_id or not user.active
            or user.role != Role.PARTNER):
        raise InvalidInput("Pick one of your firm's active users.",
                           {"assignee": "Pick one of your firm's active users."})
    return user


def check_holder(user: User, lead: Lead) -> None:
    """Only a user of the partner holding ``lead`` assigns it: 404 for another partner's
    user (as for any lead not theirs), 403 for staff (who see it)."""
    if user.is_staff:
        raise NotAllowed("Only the partner holding the lead assigns it to its salespeople.")
    if user.partner_id is None or lead.assigned_partner_id != user.partner_id:
        raise NotFound("No such lead.")


def check_may_assign(user: User, lead: Lead, assignee: User | None) -> None:
    """Refuse what ``user`` may not do: assign a lead its firm does not hold (404 for a
    partner, as for any lead not theirs; 403 for staff, who see it), or, without the
    firm's leave, give a lead to someone else or take one a colleague has."""
    check_holder(user, lead)
    if may_assign_others(user):
        return
    current = lead.assigned_user_id
    if assignee is not None and assignee.id == user.id and current in (None, user.id):
        return  # "Assign to me" (twice, from two tabs, is no refusal)
    if assignee is None and current == user.id:
        return  # giving back one's own
    raise NotAllowed(
        "Only your firm's administrators assign leads to colleagues: you can take an "
        "unassigned lead, or give back your own.",
        {"assignee": "Ask your administrator, or take an unassigned lead."})


def assign(session: Session, lead: Lead, assignee: User | None, actor: Actor, *,
           now: datetime | None = None, note: str = "") -> bool:
    """Give ``lead`` to ``assignee`` (None: back to the firm as a whole) and record it on
    the timeline. The caller has checked who may (``check_may_assign``); the assignee
    must be an active user of the holding firm. False when nothing changed."""
    now = now or utcnow()
    lifecycle.lock(session, lead)  # read as it is now; one of two clicks at once wins
    if lead.assigned_partner_id is None:
        raise InvalidInput("Only a lead a partner holds can be assigned.")
    if assignee is not None and (assignee.partner_id != lead.assigned_partner_id
                                 or not assignee.active or assignee.role != Role.PARTNER):
        raise InvalidInput("Pick one of your firm's active users.",
                           {"assignee": "Pick one of your firm's active users."})
    previous = session.get(User, lead.assigned_user_id) if lead.assigned_user_id else None
    if (previous.id if previous else None) == (assignee.id if assignee else None):
        return False
    lead.assigned_user = assignee
    lead.assigned_user_id = assignee.id if assignee else None
    by = actor.user
    if assignee is None:
        text = (f"Unassigned by {person(by)} (was with {person(previous)})" if by
                else f"Unassigned (was with {person(previous)})")
    elif by is not None and by.id == assignee.id:
        text = f"Assigned to {person(assignee)} (took it)"
    else:
        text = f"Assigned to {person(assignee)}" + (f" by {person(by)}" if by else "")
    if note:
        text += f": {note}"
    lifecycle.record_event(
        session, lead, ASSIGNED_EVENT, actor, now=now, partner_id=lead.assigned_partner_id,
        data={"text": text, "assignee_id": assignee.id if assignee else None,
              "previous_id": previous.id if previous else None})
    return True


def assign_as(session: Session, lead: Lead, user: User, assignee: User | None, *,
              device: str = "web") -> bool:
    """``user`` assigns ``lead``: checked, then done (pages and the API). The check reads
    the lead locked, as it is now: of two "Assign to me" at once, the second is refused
    rather than taking the first one's lead."""
    lifecycle.lock(session, lead)
    check_may_assign(user, lead, assignee)
    return assign(session, lead, assignee, Actor.of(user, device=device))


def release_all(session: Session, user: User, *, actor: Actor, why: str) -> int:
    """``user`` leaves the firm's work (deactivated, moved, made staff): each lead they
    hold goes back to the firm as a whole, said on its timeline. Returns how many."""
    leads = list(session.scalars(  # a closed lead keeps who worked it
        select(Lead).where(Lead.assigned_user_id == user.id,
                           Lead.status.in_([str(s) for s in OPEN_STATUSES]))
        .order_by(Lead.id)))
    now = utcnow()
    for lead in leads:
        assign(session, lead, None, actor, now=now, note=why)
    return len(leads)


def open_counts(session: Session, partner_id: int) -> dict[int | None, int]:
    """The firm's open leads per assignee (None: unassigned), in one grouped query."""
    rows = session.execute(
        select(Lead.assigned_user_id, func.count())
        .where(Lead.assigned_partner_id == partner_id,
               Lead.status.in_([str(s) for s in OPEN_STATUSES]))
        .group_by(Lead.assigned_user_id))
    return {user_id: n for user_id, n in rows}


def my_open_count(session: Session, user_id: int) -> int:
    """How many open leads are assigned to ``user_id``."""
    return session.scalar(
        select(func.count()).select_from(Lead)
        .where(Lead.assigned_user_id == user_id,
               Lead.status.in_([str(s) for s in OPEN_STATUSES]))) or 0


def assignees(session: Session, user_ids: Iterable[int | None]) -> dict[int, User]:
    """The users named, by id (one query), for lists that show who holds what."""
    ids = sorted({i for i in user_ids if i is not None})
    if not ids:
        return {}
    return {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))}
