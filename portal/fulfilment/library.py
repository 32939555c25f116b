"""The literature library: items per product line, checked PDF versions, one active each."""

from __future__ import annotations

import os
import re
import uuid
from dataclasses import dataclass
from pathlib import Path

from flask import current_app, render_template
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from portal.core.errors import InvalidInput
from portal.core.jobs import enqueue_after_commit
from portal.core.models import (
    Fulfilment,
    FulfilmentStatus,
    LiteratureItem,
    LiteratureKind,
    LiteratureVersion,
    ProductLine,
    User,
    utcnow,
)
from portal.fulfilment import pdf

MAX_BODY_CHARS = 50_000


class LiteratureError(InvalidInput):
    """The library refuses a change; ``fields`` says which input to fix."""


def literature_dir() -> Path:
    """Where literature and generated PDFs live: outside ``static/``, never served directly."""
    configured = current_app.config.get("LITERATURE_DIR")
    path = Path(configured) if configured else Path(current_app.instance_path) / "literature"
    path.mkdir(parents=True, exist_ok=True)
    return path


def new_file_name() -> str:
    """A generated, unguessable name for a stored PDF."""
    return f"{uuid.uuid4().hex}.pdf"


def store_file(data: bytes, name: str | None = None) -> str:
    """Write ``data`` under a generated name (atomically) and return that name."""
    name = name or new_file_name()
    target = literature_dir() / name
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    os.replace(partial, target)  # readers never see half a file
    return name


def stored_path(name: str) -> Path:
    """The path of a stored file (names are ours, never a user's path)."""
    if not re.fullmatch(r"[0-9a-f]{32}\.pdf", name or ""):
        raise LiteratureError("Unknown stored file.")
    return literature_dir() / name


def read_file(name: str) -> bytes:
    """The bytes of a stored file."""
    return stored_path(name).read_bytes()


def remove_file(name: str | None) -> None:
    """Delete a stored file that nothing points at any more."""
    if name:
        stored_path(name).unlink(missing_ok=True)


def render_options() -> dict[str, object]:
    """How the app renders PDFs: static folder, time limit, child processes."""
    config = current_app.config
    return {
        "static_dir": current_app.static_folder or "",
        "timeout": float(config.get("PDF_RENDER_TIMEOUT", 60)),
        "processes": int(config.get("PDF_RENDER_PROCESSES", 1)),
    }


def pack_css() -> str:
    """The shared print stylesheet, rendered from its template."""
    return render_template("pdf/pack.css")


# --- items -------------------------------------------------------------------------------


def save_item(session: Session, item: LiteratureItem | None, *, title: str,
              product_line_id: int | None, kind: str, position: int,
              active: bool) -> LiteratureItem:
    """Create or change a library item (title, product line, kind, order, active)."""
    title = " ".join((title or "").split())
    if not title:
        raise LiteratureError("Give the item a title.", {"title": "Enter a title."})
    if len(title) > 160:
        raise LiteratureError("The title is too long.", {"title": "At most 160 characters."})
    if kind not in {k.value for k in LiteratureKind}:
        raise LiteratureError("Unknown kind.", {"kind": "Choose brochure or spec sheet."})
    if product_line_id is not None and session.get(ProductLine, product_line_id) is None:
        raise LiteratureError("Unknown product line.", {"product_line_id": "Choose a line."})
    if item is None:
        item = LiteratureItem()
        session.add(item)
    item.title, item.product_line_id, item.kind = title, product_line_id, kind
    item.position, item.active = position, active
    session.flush()
    return item


# --- versions ----------------------------------------------------------------------------


def _next_number(session: Session, item: LiteratureItem) -> int:
    current = session.scalar(
        select(func.max(LiteratureVersion.number)).where(LiteratureVersion.item_id == item.id))
    return (current or 0) + 1


def upload_version(session: Session, item: LiteratureItem, *, data: bytes, filename: str,
                   user: User | None, activate: bool) -> LiteratureVersion:
    """Check an uploaded PDF (real PDF, size, pages, not encrypted) and keep it as a version."""
    config = current_app.config
    try:
        info = pdf.inspect_pdf(data, max_bytes=int(config.get("LITERATURE_MAX_BYTES",
                                                               15 * 1024 * 1024)),
                               max_pages=int(config.get("LITERATURE_MAX_PAGES", 60)))
    except pdf.PdfProblem as problem:
        raise LiteratureError(str(problem), {"file": str(problem)}) from None
    return _add_version(session, item, source="pdf", data=data, info=info, user=user,
                        filename=_safe_filename(filename), body="", activate=activate)


