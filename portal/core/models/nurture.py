"""Nurture tracks: timed emails for leads that are not ready yet, and who got which step."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.base import Base, utcnow
from portal.core.models.catalog import ProductLine
from portal.core.models.leads import Lead


class EnrollmentStatus(enum.StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    HAND_RAISED = "hand_raised"  #: asked to talk to a dealer from an email
    CONVERTED = "converted"  #: left nurture for sales another way (repeat inquiry, manager)
    FINISHED = "finished"  #: every step was sent


class NurtureTrack(Base):
    """A sequence of emails for one product line (or for any, when it names none)."""

    __tablename__ = "nurture_tracks"
    __table_args__ = (Index("ix_nurture_tracks_line_active", "product_line_id", "active"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None: the fallback track for leads whose product line has no track of its own
    product_line_id: Mapped[int | None] = mapped_column(ForeignKey("product_lines.id"))
    name: Mapped[str] = mapped_column(String(120))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product_line: Mapped[ProductLine | None] = relationship()
    steps: Mapped[list[NurtureStep]] = relationship(
        back_populates="track", order_by="NurtureStep.position", viewonly=True
    )


class NurtureStep(Base):
    """One email of a track, sent ``delay_days`` after the previous one (or the enrolment)."""

    __tablename__ = "nurture_steps"
    __table_args__ = (
        UniqueConstraint("track_id", "position", name="uq_nurture_steps_track_position"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    track_id: Mapped[int] = mapped_column(ForeignKey("nurture_tracks.id", ondelete="CASCADE"))
    position: Mapped[int]
    delay_days: Mapped[int] = mapped_column(default=0)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text, default="")
    #: content to read (a brochure from the literature library, a video …); clicks count
    link_url: Mapped[str] = mapped_column(String(500), default="")
    link_label: Mapped[str] = mapped_column(String(120), default="")

    track: Mapped[NurtureTrack] = relationship(back_populates="steps")


class NurtureEnrollment(Base):
    """A lead on a track: which step comes next and when. One per lead, ever."""

    __tablename__ = "nurture_enrollments"
    __table_args__ = (
        UniqueConstraint("lead_id", name="uq_nurture_enrollments_lead_id"),
        Index("ix_nurture_enrollments_status_due", "status", "next_due_at"),
        Index("ix_nurture_enrollments_track_status", "track_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    track_id: Mapped[int] = mapped_column(ForeignKey("nurture_tracks.id"))
    enrolled_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: the position of the next step to send (the first step at or after it)
    next_step: Mapped[int] = mapped_column(default=1)
    next_due_at: Mapped[datetime | None]
    status: Mapped[str] = mapped_column(String(16), default=EnrollmentStatus.ACTIVE)
    status_at: Mapped[datetime | None]
    hand_raised_at: Mapped[datetime | None]

    lead: Mapped[Lead] = relationship()
    track: Mapped[NurtureTrack] = relationship()


class NurtureSend(Base):
    """One step to send to one enrolment: the truth its job and the sweep work from.

    The unique (enrolment, step) pair makes planning idempotent; the status makes
    sending so: pending → sending (claimed, committed before SMTP) → sent, or back to
    pending with a later ``next_attempt_at`` (also when a worker died mid-send: at least
    once, with the row's one Message-ID), or failed (gave up after hours, or a bounce), or
    skipped (the lead left nurture or unsubscribed meanwhile).
    """

    __tablename__ = "nurture_sends"
    __table_args__ = (
        UniqueConstraint("enrollment_id", "step_id", name="uq_nurture_sends_enrollment_step"),
        Index("ix_nurture_sends_step", "step_id"),
        Index("ix_nurture_sends_status_next", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    enrollment_id: Mapped[int] = mapped_column(
        ForeignKey("nurture_enrollments.id", ondelete="CASCADE"))
    step_id: Mapped[int] = mapped_column(ForeignKey("nurture_steps.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(2000), default="")
    sent_at: Mapped[datetime | None]  #: when the mail server took it
    #: the first click on the step's content link (later clicks add nothing to the score)
    clicked_at: Mapped[datetime | None]

    enrollment: Mapped[NurtureEnrollment] = relationship()
    step: Mapped[NurtureStep] = relationship()
