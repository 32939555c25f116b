"""The what-if form: a partner's routing facts, edited but never saved."""

from __future__ import annotations

from wtforms import BooleanField, StringField, SubmitField, TextAreaField
from wtforms.validators import Length

from portal.core.forms import CheckboxesField, PortalForm


class WhatIfForm(PortalForm):
    """Territories, product lines, capacity and active flag to try out."""

    territories = TextAreaField(
        "Territories", validators=[Length(max=20_000)],
        description="One rule per line: zip:50401, zip:504*, zip:50400-50499, region:US-IA, "
                    "country:US, radius:80 (km around the partner's location).",
        render_kw={"rows": 8, "spellcheck": "false"},
    )
    # Checked by the service, which names an unknown code instead of "not a valid choice".
    product_lines = CheckboxesField("Product lines", choices=[], validate_choice=False)
    capacity = StringField("Capacity", validators=[Length(max=12)],
                           description="Most open leads at once; empty = unlimited.",
                           render_kw={"inputmode": "numeric"})
    active = BooleanField("Active (receives offers)")
    submit = SubmitField("Preview")
