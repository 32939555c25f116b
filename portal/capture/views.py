"""The ways in: public campaign forms (hosted and embedded), a partner's own capture
page, and the staff's CSV lead import with live progress."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from flask import (
    Blueprint,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.exc import DBAPIError

from portal.capture import branding, imports, spam
from portal.capture.forms import (
    BrandForm,
    MappingForm,
    PartnerCaptureForm,
    PublicCaptureForm,
    StartImportForm,
    UploadForm,
    choices,
    mapping_form,
)
from portal.capture.import_dry_run import DryRun
from portal.capture.import_values import (
    FIELD_LABELS,
    LEAVE_EMPTY,
    Catalog,
    campaign_label,
)
from portal.capture.services import (
    CaptureError,
    CaptureResult,
    IdempotencyKeyReused,
    capture_inquiry,
    validate_inquiry,
)
from portal.core.database import lost_a_race
from portal.core.errors import InvalidInput
from portal.core.forms import show_errors
from portal.core.lifecycle import Actor
from portal.core.models import (
    Campaign,
    ImportStatus,
    LeadImport,
    ProductLine,
    Source,
    utcnow,
)
from portal.core.models.codes import by_code
from portal.core.pagination import paginate
from portal.core.web import is_htmx, roles_required, staff_required
from portal.extensions import csrf, db

bp = Blueprint("capture", __name__)

_TOKEN = re.compile(r"[0-9a-f]{32}")


def _campaign_or_404(code: str) -> Campaign:
    campaign = by_code(db.session, Campaign, code, active_only=True)
    if campaign is None:
        abort(404)
    return campaign


def _line_choices(only: list[ProductLine] | None = None) -> list[Any]:
    lines = only or db.session.scalars(
        select(ProductLine).where(ProductLine.active).order_by(ProductLine.name)).all()
    return choices([("", "Choose…")] + [(line.code, line.name) for line in lines
                                        if line.active])


def _form_source() -> str | None:
    """The source code public-form leads carry, when the manufacturer set one up."""
    code = str(current_app.config.get("CAPTURE_FORM_SOURCE", "WEB"))
    source = by_code(db.session, Source, code, active_only=True)
    return source.code if source else None


def _token(raw: str | None) -> str | None:
    return raw if raw and _TOKEN.fullmatch(raw) else None


def _capture_once(data: dict[str, Any], actor: Actor, **options: Any) -> CaptureResult:
    """Capture; the same page sent twice (a double click) answers with the first lead.

    A page sent again after its fields were changed (back, edit, send) is a new send: its
    form token is not a promise about the body, as an API client's Idempotency-Key is.
    """
    try:
        result = capture_inquiry(db.session, data, actor, **options)
        db.session.flush()
        return result
    except IdempotencyKeyReused:
        return capture_inquiry(db.session, data, actor,
                               **dict(options, idempotency_key=None))
    except DBAPIError as error:
        # A double click raced past the idempotency check (the first request's key holds),
        # or the server broke a deadlock by failing this one: once more.
        if not lost_a_race(error):
            raise
        db.session.rollback()
        return capture_inquiry(db.session, data, actor, **options)


# --- public form (no login) --------------------------------------------------------------


def _public_page(form: PublicCaptureForm, campaign: Campaign, status: int = 200) -> Any:
    return render_template("capture/public_form.html", form=form, campaign=campaign), status


@bp.get("/f/<code>")
def public_form(code: str):  # type: ignore[no-untyped-def]
    """A campaign's hosted inquiry form."""
    campaign = _campaign_or_404(code)
    form = PublicCaptureForm(formdata=None)
    form.product_line.choices = _line_choices()
    form.stamp.data = spam.sign_stamp(campaign.code)
    form.token.data = uuid.uuid4().hex
    return _public_page(form, campaign)


