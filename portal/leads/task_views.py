"""Follow-up tasks on the lead page (add, tick off, undo, delete) and "Tasks due today".

Every form works without JavaScript (a POST, then 303 back to the lead) and with htmx
(the tasks card answers with itself: ``hx-target="closest .lead-tasks"``). A lead the
user may not see is a 404; a lead whose tasks are not theirs (a distributor looking at
its dealer's lead) shows no tasks card, and its task URLs answer 404 too.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from flask import abort, flash, g, make_response, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from portal.core import channel
from portal.core.access import visible_lead_or_404
from portal.core.errors import DomainError, NotFound
from portal.core.forms import show_errors
from portal.core.localtime import day_text, local_text, viewer_zone
from portal.core.models import Lead, utcnow
from portal.core.web import is_htmx
from portal.extensions import db
from portal.leads import tasks
from portal.leads.services import lead_events
from portal.leads.task_forms import DueTasksFilter, TaskDeleteForm, TaskDoneForm, TaskForm
from portal.leads.views import _my_partner, _page_arg, _per_page, _render_lead, bp

#: flask.g key: a refused task form, shown again (with its errors) by the lead page
_FAILED = "portal.leads.failed_task_form"


@bp.app_template_global()
def task_panel(lead: Lead, message: str = "", message_kind: str = "success") -> dict[str, Any]:
    """What the lead page's tasks card needs: the tasks the viewer may see, the forms."""
    user = current_user
    shown = tasks.may_see(lead, user)
    form = g.get(_FAILED) or TaskForm(formdata=None)
    return {"shown": shown, "tasks": tasks.lead_tasks(db.session, lead, user) if shown else [],
            "may_change": tasks.may_change(lead, user), "form": form, "lead": lead,
            "done_form": TaskDoneForm(formdata=None), "delete_form": TaskDeleteForm(formdata=None),
            "zone": viewer_zone(db.session, user).key, "now": utcnow(),
            "message": message, "message_kind": message_kind}


@bp.app_template_global()
def due_task_counts() -> dict[str, int]:
    """For the dashboard: the signed-in partner user's tasks due today, and how many of
    them are overdue."""
    if not current_user.is_authenticated or current_user.partner_id is None:
        return {"today": 0, "overdue": 0}
    return tasks.due_counts(db.session, current_user)


@bp.app_template_filter("local")
def local(moment: Any) -> str:
    """A moment in the viewer's own zone: "Tue 8 Dec, 10:30"."""
    return local_text(moment, viewer_zone(db.session, current_user))


@bp.app_template_filter("iso_local")
def iso_local(text: Any) -> str:
    """A moment stored as ISO text in an event (an appointment's) in the viewer's zone."""
    try:
        return local(datetime.fromisoformat(str(text)))
    except ValueError:
        return str(text)


@bp.app_template_filter("iso_day")
def iso_day(text: Any) -> str:
    """A day stored as ISO text in an event (an appointment without a time): "Tue 8 Dec"."""
    try:
        return day_text(date.fromisoformat(str(text)))
    except ValueError:
        return str(text)


def _answer(lead: Lead, message: str, *, kind: str = "success", status: int = 200) -> Any:
    """htmx: the tasks card again, saying what happened. Without JavaScript: back to the
    lead (303) with the message, or the lead page with the refused form (4xx)."""
    if is_htmx():
        html = render_template("partials/leads/_tasks.html",
                               panel=task_panel(lead, message, kind))
        if status < 400:  # the new event on the timeline too, out of band
            html += render_template("partials/leads/_timeline.html", oob=True,
                                    events=lead_events(db.session, lead))
        response = make_response(html, status)
        response.vary.add("HX-Request")
        return response
    if status < 400:
        flash(message, kind)
        return redirect(url_for("leads.lead", lead_id=lead.id, _anchor="tasks-title"), 303)
    return _render_lead(lead, status=status, message=message, message_kind="error")


def _run(lead_id: Any, form: Any, work: Any, done: str) -> Any:
    """Validate ``form``, run ``work(lead)`` in a savepoint, answer."""
    lead = visible_lead_or_404(db.session, current_user, lead_id)
    if not tasks.may_see(lead, current_user):
        abort(404)
    if not form.validate_on_submit():
        g.setdefault(_FAILED, form if isinstance(form, TaskForm) else None)
        problem = ("The form expired. Please try again." if getattr(form, "csrf_token", None)
                   is not None and form.csrf_token.errors
                   else "Please correct the fields marked below.")
        return _answer(lead, problem, kind="error", status=422)
    try:
        with db.session.begin_nested():
            message = work(lead) or done
    except NotFound:
        abort(404)
    except DomainError as error:
        if isinstance(form, TaskForm):
            renamed = {"date": "due_date", "time": "due_time"}
            error.fields = {renamed.get(k, k): v for k, v in error.fields.items()}
            show_errors(form, error)
            g.setdefault(_FAILED, form)
        return _answer(lead, error.message, kind="error",
                       status=409 if error.status == 409 else 422)
    return _answer(lead, message)


@bp.post("/<uuid:lead_id>/tasks")
@login_required
def task_add(lead_id: Any):  # type: ignore[no-untyped-def]
    """Add a follow-up task to a lead (the firm holding it, or staff)."""
    form = TaskForm()

    def work(lead: Lead) -> str:
        task = tasks.add_task(db.session, lead, current_user, kind=form.kind.data,
                              day=form.due_date.data.isoformat() if form.due_date.data else "",
                              clock=form.due_time.data, note=form.note.data or "")
        return (f"Task added: {task.label}, due "
                f"{local_text(task.due_at, viewer_zone(db.session, current_user))}.")

    return _run(lead_id, form, work, "Task added.")


@bp.post("/<uuid:lead_id>/tasks/<int:task_id>/done")
@login_required
def task_done(lead_id: Any, task_id: int):  # type: ignore[no-untyped-def]
    """Tick a task off, or (``done=0``) open it again."""
    form = TaskDoneForm()

    def work(lead: Lead) -> str:
        done = (form.done.data or "1") != "0"
        task = tasks.set_done(db.session, lead, current_user, task_id, done)
        return f"Done: {task.label}." if done else f"Open again: {task.label}."

    return _run(lead_id, form, work, "Saved.")


@bp.post("/<uuid:lead_id>/tasks/<int:task_id>/delete")
@login_required
def task_delete(lead_id: Any, task_id: int):  # type: ignore[no-untyped-def]
    """Delete a task set by mistake (the timeline keeps it)."""
    form = TaskDeleteForm()

    def work(lead: Lead) -> str:
        tasks.delete_task(db.session, lead, current_user, task_id)
        return "Task deleted."

    return _run(lead_id, form, work, "Task deleted.")


@bp.get("/tasks")
@login_required
def tasks_due():  # type: ignore[no-untyped-def]
    """A partner user's tasks due today, overdue first, each with its lead."""
    _my_partner()
    filters = DueTasksFilter(request.args)
    firm = filters.validate() and filters.scope.data == "firm"
    page, overdue = tasks.due_tasks(db.session, current_user, firm=firm, page=_page_arg(),
                                    per_page=_per_page())
    may_read = channel.contact_reader(db.session, current_user)
    return render_template("leads/tasks_due.html", page=page, overdue=overdue,
                           filters=filters, firm=firm,
                           name_of=lambda lead: channel.shown_name(lead, may_read(lead)))
