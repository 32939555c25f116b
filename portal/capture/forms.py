"""Forms of the capture pages.

The capture service checks every value for real (same rules as the API and the import);
these forms bound the sizes, offer the choices and carry the anti-spam fields.
"""

from __future__ import annotations

from collections.abc import Iterable

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length, Optional

from portal.core.filters import ANSWER_LABELS
from portal.core.forms import PortalForm

#: the form's choices: the answers in words (one list, the lead page shows the same), the
#: role asked of the prospect in the first person
TIMELINE_CHOICES = [("", "Choose…"), *ANSWER_LABELS["timeline"].items()]
BUDGET_CHOICES = [("", "Choose…"), *ANSWER_LABELS["budget"].items()]
ROLE_CHOICES = [
    ("", "Choose…"), ("decision_maker", "I decide on the purchase"),
    ("influencer", "I advise on the purchase"), ("user", "I will use it"),
    ("other", "Other"),
]
INTEREST_CHOICES = [("", "Choose…"), *ANSWER_LABELS["interest"].items()]


def choices(pairs: Iterable[tuple[str, str]]) -> list[SelectChoice]:
    """(value, label) pairs as WTForms options."""
    return [SelectChoice(value, label) for value, label in pairs]


class _InquiryFields(PortalForm):
    """The prospect's details and the qualification questions, shared by both forms."""

    first_name = StringField("First name", validators=[Length(max=80)],
                             render_kw={"autocomplete": "given-name"})
    last_name = StringField("Last name", validators=[Length(max=80)],
                            render_kw={"autocomplete": "family-name"})
    company = StringField("Company or farm", validators=[Length(max=160)],
                          render_kw={"autocomplete": "organization"})
    email = StringField("Email", validators=[Length(max=254)],
                        description="An email address or a phone number, so a dealer can reply.",
                        render_kw={"type": "email", "autocomplete": "email",
                                   "inputmode": "email"})
    phone = StringField("Phone", validators=[Length(max=40)],
                        render_kw={"type": "tel", "autocomplete": "tel"})
    postal_code = StringField("ZIP code", validators=[Length(max=20)],
                              description="So the nearest dealer can help you.",
                              render_kw={"autocomplete": "postal-code",
                                         "inputmode": "numeric"})
    product_line = SelectField("Product line", choices=[], validate_choice=False)
    timeline = SelectField("When do you plan to buy?", choices=choices(TIMELINE_CHOICES),
                           validate_choice=False)
    budget = SelectField("Budget", choices=choices(BUDGET_CHOICES), validate_choice=False)
    role = SelectField("Your role", choices=choices(ROLE_CHOICES), validate_choice=False)
    interest = SelectField("What would help you most?", choices=choices(INTEREST_CHOICES),
                           validate_choice=False)
    comments = TextAreaField("Anything else we should know?",
                             validators=[Optional(), Length(max=5000)])
    wants_literature = BooleanField("Send me literature about this product line")

    def inquiry(self) -> dict[str, object]:
        """The values as the capture service takes them (standard answers at top level)."""
        data: dict[str, object] = {
            name: self[name].data or ""
            for name in ("first_name", "last_name", "company", "email", "phone",
                         "postal_code", "product_line", "comments", "timeline", "budget",
                         "role")
        }
        data["wants_literature"] = bool(self.wants_literature.data)
        if self.interest.data:
            data["answers"] = {"interest": self.interest.data}
        return data

    def show_capture_errors(self, fields: dict[str, str], message: str) -> None:
        """Put the service's per-field messages next to the fields they concern."""
        for key, text in fields.items():
            name = key.removeprefix("answers.")
            if name in self._fields and name not in ("stamp", "token", "website"):
                self[name].errors = [*self[name].errors, text]  # type: ignore[list-item]
            else:
                self.form_errors.append(text)
        if not fields:
            self.form_errors.append(message)


class PublicCaptureForm(_InquiryFields):
    """The campaign's public form (hosted page and embedded snippet): no login, no CSRF.

    It is posted cross-site by the snippet, which cannot carry the portal's CSRF cookie;
    it changes nothing that belongs to a signed-in user, so CSRF protects nothing here.
    The honeypot, the signed time stamp and the per-address rate limit stand in.
    """

    class Meta:
        csrf = False

    #: what a prospect must give on the public form, and what an empty one is told
    REQUIRED = {
        "first_name": "Enter your first name.",
        "last_name": "Enter your last name.",
        "postal_code": "Enter your ZIP code, so the nearest dealer can help you.",
        "product_line": "Choose the product line you are interested in.",
    }
    NO_CONTACT = "Give an email address or a phone number so a dealer can reply."

    #: honeypot: hidden from people, filled in by form-filling bots
    website = StringField("Leave this field empty", validators=[Length(max=200)],
                          render_kw={"autocomplete": "off", "tabindex": "-1"})
    stamp = HiddenField()  #: when the page was shown, signed (``spam.sign_stamp``)
    token = HiddenField()  #: one per page view: a double click makes one lead
    embed = HiddenField()  #: "1" when posted by the embedded snippet

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        for name in self.REQUIRED:
            self[name].flags.required = True  # the label's mark; the check is in validate

    def validate(self, extra_validators: object = None) -> bool:
        """The field checks, and every essential answer given: an empty form is told
        next to each field what it lacks, before any time or capture check."""
        valid = super().validate(extra_validators)
        # A snippet already on a dealer's site asks what it asks: the capture's own checks
        # apply to it, the hosted form's required answers do not.
        required = {} if self.embed.data == "1" else self.REQUIRED
        for name, message in required.items():
            if not (self[name].data or "").strip() and not self[name].errors:
                self[name].errors = [message]  # type: ignore[assignment]
                valid = False
        if not (self.email.data or "").strip() and not (self.phone.data or "").strip() \
                and not self.email.errors:
            self.email.errors = [self.NO_CONTACT]  # type: ignore[assignment]
            valid = False
        return valid