@bp.post("/f/<code>")
@csrf.exempt  # posted cross-site by the embedded snippet; see PublicCaptureForm
def public_submit(code: str):  # type: ignore[no-untyped-def]
    """Take a public inquiry: spam checks, then capture; 303 to the thank-you page."""
    campaign = _campaign_or_404(code)
    address = (request.remote_addr or "unknown")[:64]
    if spam.rate_limited(db.session, address):
        response = render_template("capture/rate_limited.html", campaign=campaign)
        window = int(float(current_app.config.get("CAPTURE_RATE_WINDOW_MINUTES", 10)) * 60)
        return response, 429, {"Retry-After": str(window)}
    thanks = url_for("capture.public_thanks", code=campaign.code)
    form = PublicCaptureForm()
    form.product_line.choices = _line_choices()
    if form.website.data:
        # A bot filled in the hidden field: it sees success, nothing is stored.
        spam.record_attempt(db.session, address, campaign.code)
        return redirect(thanks, code=303)
    stamp = spam.check_stamp(form.stamp.data or "", campaign.code,
                             embedded=form.embed.data == "1")
    valid = form.validate()
    if not stamp.ok and not stamp.too_fast:
        form.form_errors.append(stamp.message)
    elif valid:
        data = form.inquiry()
        data["campaign"] = campaign.code
        source = _form_source()
        if source:
            data["source"] = source
        if stamp.too_fast:
            return _confirm_quick_send(form, campaign, data, address)
        try:
            _capture_once(data, Actor.system("web-form"),
                          idempotency_scope=f"form:{campaign.code}",
                          idempotency_key=_token(form.token.data))
        except CaptureError as error:
            form.show_capture_errors(error.fields, error.message)
        else:
            spam.record_attempt(db.session, address, campaign.code)
            return redirect(thanks, code=303)
    # Shown again on the hosted page, with a stamp that starts now.
    form.stamp.data = spam.sign_stamp(campaign.code)
    form.embed.data = ""
    form.token.data = _token(form.token.data) or uuid.uuid4().hex
    return _public_page(form, campaign, 422)


def _confirm_quick_send(form: PublicCaptureForm, campaign: Campaign, data: dict[str, Any],
                        address: str) -> Any:
    """A form sent sooner than a person types (autofill): its answers' problems next to
    their fields, or, when they are good, the page again to confirm with one press."""
    try:
        validate_inquiry(db.session, data)
    except CaptureError as error:
        form.show_capture_errors(error.fields, error.message)
        form.stamp.data = spam.sign_stamp(campaign.code)
        return _public_page(form, campaign, 422)
    # Counted like a send, so a bot that does come back twice still meets the rate limit.
    spam.record_attempt(db.session, address, campaign.code)
    form.stamp.data = spam.sign_stamp(campaign.code, confirmed=True)
    form.token.data = _token(form.token.data) or uuid.uuid4().hex
    return render_template("capture/public_form.html", form=form, campaign=campaign,
                           confirm=spam.CONFIRM)


@bp.get("/f/<code>/thanks")
def public_thanks(code: str):  # type: ignore[no-untyped-def]
    """The thank-you page after a public inquiry."""
    return render_template("capture/thanks.html", campaign=_campaign_or_404(code))


@bp.get("/f/<code>/brand.css")
def public_style(code: str):  # type: ignore[no-untyped-def]
    """The campaign's accent colour as a stylesheet (the policy allows no inline style)."""
    campaign = _campaign_or_404(code)
    response = Response(branding.brand_css(campaign), mimetype="text/css")
    response.cache_control.public = True
    response.cache_control.max_age = 3600  # the page's link changes with the look
    return response


@bp.get("/f/<code>/logo")
def public_logo(code: str):  # type: ignore[no-untyped-def]
    """The campaign's logo, as uploaded (checked to be an image then)."""
    campaign = _campaign_or_404(code)
    if not campaign.logo_type or not campaign.logo:
        abort(404)
    response = Response(campaign.logo, mimetype=campaign.logo_type)
    response.cache_control.public = True
    response.cache_control.max_age = 3600
    return response


# --- a partner's own capture -------------------------------------------------------------


