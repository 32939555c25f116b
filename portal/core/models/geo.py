"""Postal-code centroids an admin imports (GeoNames) and the online geocoder's cache."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models.base import Base, utcnow


class PostalCentroid(Base):
    """A postal code's centre for countries the offline US table does not cover."""

    __tablename__ = "postal_centroids"

    country: Mapped[str] = mapped_column(String(2), primary_key=True)
    postal_code: Mapped[str] = mapped_column(String(20), primary_key=True)
    latitude: Mapped[float]
    longitude: Mapped[float]
    place: Mapped[str] = mapped_column(String(180), default="")


class GeocodeCache(Base):
    """What the online geocoder answered for a query (None coordinates: it found nothing)."""

    __tablename__ = "geocode_cache"

    query: Mapped[str] = mapped_column(String(300), primary_key=True)
    latitude: Mapped[float | None]
    longitude: Mapped[float | None]
    provider: Mapped[str] = mapped_column(String(40))
    at: Mapped[datetime] = mapped_column(default=utcnow)
