"""Forms of the catalog pages: product lines, competitors, campaigns, sources."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    Optional,
    Regexp,
    ValidationError,
)

from portal.catalog.services import CHANNELS, CODE, PRODUCT_LINE_CODE
from portal.core.forms import DayField, MoneyField, PortalForm, choices, not_negative


class ProductLineForm(PortalForm):
    code = StringField("Code", description="Capital letters, digits, - or _ (e.g. TRC). "
                       "Imports and the API refer to the line by this code.",
                       filters=[lambda v: (v or "").strip().upper()],
                       validators=[DataRequired(message="Enter a code."), Regexp(
                           PRODUCT_LINE_CODE,
                           message="Use 1–32 capital letters, digits, - or _, "
                                   "starting with a letter or digit.")])
    name = StringField("Name", validators=[DataRequired(message="Enter a name."),
                                           Length(max=120)])
    description = TextAreaField("Description", validators=[Optional(), Length(max=2000)])
    aliases = StringField("Other names", validators=[Optional(), Length(max=1500)],
                          description="Comma-separated names lists and forms use for this "
                                      "line (e.g. compact tractor, CT): a lead import "
                                      "recognises them, as it does the code and the name.")
    active = BooleanField("Active", default=True,
                          description="Inactive lines take no new leads; old leads keep theirs.")
    submit = SubmitField("Save")


class CompetitorForm(PortalForm):
    name = StringField("Name", validators=[DataRequired(message="Enter the competitor's name."),
                                           Length(max=120)])
    submit = SubmitField("Save")


class CampaignForm(PortalForm):
    code = StringField("Code", description="Letters, digits, '.', '-' or '_' (e.g. FARMSHOW25).",
                       filters=[lambda v: (v or "").strip()],
                       validators=[DataRequired(message="Enter a code."), Regexp(
                           CODE, message="Use 1–32 letters, digits, '.', '-' or '_', "
                                         "starting with a letter or digit.")])
    name = StringField("Name", validators=[DataRequired(message="Enter a name."),
                                           Length(max=160)])
    channel = SelectField("Channel", choices=choices(CHANNELS), default="web")
    cost = MoneyField("Cost", places=2, default=0,
                      description="Total spend, for cost per lead and ROI.",
                      validators=[InputRequired(message="Enter the cost (0 if none)."),
                                  not_negative])
    starts_on = DayField("Starts on", validators=[Optional()])
    ends_on = DayField("Ends on", validators=[Optional()])
    active = BooleanField("Active", default=True,
                          description="Inactive campaigns cannot be picked for new leads.")
    submit = SubmitField("Save")

    def validate_ends_on(self, field: DayField) -> None:
        """The campaign cannot end before it starts."""
        if field.data and self.starts_on.data and field.data < self.starts_on.data:
            raise ValidationError("Pick a day on or after the start.")


class SourceForm(PortalForm):
    code = StringField("Code", description="Letters, digits, '.', '-' or '_' (e.g. web-form).",
                       filters=[lambda v: (v or "").strip()],
                       validators=[DataRequired(message="Enter a code."), Regexp(
                           CODE, message="Use 1–32 letters, digits, '.', '-' or '_', "
                                         "starting with a letter or digit.")])
    name = StringField("Name", validators=[DataRequired(message="Enter a name."),
                                           Length(max=120)])
    cost_per_lead = MoneyField("Cost per lead", places=2, default=0,
                               description="Used for ROI when no campaign cost applies.",
                               validators=[InputRequired(message="Enter the cost (0 if none)."),
                                           not_negative])
    active = BooleanField("Active", default=True,
                          description="Inactive sources cannot be picked for new leads.")
    submit = SubmitField("Save")
