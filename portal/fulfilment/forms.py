"""Forms of the fulfilment area: library items, uploads, written literature, confirmations."""

from __future__ import annotations

from typing import Any

from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    IntegerField,
    SelectField,
    StringField,
    SubmitField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.core.forms import PortalForm
from portal.core.models import LiteratureKind


class ItemForm(PortalForm):
    title = StringField("Title", validators=[DataRequired(), Length(max=160)])
    product_line_id = SelectField(
        "Product line", coerce=str,
        description="Packs for this line include it. “All lines” puts it in every pack.")
    kind = SelectField("Kind", choices=[SelectChoice(LiteratureKind.BROCHURE, "Brochure"),
                                        SelectChoice(LiteratureKind.SPEC_SHEET, "Spec sheet")])
    position = IntegerField("Order in the pack", default=0,
                            validators=[Optional(), NumberRange(min=0, max=999)],
                            description="Lower numbers come first.")
    active = BooleanField("In use", default=True,
                          description="Untick to leave it out of packs without deleting it.")
    submit = SubmitField("Save")

    def set_lines(self, lines: list[Any]) -> None:
        """Offer the product lines (and "all lines") to choose from."""
        self.product_line_id.choices = [SelectChoice("", "All lines")] + [
            SelectChoice(str(line.id), f"{line.code} — {line.name}") for line in lines]


class UploadForm(PortalForm):
    file = FileField("PDF file", validators=[FileRequired("Choose a PDF file to upload.")],
                     description="A PDF (not encrypted), up to the size and page limits.")
    activate = BooleanField("Use this version in packs from now on", default=True)
    submit = SubmitField("Upload")


class WriteForm(PortalForm):
    body = TextAreaField(
        "Text", validators=[InputRequired("Write the text first."), Length(max=50_000)],
        render_kw={"rows": 14},
        description="A line starting with # is a heading, - starts a bullet, a blank line "
                    "starts a new paragraph. It is laid out with the house style.")
    activate = BooleanField("Use this version in packs from now on", default=True)
    submit = SubmitField("Save as a new version")


class ConfirmForm(PortalForm):
    """A bare POST with CSRF: activate, retry, build a batch."""

    submit = SubmitField("Confirm")


class PrintedForm(PortalForm):
    printed = BooleanField(
        "I downloaded the letters and labels, printed them and handed them to the mail room",
        validators=[DataRequired("Tick the box once the batch is printed.")])
    submit = SubmitField("Mark the batch as printed")
