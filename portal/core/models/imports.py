"""Lead imports (CSV uploads worked in the background) and public-form rate-limit records."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.accounts import User
from portal.core.models.base import Base, utcnow
from portal.core.models.catalog import Campaign, Source


class ImportStatus(enum.StrEnum):
    UPLOADED = "uploaded"  #: checked and stored; waiting for its column mapping
    QUEUED = "queued"  #: mapped; the background job has been asked to run it
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  #: stopped by an unexpected error; rows committed so far stay


#: an import's status in words, as its pages say it
STATUS_LABELS = {
    ImportStatus.UPLOADED: "Waiting for its mapping", ImportStatus.QUEUED: "Queued",
    ImportStatus.RUNNING: "Importing", ImportStatus.DONE: "Done",
    ImportStatus.FAILED: "Stopped by an error",
}


class LeadImport(Base):
    """One uploaded leads CSV: its mapping, where the background job got to, and its counts."""

    __tablename__ = "lead_imports"
    __table_args__ = (Index("ix_lead_imports_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    filename: Mapped[str] = mapped_column(String(255))  #: as uploaded, for people only
    #: the stored copy's name under IMPORTS_DIR (never derived from the upload's name)
    stored_name: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(default=0)
    sha256: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(12), default=ImportStatus.UPLOADED)
    #: the file's header row, and per column the capture field, "answer" or "ignore"
    header: Mapped[list[str]] = mapped_column(JSON, default=list)
    mapping: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: per closed field (product_line, timeline, …) the file's values and what each is
    #: taken as: {"product_line": {"Compact tractors": "TRC", "misc": ""}} ("" = left empty)
    value_map: Mapped[dict[str, dict[str, str]]] = mapped_column(
        JSON, default=dict, server_default="{}")
    #: when the mapping above was last saved for a dry run; Import needs its result
    checked_at: Mapped[datetime | None]
    #: the dry run of that mapping (counts, sample rows), written by its job; None while
    #: it runs. Its "for" is the ``checked_at`` it checked.
    dry_run: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    default_campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    default_source_id: Mapped[int | None] = mapped_column(ForeignKey("sources.id"))
    total_rows: Mapped[int] = mapped_column(default=0)  #: data rows, header excluded
    processed: Mapped[int] = mapped_column(default=0)
    created: Mapped[int] = mapped_column(default=0)
    #: rows that joined a lead already there (same external id, dedup, re-import)
    duplicates: Mapped[int] = mapped_column(default=0)
    rejected: Mapped[int] = mapped_column(default=0)
    message: Mapped[str] = mapped_column(String(500), default="")  #: why it failed
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    default_campaign: Mapped[Campaign | None] = relationship()
    default_source: Mapped[Source | None] = relationship()
    created_by: Mapped[User | None] = relationship()

    @property
    def finished(self) -> bool:
        return self.status in (ImportStatus.DONE, ImportStatus.FAILED)

    @property
    def checked(self) -> bool:
        """The dry run of the current mapping is done (and Import may start)."""
        return (self.checked_at is not None and self.dry_run is not None
                and self.dry_run.get("for") == self.checked_at.isoformat())

    @property
    def status_label(self) -> str:
        return STATUS_LABELS.get(ImportStatus(self.status), self.status)

    @property
    def percent(self) -> int:
        if not self.total_rows:
            return 100 if self.finished else 0
        return min(100, round(100 * self.processed / self.total_rows))

    def summary(self) -> dict[str, Any]:
        """The counters as plain data (progress fragment, CLI output)."""
        return {"status": self.status, "total": self.total_rows, "processed": self.processed,
                "created": self.created, "duplicates": self.duplicates,
                "rejected": self.rejected}


class CaptureAttempt(Base):
    """A public-form submission from one address: the per-address rate limit counts these.

    Kept in the database so the limit holds across gunicorn workers and hosts.
    """

    __tablename__ = "capture_attempts"
    __table_args__ = (Index("ix_capture_attempts_address_at", "address", "at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64))
    campaign_code: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(default=utcnow)
