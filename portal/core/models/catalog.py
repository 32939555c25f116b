"""What the manufacturer sells and where leads come from."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Index, LargeBinary, Numeric, String, Text, func
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
    # The public form's look and wording (portal.capture.branding); empty: the defaults.
    #: the form's heading instead of the campaign's name
    form_heading: Mapped[str] = mapped_column(String(160), default="")
    #: the paragraph under the heading
    form_intro: Mapped[str] = mapped_column(Text, default="")
    #: what the thank-you page says after a send
    thanks_text: Mapped[str] = mapped_column(Text, default="")
    #: buttons, links and the top bar of the form, as #rrggbb
    accent_color: Mapped[str] = mapped_column(String(7), default="")
    #: the logo's bytes (PNG, JPEG, GIF or WebP, checked on upload); loaded only to serve it
    logo: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    #: the logo's media type, e.g. image/png; empty when there is no logo
    logo_type: Mapped[str] = mapped_column(String(32), default="")
    #: when the look last changed: the logo's and stylesheet's URLs carry it (caching)
    brand_updated_at: Mapped[datetime | None]


# Codes are unique ignoring case, and looked up by lower(code) (portal.core.models.codes).
Index("uq_product_lines_code_lower", func.lower(ProductLine.code), unique=True)
Index("uq_sources_code_lower", func.lower(Source.code), unique=True)
Index("uq_campaigns_code_lower", func.lower(Campaign.code), unique=True)
