"""Alerts and digests: each user's email choices, and every email to a user as a row first."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.accounts import User
from portal.core.models.base import Base, utcnow


class DigestFrequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    OFF = "off"


class AlertChoice(enum.StrEnum):
    EVERY = "every"  #: an email for every offer, reminder and escalation
    DIGEST = "digest"  #: escalations only; the rest waits for the digest
    OFF = "off"  #: no alert emails at all


#: what a partner's users get when neither they nor their firm chose
DEFAULT_ALERTS = AlertChoice.EVERY
DEFAULT_DIGEST = DigestFrequency.DAILY
#: channel managers and admins: the week's figures, once a week
STAFF_DIGEST = DigestFrequency.WEEKLY
DEFAULT_DIGEST_HOUR = 7


class MailPreference(Base):
    """One user's email choices; an empty column means "my firm's default"."""

    __tablename__ = "mail_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    frequency: Mapped[str | None] = mapped_column(String(8))  #: DigestFrequency
    alerts: Mapped[str | None] = mapped_column(String(8))  #: AlertChoice
    digest_hour: Mapped[int | None]  #: 0-23, in the user's time zone
    time_zone: Mapped[str | None] = mapped_column(String(64))  #: an IANA name
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class NotificationKind(enum.StrEnum):
    OFFER = "offer"  #: a new offer by the routing rules
    FORWARD = "forward"  #: a distributor passed a lead to this dealer
    REASSIGN = "reassign"  #: a channel manager gave the lead to this partner
    WITHDRAWN = "withdrawn"  #: taken back (manager reassign, distributor pull-back)
    REPEAT = "repeat"  #: the prospect of a lead the partner holds inquired again
    ASSIGNED = "assigned"  #: a colleague gave this user one of the firm's leads
    ACCEPT_REMINDER = "accept_reminder"  #: half the acceptance time used, unanswered
    CONTACT_REMINDER = "contact_reminder"  #: first contact due within a few hours
    EXPIRED = "expired"  #: escalation: an offer ran out unanswered
    CONTACT_LATE = "contact_late"  #: escalation: the first-contact SLA was missed
    GATE = "gate"  #: to managers: a partner hit the compliance gate
    #: a channel manager's reminder of a partner's overdue and untouched leads
    COMPLIANCE_REMINDER = "compliance_reminder"
    DIGEST = "digest"
    #: to the prospect: the dealer its literature pack named no longer has the lead
    PROSPECT_MOVED = "prospect_moved"


class Notification(Base):
    """One email to one user: the truth its nudge and the sweeper send from.

    ``key`` makes writing it idempotent (an event's alert, a lead's reminder for one
    offer, a user's digest for one period); ``status`` makes sending so: pending →
    sending (claimed, committed before SMTP) → sent; or back to pending with a later
    ``next_attempt_at`` (also when a worker died mid-send: at least once, with the row's
    one Message-ID); or failed (gave up after hours, or a bounce); or skipped (nothing to
    say, the lead moved on, the user left).
    """

    __tablename__ = "notifications"
    __table_args__ = (
        UniqueConstraint("key", name="uq_notifications_key"),
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
        Index("ix_notifications_lead_kind", "lead_id", "kind"),
        Index("ix_notifications_user_kind_created", "user_id", "kind", "created_at"),
        Index("ix_notifications_created", "created_at"),
    )

    #: 64-bit on PostgreSQL: every row of a busy outbox takes a number for good
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    #: the user told; none for a note to the lead's prospect (sent to the lead's email)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE"))
    #: the partner it is about (the one offered, expired, gated)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id",
                                                              ondelete="CASCADE"))
    #: a digest's period: "2026-12-02" (daily) or "2026-W49" (weekly); else ""
    period: Mapped[str] = mapped_column(String(16), default="")
    #: what was true when it was written and may not be visible at send time
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(2000), default="")

    user: Mapped[User] = relationship()


class ComplianceReminder(Base):
    """A channel manager reminded a partner's users of its overdue and untouched leads
    (one click on the compliance list): when, by whom, what there was and who was told.
    Each recipient's email is a ``Notification`` keyed on this row; the newest row of a
    partner is what the list shows, and a second click within a minute finds it."""

    __tablename__ = "compliance_reminders"
    __table_args__ = (
        Index("ix_compliance_reminders_partner_created", "partner_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: what the list showed when the manager clicked
    overdue: Mapped[int] = mapped_column(default=0)
    untouched: Mapped[int] = mapped_column(default=0)
    #: how many of the partner's users were sent it
    recipients: Mapped[int] = mapped_column(default=0)

    by_user: Mapped[User | None] = relationship()
