"""Partner administration pages (list, create, edit, pause, CSV import/export)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import quote

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)

from portal.core.errors import InvalidInput
from portal.core.models import Partner
from portal.core.web import staff_required
from portal.extensions import db
from portal.partners import csv as partners_csv
from portal.partners import services as service
from portal.partners.forms import (
    PartnerFilterForm,
    PartnerForm,
    PartnerImportForm,
    PauseForm,
    ResumeForm,
    choices,
)
from portal.reports import metrics

bp = Blueprint("partners", __name__, url_prefix="/manage")

#: the list and the partner page show the compliance figures of this many days of offers
#: (the reports' "Last 90 days", which their links open)
COMPLIANCE_DAYS = 90


def _load(code: str) -> Partner:
    partner = service.partner_by_code(db.session, code)
    if partner is None:
        abort(404)
    return partner


@bp.get("/partners")
@staff_required
def partners():  # type: ignore[no-untyped-def]
    """Partners, searchable and paginated."""
    form = PartnerFilterForm(formdata=request.args)
    form.distributor.choices = choices([
        ("", "Any distributor"),
        *((code, f"{code} — {name}") for code, name in service.distributors(db.session)),
    ])
    filters = service.PartnerFilters(
        q=(form.q.data or "")[:100], kind=form.kind.data or "", status=form.status.data or "",
        distributor=form.distributor.data or "",
    )
    page = service.list_partners(db.session, filters, page=request.args.get("page", 1, type=int),
                                 per_page=current_app.config["PAGE_SIZE"])
    figures = metrics.counts_for(db.session, metrics.last_days(COMPLIANCE_DAYS), page.items)
    return render_template("partners/list.html", form=form, page=page, figures=figures)


@bp.route("/partners/new", methods=["GET", "POST"])
@staff_required
def partner_new():  # type: ignore[no-untyped-def]
    """Create a distributor or dealer."""
    form = PartnerForm()
    form.product_lines.choices = choices(service.product_line_choices(db.session))
    if form.validate_on_submit():
        try:
            partner, _ = service.save_partner(db.session, form.to_input())
        except InvalidInput as error:
            form.add_errors(error.fields)
        else:
            flash(f"Partner {partner.code} created.", "success")
            return redirect(url_for("partners.partner", code=partner.code), 303)
    status = 422 if form.errors else 200
    return render_template("partners/form.html", form=form, partner=None,
                           distributors=service.distributors(db.session)), status


@bp.route("/partners/<code>/edit", methods=["GET", "POST"])
@staff_required
def partner_edit(code: str):  # type: ignore[no-untyped-def]
    """Edit a partner: every CSV field, territories and product lines."""
    partner = _load(code)
    if request.method == "GET":
        values: dict[str, object] = dict(service.partner_values(partner))
        values["territories"] = "\n".join(t.rule for t in partner.territories)
        values["product_lines"] = [line.code for line in partner.product_lines]
        values["forwarding"] = partner.forwarding
        form = PartnerForm(data=values)
    else:
        form = PartnerForm()
    form.product_lines.choices = choices(
        service.product_line_choices(db.session, partner.product_lines)
    )
    if form.validate_on_submit():
        try:
            service.save_partner(db.session, form.to_input(), partner=partner)
        except InvalidInput as error:
            form.add_errors(error.fields)
        else:
            flash(f"Partner {partner.code} saved.", "success")
            return redirect(url_for("partners.partner", code=partner.code), 303)
    status = 422 if form.errors else 200
    return render_template("partners/form.html", form=form, partner=partner,
                           distributors=service.distributors(db.session)), status


@bp.get("/partners/<code>")
@staff_required
def partner(code: str):  # type: ignore[no-untyped-def]
    """One partner: details, territories, product lines, users and dealers."""
    partner = _load(code)
    return _detail(partner, PauseForm(), ResumeForm())


def _detail(partner: Partner, pause_form: PauseForm, resume_form: ResumeForm) -> str:
    dealers, dealer_count = service.partner_dealers(db.session, partner)
    figures = metrics.counts_for(db.session, metrics.last_days(COMPLIANCE_DAYS), [partner])
    return render_template(
        "partners/detail.html", partner=partner, dealers=dealers,
        dealer_count=dealer_count, users=service.partner_users(db.session, partner),
        pause_form=pause_form, resume_form=resume_form, figures=figures.get(partner.id),
    )


@bp.post("/partners/<code>/pause")
@staff_required
def partner_pause(code: str):  # type: ignore[no-untyped-def]
    """Pause a partner: no new offers until it is resumed."""
    partner = _load(code)
    form = PauseForm()
    if not form.validate_on_submit():
        return _detail(partner, form, ResumeForm()), 422
    service.pause_partner(db.session, partner, form.reason.data or "")
    flash(f"{partner.code} is paused: it gets no new offers until resumed.", "success")
    return redirect(url_for("partners.partner", code=partner.code), 303)


@bp.post("/partners/<code>/resume")
@staff_required
def partner_resume(code: str):  # type: ignore[no-untyped-def]
    """Resume a paused partner."""
    partner = _load(code)
    if not ResumeForm().validate_on_submit():
        abort(400)
    service.resume_partner(db.session, partner)
    flash(f"{partner.code} is active again and may receive offers.", "success")
    return redirect(url_for("partners.partner", code=partner.code), 303)


@bp.get("/partners/export.csv")
@staff_required
def partners_export():  # type: ignore[no-untyped-def]
    """Download every partner as the partners CSV, streamed in chunks."""
    chunks = partners_csv.export_partners(db.session, bom=True)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        stream_with_context(chunks), mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="partners-{stamp}.csv"'},
    )


@bp.route("/partners/import", methods=["GET", "POST"])
@staff_required
def partners_import():  # type: ignore[no-untyped-def]
    """Upload a partners CSV; show what was created, updated and rejected."""
    form = PartnerImportForm()
    report = None
    status = 200
    if form.validate_on_submit():
        report = partners_csv.import_partners(
            db.session, form.file.data.stream,
            max_bytes=current_app.config["PARTNERS_CSV_MAX_BYTES"],
        )
        if report.fatal:
            status = 422  # nothing was written; the boundary rolls back anyway
    elif form.errors:
        status = 422
    error_href = None
    if report is not None and report.errors:
        error_href = "data:text/csv;charset=utf-8," + quote(report.error_csv())
    return render_template("partners/import.html", form=form, report=report,
                           error_href=error_href), status
