"""Every report table as CSV: the same rows as the page, safe to open in a spreadsheet."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from typing import Any

from flask import Response

from portal.partners.csv import defuse


def csv_response(filename: str, header: Sequence[str], rows: Iterable[Sequence[Any]]
                 ) -> Response:
    """A CSV download: text cells a spreadsheet would run as a formula are quoted
    (``=cmd|…`` becomes ``'=cmd|…``), the header's too (it may carry a name); numbers stay
    numbers; no value is ``None``."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([defuse(h) for h in header])
    for row in rows:
        writer.writerow(["" if v is None else defuse(v) if isinstance(v, str) else v
                         for v in row])
    return Response("\ufeff" + buffer.getvalue(), mimetype="text/csv",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def rate(value: float | None) -> str:
    """A rate for a CSV cell: 0.667 → "66.7", undefined → ""."""
    return "" if value is None else f"{value * 100:.1f}"
