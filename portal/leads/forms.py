"""Forms of the partner workspace and the managers' lead pages.

The lifecycle checks every action again; these forms catch the obvious gaps first so
the person sees all of them at once, next to the right field.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from wtforms import (
    BooleanField,
    EmailField,
    Form,
    HiddenField,
    IntegerField,
    SearchField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, DataRequired, Length, NumberRange, Optional, Regexp

from portal.core.checks import EMAIL
from portal.core.filters import STATUS_LABELS
from portal.core.forms import DayField, FilterForm, PortalForm
from portal.core.lifecycle import CONTACT_CHANNELS, DECLINE_REASONS, LOST_REASONS
from portal.core.models import LeadStatus, Rank
from portal.leads import manager_search, partner_inbox

LOST_LABELS = {
    "competitor": "Lost to a competitor",
    "price": "Price",
    "timing": "Timing",
    "no_budget": "No budget",
    "no_response": "No response from the prospect",
    "other": "Other",
}
CHANNEL_LABELS = {"phone": "Phone", "email": "Email", "visit": "Visit", "text": "Text message",
                  "other": "Other"}
RANK_CHOICES = [SelectChoice("", "Any rank")] + [
    SelectChoice(r.value, r.value.capitalize()) for r in Rank]
AGE_CHOICES = [SelectChoice("", "Any age")] + [
    SelectChoice(value, label) for value, (label, _days) in partner_inbox.AGES.items()]


def _opts(pairs: Iterable[tuple[str, str]], empty: str | None = None) -> list[SelectChoice]:
    options = [SelectChoice("", empty)] if empty is not None else []
    return options + [SelectChoice(value, label) for value, label in pairs]


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


def unique_ids(form: Form, suffix: str) -> Form:
    """Give the form's fields ids unique on the page (many leads' forms share a list)."""
    for item in form:
        item.id = f"{item.name}-{suffix}"
        item.label.field_id = item.id
    return form


# --- actions on one lead --------------------------------------------------------------------


class ActionForm(PortalForm):
    """Every action form: where it was posted from, so the answer fits in its place."""

    view = HiddenField(default="page")  #: "card" (inbox row) or "page" (the lead page)
    next = HiddenField()  #: where a plain POST goes back to

    def args(self) -> dict[str, Any]:
        """The lifecycle's arguments for this action."""
        return {name: (item.data.isoformat() if hasattr(item.data, "isoformat")
                       else _strip(item.data))
                for name, item in self._fields.items()
                if name not in ("view", "next", "csrf_token") and item.data not in (None, "")}


class AcceptForm(ActionForm):
    pass


class DeclineForm(ActionForm):
    reason = SelectField("Why do you decline?",
                         choices=_opts(DECLINE_REASONS.items(), "Pick a reason"),
                         validators=[DataRequired(message="Pick a reason.")])
    detail = StringField("Details (optional)", filters=[_strip],
                         validators=[Optional(), Length(max=250)])

    def args(self) -> dict[str, Any]:
        reason = self.reason.data or ""
        if self.detail.data:
            label = DECLINE_REASONS.get(reason, reason)
            reason = f"{label}: {self.detail.data}"
        return {"reason": reason}


def _note_field() -> Any:
    return TextAreaField("Note (optional)", filters=[_strip],
                         validators=[Optional(), Length(max=2000)], render_kw={"rows": 2})


class ContactForm(ActionForm):
    channel = SelectField("How did you reach them?", choices=_opts(
        (c, CHANNEL_LABELS.get(c, c)) for c in CONTACT_CHANNELS), default="phone")
    note = _note_field()


class AppointmentForm(ActionForm):
    date = DayField("Appointment date", validators=[DataRequired(message="Enter the date.")])
    note = _note_field()


class QuoteForm(ActionForm):
    amount = StringField("Quoted amount", filters=[_strip],
                         validators=[DataRequired(message="Enter the amount."), Length(max=20)],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})
    note = _note_field()


class WonForm(ActionForm):
    amount = StringField("Amount won", filters=[_strip], validators=[Optional(), Length(max=20)],
                         render_kw={"inputmode": "decimal", "autocomplete": "off"})
    date = DayField("Date of the sale", validators=[Optional()])
    note = _note_field()


class LostForm(ActionForm):
    reason = SelectField("Why was it lost?", choices=_opts(
        ((r, LOST_LABELS.get(r, r)) for r in LOST_REASONS), "Pick a reason"),
        validators=[DataRequired(message="Pick a reason.")])
    competitor = SelectField("Competitor", choices=[], validate_choice=False,
                             description="Who won it, when the reason is a competitor.")
    competitor_other = StringField("Not in the list? Type the competitor", filters=[_strip],
                                   validators=[Optional(), Length(max=120)])
    note = _note_field()

    def set_competitors(self, names: Iterable[str]) -> None:
        """The manufacturer's competitor list as the options."""
        self.competitor.choices = _opts(((n, n) for n in names), "—")

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        if (self.reason.data == "competitor" and not self.competitor.data
                and not self.competitor_other.data):
            self.competitor.errors = [*self.competitor.errors,
                                      "Pick the competitor or type its name."]
            valid = False
        return valid

    def args(self) -> dict[str, Any]:
        args: dict[str, Any] = {"reason": self.reason.data or ""}
        if self.reason.data == "competitor":
            args["competitor"] = self.competitor_other.data or self.competitor.data or ""
        if self.note.data:
            args["note"] = self.note.data
        return args


