"""The compliance list (staff): partners sitting on overdue outcomes and untouched leads
now, oldest first, each with a one-click reminder to its users and when it was last
reminded, by whom."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from portal.core.errors import DomainError
from portal.core.forms import ConfirmForm
from portal.core.models import Partner, utcnow
from portal.core.web import staff_required
from portal.extensions import db
from portal.reports import forms, services
from portal.reports.views import bp

#: what the list keeps when it comes back after a reminder
_KEPT = ("distributor", "page", "period")


@bp.app_template_filter("age")
def age_filter(value: timedelta | None) -> str:
    """How long ago, roughly: "70 days", "26 h", "5 min"; "—" when there is none."""
    if value is None:
        return "—"
    minutes = max(int(value.total_seconds() // 60), 0)
    if minutes >= 48 * 60:
        return f"{minutes // (24 * 60)} days"
    return f"{minutes // 60} h" if minutes >= 60 else f"{max(minutes, 1)} min"


@bp.get("/compliance")
@staff_required
def compliance():  # type: ignore[no-untyped-def]
    """Partners with overdue outcomes or untouched leads now, the oldest offer first."""
    asked = forms.read(db.session, request.args, current_user)
    assert asked.scope is not None
    page = services.compliance_list(
        db.session, partner_ids=asked.scope.partner_ids,
        page=request.args.get("page", 1, type=int),
        per_page=int(current_app.config.get("COMPLIANCE_PAGE_SIZE", 50)))
    kept = {k: v for k, v in request.args.items() if k in _KEPT and v}
    return render_template("reports/compliance.html", asked=asked, page=page, now=utcnow(),
                           form=ConfirmForm(), kept=kept,
                           gate=current_app.config.get("COMPLIANCE_GATE_MAX_OVERDUE"),
                           options=forms.choices(db.session, current_user))


@bp.post("/compliance/<code>/remind")
@staff_required
def compliance_remind(code: str):  # type: ignore[no-untyped-def]
    """Email the partner's users what is overdue and untouched, once per click."""
    partner = db.session.scalars(select(Partner).where(Partner.code == code)).first()
    if partner is None:
        abort(404)
    if not ConfirmForm().validate_on_submit():
        abort(400, "The form had expired; reload the page and click again.")
    back = redirect(url_for("reports.compliance", **{
        k: v for k, v in request.args.items() if k in _KEPT and v}), 303)
    try:
        done = services.remind(db.session, partner, current_user._get_current_object())
    except DomainError as error:
        flash(error.message, "error")
        return back
    reminder = done.reminder
    if done.sent:
        people = "1 person" if reminder.recipients == 1 else f"{reminder.recipients} people"
        flash(f"Reminder sent to {people} at {partner.name}: {_counts(reminder)}.", "success")
    else:
        by = reminder.by_user
        who = (by.name or by.email) if by is not None else "someone"
        flash(f"{partner.name} was reminded {age_filter(utcnow() - reminder.created_at)} ago "
              f"by {who}; not sent again.", "info")
    return back


def _counts(reminder: Any) -> str:
    overdue = f"{reminder.overdue} overdue outcome{'s' if reminder.overdue != 1 else ''}"
    untouched = f"{reminder.untouched} untouched lead{'s' if reminder.untouched != 1 else ''}"
    return f"{overdue}, {untouched}"
