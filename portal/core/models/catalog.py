"""What the manufacturer sells and where leads come from."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Index, Numeric, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models.base import Base, utcnow


class ProductLine(Base):
    __tablename__ = "product_lines"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    active: Mapped[bool] = mapped_column(default=True)
    #: other names the line goes by in files and forms ("compact tractor", "CT"); a lead
    #: import matches them ignoring case, as it does the code and the name
    aliases: Mapped[list[str]] = mapped_column(JSON, default=list, server_default="[]")


class Competitor(Base):
    __tablename__ = "competitors"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    active: Mapped[bool] = mapped_column(default=True)


class Source(Base):
    """Where an inquiry came from (web form, trade show, call centre, purchased list …)."""

    __tablename__ = "sources"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    #: cost per lead in the manufacturer's currency, for ROI when no campaign cost applies
    cost_per_lead: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    active: Mapped[bool] = mapped_column(default=True)


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    channel: Mapped[str] = mapped_column(String(40), default="web")
    #: total spend, the numerator of cost per lead and ROI
    cost: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0"))
    starts_on: Mapped[date | None]
    ends_on: Mapped[date | None]
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


# Codes are unique ignoring case, and looked up by lower(code) (portal.core.models.codes).
Index("uq_product_lines_code_lower", func.lower(ProductLine.code), unique=True)
Index("uq_sources_code_lower", func.lower(Source.code), unique=True)
Index("uq_campaigns_code_lower", func.lower(Campaign.code), unique=True)