#: the same answers, said of the customer to the dealer who types them in
DEALER_ROLE_CHOICES = [("", "Choose…"), *ANSWER_LABELS["role"].items()]


class PartnerCaptureForm(_InquiryFields):
    """A dealer's own walk-in or trade-show contact, typed in on a phone: the questions
    speak to the dealer about the customer, not to the customer."""

    source = SelectField("Where did you meet?", choices=[], validate_choice=False)
    token = HiddenField()

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.email.description = "The customer's email, or their phone below: one is enough."
        self.postal_code.label.text = "Customer's ZIP code"
        self.postal_code.description = "Where they are: for the reports and the literature."
        self.timeline.label.text = "When do they plan to buy?"
        self.role.label.text = "Their role"
        self.role.choices = choices(DEALER_ROLE_CHOICES)
        self.interest.label.text = "What would help them most?"
        self.comments.label.text = "Notes from the conversation"
        self.wants_literature.label.text = "Email them the literature of this product line"


class BrandForm(PortalForm):
    """A campaign's public form: its heading, wording, accent colour and logo (checked
    by ``branding.save_brand``; these bound the sizes)."""

    form_heading = StringField("Heading", validators=[Optional(), Length(max=160)],
                               description="Empty: the campaign's name.")
    form_intro = TextAreaField("Introduction", validators=[Optional(), Length(max=1000)],
                               description="The paragraph under the heading. Empty: "
                                           "“Tell us what you are looking for …”.")
    thanks_text = TextAreaField("Thank-you wording", validators=[Optional(), Length(max=1000)],
                                description="Shown after a send, above what happens next.")
    accent_color = StringField("Accent colour", validators=[Optional(), Length(max=7)],
                               description="Buttons, links and the top bar, as # and six hex "
                                           "digits, e.g. #2e7d32. Empty: the portal's blue.",
                               render_kw={"placeholder": "#2e7d32", "autocomplete": "off",
                                          "spellcheck": "false"})
    logo = FileField("Logo", description="PNG, JPEG, GIF or WebP, at most 300 KB; shown at "
                                         "the top of the form, about 40 px high.",
                     render_kw={"accept": "image/png,image/jpeg,image/gif,image/webp"})
    remove_logo = BooleanField("Remove the logo")


class UploadForm(PortalForm):
    """Step 1 of a lead import: the CSV file."""

    file = FileField("CSV file", validators=[FileRequired("Choose a CSV file to upload.")],
                     description="UTF-8 with a header row; Excel: Save as “CSV UTF-8”.",
                     render_kw={"accept": ".csv,text/csv"})


class MappingForm(PortalForm):
    """Step 2: what each column holds, what each value of a closed column means, and the
    campaign and source for rows that name none.

    One select per column (``col_0``, ``col_1`` …) and one per distinct value of a closed
    column (``val_<column>_<n>``) are added by ``mapping_form``: they come from the file.
    """

    default_campaign = SelectField("Campaign for rows without one", choices=[],
                                   validate_choice=False,
                                   description="Ended campaigns are listed too: a list "
                                               "from a past show credits that show.")
    default_source = SelectField("Source for rows without one", choices=[],
                                 validate_choice=False)


class StartImportForm(PortalForm):
    """Step 3, after the dry run: write what it showed."""


def mapping_form(header: list[str], targets: list[tuple[str, str]],
                 initial: list[str], values: Iterable[tuple[str, str, list[tuple[str, str]],
                                                            str]] = (),
                 **kwargs: object) -> MappingForm:
    """A ``MappingForm`` with one select per column of ``header``, preset to ``initial``,
    and one per ``values`` entry: (field name, the file's value, choices, preset)."""

    class _Form(MappingForm):
        pass

    for index, name in enumerate(header):
        label = f"Column {index + 1}: “{name}”" if name else f"Column {index + 1} (no name)"
        setattr(_Form, f"col_{index}", SelectField(label, choices=choices(targets),
                                                   default=initial[index]))
    for name, value, options, preset in values:
        shown = value if len(value) <= 80 else value[:79] + "…"
        setattr(_Form, name, SelectField(f"“{shown}”", choices=choices(options),
                                         default=preset, validate_choice=False))
    return _Form(**kwargs)  # type: ignore[arg-type]
