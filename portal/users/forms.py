"""Forms of the user pages."""

from __future__ import annotations

from wtforms import (
    BooleanField,
    EmailField,
    PasswordField,
    SearchField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
)
from wtforms.validators import (
    DataRequired,
    Length,
    Optional,
    Regexp,
)

from portal.core.checks import EMAIL
from portal.core.forms import FilterForm, PortalForm, choices
from portal.users.services import ROLE_LABELS

ROLE_CHOICES = choices(ROLE_LABELS)


_PARTNER_HINT = "The partner's code, e.g. D1001. Partner users only; leave empty otherwise."


class UserFilterForm(FilterForm):
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
class UserCreateForm(PortalForm):
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


class UserEditForm(PortalForm):
    name = _name_field()
    role = _role_field()
    partner = _partner_field()
    partner_admin = _partner_admin_field()
    submit = SubmitField("Save changes")
