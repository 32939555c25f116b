"""Every email the portal owes someone, of every kind, as staff see and retry it.

Each kind of email is a row in its own area's table (an alert or digest, an invitation or
reset, a nurture step, a literature pack), and all of them are sent by the one policy of
``portal.core.mail``. This module reads them side by side for the outgoing-mail page and
sends every failed one again in one step (the mail server is back).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.core.jobs import PENDING, SENDING, enqueue_after_commit
from portal.core.models import (
    Fulfilment,
    Lead,
    Notification,
    NurtureEnrollment,
    NurtureSend,
    PasswordLink,
    User,
    utcnow,
)


@dataclass(frozen=True)
class Kind:
    """One kind of email row: its model, the job that sends one, how to name it."""

    key: str  #: "literature-pack", as in its Message-IDs
    label: str  #: "Literature pack"
    model: type[Any]
    job: str  #: the nudge that sends one row
    #: (select of the model) -> the same select joined to name the recipient as "to"
    recipient: Callable[[Any], Any]
    #: what makes a row of the model one of these emails (packs: the email channel)
    where: tuple[Any, ...] = ()
    #: a column that says more ("invite", "offer", …) or None
    detail: Any = None


KINDS: tuple[Kind, ...] = (
    Kind("notification", "Alert or digest", Notification, "send_notification",
         # a user's, or (no user: a note to a prospect) the lead's address
         lambda q: q.outerjoin(User, User.id == Notification.user_id)
         .outerjoin(Lead, Lead.id == Notification.lead_id)
         .add_columns(func.coalesce(User.email, Lead.email)),
         detail=Notification.kind),
    Kind("password-link", "Invitation or reset", PasswordLink, "send_password_link",
         lambda q: q.join(User, User.id == PasswordLink.user_id).add_columns(User.email),
         detail=PasswordLink.purpose),
    Kind("nurture", "Nurture email", NurtureSend, "send_nurture_email",
         lambda q: q.join(NurtureEnrollment, NurtureEnrollment.id == NurtureSend.enrollment_id)
         .join(Lead, Lead.id == NurtureEnrollment.lead_id).add_columns(Lead.email)),
    Kind("literature-pack", "Literature pack", Fulfilment, "send_pack",
         lambda q: q.join(Lead, Lead.id == Fulfilment.lead_id).add_columns(Lead.email),
         where=(Fulfilment.channel == "email",)),
)
KIND_BY_KEY = {kind.key: kind for kind in KINDS}
_DETAILS = {"invite": "Invitation", "reset": "Password reset"}


@dataclass(frozen=True)
class Waiting:
    """One email not (yet) delivered, as the page shows it."""

    kind: Kind
    id: int
    to: str
    what: str
    state: str  #: queued, retrying, sending or failed
    attempts: int
    next_attempt_at: datetime | None  #: queued and retrying: when it goes next
    reason: str  #: the mail server's last answer, or why it gave up


def _state(status: str, attempts: int) -> str:
    if status == PENDING:
        return "retrying" if attempts else "queued"
    return status


#: (status, newest first?) in the order the page lists them: what needs a person first
_LISTED = (("failed", True), (SENDING, False), (PENDING, False))


def waiting(session: Session, limit: int = 50) -> list[Waiting]:
    """Emails failed (latest first), being sent, queued or retrying (next to go first):
    at most ``limit`` of each kind and state, each with its recipient, next try and
    reason. One index range per status (``status, next_attempt_at``), as the sweepers
    read them."""
    found: list[Waiting] = []
    for status, newest_first in _LISTED:
        for kind in KINDS:
            found.extend(_listed(session, kind, status, newest_first, limit))
    return found


def _listed(session: Session, kind: Kind, status: str, newest_first: bool,
            limit: int) -> list[Waiting]:
    model = kind.model
    columns = [model.id, model.status, model.attempts, model.next_attempt_at,
               model.last_error]
    if kind.detail is not None:
        columns.append(kind.detail)
    order = model.next_attempt_at.desc() if newest_first else model.next_attempt_at
    query = (kind.recipient(select(*columns)).where(model.status == status, *kind.where)
             .order_by(order, model.id).limit(limit))
    found = []
    for row in session.execute(query):
        detail = row[5] if kind.detail is not None else ""
        what = _DETAILS.get(detail, kind.label + (f" ({detail.replace('_', ' ')})"
                                                  if detail else ""))
        found.append(Waiting(kind, row.id, row[-1] or "", what,
                             _state(row.status, row.attempts), row.attempts,
                             row.next_attempt_at if row.status == PENDING else None,
                             row.last_error))
    return found


def counts(session: Session) -> dict[str, int]:
    """How many emails of every kind are queued, retrying, sending and failed now."""
    totals = {"queued": 0, "retrying": 0, "sending": 0, "failed": 0}
    for kind in KINDS:
        model = kind.model
        retrying = model.attempts > 0
        query = (select(model.status, retrying, func.count())
                 .where(model.status.in_(("failed", PENDING, SENDING)), *kind.where)
                 .group_by(model.status, retrying))
        for status, tried, count in session.execute(query):
            totals[_state(status, 1 if tried else 0)] += count
    return totals


#: retried rows nudged at once; the rest go with their kind's next sweep (a minute)
NUDGE_AT_ONCE = 500


def retry_failed(session: Session, *, kind: str | None = None, row_id: int | None = None,
                 now: datetime | None = None) -> int:
    """Send failed emails again (all of them, or one kind, or one row): pending, due now,
    with a fresh schedule of tries; the first few hundred are nudged after commit, the
    rest go with the sweepers. Returns how many."""
    now = now or utcnow()
    total = 0
    for each in KINDS if kind is None else (KIND_BY_KEY[kind],):
        model = each.model
        which = [model.status == "failed", *each.where]
        if row_id is not None:
            which.append(model.id == row_id)
        ids = list(session.scalars(select(model.id).where(*which).limit(NUDGE_AT_ONCE)))
        result = session.execute(
            update(model).where(*which)
            .values(status=PENDING, attempts=0, next_attempt_at=now, claimed_at=None),
            execution_options={"synchronize_session": "fetch"})
        total += result.rowcount or 0  # type: ignore[attr-defined]
        for one in ids:
            enqueue_after_commit(session, each.job, one)
    session.flush()
    return total
