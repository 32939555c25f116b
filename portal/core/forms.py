"""Form pieces every area uses: choices, money, a confirmation, errors shown on fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    DecimalField,
    Form,
    SelectChoice,
    SelectMultipleField,
)
from wtforms.validators import (
    ValidationError,
)
from wtforms.widgets import CheckboxInput, ListWidget

from portal.core.errors import DomainError


def choices(labels: dict[str, str]) -> list[SelectChoice]:
    return [SelectChoice(value, label) for value, label in labels.items()]


class CheckboxesField(SelectMultipleField):
    """Several choices as checkboxes, every one in view (a multi-select hides most of its
    options and needs Ctrl to pick two); the ``field`` macro gives them a fieldset."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


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


class ConfirmForm(FlaskForm):
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
