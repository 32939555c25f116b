"""Forms of the manual merge page."""

from __future__ import annotations

from wtforms import StringField, SubmitField
from wtforms.validators import DataRequired, Length, Optional

from portal.core.forms import PortalForm


class MergeForm(PortalForm):
    """Two leads by id: the one to keep and the duplicate that goes into it."""

    keep = StringField("Lead to keep", validators=[DataRequired(message="Enter the lead's id.")],
                       description="Its id, as shown in the search results.")
    duplicate = StringField("Duplicate to merge into it",
                            validators=[DataRequired(message="Enter the duplicate's id.")])
    reason = StringField("Why (optional)", validators=[Optional(), Length(max=300)])
    submit = SubmitField("Merge")


class UnmergeForm(PortalForm):
    """Undo one merge, with the reason for the audit trail."""

    reason = StringField("Why", validators=[DataRequired(message="Say why you unmerge it."),
                                            Length(max=300)])
    submit = SubmitField("Unmerge")
