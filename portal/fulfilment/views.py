"""Fulfilment pages: the literature library (admins), packs and print batches (managers),
and the prospect's download page behind a signed link."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import (
    Blueprint,
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
from sqlalchemy.orm import selectinload
from werkzeug.exceptions import RequestEntityTooLarge

from portal.core.filters import count_of
from portal.core.jobs import enqueue
from portal.core.models import (
    Fulfilment,
    FulfilmentChannel,
    FulfilmentStatus,
    Lead,
    LiteratureItem,
    LiteratureVersion,
    PrintBatch,
    ProductLine,
    utcnow,
)
from portal.core.pagination import paginate
from portal.core.web import admin_required, staff_required
from portal.extensions import db
from portal.fulfilment import library, services
from portal.fulfilment.forms import ConfirmForm, ItemForm, PrintedForm, UploadForm, WriteForm

bp = Blueprint("fulfilment", __name__, url_prefix="/fulfilment")

STATUS_TABS = ("failed", "pending", "sending", "sent", "batched", "printed")


def _get_or_404(model: type[Any], item_id: int) -> Any:
    row = db.session.get(model, item_id)
    if row is None:
        abort(404)
    return row


def _page(query: Any) -> Any:
    return paginate(db.session, query, request.args.get("page", 1, type=int),
                    current_app.config["PAGE_SIZE"])


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error: RequestEntityTooLarge) -> Any:
    """An upload over the request limit: say what the limit is, keep nothing."""
    db.session.rollback()
    limit = (current_app.config.get("MAX_CONTENT_LENGTH") or 0) / 1_048_576
    error.description = (f"That file is larger than the {limit:.0f} MB the portal accepts. "
                         "Nothing was saved: compress the PDF (or split it) and upload again.")
    return render_template("errors/413.html", error=error), 413


# --- packs (managers) --------------------------------------------------------------------


@bp.get("/")
@staff_required
def index():  # type: ignore[no-untyped-def]
    """Literature requests by state, failures first, with time-to-fulfil for 30 days."""
    status = request.args.get("status", "failed")
    if status not in STATUS_TABS and status != "all":
        abort(404)
    query = (select(Fulfilment)
             .options(selectinload(Fulfilment.lead), selectinload(Fulfilment.product_line))
             .order_by(Fulfilment.requested_at.desc(), Fulfilment.id.desc()))
    if status != "all":
        query = query.where(Fulfilment.status == status)
    now = utcnow()
    return render_template(
        "fulfilment/index.html", page=_page(query), status=status, tabs=STATUS_TABS,
        counts=services.status_counts(db.session), form=ConfirmForm(),
        timings=services.time_to_fulfil(db.session, now - timedelta(days=30), now))


@bp.post("/<int:fulfilment_id>/retry")
@staff_required
def retry(fulfilment_id: int):  # type: ignore[no-untyped-def]
    """Send a failed pack again."""
    row = _get_or_404(Fulfilment, fulfilment_id)
    if not ConfirmForm().validate_on_submit():
        abort(400)
    try:
        services.retry(db.session, row, current_user)
    except services.FulfilmentError as error:
        flash(error.message, "error")
        return redirect(url_for("fulfilment.index", status=row.status), code=303)
    flash(f"Pack #{row.id} is queued to go again.", "success")
    return redirect(url_for("fulfilment.index", status="failed"), code=303)


@bp.get("/leads/<uuid:lead_id>")
@staff_required
def lead_literature(lead_id: Any):  # type: ignore[no-untyped-def]
    """What one lead was sent, when and how (the fragment the lead page shows)."""
    lead = _get_or_404(Lead, lead_id)
    fulfilments = services.fulfilments_for(db.session, lead)
    return render_template("fulfilment/lead.html", lead=lead, fulfilments=fulfilments)


# --- print batches -----------------------------------------------------------------------


@bp.get("/print-batches")
@staff_required
def print_batches():  # type: ignore[no-untyped-def]
    """The mail room's batches and how many printed packs wait for the next one."""
    counts = services.status_counts(db.session)  # one GROUP BY on an indexed column
    pending_print = db.session.scalar(
        select(Fulfilment.id).where(Fulfilment.status == FulfilmentStatus.PENDING,
                                    Fulfilment.channel == FulfilmentChannel.PRINT).limit(1))
    page = _page(select(PrintBatch).order_by(PrintBatch.created_at.desc(), PrintBatch.id.desc()))
    return render_template("fulfilment/print_batches.html", page=page, counts=counts,
                           has_waiting=pending_print is not None, form=ConfirmForm())


