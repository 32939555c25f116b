"""The SQLAlchemy models; importing this module registers every table on ``Base.metadata``."""

from portal.core.models import workspace  # noqa: F401  (its indexes)
from portal.core.models.accounts import LoginAttempt, PasswordLink, Role, User
from portal.core.models.base import Base, utcnow
from portal.core.models.capture import IdempotencyKey, ScoringRules
from portal.core.models.catalog import Campaign, Competitor, ProductLine, Source
from portal.core.models.fulfilment import (
    Fulfilment,
    FulfilmentChannel,
    FulfilmentStatus,
    LiteratureItem,
    LiteratureKind,
    LiteratureVersion,
    PrintBatch,
)
from portal.core.models.geo import GeocodeCache, PostalCentroid
from portal.core.models.imports import CaptureAttempt, ImportStatus, LeadImport
from portal.core.models.leads import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    WORKING_STATUSES,
    Lead,
    LeadEvent,
    LeadStatus,
    Offer,
    OfferResponse,
    Rank,
    display_name,
)
from portal.core.models.notify import (
    DEFAULT_ALERTS,
    DEFAULT_DIGEST,
    DEFAULT_DIGEST_HOUR,
    STAFF_DIGEST,
    AlertChoice,
    ComplianceReminder,
    DigestFrequency,
    MailPreference,
    Notification,
    NotificationKind,
)
from portal.core.models.nurture import (
    EnrollmentStatus,
    NurtureEnrollment,
    NurtureSend,
    NurtureStep,
    NurtureTrack,
)
from portal.core.models.partners import (
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
    "CaptureAttempt",
    "Competitor",
    "ComplianceReminder",
    "AlertChoice",
    "DEFAULT_ALERTS",
    "DEFAULT_DIGEST",
    "DEFAULT_DIGEST_HOUR",
    "DigestFrequency",
    "EnrollmentStatus",
    "Forwarding",
    "Fulfilment",
    "FulfilmentChannel",
    "FulfilmentStatus",
    "GeocodeCache",
    "IdempotencyKey",
    "ImportStatus",
    "Lead",
    "MailPreference",
    "Notification",
    "NotificationKind",
    "LeadImport",
    "LeadEvent",
    "LeadStatus",
    "LiteratureItem",
    "LiteratureKind",
    "LiteratureVersion",
    "LoginAttempt",
    "NurtureEnrollment",
    "NurtureSend",
    "NurtureStep",
    "NurtureTrack",
    "OPEN_STATUSES",
    "Offer",
    "OfferResponse",
    "Partner",
    "PasswordLink",
    "PostalCentroid",
    "PrintBatch",
    "PartnerKind",
    "ProductLine",
    "Rank",
    "Role",
    "STAFF_DIGEST",
    "ScoringRules",
    "Source",
    "Territory",
    "User",
    "WORKING_STATUSES",
    "display_name",
    "partner_product_lines",
    "utcnow",
]
