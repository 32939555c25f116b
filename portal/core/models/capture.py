"""Capture bookkeeping: idempotency keys and the versioned qualification rules."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from portal.core.models.base import Base, utcnow


class IdempotencyKey(Base):
    """A client's ``Idempotency-Key``: a retried capture returns the lead it made first."""

    __tablename__ = "idempotency_keys"
    __table_args__ = (UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: whose key: "user:<id>" for API tokens, "form:<campaign>" for public forms
    scope: Mapped[str] = mapped_column(String(60))
    key: Mapped[str] = mapped_column(String(200))
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    #: SHA-256 of the body sent with the key: the same key with another body is refused
    fingerprint: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScoringRules(Base):
    """One version of the manufacturer's qualification and ranking rules (newest applies)."""

    __tablename__ = "scoring_rules"

    id: Mapped[int] = mapped_column(primary_key=True)
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)  #: routing.scoring.RuleSet.to_dict()
    note: Mapped[str] = mapped_column(String(300), default="")
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
