"""The lead import's dry run: what the import would create, join and refuse, before it
writes anything.

Each row goes through the capture's own checks (``validate_inquiry``) and dedup
(``find_duplicate``, ``person_keys``): the same rules as the import, the API and the
forms, with no second copy. Nothing is written: the dry run reads, so it runs in a
reading request. A row that repeats an earlier row of the file is counted as joined (the
import attaches it to the lead the earlier row makes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from portal.capture.imports import (
    _column_for,
    _open_csv,
    _rows,
    file_path,
    row_defaults,
    row_inquiry,
)
from portal.capture.services import CaptureError, find_duplicate, person_keys, validate_inquiry
from portal.core.models import LeadImport

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


def _who(data: dict[str, object]) -> str:
    name = " ".join(str(data.get(key) or "").strip() for key in ("first_name", "last_name"))
    contact = str(data.get("email") or data.get("phone") or "").strip()
    return ", ".join(part for part in (name.strip(), contact) if part) or "(no name)"


def dry_run(session: Session, lead_import: LeadImport, *, now: datetime) -> DryRun:
    """Check every row of ``lead_import`` as its import would, writing nothing."""
    result = DryRun()
    defaults = row_defaults(lead_import)
    seen: dict[str, int] = {}  # a person key of a row that would create → its line
    with _open_csv(file_path(lead_import)) as handle:
        for line, row in _rows(handle):
            data, problems = row_inquiry(row, lead_import, defaults)
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
    return result
