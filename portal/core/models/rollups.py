"""The reports' rollups: counts kept up to date by every write, so that a year of figures
is a sum of a few hundred thousand rows instead of a read of a million offers.

* ``offer_months``: per partner and month offered, what the partners did with their
  offers (DESIGN §7's counts, as of now); ``offer_days`` the same for the whole channel
  per day.
* ``lead_facts``: per lead, what any partner did with it (the channel overview's facts);
  also the lead's last counted state, so a change is counted as a difference.
* ``lead_days``: per day of capture, the overview's counts and speed-to-lead buckets.
* ``duration_months``: per kind and month, how many took how long (whole seconds to an
  hour, whole minutes to two days, whole hours beyond): a year's medians from a few
  thousand rows.
* ``rollup_state``: whether the rollups may be read (built, and with which contact time).

``portal.core.rollups`` keeps them in the transaction of every write (a flush hook).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, Float, ForeignKey, Index, Numeric, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models.base import Base

#: offer_months' counted columns, in DESIGN §7's words (``held``: accepted and still the
#: partner's; ``held_open``: of those, no outcome yet: the overdue count once due)
OFFER_COUNTS = ("offered", "accepted", "declined", "expired", "followed_up", "on_time",
                "held", "held_open", "won", "lost", "no_interest", "untouched")

#: the speed-to-lead buckets as column suffixes (DESIGN §7's <1h, 1-4h, 4-24h, 1-2d, >2d,
#: never)
SPEED_KEYS = {"<1h": "h1", "1-4h": "h4", "4-24h": "h24", "1-2d": "d2", ">2d": "over",
              "never": "never"}

#: lead_days' counted columns
LEAD_COUNTS = ("captured", "qualified", "offered", "routed", "routed_fast", "accepted",
               "contacted", "won", "lost", "lost_to_competitor", "untouched",
               *(f"{what}_{key}" for key in SPEED_KEYS.values()
                 for what in ("speed", "speed_won", "speed_lost")))


class OfferCounts:
    """DESIGN §7's counts of offers, as ``offer_months`` and ``offer_days`` keep them."""

    offered: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    declined: Mapped[int] = mapped_column(default=0)
    expired: Mapped[int] = mapped_column(default=0)
    followed_up: Mapped[int] = mapped_column(default=0)
    on_time: Mapped[int] = mapped_column(default=0)
    held: Mapped[int] = mapped_column(default=0)
    held_open: Mapped[int] = mapped_column(default=0)
    won: Mapped[int] = mapped_column(default=0)
    lost: Mapped[int] = mapped_column(default=0)
    no_interest: Mapped[int] = mapped_column(default=0)
    untouched: Mapped[int] = mapped_column(default=0)
    revenue_won: Mapped[Decimal] = mapped_column(Numeric(16, 2), default=0)


class OfferMonth(OfferCounts, Base):
    __tablename__ = "offer_months"

    partner_id: Mapped[int] = mapped_column(
        ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)  #: the 1st, UTC


class OfferDay(OfferCounts, Base):
    """The channel's offers per day offered: the same counts as ``offer_months``, for every
    partner at once (the overview's offer figures, a whole-day period with no edges)."""

    __tablename__ = "offer_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)


class LeadFacts(Base):
    __tablename__ = "lead_facts"
    #: the days around a period's whole months, read for the medians from the index alone
    __table_args__ = (Index("ix_lead_facts_created", "created_at", "routed_at", "touched_at"),)

    lead_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime]
    qualified_at: Mapped[datetime | None]  #: first qualified
    offered_at: Mapped[datetime | None]  #: first offer of any kind
    routed_at: Mapped[datetime | None]  #: first offer by rule or by a manager
    accepted_at: Mapped[datetime | None]  #: first accept by any partner
    touched_at: Mapped[datetime | None]  #: first contact (or outcome) by any partner
    won: Mapped[bool] = mapped_column(default=False)
    lost: Mapped[bool] = mapped_column(default=False)
    lost_to_competitor: Mapped[bool] = mapped_column(default=False)


class LeadDay(Base):
    __tablename__ = "lead_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)  #: of capture, UTC
    captured: Mapped[int] = mapped_column(default=0)
    qualified: Mapped[int] = mapped_column(default=0)
    offered: Mapped[int] = mapped_column(default=0)
    routed: Mapped[int] = mapped_column(default=0)
    routed_fast: Mapped[int] = mapped_column(default=0)
    accepted: Mapped[int] = mapped_column(default=0)
    contacted: Mapped[int] = mapped_column(default=0)
    won: Mapped[int] = mapped_column(default=0)
    lost: Mapped[int] = mapped_column(default=0)
    lost_to_competitor: Mapped[int] = mapped_column(default=0)
    untouched: Mapped[int] = mapped_column(default=0)
    speed_h1: Mapped[int] = mapped_column(default=0)
    speed_won_h1: Mapped[int] = mapped_column(default=0)
    speed_lost_h1: Mapped[int] = mapped_column(default=0)
    speed_h4: Mapped[int] = mapped_column(default=0)
    speed_won_h4: Mapped[int] = mapped_column(default=0)
    speed_lost_h4: Mapped[int] = mapped_column(default=0)
    speed_h24: Mapped[int] = mapped_column(default=0)
    speed_won_h24: Mapped[int] = mapped_column(default=0)
    speed_lost_h24: Mapped[int] = mapped_column(default=0)
    speed_d2: Mapped[int] = mapped_column(default=0)
    speed_won_d2: Mapped[int] = mapped_column(default=0)
    speed_lost_d2: Mapped[int] = mapped_column(default=0)
    speed_over: Mapped[int] = mapped_column(default=0)
    speed_won_over: Mapped[int] = mapped_column(default=0)
    speed_lost_over: Mapped[int] = mapped_column(default=0)
    speed_never: Mapped[int] = mapped_column(default=0)
    speed_won_never: Mapped[int] = mapped_column(default=0)
    speed_lost_never: Mapped[int] = mapped_column(default=0)


class DurationMonth(Base):
    __tablename__ = "duration_months"

    #: accept (offer → accept, offers by month offered), offer (capture → first routed
    #: offer) and contact (capture → first contact, routed leads), leads by month captured
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    seconds: Mapped[int] = mapped_column(primary_key=True)
    n: Mapped[int] = mapped_column(default=0)


class RollupState(Base):
    __tablename__ = "rollup_state"

    id: Mapped[int] = mapped_column(primary_key=True)  #: always 1
    #: built: every row counted; stale: rows written around the hook (a bulk load, an
    #: upgrade over existing data): the reports read live until ``flask reports rebuild``
    state: Mapped[str] = mapped_column(String(8), default="stale")
    #: the contact time on_time was counted with
    contact_sla_hours: Mapped[float] = mapped_column(Float, default=48.0)
    built_at: Mapped[datetime | None]
