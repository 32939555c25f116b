"""Catalog administration: product lines, competitors, campaigns and lead sources.

Nothing here is ever deleted: leads point at these rows, so they are deactivated instead.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from portal.catalog import services
from portal.catalog.forms import CampaignForm, CompetitorForm, ProductLineForm, SourceForm
from portal.catalog.services import CHANNELS
from portal.core.errors import InvalidInput
from portal.core.forms import ConfirmForm, show_errors
from portal.core.models import Campaign, Competitor, ProductLine, Source
from portal.core.pagination import Page, paginate
from portal.core.web import admin_required, staff_required
from portal.extensions import db

bp = Blueprint("catalog", __name__, url_prefix="/manage")


def _get_or_404(model: type[Any], item_id: int) -> Any:
    item = db.session.get(model, item_id)
    if item is None:
        abort(404)
    return item


def _page(query: Any) -> Page[Any]:
    return paginate(db.session, query, request.args.get("page", 1, type=int),
                             current_app.config["PAGE_SIZE"])


def _form_page(template: str, form: Any, **context: Any) -> Any:
    # A form with errors answers 422: the request's transaction is rolled back, so a
    # refused save can never leave anything half-written.
    return render_template(template, form=form, **context), 422 if form.errors else 200


# --- product lines -----------------------------------------------------------------------


@bp.get("/product-lines")
@admin_required
def product_lines():  # type: ignore[no-untyped-def]
    """The product lines partners are authorised for and leads ask about."""
    page = _page(select(ProductLine).order_by(ProductLine.code))
    return render_template("catalog/product_lines.html", page=page)


@bp.route("/product-lines/new", methods=["GET", "POST"])
@bp.route("/product-lines/<int:line_id>/edit", methods=["GET", "POST"])
@admin_required
def product_line_edit(line_id: int | None = None):  # type: ignore[no-untyped-def]
    """Add a product line, or change one (deactivate rather than delete)."""
    line = _get_or_404(ProductLine, line_id) if line_id is not None else None
    form = ProductLineForm(obj=line if request.method == "GET" else None)
    if request.method == "GET" and line is not None:
        form.aliases.data = ", ".join(line.aliases)
    if form.validate_on_submit():
        try:
            line = services.save_product_line(
                db.session, line, code=form.code.data or "", name=form.name.data or "",
                description=form.description.data or "", active=bool(form.active.data),
                aliases=form.aliases.data or "",
            )
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Saved product line {line.code}.", "success")
            return redirect(url_for("catalog.product_lines"), code=303)
    return _form_page("catalog/form.html", form, item=line, kind="product line",
                      back=url_for("catalog.product_lines"))


# --- competitors -------------------------------------------------------------------------


@bp.route("/competitors", methods=["GET", "POST"])
@admin_required
def competitors():  # type: ignore[no-untyped-def]
    """The competitors partners pick from when a lead is lost; add one at the top."""
    form = CompetitorForm()
    if form.validate_on_submit():
        try:
            competitor = services.save_competitor(db.session, None, name=form.name.data or "")
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Added {competitor.name}.", "success")
            return redirect(url_for("catalog.competitors"), code=303)
    page = _page(select(Competitor).order_by(Competitor.name))
    return _form_page("catalog/competitors.html", form, page=page,
                      action_form=ConfirmForm())


@bp.route("/competitors/<int:competitor_id>/edit", methods=["GET", "POST"])
@admin_required
def competitor_edit(competitor_id: int):  # type: ignore[no-untyped-def]
    """Rename a competitor (past outcomes follow the new name)."""
    competitor = _get_or_404(Competitor, competitor_id)
    form = CompetitorForm(obj=competitor if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            services.save_competitor(db.session, competitor, name=form.name.data or "")
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Renamed to {competitor.name}.", "success")
            return redirect(url_for("catalog.competitors"), code=303)
    return _form_page("catalog/form.html", form, item=competitor, kind="competitor",
                      back=url_for("catalog.competitors"))


@bp.post("/competitors/<int:competitor_id>/active")
@admin_required
def competitor_active(competitor_id: int):  # type: ignore[no-untyped-def]
    """Activate or deactivate a competitor (``active`` = 1 or 0)."""
    competitor = _get_or_404(Competitor, competitor_id)
    if not ConfirmForm().validate_on_submit() or request.form.get("active") not in ("0", "1"):
        abort(400)
    active = request.form["active"] == "1"
    services.set_competitor_active(db.session, competitor, active)
    flash(f"{competitor.name} is {'active' if active else 'deactivated'}.", "success")
    return redirect(url_for("catalog.competitors"), code=303)


# --- campaigns ---------------------------------------------------------------------------


@bp.get("/campaigns")
@staff_required
def campaigns():  # type: ignore[no-untyped-def]
    """Marketing campaigns, with their cost for ROI."""
    page = _page(select(Campaign).order_by(Campaign.code))
    return render_template("catalog/campaigns.html", page=page, channels=CHANNELS)


@bp.route("/campaigns/new", methods=["GET", "POST"])
@bp.route("/campaigns/<int:campaign_id>/edit", methods=["GET", "POST"])
@staff_required
def campaign_edit(campaign_id: int | None = None):  # type: ignore[no-untyped-def]
    """Add a campaign, or change one (deactivate rather than delete)."""
    campaign = _get_or_404(Campaign, campaign_id) if campaign_id is not None else None
    form = CampaignForm(obj=campaign if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            campaign = services.save_campaign(
                db.session, campaign, code=form.code.data or "", name=form.name.data or "",
                channel=form.channel.data or "", cost=form.cost.data,
                starts_on=form.starts_on.data, ends_on=form.ends_on.data,
                active=bool(form.active.data),
            )
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Saved campaign {campaign.code}.", "success")
            return redirect(url_for("catalog.campaigns"), code=303)
    return _form_page("catalog/form.html", form, item=campaign, kind="campaign",
                      back=url_for("catalog.campaigns"))


# --- sources -----------------------------------------------------------------------------


@bp.get("/sources")
@admin_required
def sources():  # type: ignore[no-untyped-def]
    """Where inquiries come from, with a cost per lead for ROI."""
    page = _page(select(Source).order_by(Source.code))
    return render_template("catalog/sources.html", page=page)


@bp.route("/sources/new", methods=["GET", "POST"])
@bp.route("/sources/<int:source_id>/edit", methods=["GET", "POST"])
@admin_required
def source_edit(source_id: int | None = None):  # type: ignore[no-untyped-def]
    """Add a lead source, or change one (deactivate rather than delete)."""
    source = _get_or_404(Source, source_id) if source_id is not None else None
    form = SourceForm(obj=source if request.method == "GET" else None)
    if form.validate_on_submit():
        try:
            source = services.save_source(
                db.session, source, code=form.code.data or "", name=form.name.data or "",
                cost_per_lead=form.cost_per_lead.data, active=bool(form.active.data),
            )
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Saved source {source.code}.", "success")
            return redirect(url_for("catalog.sources"), code=303)
    return _form_page("catalog/form.html", form, item=source, kind="source",
                      back=url_for("catalog.sources"))
