"""The qualification and ranking rules editor: versions, history and a "try it" preview."""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from wtforms import SelectChoice

from portal.core.access import parse_lead_id
from portal.core.forms import show_errors
from portal.core.models import Lead, ScoringRules, User
from portal.core.web import admin_required, is_htmx, staff_required
from portal.extensions import db
from portal.rules import forms as layout
from portal.rules import services
from portal.rules.forms import RulesForm, form_data

bp = Blueprint("rules", __name__, url_prefix="/manage/rules")


def _lead_label(lead: Lead) -> str:
    return f"{lead.name} · {lead.status} · {lead.created_at:%Y-%m-%d}"


def _try_facts(form: RulesForm) -> dict[str, Any]:
    """The preview's subject: the chosen lead, or the inquiry typed in."""
    lead_id = parse_lead_id(form.try_lead.data) if form.try_lead.data else None
    if lead_id is not None:
        lead = db.session.get(Lead, lead_id)
        if lead is None:
            abort(404)
        return {"lead": lead}
    return {"facts": services.typed_facts(
        name=form.try_name.data or "", email=form.try_email.data or "",
        phone=bool(form.try_phone.data), product_line=bool(form.try_product_line.data),
        source=form.try_source.data or "",
        answers={"timeline": form.try_timeline.data or "", "budget": form.try_budget.data or "",
                 "role": form.try_role.data or ""},
        repeats=form.try_repeats.data or 0, engagements=form.try_engagements.data or 0)}


@bp.route("/", methods=["GET", "POST"])
@admin_required
def edit():  # type: ignore[no-untyped-def]
    """Edit the rules; "Try it" shows the draft's verdict next to the current one (htmx
    fragment on the same URL), "Save" stores the draft as a new version."""
    current_row = services.latest_version(db.session)
    start = services.rules_of(current_row)
    if request.method == "GET" and request.args.get("from"):
        source = db.session.get(ScoringRules, request.args.get("from", type=int) or 0)
        if source is None:
            abort(404)
        start = services.rules_of(source)
    form = RulesForm(data=form_data(start) if request.method == "GET" else None)
    form.try_lead.choices = [SelectChoice("", "— type an inquiry instead —")] + [
        SelectChoice(str(lead.id), _lead_label(lead)) for lead in services.recent_leads(db.session)]
    form.preview.render_kw = {"hx-post": url_for("rules.edit"), "hx-target": "#rules-preview",
                              "class": "button secondary"}
    result = None
    problem = None
    if form.validate_on_submit():
        try:
            draft = services.build_rules(form.rules_data())
            if form.save.data:
                row = services.save_rules(db.session, draft, note=form.note.data or "",
                                          user=current_user)
                flash(f"Saved version {row.id}: it applies to every inquiry from now on.",
                      "success")
                return redirect(url_for("rules.edit"), code=303)
            result = services.preview(db.session, draft, **_try_facts(form))
        except services.RulesError as error:
            show_errors(form, error)
            problem = error.message
    elif request.method == "POST":
        problem = "Please correct the rules marked below."
    status = 422 if form.errors or problem else 200
    if is_htmx() and request.method == "POST":
        # The fragment says what is wrong; htmx swaps a 422 in (base.html's responseHandling).
        return render_template("rules/_preview.html", preview=result, problem=problem,
                               form=form), status
    return render_template("rules/edit.html", form=form, layout=layout,
                           preview=result, problem=problem,
                           current=current_row), status


@bp.get("/versions")
@staff_required
def versions():  # type: ignore[no-untyped-def]
    """Every saved version of the rules: who, when, why; the newest applies."""
    page = services.versions_page(db.session, request.args.get("page", 1, type=int),
                                  current_app.config["PAGE_SIZE"])
    return render_template("rules/versions.html", page=page)


@bp.get("/versions/<int:version_id>")
@staff_required
def version(version_id: int):  # type: ignore[no-untyped-def]
    """One version's rules in full, and what it changed from the version before."""
    row = db.session.get(ScoringRules, version_id)
    if row is None:
        abort(404)
    previous = db.session.scalars(
        select(ScoringRules).where(ScoringRules.id < row.id)
        .order_by(ScoringRules.id.desc()).limit(1)
    ).first()
    rules = services.rules_of(row)
    author = db.session.get(User, row.created_by_id) if row.created_by_id else None
    latest = services.latest_version(db.session)
    return render_template(
        "rules/version.html", row=row, rules=rules.to_dict(), author=author,
        changes=services.changes_between(services.rules_of(previous), rules),
        previous=previous, is_current=latest is not None and latest.id == row.id)
