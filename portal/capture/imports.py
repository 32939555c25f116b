"""Lead CSV import (DESIGN §6, Leads CSV): upload and check, map columns, run in the background.

The file is never held in memory: it is streamed to disk on upload, streamed again to
check its encoding and structure, and streamed row by row by the job, which hands each
row to ``capture_inquiry`` (the same validation, dedup, qualification and routing as the
API) inside its own savepoint and commits every ``IMPORT_BATCH_ROWS`` rows together with
the progress counters. A row identical to one imported before is an idempotent replay,
so re-importing a file creates nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from flask import current_app
from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from portal.capture.import_values import (
    ANSWER,
    CLOSED_FIELDS,
    FIELD_LABELS,
    FIELDS,
    FULL_NAME,
    IGNORE,
    LEAVE_EMPTY,
    MAX_DISTINCT,
    Catalog,
    header_target,
    split_name,
)
from portal.capture.services import STANDARD_ANSWERS, CaptureError, capture_inquiry
from portal.core.database import lost_a_race
from portal.core.errors import DomainError, InvalidInput
from portal.core.jobs import enqueue_after_commit
from portal.core.lifecycle import Actor
from portal.core.models import Campaign, ImportStatus, LeadImport, Source, User, utcnow
from portal.extensions import db

#: what a column can be mapped to: a capture field, a name to split, an answer, nothing
TARGETS = (*FIELDS, FULL_NAME, ANSWER, IGNORE)
MAX_COLUMNS = 100
PREVIEW_ROWS = 5
#: a spreadsheet runs a cell starting with one of these as a formula
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
REPORT_HEADER = ("line", "column", "message")


class ImportFileError(InvalidInput):
    """The upload cannot be imported as a whole; ``message`` says why and where."""


@dataclass
class Preview:
    header: list[str]
    rows: list[list[str]]
    total_rows: int


@dataclass
class RowOutcome:
    created: bool = False
    duplicate: bool = False
    errors: list[tuple[str, str]] = field(default_factory=list)  #: (column, message)


def imports_dir() -> Path:
    """Where uploaded files and error reports live (instance/imports by default)."""
    configured = current_app.config.get("IMPORTS_DIR")
    path = Path(configured) if configured else Path(current_app.instance_path) / "imports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def defuse(cell: str) -> str:
    """Quote a cell a spreadsheet would run as a formula (OWASP CSV injection advice)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def auto_mapping(header: list[str]) -> list[str]:
    """Guess each column's field from its name; an unknown name is kept as an answer."""
    mapping: list[str] = []
    taken: set[str] = set()
    for name in header:
        target = header_target(name, FIELDS)
        if target in taken and target not in (ANSWER, IGNORE):
            target = ANSWER  # a second "email" column is kept, not silently dropped
        taken.add(target)
        mapping.append(target)
    return mapping


def check_mapping(header: list[str], mapping: list[str]) -> dict[int, str]:
    """Problems with a chosen mapping, per column index."""
    problems: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, target in enumerate(mapping):
        if target not in TARGETS:
            problems[index] = "Choose a field from the list."
        elif target not in (ANSWER, IGNORE):
            if target in seen:
                problems[index] = (f"Column {seen[target] + 1} is already mapped to "
                                   f"{FIELD_LABELS[target]}; choose another field or "
                                   "ignore this one.")
            seen[target] = index
    answers = sum(1 for t in mapping if t == ANSWER) + sum(
        1 for t in mapping if t in STANDARD_ANSWERS)
    if answers > 30:
        last = max(i for i, t in enumerate(mapping) if t == ANSWER)
        problems[last] = "At most 30 answer columns; ignore the ones you do not need."
    if not any(t in ("email", "phone") for t in mapping):
        problems.setdefault(0, "Map a column to Email or Phone: a dealer needs a way "
                                   "to reach each lead.")
    return problems


# --- upload ------------------------------------------------------------------------------