@bp.route("/capture/new", methods=["GET", "POST"])
@roles_required("partner")
def partner_new():  # type: ignore[no-untyped-def]
    """A dealer records its own walk-in or show contact: the lead is its own, accepted."""
    partner = current_user.partner
    if partner is None:
        abort(403)
    form = PartnerCaptureForm()
    form.product_line.choices = _line_choices(list(partner.product_lines))
    sources = db.session.scalars(
        select(Source).where(Source.active).order_by(Source.name)).all()
    form.source.choices = choices([("", "Choose…")] + [(s.code, s.name) for s in sources])
    if form.validate_on_submit():
        data = form.inquiry()
        if form.source.data:
            data["source"] = form.source.data
        try:
            result = _capture_once(
                data, Actor.of(current_user, device="web"),
                idempotency_scope=f"partner-form:{current_user.id}",
                idempotency_key=_token(form.token.data), owner_partner=partner)
        except CaptureError as error:
            form.show_capture_errors(error.fields, error.message)
        else:
            lead = result.lead
            if result.duplicate_of is not None:
                flash(f"{lead.name} is already one of your leads: this inquiry was added "
                      "to it.", "info")
            elif lead.status == "disqualified":
                flash(f"Saved {lead.name}, but the rules disqualified it: "
                      f"{lead.qualification_reason}", "warning")
            else:
                flash(f"Saved {lead.name}: the lead is yours and marked accepted.", "success")
            # On to the new lead, where its next step is recorded (a disqualified one
            # stays the dealer's, as its own capture, and is shown there too).
            return redirect(url_for("leads.lead", lead_id=lead.id), code=303)
    if not form.token.data:
        form.token.data = uuid.uuid4().hex
    status = 422 if form.errors or form.form_errors else 200
    return render_template("capture/partner_new.html", form=form, partner=partner), status


# --- staff: campaigns' forms -------------------------------------------------------------


@bp.get("/capture/")
@staff_required
def index():  # type: ignore[no-untyped-def]
    """Active campaigns with their public form and snippet."""
    page = paginate(db.session, select(Campaign).where(Campaign.active).order_by(Campaign.code),
                    request.args.get("page", 1, type=int), current_app.config["PAGE_SIZE"])
    return render_template("capture/index.html", page=page)


@bp.get("/capture/campaigns/<code>/embed")
@staff_required
def embed(code: str):  # type: ignore[no-untyped-def]
    """The HTML snippet that puts a campaign's form on any web page."""
    campaign = _campaign_or_404(code)
    base = str(current_app.config["PORTAL_BASE_URL"]).rstrip("/")
    form = PublicCaptureForm(formdata=None)
    form.product_line.choices = _line_choices()
    snippet = render_template("capture/_snippet.html", form=form, campaign=campaign,
                              action=f"{base}/f/{campaign.code}")
    return render_template("capture/embed.html", campaign=campaign, snippet=snippet.strip(),
                           hosted=f"{base}/f/{campaign.code}")


@bp.route("/capture/campaigns/<code>/brand", methods=["GET", "POST"])
@staff_required
def brand(code: str):  # type: ignore[no-untyped-def]
    """The campaign's public form: heading, wording, accent colour and logo."""
    campaign = by_code(db.session, Campaign, code)
    if campaign is None:
        abort(404)
    form = BrandForm(obj=campaign if request.method == "GET" else None)
    if form.validate_on_submit():
        upload = form.logo.data
        try:
            branding.save_brand(
                db.session, campaign, form_heading=form.form_heading.data or "",
                form_intro=form.form_intro.data or "", thanks_text=form.thanks_text.data or "",
                accent_color=form.accent_color.data or "",
                logo=upload.read(branding.LOGO_MAX_BYTES + 1) if upload else None,
                remove_logo=bool(form.remove_logo.data))
        except InvalidInput as error:
            show_errors(form, error)
        else:
            flash(f"Saved the look of the form for {campaign.code}.", "success")
            return redirect(url_for("capture.brand", code=campaign.code), code=303)
    status = 422 if form.errors or form.form_errors else 200
    return render_template("capture/brand.html", form=form, campaign=campaign), status


