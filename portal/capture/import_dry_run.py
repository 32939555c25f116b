"""The lead import's dry run: what the import would create, join and refuse, before it
writes anything.

Each row goes through the capture's own checks (``validate_inquiry``) and dedup
(``find_duplicate``, ``person_keys``): the same rules as the import, the API and the
forms, with no second copy. No lead, inquiry or event is written. A row that repeats an
earlier row of the file is counted as joined (the import attaches it to the lead the
earlier row makes).

A file of 10,000 rows takes seconds to check, so the mapping page's dry run is a job
(``check_import``), as the import is: it reads the file, commits at least every second
(on SQLite a job's transaction holds the write lock), and stores the counts and sample
rows on the import, for the mapping it checked; the page polls for them.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import update
from sqlalchemy.orm import Session

from portal.capture.import_values import Catalog
from portal.capture.imports import (
    _column_for,
    _open_csv,
    _rows,
    file_path,
    row_defaults,
    row_inquiry,
)
from portal.capture.services import CaptureError, find_duplicate, person_keys, validate_inquiry
from portal.core.models import ImportStatus, LeadImport, utcnow
from portal.extensions import db

#: rows shown of each outcome
SAMPLE_ROWS = 5


@dataclass
class DryRunRow:
    """One row as the dry run saw it: its file line, who, and what would happen."""

    line: int
    who: str
    reasons: list[str] = field(default_factory=list)
    lead_id: uuid.UUID | None = None  #: the existing lead it would join
    lead_name: str = ""
    joins_line: int | None = None  #: or the earlier row of the file it repeats


@dataclass
class DryRun:
    created: int = 0
    joined: int = 0
    refused: int = 0
    samples: dict[str, list[DryRunRow]] = field(
        default_factory=lambda: {"created": [], "joined": [], "refused": []})

    @property
    def total(self) -> int:
        return self.created + self.joined + self.refused

    def _keep(self, kind: str, row: DryRunRow) -> None:
        if len(self.samples[kind]) < SAMPLE_ROWS:
            self.samples[kind].append(row)

    def as_json(self, checked_at: datetime) -> dict[str, Any]:
        """What the import keeps (``LeadImport.dry_run``), for the mapping of ``checked_at``."""
        samples = {kind: [dict(asdict(row), lead_id=str(row.lead_id) if row.lead_id else None)
                          for row in rows] for kind, rows in self.samples.items()}
        return {"for": checked_at.isoformat(), "created": self.created,
                "joined": self.joined, "refused": self.refused, "samples": samples}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DryRun:
        """The dry run an import keeps, to show."""
        samples = {kind: [DryRunRow(**dict(row, lead_id=uuid.UUID(row["lead_id"])
                                           if row.get("lead_id") else None))
                          for row in rows] for kind, rows in data["samples"].items()}
        return cls(created=data["created"], joined=data["joined"], refused=data["refused"],
                   samples=samples)


def _who(data: dict[str, object]) -> str:
    name = " ".join(str(data.get(key) or "").strip() for key in ("first_name", "last_name"))
    contact = str(data.get("email") or data.get("phone") or "").strip()
    return ", ".join(part for part in (name.strip(), contact) if part) or "(no name)"


def dry_run(session: Session, lead_import: LeadImport, *, now: datetime,
            checkpoint: Callable[[], None] | None = None) -> DryRun:
    """Check every row of ``lead_import`` as its import would, writing nothing;
    ``checkpoint`` is called after each row (the job ends its transaction there now and
    then)."""
    result = DryRun()
    defaults = row_defaults(lead_import)
    catalog = Catalog.load(session)
    seen: dict[str, int] = {}  # a person key of a row that would create → its line
    with _open_csv(file_path(lead_import)) as handle:
        for line, row in _rows(handle):
            data, problems = row_inquiry(row, lead_import, defaults, catalog)
            checked = DryRunRow(line=line, who=_who(data))
            if problems:
                checked.reasons = [message for _column, message in problems]
                result.refused += 1
                result._keep("refused", checked)
                continue
            try:
                inquiry = validate_inquiry(session, data, past_campaigns=True)
            except CaptureError as error:
                checked.reasons = [f"{_column_for(lead_import, key)}: {message}"
                                   for key, message in error.fields.items()] or [error.message]
                result.refused += 1
                result._keep("refused", checked)
                continue
            keys = person_keys(inquiry)
            earlier = next((seen[key] for key in keys if key in seen), None)
            duplicate = None if earlier is not None else find_duplicate(session, inquiry, now)
            if earlier is not None or duplicate is not None:
                checked.joins_line = earlier
                if duplicate is not None:
                    checked.lead_id, checked.lead_name = duplicate.id, duplicate.name
                result.joined += 1
                result._keep("joined", checked)
            else:
                result.created += 1
                result._keep("created", checked)
            for key in keys:
                seen.setdefault(key, line)
            if checkpoint is not None:
                checkpoint()
    return result


def check_import(import_id: int) -> bool:
    """The dry run job: check the import's saved mapping and keep the result on it (only
    if that mapping is still the one saved); False when there was nothing to check."""
    session = db.session
    lead_import = session.get(LeadImport, import_id, populate_existing=True)
    if (lead_import is None or lead_import.status != ImportStatus.UPLOADED
            or lead_import.checked_at is None or lead_import.checked):
        session.rollback()
        return False
    stamp = lead_import.checked_at
    # A copy the session does not track: a new mapping saved meanwhile does not change
    # the one being checked halfway (its result is then dropped, below).
    snapshot = LeadImport(
        header=list(lead_import.header), mapping=list(lead_import.mapping),
        value_map=dict(lead_import.value_map or {}), stored_name=lead_import.stored_name,
        default_campaign=lead_import.default_campaign,
        default_source=lead_import.default_source)
    every = float(current_app.config.get("IMPORT_BATCH_SECONDS", 1.0))
    last = time.monotonic()

    def checkpoint() -> None:
        nonlocal last
        if time.monotonic() - last >= every:
            session.commit()  # nothing written: this lets writers in (SQLite)
            last = time.monotonic()

    result = dry_run(session, snapshot, now=utcnow(), checkpoint=checkpoint)
    session.execute(
        update(LeadImport)
        .where(LeadImport.id == import_id, LeadImport.checked_at == stamp,
               LeadImport.status == ImportStatus.UPLOADED)
        .values(dry_run=result.as_json(stamp)),
        execution_options={"synchronize_session": False})
    session.commit()
    return True
