"""The partners CSV (DESIGN §6): streaming export and a row-by-row import with a report.

Import rules: the whole file is read and checked for encoding and header before anything
is written; then every row is validated in full and written inside its own savepoint, so
a bad row is reported (line and column) and leaves nothing behind while good rows stay.
"""

from __future__ import annotations

import csv
import io
import re
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased, selectinload

from portal.core.checks import text_problem
from portal.core.errors import InvalidInput
from portal.core.models import Partner, PartnerKind, ProductLine, Territory, partner_product_lines
from portal.core.models.codes import code_in
from portal.partners.services import (
    COLUMNS,
    Lookups,
    PartnerInput,
    apply_partner,
    clean_partner,
    partner_values,
)
from routing.territory import TerritoryRule

#: a spreadsheet treats a cell starting with one of these as a formula (or runs it)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_PREFETCH = 500


def defuse(cell: str) -> str:
    """Quote a cell a spreadsheet would run as a formula (OWASP CSV injection advice).

    Plain numbers such as a negative longitude are left alone: they are not formulas,
    and quoting them would turn coordinates into text in every spreadsheet.
    """
    if cell.startswith(FORMULA_STARTS) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def undefuse(cell: str) -> str:
    """Remove the one quote :func:`defuse` added; any other text is kept as written."""
    if cell.startswith("'") and cell[1:].startswith(FORMULA_STARTS):
        return cell[1:]
    return cell


def export_partners(session: Session, *, bom: bool = False,
                    chunk_size: int = 500) -> Iterator[str]:
    """Yield the partners CSV in chunks of rows, never holding every partner at once."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    yield ("\ufeff" if bom else "") + _drain(buffer)
    # Plain rows, not ORM objects: building 10,000 Partners with their collections costs
    # ten times more than the CSV itself.
    parent = aliased(Partner)
    columns = [getattr(Partner, name) for name in _EXPORT_COLUMNS]
    query = (
        select(Partner.id, parent.code.label("parent_code"), *columns)
        .outerjoin(parent, Partner.parent_id == parent.id)
        .order_by(Partner.code)
        .execution_options(yield_per=chunk_size)
    )
    for rows in session.execute(query).partitions():
        ids = [row.id for row in rows]
        lines: dict[int, list[str]] = defaultdict(list)
        for partner_id, code in session.execute(
            select(partner_product_lines.c.partner_id, ProductLine.code)
            .join(ProductLine, ProductLine.id == partner_product_lines.c.product_line_id)
            .where(partner_product_lines.c.partner_id.in_(ids))
            .order_by(partner_product_lines.c.partner_id, ProductLine.code)
        ):
            lines[partner_id].append(code)
        rules: dict[int, list[str]] = defaultdict(list)
        for partner_id, kind, value in session.execute(
            select(Territory.partner_id, Territory.kind, Territory.value)
            .where(Territory.partner_id.in_(ids))
            .order_by(Territory.partner_id, Territory.position, Territory.id)
        ):
            rules[partner_id].append(str(TerritoryRule(kind, value)))
        for row in rows:
            values = partner_values(row, row.parent_code or "", product_lines=lines[row.id],
                                    territories=rules[row.id])
            writer.writerow([defuse(values[column]) for column in COLUMNS])
        yield _drain(buffer)


_EXPORT_COLUMNS = (
    "code", "name", "kind", "email", "phone", "address", "city", "region", "postal_code",
    "country", "latitude", "longitude", "location_from_centroid", "capacity", "forwarding",
)


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


@dataclass(frozen=True)
class RowError:
    """One problem with one row: the file line (header = 1), the column and what to do."""

    line: int
    column: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}, column {self.column}" if self.column else f"line {self.line}"
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    """What an import did: counts, the rejected rows' problems, or a fatal reason."""

    created: int = 0
    updated: int = 0  #: rows whose code existed (including those with nothing to change)
    unchanged: int = 0  #: of ``updated``, rows that matched the stored partner exactly
    errors: list[RowError] = field(default_factory=list)
    fatal: str | None = None  #: the file was refused as a whole; nothing was changed

    @property
    def error_lines(self) -> list[int]:
        """The lines that were rejected, in file order."""
        return sorted({error.line for error in self.errors})

    def error_csv(self) -> str:
        """The problems as a CSV (line, column, message) to fix the file against."""
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\r\n")
        writer.writerow(("line", "column", "message"))
        for error in self.errors:
            writer.writerow((error.line, error.column, defuse(error.message)))
        return buffer.getvalue()


@dataclass
class _Row:
    line: int
    cells: dict[str, str]

    @property
    def code(self) -> str:
        return self.cells["code"].strip().upper()


class _CachedLookups(Lookups):
    """Lookups over a prefetched map of the file's partners and every product line."""

    allow_retired_lines = True

    def __init__(self, session: Session, partners: dict[str, Partner | None]) -> None:
        super().__init__(session)
        self.partners = partners
        self.lines = {line.code.lower(): line for line in session.scalars(select(ProductLine))}

    def partner(self, code: str) -> Partner | None:
        if code not in self.partners:
            self.partners[code] = super().partner(code)
        return self.partners[code]

    def product_line(self, code: str) -> ProductLine | None:
        return self.lines.get(code.lower())