# --- staff: CSV import -------------------------------------------------------------------


def _import_or_404(import_id: int, *, fresh: bool = False) -> LeadImport:
    # ``fresh``: the job updates the row from another session; read what it committed.
    lead_import = db.session.get(LeadImport, import_id, populate_existing=fresh)
    if lead_import is None:
        abort(404)
    return lead_import


@bp.route("/capture/imports", methods=["GET", "POST"])
@staff_required
def imports_list():  # type: ignore[no-untyped-def]
    """Upload a leads CSV (step 1), and the imports so far."""
    form = UploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            lead_import = imports.create_import(db.session, upload.stream,
                                                upload.filename or "", current_user)
        except imports.ImportFileError as error:
            form.file.errors = [error.message]  # type: ignore[assignment]
        else:
            return redirect(url_for("capture.import_map", import_id=lead_import.id), code=303)
    page = paginate(db.session, imports.recent_imports_query(),
                    request.args.get("page", 1, type=int), current_app.config["PAGE_SIZE"])
    status = 422 if form.errors else 200
    return render_template("capture/imports.html", form=form, page=page), status


def _targets() -> list[tuple[str, str]]:
    return [(target, FIELD_LABELS[target]) for target in imports.TARGETS]


def _source_choices() -> list[Any]:
    rows = db.session.scalars(select(Source).where(Source.active).order_by(Source.name)).all()
    return choices([("", "No source")] + [(str(r.id), f"{r.name} ({r.code})") for r in rows])


def _campaign_choices() -> list[Any]:
    """Every campaign, running ones first: an import may credit one that has ended."""
    rows = db.session.scalars(select(Campaign).order_by(
        Campaign.active.desc(), Campaign.starts_on.desc(), Campaign.code)).all()
    return choices([("", "No campaign")] + [(str(r.id), campaign_label(r)) for r in rows])


@dataclass
class _ValueGroup:
    """The distinct values of one closed column, each with its pick list's field name."""

    index: int
    column: str
    target: str
    values: list[tuple[str, str]] = field(default_factory=list)  #: (field name, value)


def _value_groups(lead_import: LeadImport, catalog: Catalog
                  ) -> tuple[list[_ValueGroup], list[tuple[str, str, list[tuple[str, str]], str]]]:
    """The closed columns' values to map (page groups, and the form's selects)."""
    groups, selects = [], []
    found = imports.distinct_values(imports.file_path(lead_import), lead_import.mapping)
    for index, distinct in found.items():
        target = lead_import.mapping[index]
        options = [("", "Not recognised: refuse these rows"),
                   (LEAVE_EMPTY, f"Leave {FIELD_LABELS[target].lower()} empty"),
                   *((c.code, c.label) for c in catalog.choices.get(target, []))]
        picks = (lead_import.value_map or {}).get(target, {})
        group = _ValueGroup(index=index, column=lead_import.header[index] or
                            f"column {index + 1}", target=target)
        for n, value in enumerate(distinct):
            name = f"val_{index}_{n}"
            preset = picks[value] if value in picks else catalog.pick(target, value)
            selects.append((name, value, options, preset))
            group.values.append((name, value))
        groups.append(group)
    return groups, selects


def _picked(form: MappingForm, groups: list[_ValueGroup],
            mapping: list[str]) -> dict[str, dict[str, str]]:
    """The value picks sent, for the columns still mapped as they were shown."""
    picked: dict[str, dict[str, str]] = {}
    for group in groups:
        if mapping[group.index] == group.target:
            # A select the request did not send is no pick: its value keeps its match.
            picked[group.target] = {value: form[name].data or "" for name, value
                                    in group.values if form[name].raw_data}
    return picked


