"""Distributors, dealers, their authorised product lines and their territories."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import Column, ForeignKey, Index, String, Table, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.base import Base, utcnow
from portal.core.models.catalog import ProductLine
from routing.territory import TerritoryRule

if TYPE_CHECKING:
    from portal.core.models.accounts import User


class PartnerKind(enum.StrEnum):
    DISTRIBUTOR = "distributor"
    DEALER = "dealer"


class Forwarding(enum.StrEnum):
    MANUAL = "manual"
    AUTO = "auto"


partner_product_lines = Table(
    "partner_product_lines",
    Base.metadata,
    Column("partner_id", ForeignKey("partners.id", ondelete="CASCADE"), primary_key=True),
    Column("product_line_id", ForeignKey("product_lines.id"), primary_key=True),
)


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (
        Index("ix_partners_name", "name"),
        Index("ix_partners_updated_at", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), default="")
    phone: Mapped[str] = mapped_column(String(40), default="")
    address: Mapped[str] = mapped_column(String(200), default="")
    city: Mapped[str] = mapped_column(String(100), default="")
    region: Mapped[str] = mapped_column(String(10), default="")  #: ISO 3166-2, e.g. US-IA
    postal_code: Mapped[str] = mapped_column(String(20), default="")
    country: Mapped[str] = mapped_column(String(2), default="US")
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    #: True when latitude/longitude came from the postal-code centroid, not the file
    location_from_centroid: Mapped[bool] = mapped_column(default=False)
    #: most open leads at once; None = unlimited
    capacity: Mapped[int | None]
    #: open leads now (offered or accepted, no closed outcome); kept by the lifecycle service
    open_leads: Mapped[int] = mapped_column(default=0)
    forwarding: Mapped[str] = mapped_column(String(8), default=Forwarding.MANUAL)
    active: Mapped[bool] = mapped_column(default=True)  #: False = paused, gets no offers
    paused_reason: Mapped[str] = mapped_column(String(200), default="")
    last_offered_at: Mapped[datetime | None]
    #: the firm's email defaults for users who chose nothing themselves (notify area)
    alert_default: Mapped[str] = mapped_column(String(8), default="every")
    digest_default: Mapped[str] = mapped_column(String(8), default="daily")
    #: any of its users may assign its leads to a colleague (else only its administrators;
    #: anyone may take an unassigned lead)
    users_may_assign: Mapped[bool] = mapped_column(default=False)
    #: an IANA zone for digests' hour; "" = the portal's DEFAULT_TIME_ZONE
    time_zone: Mapped[str] = mapped_column(String(64), default="")
    #: since when the compliance gate holds back its offers (None: it does not)
    gated_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: set by every edit of the partner, its territories or product lines (not by offers):
    #: the routing snapshot is rebuilt when the newest value changes
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)

    parent: Mapped[Partner | None] = relationship(remote_side=[id], back_populates="dealers")
    dealers: Mapped[list[Partner]] = relationship(back_populates="parent")
    product_lines: Mapped[list[ProductLine]] = relationship(
        secondary=partner_product_lines, order_by=ProductLine.code
    )
    territories: Mapped[list[Territory]] = relationship(
        back_populates="partner", cascade="all, delete-orphan", order_by="Territory.position"
    )
    users: Mapped[list[User]] = relationship(back_populates="partner")

    @property
    def is_distributor(self) -> bool:
        return self.kind == PartnerKind.DISTRIBUTOR

    def __repr__(self) -> str:
        return f"<Partner {self.code}>"


# Codes are unique ignoring case, and looked up by lower(code) (portal.core.models.codes).
Index("uq_partners_code_lower", func.lower(Partner.code), unique=True)


class Territory(Base):
    """One territory rule of a partner, in the CSV spelling (``zip:504*``, ``radius:80`` …)."""

    __tablename__ = "territories"
    __table_args__ = (Index("ix_territories_kind_value", "kind", "value"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    #: zip, zip_prefix, zip_range, region, country, radius (routing.territory kinds)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(default=0)  #: keeps the order the admin wrote

    partner: Mapped[Partner] = relationship(back_populates="territories")

    __mapper_args__ = {"confirm_deleted_rows": False}

    @property
    def rule(self) -> str:
        """The rule as written in the partners CSV."""
        # routing.territory owns the spelling both ways (parse_rule and back).
        return str(TerritoryRule(self.kind, self.value))


Index("ix_territories_partner_id", Territory.partner_id)
