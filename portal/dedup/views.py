"""Managers merge duplicate leads by hand, and undo a merge."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user

from portal.core.access import parse_lead_id
from portal.core.errors import DomainError
from portal.core.lifecycle import Actor
from portal.core.models import Lead
from portal.core.web import staff_required
from portal.dedup import services as merge_service
from portal.dedup.forms import MergeForm, UnmergeForm
from portal.extensions import db

bp = Blueprint("dedup", __name__, url_prefix="/manage/merge")


def _lead(raw: str | None) -> Lead | None:
    lead_id = parse_lead_id(raw) if raw else None
    return db.session.get(Lead, lead_id) if lead_id is not None else None


def _page(form: MergeForm, status: int = 200):  # type: ignore[no-untyped-def]
    query = request.args.get("q", "")
    keep = _lead(form.keep.data)
    duplicate = _lead(form.duplicate.data)
    return render_template(
        "dedup/index.html", form=form, query=query,
        found=merge_service.find_leads(db.session, query),
        keep=keep, duplicate=duplicate,
        suggestions=merge_service.likely_duplicates(db.session, keep) if keep else [],
        merges=merge_service.recent_merges(db.session, request.args.get("page", 1, type=int),
                                           current_app.config["PAGE_SIZE"]),
        unmerge_form=UnmergeForm(),
    ), status


@bp.get("/")
@staff_required
def index():  # type: ignore[no-untyped-def]
    """Find leads, compare two, merge the duplicate into the one to keep; recent merges."""
    form = MergeForm(data={"keep": request.args.get("keep", ""),
                           "duplicate": request.args.get("duplicate", "")})
    return _page(form)


@bp.post("/")
@staff_required
def merge():  # type: ignore[no-untyped-def]
    """Merge the duplicate into the lead to keep (it is disqualified as merged)."""
    form = MergeForm()
    if form.validate_on_submit():
        keep, duplicate = _lead(form.keep.data), _lead(form.duplicate.data)
        if keep is None:
            form.keep.errors = [*form.keep.errors, "No lead with this id."]
        if duplicate is None:
            form.duplicate.errors = [*form.duplicate.errors, "No lead with this id."]
        if keep is not None and duplicate is not None:
            try:
                merge_service.merge_leads(db.session, keep, duplicate, Actor.of(current_user),
                                          reason=form.reason.data or "")
            except DomainError as error:
                form.form_errors.append(error.message)
            else:
                flash(f"Merged {duplicate.name} into {keep.name}: it now has "
                      f"{keep.inquiries} inquiries.", "success")
                return redirect(url_for("dedup.index"), code=303)
    return _page(form, 422)


@bp.post("/<lead_id>/unmerge")
@staff_required
def unmerge(lead_id: str):  # type: ignore[no-untyped-def]
    """Undo a lead's merge: it returns to its previous state and partner."""
    lead = _lead(lead_id)
    if lead is None:
        abort(404)
    form = UnmergeForm()
    if form.validate_on_submit():
        try:
            merge_service.unmerge_lead(db.session, lead, Actor.of(current_user),
                                       reason=form.reason.data or "")
        except DomainError as error:
            flash(f"Could not unmerge {lead.name}: {error.message}", "error")
            return redirect(url_for("dedup.index"), code=303)
        flash(f"Unmerged {lead.name}: it is {lead.status} again.", "success")
    else:
        flash("Say why you unmerge it.", "error")
    return redirect(url_for("dedup.index"), code=303)