class NoInterestForm(ActionForm):
    note = _note_field()


class NoteForm(ActionForm):
    text = TextAreaField("Note", filters=[_strip], render_kw={"rows": 3},
                         validators=[DataRequired(message="Write the note."),
                                     Length(max=5000)])


class ForwardForm(ActionForm):
    partner = SelectField("Forward to your dealer", choices=[], validate_choice=False,
                          validators=[DataRequired(message="Pick a dealer.")])
    reason = StringField("Message to the dealer (optional)", filters=[_strip],
                         validators=[Optional(), Length(max=250)])

    def set_dealers(self, dealers: Iterable[Any]) -> None:
        """The distributor's dealers that can take the lead as the options, nearest first,
        each with its town, distance, lines and load; the others named below, with why
        (``services.PartnerChoice``)."""
        dealers = list(dealers)
        self.partner.choices = _opts(((c.partner.code, c.label) for c in dealers
                                      if not c.why_not), "Pick a dealer")
        left_out = [f"{c.partner.name} ({c.why_not})" for c in dealers if c.why_not]
        self.partner.description = ("Not offered: " + "; ".join(left_out) + "."
                                    if left_out else "")


class ReasonForm(ActionForm):
    reason = StringField("Reason", filters=[_strip],
                         validators=[DataRequired(message="Give a reason."), Length(max=250)])


class PullBackForm(ReasonForm):
    pass


class ReopenForm(ReasonForm):
    pass


class ReassignForm(ActionForm):
    """The page picks the partner from the reassign picker (``set_partners``): radio
    buttons named ``partner`` carrying codes."""

    partner = StringField("Partner", filters=[_strip],
                          validators=[DataRequired(message="Pick a partner."),
                                      Length(max=32)],
                          render_kw={"autocomplete": "off"})
    reason = StringField("Reason", filters=[_strip],
                         validators=[DataRequired(message="Give a reason."), Length(max=250)])
    override = BooleanField(
        "Override: reassign even if the partner is paused, full or does not sell this "
        "product line (logged with the reason)")

    #: the picker's partners (``services.PartnerChoice``) and the search that found them
    choices: list[Any] = []
    search = ""

    def set_partners(self, choices: list[Any], search: str = "") -> None:
        self.choices, self.search = choices, search


class RouteForm(ActionForm):
    pass


class ReviewConflictForm(ActionForm):
    event = HiddenField(validators=[DataRequired()])
    note = StringField("Review note (optional)", filters=[_strip],
                       validators=[Optional(), Length(max=500)])


ACTION_FORMS: dict[str, type[ActionForm]] = {
    "accept": AcceptForm,
    "decline": DeclineForm,
    "contact": ContactForm,
    "appointment": AppointmentForm,
    "quote": QuoteForm,
    "won": WonForm,
    "lost": LostForm,
    "no_interest": NoInterestForm,
    "note": NoteForm,
    "forward": ForwardForm,
    "pull_back": PullBackForm,
    "reassign": ReassignForm,
    "reopen": ReopenForm,
    "route": RouteForm,
    "review_conflict": ReviewConflictForm,
}
ACTION_LABELS: dict[str, str] = {
    "accept": "Accept",
    "decline": "Decline",
    "contact": "Contacted",
    "appointment": "Appointment",
    "quote": "Quote",
    "won": "Won",
    "lost": "Lost",
    "no_interest": "No interest",
    "note": "Add note",
    "forward": "Forward",
    "pull_back": "Pull back",
    "reassign": "Reassign",
    "reopen": "Re-open",
    "route": "Route again",
    "review_conflict": "Mark reviewed",
}


# --- lists (GET: no CSRF, they change nothing) -------------------------------------------------