def store_upload(stream: IO[bytes], filename: str, *, max_bytes: int) -> tuple[str, int, str]:
    """Copy the upload to the imports folder in chunks; (stored name, size, sha256)."""
    stored = f"{uuid.uuid4().hex}.csv"
    path = imports_dir() / stored
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "wb") as out:
            while chunk := stream.read(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise ImportFileError(
                        f"The file is larger than {max_bytes // (1024 * 1024)} MB; split it "
                        "into smaller files.")
                digest.update(chunk)
                out.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    if size == 0:
        path.unlink(missing_ok=True)
        raise ImportFileError("The file is empty.")
    return stored, size, digest.hexdigest()


def check_encoding(path: Path) -> None:
    """Refuse a file that is not UTF-8, naming the line of the first bad byte (BOM is fine)."""
    with open(path, "rb") as handle:
        # A UTF-8 sequence never contains a newline byte, so each line decodes on its own.
        for number, raw in enumerate(handle, start=1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                bad = raw[error.start]
                raise ImportFileError(
                    f"The file is not UTF-8: line {number} has the byte 0x{bad:02X} "
                    f"(character {error.start + 1}). Save it as “CSV UTF-8” and upload it "
                    "again.") from None


def _open_csv(path: Path) -> IO[str]:
    return open(path, encoding="utf-8-sig", newline="")


def preview(path: Path) -> Preview:
    """The header, the first rows and the row count, read in one streaming pass."""
    with _open_csv(path) as handle:
        # strict: a quote left open or a stray quote is a broken file, not data
        reader = csv.reader(handle, strict=True)
        try:
            header = next(reader, None)
            if not header or not any(cell.strip() for cell in header):
                raise ImportFileError("The first line must be a header row naming the "
                                      "columns.")
            if len(header) > MAX_COLUMNS:
                raise ImportFileError(f"At most {MAX_COLUMNS} columns; the file has "
                                      f"{len(header)}.")
            rows: list[list[str]] = []
            total = 0
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue  # blank lines are skipped, here and by the job
                total += 1
                if len(rows) < PREVIEW_ROWS:
                    rows.append(row)
        except csv.Error as error:
            raise ImportFileError(f"Line {reader.line_num}: the CSV is malformed "
                                  f"({error}).") from None
    if total == 0:
        raise ImportFileError("The file has a header row but no data rows.")
    return Preview(header=[cell.strip() for cell in header], rows=rows, total_rows=total)


def head(path: Path, rows: int = PREVIEW_ROWS) -> list[list[str]]:
    """The first data rows of a stored, already checked file (the mapping page shows them)."""
    with _open_csv(path) as handle:
        found: list[list[str]] = []
        for _line, row in _rows(handle):
            found.append(row)
            if len(found) >= rows:
                break
        return found


def create_import(session: Session, stream: IO[bytes], filename: str,
                  user: User | None) -> LeadImport:
    """Store and check an upload; the new import waits for its column mapping."""
    max_bytes = int(current_app.config.get("LEAD_IMPORT_MAX_BYTES", 20 * 1024 * 1024))
    stored, size, sha = store_upload(stream, filename, max_bytes=max_bytes)
    path = imports_dir() / stored
    try:
        check_encoding(path)
        seen = preview(path)
    except ImportFileError:
        path.unlink(missing_ok=True)
        raise
    mapping = auto_mapping(seen.header)
    lead_import = LeadImport(
        filename=(os.path.basename(filename or "leads.csv") or "leads.csv")[:255],
        stored_name=stored, size_bytes=size, sha256=sha, header=seen.header,
        mapping=mapping, total_rows=seen.total_rows,
        value_map=match_values(Catalog.load(session), mapping, distinct_values(path, mapping)),
        status=ImportStatus.UPLOADED, created_by=user,
    )
    session.add(lead_import)
    session.flush()
    return lead_import


def distinct_values(path: Path, mapping: list[str]) -> dict[int, list[str]]:
    """Per column mapped to a closed field, its distinct values in the order they first
    appear (at most ``MAX_DISTINCT``), read in one streaming pass."""
    columns = [i for i, target in enumerate(mapping) if target in CLOSED_FIELDS]
    found: dict[int, dict[str, None]] = {i: {} for i in columns}
    if not columns:
        return {}
    with _open_csv(path) as handle:
        for _line, row in _rows(handle):
            for index in columns:
                value = row[index].strip() if index < len(row) else ""
                if value and len(found[index]) < MAX_DISTINCT:
                    found[index].setdefault(value)
    return {index: list(values) for index, values in found.items()}


def match_values(catalog: Catalog, mapping: list[str], values: dict[int, list[str]],
                 picked: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, str]]:
    """The value map for each column's distinct ``values``: what was ``picked`` for a value
    stays, any other value gets what ``Catalog.pick`` takes it as."""
    picked = picked or {}
    value_map: dict[str, dict[str, str]] = {}
    for index, distinct in values.items():
        target = mapping[index]
        chosen = picked.get(target, {})
        value_map[target] = {
            value: chosen[value] if value in chosen else catalog.pick(target, value)
            for value in distinct}
    return value_map


def file_path(lead_import: LeadImport) -> Path:
    return imports_dir() / lead_import.stored_name


def report_path(lead_import: LeadImport) -> Path:
    return imports_dir() / f"{Path(lead_import.stored_name).stem}-errors.csv"


def save_mapping(session: Session, lead_import: LeadImport, mapping: list[str],
                 picked: dict[str, dict[str, str]], campaign: Campaign | None,
                 source: Source | None, *, now: datetime, nudge: bool = True) -> None:
    """Keep the columns' mapping, the value picks and the defaults, and queue their dry
    run (its job is nudged after the caller commits; the sweeper catches a lost nudge).
    A pick outside its field's list counts as no pick."""
    if lead_import.status != ImportStatus.UPLOADED:
        raise ImportFileError("This import has already been started.")
    catalog = Catalog.load(session)
    allowed = {target: {c.code for c in choices} | {"", LEAVE_EMPTY}
               for target, choices in catalog.choices.items()}
    picked = {target: {value: code for value, code in values.items()
                       if code in allowed.get(target, ())}
              for target, values in picked.items()}
    lead_import.mapping = list(mapping)
    lead_import.value_map = match_values(
        catalog, mapping, distinct_values(file_path(lead_import), mapping), picked)
    lead_import.default_campaign = campaign
    lead_import.default_source = source
    lead_import.checked_at = now
    lead_import.dry_run = None
    session.flush()
    if nudge:
        enqueue_after_commit(session, "check_import", lead_import.id)


def start_import(session: Session, lead_import: LeadImport, mapping: list[str],
                 campaign: Campaign | None, source: Source | None, *,
                 nudge: bool = True) -> None:
    """Fix the mapping and queue the import: its job is nudged once the caller commits
    (``nudge=False``: the caller runs it itself; the sweeper still would, were it lost)."""
    if lead_import.status != ImportStatus.UPLOADED:
        raise ImportFileError("This import has already been started.")
    lead_import.mapping = list(mapping)
    lead_import.default_campaign = campaign
    lead_import.default_source = source
    lead_import.status = ImportStatus.QUEUED
    session.flush()
    if nudge:
        enqueue_after_commit(session, "import_leads", lead_import.id)


# --- the background job ------------------------------------------------------------------


def _rows(handle: IO[str]) -> Iterator[tuple[int, list[str]]]:
    """(first file line of the record, cells) for each data row, blank lines skipped."""
    reader = csv.reader(handle, strict=True)
    next(reader, None)
    line = reader.line_num + 1
    for row in reader:
        start, line = line, reader.line_num + 1
        if any(cell.strip() for cell in row):
            yield start, row


def row_defaults(lead_import: LeadImport) -> dict[str, str]:
    """The campaign and source codes of rows that name none."""
    defaults: dict[str, str] = {}
    if lead_import.default_campaign is not None:
        defaults["campaign"] = lead_import.default_campaign.code
    if lead_import.default_source is not None:
        defaults["source"] = lead_import.default_source.code
    return defaults


def row_inquiry(row: list[str], lead_import: LeadImport, defaults: dict[str, str],
                catalog: Catalog | None = None
                ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """The capture body for one row, and problems with its shape. A closed field's value
    is taken as its pick in the import's value map; one not listed there (a file with
    more distinct values than the page lists) as ``catalog`` matches it."""
    header, mapping = lead_import.header, lead_import.mapping
    problems: list[tuple[str, str]] = []
    extra = [cell for cell in row[len(header):] if cell.strip()]
    if extra:
        problems.append(("", f"The row has {len(row)} cells but the header only "
                             f"{len(header)}; check for an unquoted comma."))
    data: dict[str, Any] = {}
    answers: dict[str, str] = {}
    value_map = lead_import.value_map or {}
    full_name = ""
    for index, target in enumerate(mapping):
        value = row[index] if index < len(row) else ""
        if target == IGNORE or not value.strip():
            continue
        if target == ANSWER:
            answers[header[index] or f"column_{index + 1}"] = value
        elif target == FULL_NAME:
            full_name = value
        else:
            picked = value_map.get(target, {}).get(value.strip()) if value_map else None
            if picked is None and catalog is not None and target in CLOSED_FIELDS:
                picked = catalog.pick(target, value)
            if picked == LEAVE_EMPTY:
                continue
            data[target] = picked or value
    if full_name:
        # A "Name" column fills the first and last name, unless columns of their own do.
        first, last = split_name(full_name)
        if first:
            data.setdefault("first_name", first)
        if last:
            data.setdefault("last_name", last)
    for name, code in defaults.items():
        data.setdefault(name, code)
    if answers:
        data["answers"] = answers
    return data, problems


def _column_for(lead_import: LeadImport, key: str) -> str:
    """The file's column name for a capture field (what the person sees in the report)."""
    name = key.removeprefix("answers.")
    for index, target in enumerate(lead_import.mapping):
        if target == name or (target == ANSWER and lead_import.header[index] == name) or (
                target == FULL_NAME and name in ("first_name", "last_name")):
            return lead_import.header[index] or name
    return FIELD_LABELS.get(name, name)


def import_row(session: Session, data: dict[str, Any], actor: Actor) -> RowOutcome:
    """Capture one row in its own savepoint: a bad row leaves nothing behind.

    Each row's capture locks its person's dedup keys (up to four) until the batch commits:
    500 rows hold ~2,000 of PostgreSQL's ~6,400 lock slots at its default settings
    (``max_locks_per_transaction`` 64 × 100 connections); a capture of the same person
    meanwhile waits for the batch.
    """
    # The row's content is its idempotency key: the same row again (a re-imported
    # file, a second list with the same person) returns the lead made the first time.
    key = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    for attempt in (1, 2):
        try:
            with session.begin_nested():
                result = capture_inquiry(session, data, actor, idempotency_scope="import",
                                         idempotency_key=key, past_campaigns=True)
            return RowOutcome(created=result.created, duplicate=not result.created)
        except CaptureError as error:
            return RowOutcome(errors=list(error.fields.items()) or [("", error.message)])
        except DomainError as error:
            return RowOutcome(errors=list(error.fields.items()) or [("", error.message)])
        except DBAPIError as error:
            # The same row committed concurrently (it is a replay now), or a deadlock with
            # a capture of the same person: once more, in a fresh savepoint.
            if attempt == 2 or not lost_a_race(error):
                raise
    return RowOutcome()  # pragma: no cover - the loop always returns or raises


def run_import(session: Session, lead_import: LeadImport, *, batch_rows: int = 500,
               batch_seconds: float = 1.0) -> LeadImport:
    """Stream the file through capture, committing rows and counters every ``batch_rows``
    rows or ``batch_seconds``, whichever comes first.

    The time bound matters on SQLite, where an open write transaction holds the database's
    one write lock: public forms, the API and dealers wait at most about that long.
    Returns the import as finally stored (the one passed in is let go along the way).
    """
    user = lead_import.created_by
    actor = Actor.of(user, device="import") if user else Actor.system("import")
    defaults = row_defaults(lead_import)
    catalog = Catalog.load(session)
    lead_import.status = ImportStatus.RUNNING
    lead_import.started_at = utcnow()
    lead_import.processed = lead_import.created = lead_import.duplicates = 0
    lead_import.rejected = 0
    session.commit()
    last_commit, pending = time.monotonic(), 0

    with _open_csv(file_path(lead_import)) as handle, \
            open(report_path(lead_import), "w", encoding="utf-8", newline="") as report_file:
        report = csv.writer(report_file, lineterminator="\r\n")
        report.writerow(REPORT_HEADER)
        for line, row in _rows(handle):
            data, problems = row_inquiry(row, lead_import, defaults, catalog)
            outcome = RowOutcome(errors=problems) if problems else import_row(
                session, data, actor)
            if outcome.errors:
                lead_import.rejected += 1
                for key, message in outcome.errors:
                    column = _column_for(lead_import, key) if key else ""
                    report.writerow((line, defuse(column), defuse(message)))
            elif outcome.created:
                lead_import.created += 1
            else:
                lead_import.duplicates += 1
            lead_import.processed += 1
            pending += 1
            if pending >= batch_rows or time.monotonic() - last_commit >= batch_seconds:
                last_commit, pending = time.monotonic(), 0
                report_file.flush()
                session.commit()  # the rows and the progress the page polls, together
                # Nothing from earlier batches is needed again: let it be collected.
                session.expunge_all()
                lead_import = session.get(LeadImport, lead_import.id)  # type: ignore[assignment]
                assert lead_import is not None
    lead_import.status = ImportStatus.DONE
    lead_import.finished_at = utcnow()
    session.commit()
    # The upload holds personal data nobody needs once every row is in (or reported).
    file_path(lead_import).unlink(missing_ok=True)
    return lead_import


def claim_import(session: Session, import_id: int, now: datetime) -> bool:
    """Take a queued import for running (one conditional UPDATE): the nudge, a retried
    task and the sweeper may all try, and only one runs it."""
    result = session.execute(
        update(LeadImport)
        .where(LeadImport.id == import_id, LeadImport.status == ImportStatus.QUEUED)
        .values(status=ImportStatus.RUNNING, started_at=now),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def process_import(import_id: int) -> bool:
    """Claim a queued import and run it to the end; False when it was not ours to run."""
    session = db.session
    if not claim_import(session, import_id, utcnow()):
        session.rollback()
        return False  # already run or running (a retried or duplicated nudge)
    session.commit()  # the claim is seen before the long run starts
    lead_import = session.get(LeadImport, import_id, populate_existing=True)
    assert lead_import is not None
    config = current_app.config
    try:
        run_import(session, lead_import,
                   batch_rows=int(config.get("IMPORT_BATCH_ROWS", 500)),
                   batch_seconds=float(config.get("IMPORT_BATCH_SECONDS", 1.0)))
    except Exception as error:
        session.rollback()
        current_app.logger.exception("lead import %s failed", import_id)
        failed = session.get(LeadImport, import_id)
        if failed is not None:
            failed.status = ImportStatus.FAILED
            failed.finished_at = utcnow()
            failed.message = (f"Stopped after {failed.processed} rows by an unexpected "
                              f"error ({type(error).__name__}). Rows before it were "
                              "imported; importing the file again skips them.")[:500]
            session.commit()
    return True


def queued_import_ids(session: Session, limit: int = 20) -> list[int]:
    """Imports queued but not started: what a lost nudge (or a crash before it) left."""
    return list(session.scalars(
        select(LeadImport.id).where(LeadImport.status == ImportStatus.QUEUED)
        .order_by(LeadImport.created_at, LeadImport.id).limit(limit)))


def checks_waiting(session: Session, limit: int = 20) -> list[int]:
    """Imports whose saved mapping waits for its dry run (a lost nudge, a crash)."""
    return list(session.scalars(
        select(LeadImport.id).where(LeadImport.status == ImportStatus.UPLOADED,
                                    LeadImport.checked_at.is_not(None),
                                    LeadImport.dry_run.is_(None))
        .order_by(LeadImport.checked_at, LeadImport.id).limit(limit)))


def recent_imports_query() -> Any:
    """Newest imports first (the list page paginates it)."""
    return select(LeadImport).order_by(LeadImport.created_at.desc(), LeadImport.id.desc())