def write_version(session: Session, item: LiteratureItem, *, body: str, user: User | None,
                  activate: bool) -> LiteratureVersion:
    """Render written text through ``pdf/literature.html`` and keep the PDF as a version."""
    body = (body or "").replace("\r\n", "\n").strip()
    if not body:
        raise LiteratureError("Write the text first.", {"body": "Enter the text."})
    if len(body) > MAX_BODY_CHARS:
        raise LiteratureError("The text is too long.",
                              {"body": f"At most {MAX_BODY_CHARS:,} characters."})
    html = render_template("pdf/literature.html", item=item, blocks=text_blocks(body))
    try:
        data = pdf.render_pdf(html, css=pack_css(), **render_options())  # type: ignore[arg-type]
    except pdf.RenderError as error:
        raise LiteratureError(f"{error} Shorten the text and try again.",
                              {"body": str(error)}) from None
    info = pdf.inspect_pdf(data, max_bytes=10**9, max_pages=10**6)
    return _add_version(session, item, source="html", data=data, info=info, user=user,
                        filename="", body=body, activate=activate)


def _safe_filename(name: str) -> str:
    # Kept only for people to recognise the upload; never used as a path.
    base = Path((name or "").replace("\\", "/")).name
    return re.sub(r"[^\w.\- ()]+", "_", base)[:200]


def _add_version(session: Session, item: LiteratureItem, *, source: str, data: bytes,
                 info: pdf.PdfInfo, user: User | None, filename: str, body: str,
                 activate: bool) -> LiteratureVersion:
    version = LiteratureVersion(
        item_id=item.id, number=_next_number(session, item), source=source,
        stored_name=store_file(data), original_filename=filename, body=body,
        size_bytes=info.size_bytes, page_count=info.page_count, sha256=info.sha256,
        created_by_id=user.id if user else None, created_at=utcnow(),
    )
    session.add(version)
    session.flush()
    if activate:
        activate_version(session, version)
    return version


def activate_version(session: Session, version: LiteratureVersion) -> None:
    """Make ``version`` the one packs use; packs that waited for literature go again."""
    session.execute(update(LiteratureVersion)
                    .where(LiteratureVersion.item_id == version.item_id,
                           LiteratureVersion.id != version.id,
                           LiteratureVersion.is_active.is_(True))
                    .values(is_active=False))
    session.flush()  # the partial unique index allows one active row: clear the old first
    version.is_active = True
    session.flush()
    item = session.get(LiteratureItem, version.item_id)
    assert item is not None
    if item.active:
        release_waiting_for_literature(session, item.product_line_id)


def release_waiting_for_literature(session: Session, product_line_id: int | None) -> list[int]:
    """Packs that failed only for want of literature go again now that some is in use."""
    waiting = select(Fulfilment.id).where(Fulfilment.status == FulfilmentStatus.FAILED,
                                          Fulfilment.error_code == "no_literature")
    if product_line_id is not None:  # general literature releases every line's packs
        waiting = waiting.where(Fulfilment.product_line_id == product_line_id)
    ids = list(session.scalars(waiting))
    if ids:
        session.execute(update(Fulfilment).where(Fulfilment.id.in_(ids))
                        .values(status=FulfilmentStatus.PENDING, attempts=0,
                                next_attempt_at=utcnow(), error_code="",
                                last_error="Literature was added; sending again."),
                        execution_options={"synchronize_session": False})
        for fulfilment_id in ids:
            enqueue_after_commit(session, "send_pack", fulfilment_id)
    return ids


def active_versions_for(session: Session, product_line_id: int | None
                        ) -> list[tuple[LiteratureItem, LiteratureVersion]]:
    """The active literature a pack for this line contains: the line's own, then general."""
    line_match = LiteratureItem.product_line_id.is_(None)
    if product_line_id is not None:
        line_match = line_match | (LiteratureItem.product_line_id == product_line_id)
    rows = session.execute(
        select(LiteratureItem, LiteratureVersion)
        .join(LiteratureVersion, LiteratureVersion.item_id == LiteratureItem.id)
        .where(LiteratureItem.active.is_(True), LiteratureVersion.is_active.is_(True),
               line_match)
        .order_by(LiteratureItem.product_line_id.is_(None), LiteratureItem.position,
                  LiteratureItem.id)
    ).all()
    return [(row[0], row[1]) for row in rows]


# --- written literature ------------------------------------------------------------------


@dataclass(frozen=True)
class Block:
    """One block of written literature: a heading, a paragraph or a list."""

    kind: str  #: h (heading), p (paragraph), ul (bullets)
    lines: tuple[str, ...]


def text_blocks(body: str) -> list[Block]:
    """Split written text into blocks: ``# `` heading, ``- `` bullets, blank-line paragraphs.

    A small format of our own rather than raw HTML: the template escapes every word, so
    nothing written here can inject markup or reach out for a resource.
    """
    blocks: list[Block] = []
    paragraph: list[str] = []
    bullets: list[str] = []

    def close() -> None:
        if paragraph:
            blocks.append(Block("p", (" ".join(paragraph),)))
            paragraph.clear()
        if bullets:
            blocks.append(Block("ul", tuple(bullets)))
            bullets.clear()

    for raw in body.split("\n"):
        line = raw.strip()
        if not line:
            close()
        elif line.startswith("#"):
            close()
            blocks.append(Block("h", (line.lstrip("#").strip(),)))
        elif line.startswith(("- ", "* ")):
            if paragraph:
                close()
            bullets.append(line[2:].strip())
        else:
            if bullets:
                close()
            paragraph.append(line)
    close()
    return blocks
