"""Forms of the nurture pages: tracks, steps, and the prospect's two buttons."""

from __future__ import annotations

from wtforms import BooleanField, IntegerField, SelectField, StringField, SubmitField, TextAreaField
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional

from portal.core.forms import PortalForm


class TrackForm(PortalForm):
    """A track's name, product line and whether it sends."""

    name = StringField("Name", validators=[DataRequired(message="Name the track."),
                                           Length(max=120)])
    product_line = SelectField(
        "Product line", choices=[], validate_choice=False, validators=[Optional()],
        description="Leads asking about this line get this track. "
                    "'Any' is the fallback for lines without a track of their own.")
    active = BooleanField("Active (sends emails)", default=True)
    submit = SubmitField("Save track")


class StepForm(PortalForm):
    """One timed email of a track."""

    position = IntegerField("Step number", validators=[
        InputRequired(message="Give the step's number."), NumberRange(1, 100)],
        description="Steps are sent in this order.")
    delay_days = IntegerField("Days after the previous step", default=3, validators=[
        InputRequired(message="Give the delay in days."), NumberRange(0, 730)],
        description="For the first step: days after the lead entered nurture.")
    subject = StringField("Subject", validators=[DataRequired(message="Write the subject."),
                                                 Length(max=200)])
    body = TextAreaField("Text", validators=[DataRequired(message="Write the email's text."),
                                             Length(max=20000)],
                         description="Plain text. Every email adds a 'talk to a dealer now' "
                                     "link and an unsubscribe link by itself.",
                         render_kw={"rows": 10})
    link_url = StringField("Content link", validators=[Optional(), Length(max=500)],
                           description="A brochure from the literature library, a video … "
                                       "(https://…); clicks raise the lead's score.")
    link_label = StringField("Link text", validators=[Optional(), Length(max=120)],
                             description="e.g. 'Download the TRC brochure'.")
    submit = SubmitField("Save step")


class ConfirmForm(PortalForm):
    """A single button (CSRF only)."""

    submit = SubmitField("Confirm")
