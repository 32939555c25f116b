"""Follow-up tasks on a lead: call back, send a quote, visit, by a day and time."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.accounts import User
from portal.core.models.base import Base, utcnow
from portal.core.models.leads import Lead


class TaskKind(enum.StrEnum):
    CALL_BACK = "call_back"
    SEND_QUOTE = "send_quote"
    VISIT = "visit"
    OTHER = "other"


TASK_KIND_LABELS = {
    TaskKind.CALL_BACK: "Call back",
    TaskKind.SEND_QUOTE: "Send quote",
    TaskKind.VISIT: "Visit",
    TaskKind.OTHER: "Other",
}


class Task(Base):
    """One follow-up task of the firm holding a lead. Not a lead state: adding or ticking
    one off writes an event on the lead's timeline, never its status. When the lead
    leaves the firm (declined, expired, forwarded, taken back, reassigned, closed) its
    open tasks are closed with why (``cancelled_at``): nobody is reminded of a lead that
    is not theirs any more."""

    __tablename__ = "lead_tasks"
    __table_args__ = (
        Index("ix_lead_tasks_lead_due", "lead_id", "due_at"),
        # "Tasks due today": one user's open tasks by due time; the firm's likewise.
        Index("ix_lead_tasks_user_open_due", "user_id", "done_at", "cancelled_at", "due_at"),
        Index("ix_lead_tasks_partner_open_due", "partner_id", "done_at", "cancelled_at",
              "due_at"),
        # The clock scan: tasks not yet reminded, by due time.
        Index("ix_lead_tasks_reminded_due", "reminded_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("leads.id", ondelete="CASCADE"))
    #: the firm the task was set for: it is that firm's while it holds the lead
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    #: who set it (reminded unless the lead names an assignee: ``core.tasks.recipient``)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(16), default=TaskKind.CALL_BACK)
    note: Mapped[str] = mapped_column(Text, default="")
    due_at: Mapped[datetime]
    #: the IANA zone the due time was typed in (shown back in it)
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    done_at: Mapped[datetime | None]
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    #: closed by the portal because the lead left the firm, and why
    cancelled_at: Mapped[datetime | None]
    cancel_reason: Mapped[str] = mapped_column(String(200), default="")
    #: when its one reminder was written (set for an owner who takes no email, too)
    reminded_at: Mapped[datetime | None]

    lead: Mapped[Lead] = relationship()
    user: Mapped[User | None] = relationship(foreign_keys=[user_id])
    done_by: Mapped[User | None] = relationship(foreign_keys=[done_by_id])

    @property
    def label(self) -> str:
        return TASK_KIND_LABELS.get(self.kind, self.kind)  # type: ignore[call-overload]

    @property
    def owner(self) -> User | None:
        """Who has the task (is reminded, lists it as theirs): the salesperson the lead is
        assigned to, else who set it. ``core.tasks.owned_by`` is the same rule in SQL."""
        assigned = self.lead.assigned_user if self.lead is not None else None
        return assigned or self.user

    @property
    def is_open(self) -> bool:
        return self.done_at is None and self.cancelled_at is None