class InboxFilterForm(FilterForm):
    tab = HiddenField(default="new")
    q = SearchField("Search", filters=[_strip], validators=[Optional(), Length(max=100)],
                    render_kw={"placeholder": "Name, email, phone or ZIP"})
    stage = SelectField("Stage", choices=[], validate_choice=False, validators=[Optional()])
    product_line = SelectField("Product line", choices=[], validate_choice=False,
                               validators=[Optional()])
    rank = SelectField("Rank", choices=RANK_CHOICES, validators=[Optional()])
    age = SelectField("Age", choices=AGE_CHOICES, validators=[Optional()])
    dealer = SelectField("Dealer", choices=[], validate_choice=False, validators=[Optional()])
    assignee = SelectField("Assigned to", choices=[], validate_choice=False, validators=[
        Optional(), Regexp(r"^(me|none|\d{1,9})$", message="Pick a person.")])
    #: the list's sort (its links set it; kept here so filtering keeps the order)
    sort = HiddenField(validators=[Optional(), AnyOf(
        [*partner_inbox.SORTS, *(f"-{key}" for key in partner_inbox.SORTS)],
        message="Unknown sort order.")])

    def to_filters(self, me: int | None = None) -> partner_inbox.InboxFilters:
        """The typed filters; a bad value is dropped (and marked) rather than failing.
        ``me``: the viewer's id, for "My leads"."""
        self.validate()
        return partner_inbox.InboxFilters(me=me, **{
            name: ("" if self[name].errors else (self[name].data or ""))
            for name in ("tab", "q", "stage", "product_line", "rank", "age", "dealer",
                         "sort", "assignee")
        })


STATUS_CHOICES = [SelectChoice("", "Any status")] + [
    SelectChoice(s.value, STATUS_LABELS.get(s.value, s.value)) for s in LeadStatus]


class SearchForm(FilterForm):
    q = SearchField("Search", filters=[_strip], validators=[Optional(), Length(max=100)],
                    render_kw={"placeholder": "Name, email, phone or ZIP"})
    status = SelectField("Status", choices=STATUS_CHOICES, validators=[Optional()])
    partner = StringField("Partner (name or code)", filters=[_strip],
                          validators=[Optional(), Length(max=120)])
    region = StringField("Region", filters=[_strip], validators=[Optional(), Length(max=10)],
                         render_kw={"placeholder": "US-IA"})
    product_line = SelectField("Product line", choices=[], validate_choice=False,
                               validators=[Optional()])
    rank = SelectField("Rank", choices=RANK_CHOICES, validators=[Optional()])
    campaign = StringField("Campaign code", filters=[_strip],
                           validators=[Optional(), Length(max=32)])
    age = SelectField("Age", choices=AGE_CHOICES, validators=[Optional()])
    overdue = BooleanField("Only overdue outcomes")

    def to_filters(self) -> partner_inbox.SearchFilters:
        """The typed filters; a bad value is dropped (and marked) rather than failing."""
        self.validate()
        values: dict[str, Any] = {
            name: ("" if self[name].errors else (self[name].data or ""))
            for name in ("q", "status", "partner", "region", "product_line", "rank",
                         "campaign", "age")
        }
        return partner_inbox.SearchFilters(overdue=bool(self.overdue.data), **values)


class ChannelSettingsForm(PortalForm):
    """The manufacturer's channel-wide settings (Manage → Channel settings)."""

    hide_contacts_until_accepted = BooleanField(
        "Hide the prospect's phone, email and street from a partner until it accepts the "
        "offer",
        description="Name, town, ZIP and region stay visible so the partner can decide; "
                    "channel managers and admins always see everything.")


class BulkForm(PortalForm):
    """A bulk action on ticked leads; the first post asks to confirm, the second runs it."""

    action = SelectField("With the ticked leads", choices=_opts(
        manager_search.BULK_ACTIONS.items(), "Pick an action"),
        validators=[DataRequired(message="Pick an action.")])
    partner = StringField("Partner code or name (reassign)", filters=[_strip],
                          validators=[Optional(), Length(max=32)])
    reason = StringField("Reason", filters=[_strip], validators=[Optional(), Length(max=250)],
                         description="Required to reassign or close as duplicate.")
    confirm = HiddenField()
    next = HiddenField()


# --- partner settings ----------------------------------------------------------------------


class InviteForm(PortalForm):
    email = EmailField("Email", filters=[_strip], validators=[
        DataRequired(message="Enter the email address."), Length(max=254),
        Regexp(EMAIL, message="Enter a valid email address, like name@example.com.")])
    name = StringField("Name", filters=[_strip], validators=[Optional(), Length(max=120)])
    partner_admin = BooleanField("Partner administrator",
                                 description="May invite colleagues and change these settings.")


class CapacityForm(PortalForm):
    capacity = IntegerField("Most open leads at once", validators=[
        Optional(), NumberRange(min=0, max=100_000, message="Enter 0 to 100000.")],
        description="Leave empty for no limit. New offers stop while you are at the limit.",
        render_kw={"inputmode": "numeric"})


class VacationForm(PortalForm):
    until = DayField("Back on", validators=[Optional()], not_before_today=True,
                      description="Optional: shown to managers with the pause.")
    reason = StringField("Note (optional)", filters=[_strip],
                         validators=[Optional(), Length(max=150)])


class ResumeForm(PortalForm):
    pass


class AssigningForm(PortalForm):
    """Whether any of the firm's users may give its leads to colleagues."""

    users_may_assign = BooleanField(
        "Any of our users may assign leads to a colleague",
        description="Otherwise only administrators do; anyone may take an unassigned lead "
                    "(Assign to me).")

