"""The partner workspace: each user's digest preference and the indexes its lists need."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models.base import Base, utcnow
from portal.core.models.leads import Lead


class DigestFrequency(enum.StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    OFF = "off"


#: what a user without a stored preference gets
DEFAULT_DIGEST = DigestFrequency.WEEKLY


class DigestPreference(Base):
    """How often one user wants the email digest (no row: ``DEFAULT_DIGEST``)."""

    __tablename__ = "digest_preferences"

    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    frequency: Mapped[str] = mapped_column(String(8), default=DEFAULT_DIGEST)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# The inbox, the managers' lead search and the compliance gate filter on these columns;
# at a million leads each filter needs its own index (ordered by age where lists sort so).
Index("ix_leads_owner_partner", Lead.owner_partner_id)
Index("ix_leads_status_accepted", Lead.status, Lead.accepted_at)
Index("ix_leads_product_line_created", Lead.product_line_id, Lead.created_at)
Index("ix_leads_region_created", Lead.region, Lead.created_at)
Index("ix_leads_rank_created", Lead.rank, Lead.created_at)
