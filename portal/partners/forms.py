"""Forms of the partner pages; the partner service does the real checking of each field."""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf.file import FileField, FileRequired
from wtforms import SelectField, StringField, SubmitField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from portal.core.forms import CheckboxesField, PortalForm
from portal.partners.services import PartnerInput


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms options."""
    return [SelectChoice(value, label) for value, label in pairs]


KIND_CHOICES = [("dealer", "Dealer"), ("distributor", "Distributor")]
FORWARDING_CHOICES = [
    ("manual", "Manual — leads land in the distributor's inbox"),
    ("auto", "Auto — passed on at once to one of its dealers"),
]


class PartnerForm(PortalForm):
    """Every column of the partners CSV; the service checks them (same rules as the import)."""

    # Choices are not checked here: the service reports a bad value with a clearer message.
    code = StringField("Code", validators=[Length(max=32)],
                       description="1–32 letters, digits, - or _; identifies the partner in "
                                   "CSV files. Stored upper-case.")
    name = StringField("Name", validators=[Length(max=160)])
    kind = SelectField("Kind", choices=choices(KIND_CHOICES), validate_choice=False)
    parent = StringField("Distributor (parent)", validators=[Length(max=32)],
                         description="The distributor's code, for a dealer under a "
                                     "distributor; empty otherwise.",
                         render_kw={"list": "distributor-codes", "autocomplete": "off"})
    email = StringField("Email", validators=[Length(max=254)], render_kw={"type": "email"})
    phone = StringField("Phone", validators=[Length(max=40)], render_kw={"type": "tel"})
    address = StringField("Address", validators=[Length(max=200)])
    city = StringField("City", validators=[Length(max=100)])
    region = StringField("Region", validators=[Length(max=10)],
                         description="ISO 3166-2 code, e.g. US-IA.")
    postal_code = StringField("Postal code", validators=[Length(max=20)])
    country = StringField("Country", default="US", validators=[Length(max=2)],
                          description="ISO two-letter code, e.g. US.")
    latitude = StringField("Latitude", validators=[Length(max=30)],
                           description="Decimal degrees. Leave latitude and longitude empty "
                                       "to use the postal code's centre.")
    longitude = StringField("Longitude", validators=[Length(max=30)])
    product_lines = CheckboxesField("Product lines", choices=[], validate_choice=False,
                                    description="The lines this partner may sell.")
    capacity = StringField("Capacity", validators=[Length(max=12)],
                           description="Most open leads at once; empty = unlimited.",
                           render_kw={"inputmode": "numeric"})
    territories = TextAreaField(
        "Territories", validators=[Length(max=20_000)],
        description="One rule per line (or separated by ;): zip:50401, zip:504*, "
                    "zip:50400-50499, region:US-IA, country:US, radius:80 (km around the "
                    "partner's location).",
        render_kw={"rows": 6},
    )
    forwarding = SelectField("Forwarding (distributors)", choices=choices(FORWARDING_CHOICES),
                             validate_choice=False, default="manual")
    submit = SubmitField("Save partner")

    def to_input(self) -> PartnerInput:
        """The typed values, for the partner service."""
        return PartnerInput(
            **{name: (self[name].data or "") for name in (
                "code", "name", "kind", "parent", "email", "phone", "address", "city",
                "region", "postal_code", "country", "latitude", "longitude", "capacity",
                "territories", "forwarding",
            )},
            product_lines=list(self.product_lines.data or []),
        )

    def add_errors(self, fields: dict[str, str]) -> None:
        """Show the service's messages under their fields."""
        for name, message in fields.items():
            target = self[name] if name in self else None
            if target is None:
                self.form_errors.append(message)
            else:
                target.errors = [*target.errors, message]


class PartnerFilterForm(PortalForm):
    """Search and filters of the partners list (a GET form: no CSRF token needed)."""

    class Meta:
        csrf = False

    q = StringField("Search", validators=[Optional(), Length(max=100)],
                    render_kw={"placeholder": "Code, name, city or postal code",
                               "type": "search"})
    kind = SelectField("Kind", choices=choices([("", "All kinds"), *KIND_CHOICES]),
                       validate_choice=False)
    status = SelectField("Status", choices=choices([("", "Active and paused"), ("active", "Active"),
                                                    ("paused", "Paused")]),
                         validate_choice=False)
    distributor = SelectField("Distributor", choices=choices([("", "Any distributor")]),
                              validate_choice=False)


class PauseForm(PortalForm):
    """Pause a partner, with an optional reason the team will see."""

    reason = StringField("Reason (optional)", validators=[Length(max=200)],
                         description="E.g. on holiday until 1 August; shown on the partner "
                                     "page.")
    submit = SubmitField("Pause partner")


class ResumeForm(PortalForm):
    """Resume a paused partner."""

    submit = SubmitField("Resume partner")


class PartnerImportForm(PortalForm):
    """Upload of a partners CSV file."""

    file = FileField("Partners CSV file", validators=[FileRequired("Choose a CSV file.")],
                     description="UTF-8, header row as in the export. Existing codes are "
                                 "updated, new codes created; bad rows are listed and skipped.",
                     render_kw={"accept": ".csv,text/csv"})
    submit = SubmitField("Import partners")
