"""The SQLAlchemy models; importing this module registers every table on ``Base.metadata``."""

from portal.models.accounts import LoginAttempt, Role, User
from portal.models.base import Base, utcnow
from portal.models.capture import IdempotencyKey, ScoringRules
from portal.models.catalog import Campaign, Competitor, ProductLine, Source
from portal.models.geo import GeocodeCache, PostalCentroid
from portal.models.leads import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    WORKING_STATUSES,
    Lead,
    LeadEvent,
    LeadStatus,
    Offer,
    OfferResponse,
    Rank,
)
from portal.models.partners import (
    Forwarding,
    Partner,
    PartnerKind,
    Territory,
    partner_product_lines,
)

__all__ = [
    "Base",
    "CLOSED_STATUSES",
    "Campaign",
    "Competitor",
    "Forwarding",
    "GeocodeCache",
    "IdempotencyKey",
    "Lead",
    "LeadEvent",
    "LeadStatus",
    "LoginAttempt",
    "OPEN_STATUSES",
    "Offer",
    "OfferResponse",
    "Partner",
    "PostalCentroid",
    "PartnerKind",
    "ProductLine",
    "Rank",
    "Role",
    "ScoringRules",
    "Source",
    "Territory",
    "User",
    "WORKING_STATUSES",
    "partner_product_lines",
    "utcnow",
]
