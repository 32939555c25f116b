"""The what-if page: edit a partner's routing facts and see which recent leads would move."""

from __future__ import annotations

from flask import Blueprint, abort, make_response, render_template, request
from sqlalchemy import select

from portal.core.database import read_only
from portal.core.models import Partner, ProductLine
from portal.core.models.codes import by_code
from portal.core.web import is_htmx, staff_required
from portal.dispatch import whatif as services
from portal.dispatch.forms import WhatIfForm
from portal.extensions import db

bp = Blueprint("dispatch", __name__, url_prefix="/manage/what-if")


def _product_line_choices(partner: Partner) -> list[tuple[str, str]]:
    lines = {line.code: line.name for line in db.session.scalars(
        select(ProductLine).where(ProductLine.active.is_(True)))}
    for line in partner.product_lines:  # a retired line the partner still holds stays visible
        lines.setdefault(line.code, line.name)
    return [(code, f"{code} — {lines[code]}") for code in sorted(lines)]


@bp.route("/<code>", methods=["GET", "POST"])
@read_only  # a preview writes nothing: it must not queue behind writers on SQLite
@staff_required
def preview(code: str):  # type: ignore[no-untyped-def]
    """Show the form prefilled with the partner's facts; on submit, preview without saving."""
    partner = by_code(db.session, Partner, code)
    if partner is None:
        abort(404)
    form = WhatIfForm() if request.method == "POST" else WhatIfForm(data={
        "territories": "\n".join(t.rule for t in partner.territories),
        "product_lines": [line.code for line in partner.product_lines],
        "capacity": "" if partner.capacity is None else str(partner.capacity),
        "active": partner.active,
    })
    form.product_lines.choices = _product_line_choices(partner)
    result = None
    if form.validate_on_submit():
        try:
            edit = services.parse_edit(
                db.session, territories=form.territories.data or "",
                product_lines=list(form.product_lines.data or []),
                capacity=form.capacity.data or "", active=bool(form.active.data))
            result = services.preview(db.session, partner, edit)
        except services.WhatIfError as error:
            for name, message in error.fields.items():
                form[name].errors = [*form[name].errors, message]
            if error.message:
                form.form_errors.append(error.message)
        finally:
            # A preview is a question, not a change: even on POST nothing is kept.
            db.session.rollback()
    # htmx swaps a 422 in like any answer (base.html's responseHandling).
    status = 422 if form.errors else 200
    template = "dispatch/_preview.html" if is_htmx() else "dispatch/preview.html"
    response = make_response(render_template(template, partner=partner, form=form,
                                             result=result, window=services.WINDOW_DAYS,
                                             cap=services.LIST_CAP), status)
    response.vary.add("HX-Request")
    return response
