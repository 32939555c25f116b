"""Leads, their immutable events and the offers made to partners."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Numeric, String, Text, Uuid, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.accounts import User
from portal.core.models.base import Base, utcnow
from portal.core.models.catalog import Campaign, Competitor, ProductLine, Source
from portal.core.models.partners import Partner


class LeadStatus(enum.StrEnum):
    CAPTURED = "captured"
    QUALIFIED = "qualified"
    NURTURE = "nurture"
    DISQUALIFIED = "disqualified"
    UNASSIGNED = "unassigned"
    OFFERED = "offered"
    ACCEPTED = "accepted"
    CONTACTED = "contacted"
    APPOINTMENT = "appointment"
    QUOTED = "quoted"
    WON = "won"
    LOST = "lost"
    NO_INTEREST = "no_interest"


#: a partner is working these: they count against its capacity
OPEN_STATUSES = frozenset(
    {
        LeadStatus.OFFERED,
        LeadStatus.ACCEPTED,
        LeadStatus.CONTACTED,
        LeadStatus.APPOINTMENT,
        LeadStatus.QUOTED,
    }
)
#: accepted and being worked, the stages that need an outcome
WORKING_STATUSES = (
    LeadStatus.ACCEPTED,
    LeadStatus.CONTACTED,
    LeadStatus.APPOINTMENT,
    LeadStatus.QUOTED,
)
CLOSED_STATUSES = frozenset({LeadStatus.WON, LeadStatus.LOST, LeadStatus.NO_INTEREST})


def display_name(first_name: str, last_name: str, company: str, email: str) -> str:
    """What a lead is called on screen: the person, else the company, else the address."""
    return f"{first_name} {last_name}".strip() or company or email


class Rank(enum.StrEnum):
    HOT = "hot"
    WARM = "warm"
    COLD = "cold"


class OfferResponse(enum.StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    FORWARDED = "forwarded"  #: a distributor passed it on to one of its dealers
    WITHDRAWN = "withdrawn"  #: a manager reassigned it or a distributor pulled it back


class Lead(Base):
    __tablename__ = "leads"
    __table_args__ = (
        # The inbox's counts: the dates make the overdue count an index-only read.
        Index("ix_leads_assigned_status_accepted", "assigned_partner_id", "status",
              "accepted_at", "offered_at"),
        # The closed tab, newest outcome first.
        Index("ix_leads_assigned_closed", "assigned_partner_id", "closed_at"),
        Index("ix_leads_status_created", "status", "created_at"),
        Index("ix_leads_status_closed", "status", "closed_at"),
        # Dedup looks a person up by each key within a recent window: (key, created_at).
        Index("ix_leads_email_norm_created", "email_normalized", "created_at"),
        Index("ix_leads_phone_norm_created", "phone_normalized", "created_at"),
        Index("ix_leads_postal_created", "postal_code", "created_at"),
        Index("ix_leads_external_id", "external_id"),
        Index("ix_leads_created", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    first_name: Mapped[str] = mapped_column(String(80), default="")
    last_name: Mapped[str] = mapped_column(String(80), default="")
    company: Mapped[str] = mapped_column(String(160), default="")
    email: Mapped[str] = mapped_column(String(254), default="")
    email_normalized: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    phone_normalized: Mapped[str] = mapped_column(String(20), default="")  #: E.164
    address: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(10), default="")
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="US")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    product_line_id: Mapped[int | None] = mapped_column(ForeignKey("product_lines.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"), index=True)
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"), index=True)
    comments: Mapped[str] = mapped_column(Text, default="")
    wants_literature: Mapped[bool] = mapped_column(default=False)
    #: standard answers (timeline, budget, role) and any extra ones, as given
    answers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    external_id: Mapped[str | None] = mapped_column(String(80))
    #: how many times this person inquired (repeats within the dedup window attach here)
    inquiries: Mapped[int] = mapped_column(default=1)
    #: nurture email clicks; they add to the score
    engagements: Mapped[int] = mapped_column(default=0)

    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.CAPTURED)
    #: why it was qualified / nurtured / disqualified, in words
    qualification_reason: Mapped[str] = mapped_column(String(300), default="")
    rank: Mapped[str | None] = mapped_column(String(8))
    score: Mapped[int] = mapped_column(default=0)

    assigned_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    #: the salesperson of the holding partner who works it (None: the firm as a whole);
    #: cleared whenever the holding partner changes (portal.core.assignment)
    assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: the partner that captured it itself (walk-in, trade show); counts in its reports
    owner_partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    #: the latest routing explanation (routing.Explanation.to_dict())
    routing: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    offers_count: Mapped[int] = mapped_column(default=0)

    won_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    quote_amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2))
    lost_reason: Mapped[str | None] = mapped_column(String(20))
    lost_competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitors.id"))
    #: a competitor typed by the partner that is not on the manufacturer's list
    lost_competitor_other: Mapped[str] = mapped_column(String(120), default="")

    #: bumped on every change; offline clients send it back as their base
    version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    offered_at: Mapped[datetime | None]  #: the current offer's time
    accepted_at: Mapped[datetime | None]
    first_contact_at: Mapped[datetime | None]
    closed_at: Mapped[datetime | None]

    product_line: Mapped[ProductLine | None] = relationship()
    campaign: Mapped[Campaign | None] = relationship()
    source: Mapped[Source | None] = relationship()
    assigned_partner: Mapped[Partner | None] = relationship(
        foreign_keys=[assigned_partner_id]
    )
    owner_partner: Mapped[Partner | None] = relationship(foreign_keys=[owner_partner_id])
    assigned_user: Mapped[User | None] = relationship(foreign_keys=[assigned_user_id])
    lost_competitor: Mapped[Competitor | None] = relationship()
    events: Mapped[list[LeadEvent]] = relationship(
        back_populates="lead", order_by="LeadEvent.seq", viewonly=True
    )
    offers: Mapped[list[Offer]] = relationship(
        back_populates="lead", order_by="Offer.id", viewonly=True
    )

    @property
    def name(self) -> str:
        return display_name(self.first_name, self.last_name, self.company, self.email)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_closed(self) -> bool:
        return self.status in CLOSED_STATUSES

    @property
    def competitor_name(self) -> str:
        if self.lost_competitor is not None:
            return self.lost_competitor.name
        return self.lost_competitor_other


class LeadEvent(Base):
    """An immutable fact about a lead: who did what, when, from which device."""

    __tablename__ = "lead_events"
    __table_args__ = (
        Index("ix_lead_events_lead_seq", "lead_id", "seq"),
        Index("ix_lead_events_kind_at", "kind", "at"),
        Index("ix_lead_events_partner_at", "partner_id", "at"),
        # When a lead was first qualified (the reports' "qualified" and lead_facts).
        Index("ix_lead_events_qualified", "lead_id", "at",
              postgresql_where=text("to_status = 'qualified'"),
              sqlite_where=text("to_status = 'qualified'")),
    )

    #: global order of events (commit order within one database)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    #: made by the client for offline actions, so a retried push is recognised; also the
    #: ORM's insert sentinel: SQLite cannot return new ``seq`` values in the order of a
    #: multi-row INSERT, so without it a flush of N events is N INSERTs there
    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True, default=uuid.uuid4,
                                          insert_sentinel=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))  #: captured, offered, accepted, won …
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: the partner acting or concerned (the one offered, declining, reporting …)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    #: web, api, cli, job, sync:<client id>
    device: Mapped[str] = mapped_column(String(80), default="web")
    at: Mapped[datetime] = mapped_column(default=utcnow)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    lead: Mapped[Lead] = relationship(back_populates="events")
    actor: Mapped[User | None] = relationship()
    partner: Mapped[Partner | None] = relationship()


#: what the reports read of an offer (the covering indexes' extra columns)
REPORT_COLUMNS = ("id", "partner_id", "lead_id", "method", "response", "responded_at",
                  "accepted_at", "contacted_at", "closed_at", "outcome", "amount",
                  "lost_reason", "competitor_id", "competitor_other", "decline_reason",
                  "lead_created_at", "product_line_id", "campaign_id", "source_id", "rank")


class Offer(Base):
    """One offer of a lead to a partner: by rule or by hand, with its explanation and response.

    It also keeps what this partner did with the lead while it had it (accepted, first
    contact, outcome), written by the lifecycle in the transaction of each event, and the
    lead's attributes at the time of the offer: the channel reports read one row per offer
    and count each partner only for its own offer (DESIGN §7), with no join and no replay
    of events, and a lead that changes later changes its offer's row with it.
    """

    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_lead", "lead_id"),
        # A partner's offers; with what its median time to accept needs, on PostgreSQL.
        Index("ix_offers_partner_offered", "partner_id", "offered_at",
              postgresql_include=["accepted_at", "response"]),
        Index("ix_offers_response_expires", "response", "expires_at"),
        # The reports read a period's offers from the index alone on PostgreSQL (the rows
        # are wide with routing explanations), and one state's from the second.
        Index("ix_offers_offered", "offered_at", postgresql_include=list(REPORT_COLUMNS)),
        Index("ix_offers_region_offered", "region", "offered_at",
              postgresql_include=list(REPORT_COLUMNS)),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    # active_history: the reports' rollups count an offer's change as old → new, so the
    # old value is read before a change even when the attribute was not loaded.
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id"), active_history=True)
    offered_at: Mapped[datetime] = mapped_column(default=utcnow, active_history=True)
    expires_at: Mapped[datetime | None]
    method: Mapped[str] = mapped_column(String(12))  #: rule, manual, forward
    by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str] = mapped_column(String(300), default="")  #: why, for manual/forward
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    response: Mapped[str] = mapped_column(String(12), default=OfferResponse.PENDING,
                                          active_history=True)
    responded_at: Mapped[datetime | None]
    decline_reason: Mapped[str] = mapped_column(String(300), default="")
    # What this partner did with it (kept when the lead moves on: a reassignment after
    # the accept leaves accepted_at; a re-opened outcome is cleared).
    accepted_at: Mapped[datetime | None] = mapped_column(active_history=True)
    #: first contact or later stage, by this partner
    contacted_at: Mapped[datetime | None] = mapped_column(active_history=True)
    closed_at: Mapped[datetime | None] = mapped_column(active_history=True)
    #: won, lost, no_interest
    outcome: Mapped[str | None] = mapped_column(String(12), active_history=True)
    #: won amount
    amount: Mapped[Decimal | None] = mapped_column(Numeric(14, 2), active_history=True)
    lost_reason: Mapped[str | None] = mapped_column(String(20))
    competitor_id: Mapped[int | None] = mapped_column(ForeignKey("competitors.id"))
    competitor_other: Mapped[str] = mapped_column(String(120), default="")
    # The lead as it was offered: the reports' filters.
    lead_created_at: Mapped[datetime | None]
    product_line_id: Mapped[int | None] = mapped_column(ForeignKey("product_lines.id"))
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    rank: Mapped[str | None] = mapped_column(String(8))
    region: Mapped[str] = mapped_column(String(10), default="")

    lead: Mapped[Lead] = relationship(back_populates="offers")
    partner: Mapped[Partner] = relationship()
    by_user: Mapped[User | None] = relationship()