@bp.post("/print-batches")
@staff_required
def print_batch_create():  # type: ignore[no-untyped-def]
    """Build a batch now instead of waiting for the morning run."""
    if not ConfirmForm().validate_on_submit():
        abort(400)
    enqueue("print_batch_now")
    flash("The print batch is being prepared; it appears below when ready.", "success")
    return redirect(url_for("fulfilment.print_batches"), code=303)


@bp.get("/print-batches/<int:batch_id>")
@staff_required
def print_batch(batch_id: int):  # type: ignore[no-untyped-def]
    """One batch: download letters and labels, then confirm it was printed."""
    batch = _get_or_404(PrintBatch, batch_id)
    rows = services.batch_rows(db.session, batch)
    return render_template("fulfilment/print_batch.html", batch=batch, rows=rows,
                           form=PrintedForm())


@bp.get("/print-batches/<int:batch_id>/<any(letters, labels):part>.pdf")
@staff_required
def print_batch_file(batch_id: int, part: str):  # type: ignore[no-untyped-def]
    """The batch's letters or label sheet as a PDF."""
    batch = _get_or_404(PrintBatch, batch_id)
    path = library.stored_path(batch.letters_file if part == "letters" else batch.labels_file)
    if not path.is_file():
        abort(404, description="This batch is still being prepared; try again in a minute.")
    return send_file(path, mimetype="application/pdf", as_attachment=True,
                     download_name=f"print-batch-{batch.id}-{part}.pdf")


@bp.post("/print-batches/<int:batch_id>/confirm")
@staff_required
def print_batch_confirm(batch_id: int):  # type: ignore[no-untyped-def]
    """The mail room printed the batch: its packs count as sent by mail."""
    batch = _get_or_404(PrintBatch, batch_id)
    form = PrintedForm()
    if form.validate_on_submit():
        try:
            count = services.confirm_print_batch(db.session, batch, current_user)
        except services.FulfilmentError as error:
            flash(error.message, "error")
        else:
            flash(f"Batch #{batch.id} marked as printed: {count} letters.", "success")
        return redirect(url_for("fulfilment.print_batch", batch_id=batch.id), code=303)
    rows = services.batch_rows(db.session, batch)
    return render_template("fulfilment/print_batch.html", batch=batch, rows=rows,
                           form=form), 422


# --- the literature library (admins) -----------------------------------------------------


@bp.get("/literature")
@admin_required
def literature():  # type: ignore[no-untyped-def]
    """Brochures and spec sheets per product line, with the version packs use."""
    page = _page(select(LiteratureItem)
                 .options(selectinload(LiteratureItem.product_line))
                 .order_by(LiteratureItem.product_line_id, LiteratureItem.position,
                           LiteratureItem.id))
    ids = [item.id for item in page.items]
    active = {version.item_id: version for version in db.session.scalars(
        select(LiteratureVersion).where(LiteratureVersion.item_id.in_(ids),
                                        LiteratureVersion.is_active.is_(True)))}
    lines = db.session.scalars(select(ProductLine).where(ProductLine.active.is_(True))
                               .order_by(ProductLine.code)).all()
    covered = {item.product_line_id for item in page.items if item.id in active}
    return render_template("fulfilment/literature.html", page=page, active=active,
                           uncovered=[line for line in lines if line.id not in covered])


@bp.route("/literature/new", methods=["GET", "POST"])
@bp.route("/literature/<int:item_id>/edit", methods=["GET", "POST"])
@admin_required
def literature_edit(item_id: int | None = None):  # type: ignore[no-untyped-def]
    """Add a library item or change its title, line, kind, order or use."""
    item = _get_or_404(LiteratureItem, item_id) if item_id is not None else None
    form = ItemForm(obj=item if request.method == "GET" else None)
    form.set_lines(list(db.session.scalars(select(ProductLine).order_by(ProductLine.code))))
    if request.method == "GET" and item is not None:
        form.product_line_id.data = str(item.product_line_id or "")
    if form.validate_on_submit():
        raw_line = form.product_line_id.data or ""
        try:
            item = library.save_item(
                db.session, item, title=form.title.data or "",
                product_line_id=int(raw_line) if raw_line else None,
                kind=form.kind.data or "", position=form.position.data or 0,
                active=bool(form.active.data))
        except library.LiteratureError as error:
            _show(form, error)
        else:
            flash(f"Saved “{item.title}”.", "success")
            return redirect(url_for("fulfilment.literature_item", item_id=item.id), code=303)
    return (render_template("fulfilment/literature_form.html", form=form, item=item),
            422 if form.errors else 200)


def _show(form: Any, error: library.LiteratureError) -> None:
    shown = False
    for name, message in error.fields.items():
        if name in form._fields:
            form._fields[name].errors = [*form._fields[name].errors, message]
            shown = True
    if not shown:
        form.form_errors.append(error.message)


