"""The manufacturer's channel-wide settings that managers change on a page."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models.base import Base, utcnow


class ChannelSettings(Base):
    """One row (id 1) of settings for the whole channel; no row means every default."""

    __tablename__ = "channel_settings"

    id: Mapped[int] = mapped_column(primary_key=True)
    #: a partner sees a prospect's phone, email and street only once it accepted the offer
    hide_contacts_until_accepted: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
