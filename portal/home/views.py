"""Landing page after sign-in: each role starts where its work is."""

from __future__ import annotations

from flask import Blueprint, redirect, render_template, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select

from portal.core.models import Lead, LeadStatus, Partner
from portal.core.web import staff_required
from portal.extensions import db

bp = Blueprint("home", __name__)


@bp.get("/")
@login_required
def index():  # type: ignore[no-untyped-def]
    """Staff start on the channel overview; a partner sees the dashboard of its own leads."""
    if current_user.is_staff:
        return redirect(url_for("reports.overview"))
    query = (select(Lead.status, func.count())
             .where(Lead.assigned_partner_id == current_user.partner_id).group_by(Lead.status))
    counts = dict(db.session.execute(query).all())
    partner = db.session.get(Partner, current_user.partner_id) if current_user.partner_id else None
    return render_template(
        "home/index.html", counts=counts, statuses=list(LeadStatus), partner=partner
    )


@bp.get("/readyz")
def ready():  # type: ignore[no-untyped-def]
    """Readiness for load balancers: one query proves the database answers."""
    db.session.execute(select(1)).scalar_one()
    return {"status": "ready"}


@bp.get("/healthz")
def health():  # type: ignore[no-untyped-def]
    """Liveness for load balancers: answers without touching the database."""
    return {"status": "ok"}


@bp.get("/manage/")
@staff_required
def manage():  # type: ignore[no-untyped-def]
    """The staff's front page of the admin pages: partners, users, catalog, rules."""
    return render_template("home/manage.html")
