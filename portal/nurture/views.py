"""Nurture pages: managers edit tracks and see their results; prospects follow email links."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from wtforms import SelectChoice

from portal.core.forms import show_errors
from portal.core.models import EnrollmentStatus, NurtureStep, NurtureTrack, ProductLine
from portal.core.web import staff_required
from portal.extensions import db
from portal.nurture import services
from portal.nurture.forms import ConfirmForm, StepForm, TrackForm

bp = Blueprint("nurture", __name__)


def _track_or_404(track_id: int) -> NurtureTrack:
    track = db.session.get(NurtureTrack, track_id)
    if track is None:
        abort(404)
    return track


def _form_page(template: str, form: Any, **context: Any) -> Any:
    # A refused save answers 422, so the request's transaction is rolled back whole.
    return render_template(template, form=form, **context), 422 if form.errors else 200


# --- managers ----------------------------------------------------------------------------------


@bp.get("/manage/nurture/")
@staff_required
def tracks():  # type: ignore[no-untyped-def]
    """Every track with its enrolled, hand-raised and converted (won) counts."""
    page = services.tracks_page(db.session, request.args.get("page", 1, type=int),
                                current_app.config["PAGE_SIZE"])
    return render_template("nurture/tracks.html", page=page)


@bp.get("/manage/nurture/<int:track_id>")
@staff_required
def track(track_id: int):  # type: ignore[no-untyped-def]
    """One track: its results and its emails in order."""
    item = _track_or_404(track_id)
    return render_template("nurture/track.html", stats=services.track_stats(db.session, item),
                           track=item, steps=item.steps)


@bp.route("/manage/nurture/new", methods=["GET", "POST"])
@bp.route("/manage/nurture/<int:track_id>/edit", methods=["GET", "POST"])
@staff_required
def track_edit(track_id: int | None = None):  # type: ignore[no-untyped-def]
    """Add a track, or rename, re-target or pause one."""
    item = _track_or_404(track_id) if track_id is not None else None
    form = TrackForm(obj=item if request.method == "GET" else None)
    lines = db.session.scalars(select(ProductLine).where(ProductLine.active.is_(True))
                               .order_by(ProductLine.code)).all()
    form.product_line.choices = [SelectChoice("", "Any product line (fallback)")] + [
        SelectChoice(str(line.id), f"{line.code} · {line.name}") for line in lines]
    if request.method == "GET" and item is not None:
        form.product_line.data = str(item.product_line_id or "")
    if form.validate_on_submit():
        line = None
        if form.product_line.data:
            line = db.session.get(ProductLine, int(form.product_line.data)) \
                if form.product_line.data.isdigit() else None
            if line is None:
                form.product_line.errors = [*form.product_line.errors, "Pick a product line."]
        if not form.product_line.errors:
            try:
                item = services.save_track(db.session, item, name=form.name.data or "",
                                           product_line=line, active=bool(form.active.data))
            except services.NurtureError as error:
                show_errors(form, error)
            else:
                flash(f"Saved track {item.name}.", "success")
                return redirect(url_for("nurture.track", track_id=item.id), code=303)
    return _form_page("nurture/track_form.html", form, track=item)


@bp.route("/manage/nurture/<int:track_id>/steps/new", methods=["GET", "POST"])
@bp.route("/manage/nurture/<int:track_id>/steps/<int:step_id>/edit", methods=["GET", "POST"])
@staff_required
def step_edit(track_id: int, step_id: int | None = None):  # type: ignore[no-untyped-def]
    """Add an email to a track, or change one."""
    item = _track_or_404(track_id)
    step = db.session.get(NurtureStep, step_id) if step_id is not None else None
    if step_id is not None and (step is None or step.track_id != item.id):
        abort(404)
    form = StepForm(obj=step if request.method == "GET" else None)
    if request.method == "GET" and step is None:
        form.position.data = max((s.position for s in item.steps), default=0) + 1
    if form.validate_on_submit():
        try:
            services.save_step(
                db.session, item, step, position=form.position.data or 0,
                delay_days=form.delay_days.data or 0, subject=form.subject.data or "",
                body=form.body.data or "", link_url=form.link_url.data or "",
                link_label=form.link_label.data or "")
        except services.NurtureError as error:
            show_errors(form, error)
        else:
            flash("Saved the step.", "success")
            return redirect(url_for("nurture.track", track_id=item.id), code=303)
    return _form_page("nurture/step_form.html", form, track=item, step=step)


# --- prospects (public links from the emails) -------------------------------------------------


def _from_token(purpose: str, token: str) -> Any:
    found = services.read_token(db.session, purpose, token)
    if found is None:
        abort(404)
    return found


@bp.route("/n/<token>/talk", methods=["GET", "POST"])
def talk(token: str):  # type: ignore[no-untyped-def]
    """"Talk to a dealer now": a button (mail scanners follow links, so GET changes
    nothing); the POST makes the lead hot and routes it, then names the dealer."""
    enrollment, _step = _from_token("talk", token)
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        services.hand_raise(db.session, enrollment)
        return redirect(url_for("nurture.talk", token=token), code=303)
    lead = enrollment.lead
    return render_template("nurture/talk.html", form=form, lead=lead,
                           done=enrollment.hand_raised_at is not None,
                           dealer=lead.assigned_partner)


@bp.route("/n/<token>/unsubscribe", methods=["GET", "POST"])
def unsubscribe(token: str):  # type: ignore[no-untyped-def]
    """Stop this track's emails: a confirm button, then a confirmation."""
    enrollment, _step = _from_token("unsubscribe", token)
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        services.unsubscribe(db.session, enrollment)
        return redirect(url_for("nurture.unsubscribe", token=token), code=303)
    return render_template("nurture/unsubscribe.html", form=form, lead=enrollment.lead,
                           done=enrollment.status == EnrollmentStatus.UNSUBSCRIBED)


@bp.route("/n/<token>/click", methods=["GET", "POST"])
def click(token: str):  # type: ignore[no-untyped-def]
    """A step's content: the email's web version with a button that counts and opens it."""
    enrollment, step = _from_token("click", token)
    if step is None or not step.link_url:
        abort(404)
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        # The address was set by staff on the step (checked https?://), never by the link.
        return redirect(services.record_click(db.session, enrollment, step), code=303)
    return render_template("nurture/click.html", form=form, step=step, lead=enrollment.lead,
                           talk_token=services.make_token("talk", enrollment.id))
