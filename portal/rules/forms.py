"""The rules editor's form: every rule, a "try it" inquiry, and the note for a new version."""

from __future__ import annotations

from typing import Any

from wtforms import (
    BooleanField,
    IntegerField,
    SelectChoice,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional

from portal.core.forms import CheckboxesField, PortalForm
from portal.rules.services import LIST_RULES, QUESTIONS, choice_pairs, sources_text
from routing.scoring import BUDGETS, TIMELINES, RuleSet

#: the plain whole-number rules: field → (label, lowest, highest, hint)
NUMBER_RULES: dict[str, tuple[str, int, int, str]] = {
    "contact_both": ("Valid email and phone", -100, 100, "Points when both can be used."),
    "contact_one": ("Valid email or phone", -100, 100, "Points when only one can be used."),
    "product_line": ("Product line named", -100, 100, ""),
    "repeat_each": ("Each earlier inquiry", 0, 100, "A repeat inquiry shows interest."),
    "repeat_cap": ("Earlier inquiries, at most", 0, 100, ""),
    "engagement_each": ("Each nurture email click", 0, 100, ""),
    "engagement_cap": ("Nurture clicks, at most", 0, 100, ""),
    "hot_at": ("Hot from score", 0, 100, "Scores at or above this are hot."),
    "warm_at": ("Warm from score", 0, 100, "At or above this (and below hot) are warm; "
                                           "below is cold."),
}
LIST_LABELS = {
    "blocked_domains": ("Test or spam domains", "One per line, e.g. mailinator.com."),
    "test_names": ("Test names", "A name containing one of these words is a test inquiry."),
    "free_mail_domains": ("Free-mail domains", "Used only when the box above is ticked."),
    "competitor_domains": ("Competitor domains", "Inquiries from these are disqualified."),
}


class WholeNumberField(IntegerField):
    """An integer field whose complaint says what to type."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("Enter a whole number, e.g. 10.") from None


def point_field(question: str, answer: str) -> str:
    """The form field holding the points for one answer ("" = not answered)."""
    return f"points_{question}_{answer or 'blank'}"


def _points_label(question: str, answer: str) -> str:
    return f"{question.title()}: {answer.replace('_', ' ') if answer else 'not answered'}"


class RulesForm(PortalForm):
    """Every rule of a RuleSet; the points per answer are added below the class."""

    nurture_timelines = CheckboxesField(
        "Timelines that mean not ready", choices=choice_pairs(TIMELINES),
        validators=[Optional()], description="These go to nurture instead of a dealer.")
    nurture_budgets = CheckboxesField(
        "Budgets that mean not ready", choices=choice_pairs(BUDGETS), validators=[Optional()])
    cold_to_nurture = BooleanField("Send cold qualified leads to nurture, not to a dealer")
    disqualify_free_mail = BooleanField("Disqualify free-mail addresses (gmail.com …)")
    sources = TextAreaField(
        "Points per lead source", validators=[Optional(), Length(max=5000)],
        description="One per line as code: points, e.g. partner_referral: 10.")

    try_lead = SelectField("A recent lead", choices=[], validate_choice=False,
                           validators=[Optional()],
                           description="Or leave empty and type an inquiry below.")
    try_name = StringField("Name", validators=[Optional(), Length(max=160)],
                           default="Pat Prospect")
    try_email = StringField("Email", validators=[Optional(), Length(max=254)],
                            default="pat@farm-example.com")
    try_phone = BooleanField("Has a valid phone", default=True)
    try_product_line = BooleanField("Names a product line", default=True)
    try_source = StringField("Source code", validators=[Optional(), Length(max=32)])
    try_timeline = SelectField("Timeline", choices=[SelectChoice("", "not answered"),
                                                    *choice_pairs(TIMELINES)],
                               validators=[Optional()], default="3_months")
    try_budget = SelectField("Budget", choices=[SelectChoice("", "not answered"),
                                                *choice_pairs(BUDGETS)],
                             validators=[Optional()], default="planned")
    try_role = SelectField("Role", choices=[SelectChoice("", "not answered"),
                                            *choice_pairs(QUESTIONS["role"])],
                           validators=[Optional()], default="decision_maker")
    try_repeats = IntegerField("Earlier inquiries", default=0,
                               validators=[Optional(), NumberRange(0, 100)])
    try_engagements = IntegerField("Nurture clicks", default=0,
                                   validators=[Optional(), NumberRange(0, 100)])
    preview = SubmitField("Try it")

    note = StringField("What changed, and why", validators=[Optional(), Length(max=300)],
                       description="Kept with the version in the history.")
    save = SubmitField("Save as a new version")

    def rules_data(self) -> dict[str, Any]:
        """The draft in ``RuleSet.to_dict`` shape (lists and sources still as typed)."""
        data: dict[str, Any] = {
            "points": {q: {a: int(self[point_field(q, a)].data or 0) for a in (*answers, "")}
                       for q, answers in QUESTIONS.items()},
            "nurture_timelines": list(self.nurture_timelines.data or ()),
            "nurture_budgets": list(self.nurture_budgets.data or ()),
            "cold_to_nurture": bool(self.cold_to_nurture.data),
            "disqualify_free_mail": bool(self.disqualify_free_mail.data),
            "sources": self.sources.data or "",
        }
        for name in NUMBER_RULES:
            data[name] = int(self[name].data or 0)
        for name in LIST_RULES:
            data[name] = self[name].data or ""
        return data


def form_data(rules: RuleSet) -> dict[str, Any]:
    """The editor's starting values for ``rules``."""
    stored = rules.to_dict()
    data: dict[str, Any] = {
        name: stored[name] for name in (*NUMBER_RULES, "nurture_timelines", "nurture_budgets",
                                        "cold_to_nurture", "disqualify_free_mail")
    }
    for question, answers in QUESTIONS.items():
        table = stored["points"].get(question, {})
        for answer in (*answers, ""):
            data[point_field(question, answer)] = table.get(answer, table.get("", 0))
    for name in LIST_RULES:
        data[name] = "\n".join(stored[name])
    data["sources"] = sources_text(stored["sources"])
    return data


def _add_rule_fields() -> None:
    # Declared in a loop so the form always covers every answer the rules know.
    for question, answers in QUESTIONS.items():
        for answer in (*answers, ""):
            setattr(RulesForm, point_field(question, answer), WholeNumberField(
                _points_label(question, answer),
                validators=[InputRequired(message="Enter the points (a whole number)."),
                            NumberRange(-100, 100, message="From -100 to 100.")]))
    for name, (label, low, high, hint) in NUMBER_RULES.items():
        setattr(RulesForm, name, WholeNumberField(
            label, description=hint,
            validators=[InputRequired(message="Enter a whole number."),
                        NumberRange(low, high, message=f"From {low} to {high}.")]))
    for name, (label, hint) in LIST_LABELS.items():
        setattr(RulesForm, name, TextAreaField(
            label, description=hint, validators=[Optional(), Length(max=20000)]))


_add_rule_fields()

#: the points per answer, one compact table per question: (question, [(field, answer)])
ANSWER_TABLES: list[tuple[str, list[tuple[str, str]]]] = [
    (question.title(), [(point_field(question, a), a.replace("_", " ") if a else "not answered")
                        for a in (*answers, "")])
    for question, answers in QUESTIONS.items()
]
#: the whole-number rules about facts of the inquiry, one table
FACT_FIELDS = ["contact_both", "contact_one", "product_line", "repeat_each", "repeat_cap",
               "engagement_each", "engagement_cap"]
RANK_FIELDS = ["hot_at", "warm_at"]
NURTURE_FIELDS = ["nurture_timelines", "nurture_budgets", "cold_to_nurture"]
#: the long lists, folded away (<details>) unless one of them is wrong
DISQUALIFY_FIELDS = ["blocked_domains", "test_names", "competitor_domains",
                     "disqualify_free_mail", "free_mail_domains"]
TRY_FIELDS = ["try_lead", "try_name", "try_email", "try_phone", "try_product_line",
              "try_source", "try_timeline", "try_budget", "try_role", "try_repeats",
              "try_engagements"]
