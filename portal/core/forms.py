"""Form pieces every area uses: the base forms that check every value is text, choices,
money, days, a confirmation, errors shown on fields."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_wtf import FlaskForm
from wtforms import (
    DateField,
    DecimalField,
    Form,
    SelectChoice,
    SelectMultipleField,
)
from wtforms.validators import (
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.core.checks import parse_day, parse_money, text_problem
from portal.core.errors import DomainError, InvalidInput


def _text_errors(form: Form) -> bool:
    """Mark every field whose input (as sent, before any filter) is not text: control
    characters, or bytes that were not UTF-8 (werkzeug turns those into U+FFFD). One rule
    for every form, as for the API and the imports (``checks.text_problem``)."""
    clean = True
    for item in form:
        for raw in item.raw_data or ():
            if isinstance(raw, str) and (problem := text_problem(raw)):
                if problem not in item.errors:
                    item.errors = [*item.errors, problem]
                clean = False
    return clean


class PortalForm(FlaskForm):
    """Every posted form of the portal: Flask-WTF's (CSRF), plus the one text rule."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        return _text_errors(self) and valid


class FilterForm(Form):
    """Every query-string form (lists' filters): no CSRF (they change nothing), the one
    text rule (a value that is not text is marked and, by the lists, dropped)."""

    def validate(self, extra_validators: Any = None) -> bool:
        valid = super().validate(extra_validators)
        return _text_errors(self) and valid


def choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes, every one in view (a multi-select hides most of its
    options and needs Ctrl to pick two); the ``field`` macro gives them a fieldset."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class MoneyField(DecimalField):
    """A decimal amount as people write it: "$1,250.50" yes; "1,2,3", "12.345" or
    "١٢٣" are refused, never guessed at (``checks.parse_money``)."""

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        try:
            self.data = parse_money(valuelist[0], self.name)
        except InvalidInput as error:
            self.data = None
            raise ValueError(error.fields[self.name]) from None


class DayField(DateField):
    """A day as ``YYYY-MM-DD`` and nothing else, from 2000 to a few years ahead
    (``checks.parse_day``); ``not_before_today`` for days that must still come."""

    def __init__(self, *args: Any, not_before_today: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.not_before_today = not_before_today

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist:
            return
        today = datetime.now(UTC).date()
        try:
            self.data = parse_day(
                valuelist[0], self.name, today=today,
                **({"earliest": today, "too_early": "Pick today or a later day."}
                   if self.not_before_today else {}))
        except InvalidInput as error:
            self.data = None
            raise ValueError(error.fields[self.name]) from None


def not_negative(form: Form, field: DecimalField) -> None:
    """Money is 0 or more (the service checks again; this shows it with the other errors)."""
    if field.data is not None and (not field.data.is_finite() or field.data < 0):
        raise ValidationError("Enter 0 or more.")


class ConfirmForm(PortalForm):
    """A bare form for POST-only actions: it carries the CSRF token and nothing else."""


def show_errors(form: Form, error: DomainError) -> None:
    """Put a service's complaint on the fields it names; one it cannot place goes on top."""
    placed = False
    for name, message in error.fields.items():
        if name in form:
            form[name].errors = [*form[name].errors, message]
            placed = True
    if not placed:
        form.form_errors.append(error.message)
