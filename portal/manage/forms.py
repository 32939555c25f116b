"""Forms of the admin pages: users, product lines, competitors, campaigns, sources."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DecimalField,
    EmailField,
    Form,
    PasswordField,
    SearchField,
    SelectChoice,
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

from portal.manage.services import (
    CHANNELS,
    CODE,
    EMAIL,
    PRODUCT_LINE_CODE,
    ROLE_LABELS,
    ManageError,
)


def _choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


ROLE_CHOICES = _choices(ROLE_LABELS)


class MoneyField(DecimalField):
    """A decimal amount that forgives "$" and thousands separators."""

    def process_formdata(self, valuelist: list[str]) -> None:
        cleaned = [v.replace(",", "").replace("$", "").strip() for v in valuelist]
        try:
            super().process_formdata(cleaned)
        except ValueError:
            raise ValueError("Enter an amount such as 1500.00.") from None


def not_negative(form: Form, field: DecimalField) -> None:
    """Money is 0 or more (the service checks again; this shows it with the other errors)."""
    if field.data is not None and (not field.data.is_finite() or field.data < 0):
        raise ValidationError("Enter 0 or more.")
_PARTNER_HINT = "The partner's code, e.g. D1001. Partner users only; leave empty otherwise."


class UserFilterForm(Form):
    """The users list's search box (GET, so no CSRF: it changes nothing)."""

    q = SearchField("Search", validators=[Optional(), Length(max=100)],
                    render_kw={"placeholder": "Email or name"})
    role = SelectField("Role", choices=[SelectChoice("", "All roles"), *ROLE_CHOICES],
                       validators=[Optional()])


def _name_field():  # type: ignore[no-untyped-def]
    return StringField("Name", validators=[Optional(), Length(max=120)],
                       render_kw={"autocomplete": "off"})


def _role_field():  # type: ignore[no-untyped-def]
    return SelectField("Role", choices=ROLE_CHOICES, default="partner",
                       validators=[DataRequired(message="Pick a role.")])


def _partner_field():  # type: ignore[no-untyped-def]
    return StringField("Partner", description=_PARTNER_HINT,
                       filters=[lambda v: (v or "").strip()],
                       validators=[Optional(), Length(max=32)])


def _partner_admin_field():  # type: ignore[no-untyped-def]
    return BooleanField("Partner administrator",
                        description="May manage the partner's own users and settings.")


# Fields are made by the functions above, called in each class body, so that each form
# lists them in the order a person fills them in (WTForms orders by creation).
class UserCreateForm(FlaskForm):
    email = EmailField("Email", filters=[lambda v: (v or "").strip()], validators=[
        DataRequired(message="Enter the email address."), Length(max=254),
        Regexp(EMAIL, message="Enter a valid email address, like name@example.com."),
    ])
    name = _name_field()
    role = _role_field()
    partner = _partner_field()
    partner_admin = _partner_admin_field()
    password = PasswordField(
        "Initial password",
        description="Leave empty to email an invitation link instead (works for seven days).",
        validators=[Optional(), Length(min=10, max=200, message="Use 10 to 200 characters.")],
        render_kw={"autocomplete": "new-password"},
    )
    submit = SubmitField("Create user")


class UserEditForm(FlaskForm):
    name = _name_field()
    role = _role_field()
    partner = _partner_field()
    partner_admin = _partner_admin_field()
    submit = SubmitField("Save changes")


class ConfirmForm(FlaskForm):
    """A bare form for POST-only actions: it carries the CSRF token and nothing else."""


class ProductLineForm(FlaskForm):
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
    active = BooleanField("Active", default=True,
                          description="Inactive lines take no new leads; old leads keep theirs.")
    submit = SubmitField("Save")


class CompetitorForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(message="Enter the competitor's name."),
                                           Length(max=120)])
    submit = SubmitField("Save")


class CampaignForm(FlaskForm):
    code = StringField("Code", description="Letters, digits, '.', '-' or '_' (e.g. FARMSHOW25).",
                       filters=[lambda v: (v or "").strip()],
                       validators=[DataRequired(message="Enter a code."), Regexp(
                           CODE, message="Use 1–32 letters, digits, '.', '-' or '_', "
                                         "starting with a letter or digit.")])
    name = StringField("Name", validators=[DataRequired(message="Enter a name."),
                                           Length(max=160)])
    channel = SelectField("Channel", choices=_choices(CHANNELS), default="web")
    cost = MoneyField("Cost", places=2, default=0,
                      description="Total spend, for cost per lead and ROI.",
                      validators=[InputRequired(message="Enter the cost (0 if none)."),
                                  not_negative])
    starts_on = DateField("Starts on", validators=[Optional()])
    ends_on = DateField("Ends on", validators=[Optional()])
    active = BooleanField("Active", default=True,
                          description="Inactive campaigns cannot be picked for new leads.")
    submit = SubmitField("Save")

    def validate_ends_on(self, field: DateField) -> None:
        """The campaign cannot end before it starts."""
        if field.data and self.starts_on.data and field.data < self.starts_on.data:
            raise ValidationError("Pick a day on or after the start.")


class SourceForm(FlaskForm):
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


def show_errors(form: Form, error: ManageError) -> None:
    """Put a service's complaint on the fields it names; one it cannot place goes on top."""
    placed = False
    for name, message in error.fields.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
            placed = True
    if not placed:
        form.form_errors.append(error.message)