def _chosen(model: type[Any], raw: str | None) -> Any:
    return db.session.get(model, int(raw)) if (raw or "").isdigit() else None


@bp.route("/capture/imports/<int:import_id>/map", methods=["GET", "POST"])
@staff_required
def import_map(import_id: int):  # type: ignore[no-untyped-def]
    """Step 2: map the columns and their values, check them by a dry run (nothing is
    written), then import what the dry run showed."""
    lead_import = _import_or_404(import_id, fresh=True)  # its dry run is a job's
    if lead_import.status != ImportStatus.UPLOADED:
        return redirect(url_for("capture.import_progress", import_id=import_id), code=303)
    here = url_for("capture.import_map", import_id=import_id)
    start = StartImportForm()
    if request.method == "POST" and request.form.get("action") == "start":
        if start.validate_on_submit() and lead_import.checked:
            imports.start_import(db.session, lead_import, lead_import.mapping,
                                 lead_import.default_campaign, lead_import.default_source)
            return redirect(url_for("capture.import_progress", import_id=import_id),
                            code=303)
        flash("Check the mapping first, and wait for its dry run: it shows what the "
              "import will do.", "warning")
        return redirect(here, code=303)
    checked = DryRun.from_json(lead_import.dry_run) if lead_import.checked else None
    if request.method == "GET" and is_htmx():
        # The dry run's fragment, polled while its job runs.
        response = current_app.make_response(render_template(
            "capture/_import_dry_run.html", lead_import=lead_import, dry=checked,
            start=start))
        response.vary.add("HX-Request")
        return response
    catalog = Catalog.load(db.session)
    groups, selects = _value_groups(lead_import, catalog)
    form: MappingForm = mapping_form(lead_import.header, _targets(), lead_import.mapping,
                                     selects)
    form.default_campaign.choices = _campaign_choices()
    form.default_source.choices = _source_choices()
    if request.method == "GET":
        form.default_campaign.data = str(lead_import.default_campaign_id or "")
        form.default_source.data = str(lead_import.default_source_id or "")
    if form.validate_on_submit():
        mapping = [form[f"col_{i}"].data for i in range(len(lead_import.header))]
        problems = imports.check_mapping(lead_import.header, mapping)
        for index, message in problems.items():
            form[f"col_{index}"].errors = [message]  # type: ignore[assignment]
        if not problems:
            imports.save_mapping(db.session, lead_import, mapping,
                                 _picked(form, groups, mapping),
                                 _chosen(Campaign, form.default_campaign.data),
                                 _chosen(Source, form.default_source.data), now=utcnow())
            return redirect(f"{here}#dry-run", code=303)
    rows = imports.head(imports.file_path(lead_import))
    status = 422 if form.errors else 200
    response = current_app.make_response((render_template(
        "capture/import_map.html", form=form, lead_import=lead_import, rows=rows,
        groups=groups, labels=FIELD_LABELS, dry=checked, start=start), status))
    response.vary.add("HX-Request")
    return response


@bp.get("/capture/imports/<int:import_id>")
@staff_required
def import_progress(import_id: int):  # type: ignore[no-untyped-def]
    """Step 3: progress and counts; htmx polls this URL for the fragment until done."""
    lead_import = _import_or_404(import_id, fresh=True)
    if is_htmx():
        response = current_app.make_response(
            render_template("capture/_import_progress.html", lead_import=lead_import))
    else:
        response = current_app.make_response(
            render_template("capture/import_progress.html", lead_import=lead_import))
    response.vary.add("HX-Request")
    return response


@bp.get("/capture/imports/<int:import_id>/errors.csv")
@staff_required
def import_errors(import_id: int):  # type: ignore[no-untyped-def]
    """The rejected rows' problems (line, column, message) as CSV."""
    lead_import = _import_or_404(import_id)
    path = imports.report_path(lead_import)
    if not path.exists():
        abort(404)
    return send_file(path, mimetype="text/csv", as_attachment=True,
                     download_name=f"lead-import-{lead_import.id}-errors.csv")
