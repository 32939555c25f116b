"""Admin pages: partners, users, product lines, competitors, campaigns."""

from __future__ import annotations

from flask import Blueprint, render_template

from portal.core.web import staff_required

bp = Blueprint("manage", __name__, url_prefix="/manage")


@bp.get("/")
@staff_required
def index():  # type: ignore[no-untyped-def]
    """The admin area's front page."""
    return render_template("manage/index.html")


# The area's other pages register on ``bp`` when imported.
from portal.manage import catalog_views, partner_views, user_views  # noqa: E402,F401
