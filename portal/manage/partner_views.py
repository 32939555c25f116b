"""Partner administration pages (list, create, edit, pause, CSV import/export)."""

from __future__ import annotations

from flask import render_template

from portal.manage.views import bp
from portal.web import staff_required


@bp.get("/partners")
@staff_required
def partners():  # type: ignore[no-untyped-def]
    """Partners, searchable and paginated."""
    return render_template("manage/index.html")