def import_partners(session: Session, handle: BinaryIO, *,
                    max_bytes: int = 10 * 1024 * 1024) -> ImportReport:
    """Create or update partners from a CSV file; bad rows are reported, good rows kept."""
    report = ImportReport()
    data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        report.fatal = (f"The file is larger than {max_bytes / 1024 / 1024:g} MB; nothing was "
                        "imported. Split it into smaller files.")
        return report
    text = _decode(data, report)
    if text is None:
        return report
    rows = _read_rows(text, report)
    if rows is None:
        return report

    first_line: dict[str, int] = {}
    accepted: list[_Row] = []
    for row in rows:
        code = row.code
        if code and code in first_line:
            report.errors.append(RowError(
                row.line, "code",
                f"Code {code} already appears on line {first_line[code]}; only the first "
                "row with a code is imported.",
            ))
            continue
        first_line.setdefault(code, row.line)
        accepted.append(row)
    # Distributors first, so a dealer may come before its distributor in the file.
    accepted.sort(key=lambda row: (row.cells["kind"].strip().lower() != PartnerKind.DISTRIBUTOR,
                                   row.line))

    # A code that is not text (a NUL, say) matches no partner, and PostgreSQL refuses to
    # be asked: its row is refused by the row's own checks below.
    existing = _prefetch(session, [row.code for row in accepted
                                   if row.code and not text_problem(row.code)])
    # The prefetch saw every code in the file: the others are new, no need to ask again.
    known: dict[str, Partner | None] = {row.code: None for row in accepted if row.code}
    known.update(existing)
    lookups = _CachedLookups(session, known)
    rejected: dict[str, int] = {}
    for row in accepted:
        partner = existing.get(row.code)
        try:
            # Validate first, outside any savepoint: a rejected row then costs no SAVEPOINT
            # and no rollback (whose cost grows with the objects the session holds).
            clean = clean_partner(session, _input(row.cells), partner=partner,
                                  lookups=lookups)
        except InvalidInput as error:
            rejected[row.code] = row.line
            for column, message in error.fields.items():
                if column == "parent" and row.cells["parent"].strip().upper() in rejected:
                    line = rejected[row.cells["parent"].strip().upper()]
                    message = f"{message.rstrip('.')} (its row on line {line} was rejected)."
                report.errors.append(RowError(row.line, column, message))
            continue
        try:
            # A database error (say, a code another import just took) undoes this row only.
            with session.begin_nested():
                saved, changed = apply_partner(session, clean, partner)
        except SQLAlchemyError as error:
            rejected[row.code] = row.line
            report.errors.append(RowError(
                row.line, "", f"The database refused this row ({type(error).__name__}); "
                "nothing of it was saved.",
            ))
            lookups.partners.pop(row.code, None)
            continue
        lookups.partners[saved.code] = saved
        if partner is None:
            report.created += 1
        else:
            report.updated += 1
            report.unchanged += not changed
    report.errors.sort(key=lambda error: (error.line, COLUMNS.index(error.column)
                                          if error.column in COLUMNS else -1))
    return report


def _input(cells: dict[str, str]) -> PartnerInput:
    values = dict(cells)
    lines = [code for code in values.pop("product_lines").split(";") if code.strip()]
    return PartnerInput(product_lines=lines, **values)


def _decode(data: bytes, report: ImportReport) -> str | None:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data.count(b"\n", 0, error.start) + 1
        byte = data[error.start]
        report.fatal = (
            f"The file is not UTF-8: line {line} has the byte 0x{byte:02X} (byte "
            f"{error.start + 1} of the file) that UTF-8 does not allow. Save the file as "
            "\"CSV UTF-8\" and import it again; nothing was imported."
        )
        return None


def _read_rows(text: str, report: ImportReport) -> list[_Row] | None:
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            report.fatal = "The file is empty: it needs the header row " + ",".join(COLUMNS)
            return None
        names = [name.strip().lower() for name in header]
        missing = [name for name in COLUMNS if name not in names]
        extra = [name or "(blank)" for name in names if name not in COLUMNS]
        repeated = sorted({name for name in names if name in COLUMNS and names.count(name) > 1})
        if missing or extra or repeated:
            parts = []
            if missing:
                parts.append("missing " + ", ".join(missing))
            if extra:
                parts.append("unknown " + ", ".join(extra))
            if repeated:
                parts.append("repeated " + ", ".join(repeated))
            report.fatal = (
                f"The header row does not match the partners CSV ({'; '.join(parts)}). "
                f"Expected: {','.join(COLUMNS)}. Nothing was imported."
            )
            return None
        rows: list[_Row] = []
        last_line = reader.line_num
        for cells in reader:
            line, last_line = last_line + 1, reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank lines are not rows
            if len(cells) < len(names) or any(c.strip() for c in cells[len(names):]):
                report.errors.append(RowError(
                    line, "", f"This row has {len(cells)} cells; the header has {len(names)}.",
                ))
                continue
            rows.append(_Row(line, {name: undefuse(cells[i]) for i, name in enumerate(names)}))
    except csv.Error as error:
        report.fatal = (f"Line {reader.line_num} cannot be read as CSV ({error}); "
                        "nothing was imported.")
        return None
    return rows


def _prefetch(session: Session, codes: list[str]) -> dict[str, Partner]:
    found: dict[str, Partner] = {}
    for start in range(0, len(codes), _PREFETCH):
        chunk = codes[start:start + _PREFETCH]
        for partner in session.scalars(
            select(Partner)
            .where(code_in(Partner.code, chunk))
            .options(selectinload(Partner.product_lines), selectinload(Partner.territories))
        ):
            found[partner.code.upper()] = partner  # keyed as the rows' codes are
    return found
