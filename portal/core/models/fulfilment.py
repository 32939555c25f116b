"""Literature fulfilment: the brochure library, the packs sent to prospects, print batches."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core.models.accounts import User
from portal.core.models.base import Base, utcnow
from portal.core.models.catalog import ProductLine
from portal.core.models.leads import Lead
from portal.core.models.partners import Partner


class LiteratureKind(enum.StrEnum):
    BROCHURE = "brochure"
    SPEC_SHEET = "spec_sheet"


class FulfilmentStatus(enum.StrEnum):
    PENDING = "pending"  #: waiting for the worker (or its next retry)
    SENDING = "sending"  #: claimed by one worker; nobody else may send it
    SENT = "sent"  #: emailed (attachment or link)
    FAILED = "failed"  #: gave up; a manager sees the error and may retry
    BATCHED = "batched"  #: in a print batch the mail room has not confirmed yet
    PRINTED = "printed"  #: the mail room confirmed the batch was printed


class FulfilmentChannel(enum.StrEnum):
    EMAIL = "email"
    PRINT = "print"


class LiteratureItem(Base):
    """A brochure or spec sheet; its content lives in versions, one of them active."""

    __tablename__ = "literature_items"
    __table_args__ = (Index("ix_literature_items_line_position", "product_line_id", "position"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    #: None: general literature, part of every pack
    product_line_id: Mapped[int | None] = mapped_column(ForeignKey("product_lines.id"))
    title: Mapped[str] = mapped_column(String(160))
    kind: Mapped[str] = mapped_column(String(16), default=LiteratureKind.BROCHURE)
    #: order within a pack (lower first)
    position: Mapped[int] = mapped_column(default=0)
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    product_line: Mapped[ProductLine | None] = relationship()
    versions: Mapped[list[LiteratureVersion]] = relationship(
        back_populates="item", order_by="LiteratureVersion.number.desc()", viewonly=True
    )


class LiteratureVersion(Base):
    """One uploaded PDF or written text of an item; the file is always a checked PDF."""

    __tablename__ = "literature_versions"
    __table_args__ = (
        Index("uq_literature_versions_item_number", "item_id", "number", unique=True),
        # At most one active version per item, enforced by the database itself.
        Index("uq_literature_versions_one_active", "item_id", unique=True,
              sqlite_where=text("is_active"), postgresql_where=text("is_active")),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("literature_items.id", ondelete="CASCADE"))
    number: Mapped[int]
    #: "pdf" (uploaded) or "html" (written here, rendered from templates/pdf/literature.html)
    source: Mapped[str] = mapped_column(String(8))
    #: generated name of the PDF under LITERATURE_DIR, never the uploader's
    stored_name: Mapped[str] = mapped_column(String(80), unique=True)
    original_filename: Mapped[str] = mapped_column(String(200), default="")
    #: the written text (source "html"): headings, paragraphs and bullets, see literature.py
    body: Mapped[str] = mapped_column(Text, default="")
    size_bytes: Mapped[int]
    page_count: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    #: the version packs use; activate_version switches it (at most one per item)
    is_active: Mapped[bool] = mapped_column(default=False)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    item: Mapped[LiteratureItem] = relationship(back_populates="versions")
    created_by: Mapped[User | None] = relationship()


class PrintBatch(Base):
    """One day's letters and address labels for the mail room."""

    __tablename__ = "print_batches"
    __table_args__ = (Index("ix_print_batches_created", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    letters_file: Mapped[str] = mapped_column(String(80))
    labels_file: Mapped[str] = mapped_column(String(80))
    count: Mapped[int]
    #: when the mail room confirmed it printed the batch (downloads are plain GETs)
    confirmed_at: Mapped[datetime | None]
    confirmed_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    confirmed_by: Mapped[User | None] = relationship()


class Fulfilment(Base):
    """One request for a literature pack: the source of truth; jobs only nudge it along."""

    __tablename__ = "fulfilments"
    __table_args__ = (
        Index("ix_fulfilments_lead", "lead_id", "requested_at"),
        Index("ix_fulfilments_status_next", "status", "next_attempt_at"),
        Index("ix_fulfilments_status_requested", "status", "requested_at"),
        Index("ix_fulfilments_batch", "print_batch_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    #: what makes a request "the same": a repeat of it returns this row instead of a new one
    request_key: Mapped[str] = mapped_column(String(120), unique=True)
    lead_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("leads.id", ondelete="CASCADE"))
    product_line_id: Mapped[int | None] = mapped_column(ForeignKey("product_lines.id"))
    #: why it was asked for: captured, qualified, nurture, manual
    reason: Mapped[str] = mapped_column(String(16), default="captured")
    channel: Mapped[str] = mapped_column(String(8), default=FulfilmentChannel.EMAIL)
    status: Mapped[str] = mapped_column(String(10), default=FulfilmentStatus.PENDING)
    #: how it went out: attachment, link (signed download link) or mail (printed)
    delivery: Mapped[str | None] = mapped_column(String(12))
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(Text, default="")
    #: a stable code for the last error (smtp, render, no_literature, no_address …)
    error_code: Mapped[str] = mapped_column(String(20), default="")
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    sent_to: Mapped[str] = mapped_column(String(254), default="")
    #: the dealer named in the letter (None: the manufacturer's own contact)
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"))
    #: the literature versions that went into the pack, for the record
    contents: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    page_count: Mapped[int | None]
    size_bytes: Mapped[int | None]
    #: the pack kept for a download link (link deliveries only)
    pack_file: Mapped[str | None] = mapped_column(String(80))
    downloaded_at: Mapped[datetime | None]  #: first download of the link
    downloads: Mapped[int] = mapped_column(default=0)
    print_batch_id: Mapped[int | None] = mapped_column(ForeignKey("print_batches.id"))
    printed_at: Mapped[datetime | None]

    lead: Mapped[Lead] = relationship()
    product_line: Mapped[ProductLine | None] = relationship()
    partner: Mapped[Partner | None] = relationship()
    print_batch: Mapped[PrintBatch | None] = relationship()

    @property
    def fulfilled_at(self) -> datetime | None:
        return self.sent_at or self.printed_at