def _item_page(item: LiteratureItem, upload: UploadForm | None = None,
               write: WriteForm | None = None) -> Any:
    versions = db.session.scalars(
        select(LiteratureVersion).where(LiteratureVersion.item_id == item.id)
        .order_by(LiteratureVersion.number.desc())).all()
    latest_text = next((v.body for v in versions if v.source == "html"), "")
    write = write or WriteForm(body=latest_text)
    upload = upload or UploadForm()
    failed = bool(upload.errors or write.errors)
    return render_template("fulfilment/literature_item.html", item=item, versions=versions,
                           upload=upload, write=write, confirm=ConfirmForm()), \
        422 if failed else 200


@bp.get("/literature/<int:item_id>")
@admin_required
def literature_item(item_id: int):  # type: ignore[no-untyped-def]
    """One item: its versions, which is active, upload or write a new one."""
    return _item_page(_get_or_404(LiteratureItem, item_id))


@bp.post("/literature/<int:item_id>/upload")
@admin_required
def literature_upload(item_id: int):  # type: ignore[no-untyped-def]
    """Upload a PDF as a new version (checked: magic bytes, size, pages, not encrypted)."""
    item = _get_or_404(LiteratureItem, item_id)
    form = UploadForm()
    if form.validate_on_submit():
        upload = form.file.data
        try:
            version = library.upload_version(
                db.session, item, data=upload.read(), filename=upload.filename or "",
                user=current_user, activate=bool(form.activate.data))
        except library.LiteratureError as error:
            _show(form, error)
        else:
            flash(f"Version {version.number} uploaded ({count_of(version.page_count, 'page')})"
                  f"{' and in use' if version.is_active else ''}.", "success")
            return redirect(url_for("fulfilment.literature_item", item_id=item.id), code=303)
    return _item_page(item, upload=form)


@bp.post("/literature/<int:item_id>/write")
@admin_required
def literature_write(item_id: int):  # type: ignore[no-untyped-def]
    """Save written text as a new version, laid out from the literature template."""
    item = _get_or_404(LiteratureItem, item_id)
    form = WriteForm()
    if form.validate_on_submit():
        try:
            version = library.write_version(db.session, item, body=form.body.data or "",
                                            user=current_user,
                                            activate=bool(form.activate.data))
        except library.LiteratureError as error:
            _show(form, error)
        else:
            flash(f"Version {version.number} saved ({count_of(version.page_count, 'page')})"
                  f"{' and in use' if version.is_active else ''}.", "success")
            return redirect(url_for("fulfilment.literature_item", item_id=item.id), code=303)
    return _item_page(item, write=form)


@bp.post("/literature/<int:item_id>/versions/<int:version_id>/activate")
@admin_required
def literature_activate(item_id: int, version_id: int):  # type: ignore[no-untyped-def]
    """Make an older or newer version the one packs use."""
    version = _get_or_404(LiteratureVersion, version_id)
    if version.item_id != item_id or not ConfirmForm().validate_on_submit():
        abort(404)
    library.activate_version(db.session, version)
    flash(f"Version {version.number} is now in use.", "success")
    return redirect(url_for("fulfilment.literature_item", item_id=item_id), code=303)


@bp.get("/literature/<int:item_id>/versions/<int:version_id>/preview")
@staff_required
def literature_preview(item_id: int, version_id: int):  # type: ignore[no-untyped-def]
    """The version's PDF, shown in the browser."""
    version = _get_or_404(LiteratureVersion, version_id)
    if version.item_id != item_id:
        abort(404)
    return send_file(library.stored_path(version.stored_name), mimetype="application/pdf",
                     download_name=f"literature-{item_id}-v{version.number}.pdf")


# --- the prospect's download link (public) -----------------------------------------------


@bp.route("/pack/<token>", methods=["GET", "POST"])
def pack_download(token: str):  # type: ignore[no-untyped-def]
    """The signed link from a pack email: a page with a button, the PDF on POST."""
    row = services.fulfilment_for_token(db.session, token)
    if row is None:
        return render_template("fulfilment/link_invalid.html"), 404
    form = ConfirmForm()
    if request.method == "POST":
        if not form.validate_on_submit():
            abort(400)
        # Counted on the POST, not the GET: mail scanners follow links, people press buttons.
        services.record_download(db.session, row)
        return send_file(library.stored_path(row.pack_file or ""), mimetype="application/pdf",
                         as_attachment=True, download_name="literature-pack.pdf")
    return render_template("fulfilment/download.html", row=row, form=form)
