"""Forms of follow-up tasks: add one on the lead page, tick it off or delete it, and the
"Tasks due today" list's filter."""

from __future__ import annotations

from typing import Any

from wtforms import HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from portal.core.forms import DayField, FilterForm, PortalForm, choices
from portal.core.models import TASK_KIND_LABELS
from portal.leads.tasks import NOTE_MAX


def _strip(value: Any) -> Any:
    return value.strip() if isinstance(value, str) else value


class TaskForm(PortalForm):
    """A new task: what, by which day and time (the user's zone), a note."""

    kind = SelectField("To do", choices=choices(dict(TASK_KIND_LABELS)), default="call_back")
    due_date = DayField("Due on", validators=[DataRequired(message="Enter the day.")])
    due_time = StringField("at (HH:MM)", filters=[_strip], default="09:00",
                           validators=[Optional(), Length(max=5)],
                           description="In your time zone (Email settings).",
                           render_kw={"inputmode": "numeric", "placeholder": "09:00",
                                      "type": "time"})
    note = TextAreaField("Note (optional)", filters=[_strip], render_kw={"rows": 2},
                         validators=[Optional(), Length(max=NOTE_MAX)])


class TaskDoneForm(PortalForm):
    """Tick a task off ("1") or open it again ("0")."""

    done = HiddenField(default="1")


class TaskDeleteForm(PortalForm):
    """Delete a task (it stays on the timeline)."""


class DueTasksFilter(FilterForm):
    """Mine, or the whole firm's."""

    scope = SelectField("Whose", choices=choices({"mine": "Mine", "firm": "The whole firm's"}),
                        default="mine", validators=[Optional()])
