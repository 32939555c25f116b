"""Assignment within a firm on the lead page: who of the firm works the lead, and the
form that changes it (portal.core.assignment does the work and says who may)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import flash, redirect, url_for
from flask_login import current_user, login_required
from wtforms import HiddenField, SelectField
from wtforms.validators import Optional, Regexp

from portal.core import assignment
from portal.core.access import visible_lead_or_404
from portal.core.errors import DomainError, InvalidInput
from portal.core.forms import PortalForm
from portal.core.models import Lead, User
from portal.core.web import is_htmx
from portal.extensions import db
from portal.leads import forms
from portal.leads.views import (
    _render_lead,
    _settings_admin,
    _settings_done,
    _settings_error,
    bp,
)

#: the assignee field's values besides a user's id
NOBODY, ME = "", "me"


class AssignForm(PortalForm):
    """Give the lead to a colleague, to oneself ("me"), or back to nobody ("")."""

    assignee = SelectField("Assigned to", choices=[], validate_choice=False,
                           validators=[Optional(), Regexp(r"^(me|\d{1,9})$",
                                                          message="Pick a person.")])
    view = HiddenField(default="page")


@dataclass
class AssignPanel:
    """What the lead page shows of the assignment, and how the viewer may change it."""

    assignee: User | None
    #: the viewer may pick anyone of the firm (administrators, or all where allowed)
    form: AssignForm | None
    #: the viewer may take it ("Assign to me") or give back their own
    take: bool
    give_back: bool


def _choices(form: AssignForm, people: list[User]) -> None:
    form.assignee.choices = [("", "Nobody (the whole firm)")] + [
        (str(u.id), f"{assignment.person(u)}" + (" (you)" if u.id == current_user.id else ""))
        for u in people]


@bp.app_template_global()
def assign_panel(lead: Lead, failed: AssignForm | None = None) -> AssignPanel | None:
    """The lead page's assignment line for the viewer (None: the lead has no firm)."""
    if lead.assigned_partner_id is None:
        return None
    assignee = lead.assigned_user
    mine = not current_user.is_staff and current_user.partner_id == lead.assigned_partner_id
    form = None
    if mine and assignment.may_assign_others(current_user):
        form = failed or AssignForm(formdata=None, assignee=str(lead.assigned_user_id or ""))
        _choices(form, assignment.salespeople(db.session, lead.assigned_partner_id))
    return AssignPanel(
        assignee=assignee, form=form,
        take=mine and form is None and assignee is None,
        give_back=mine and form is None and assignee is not None
        and assignee.id == current_user.id)


def _assignee(value: str, lead: Lead) -> User | None:
    """The person a posted value names, checked to be one of the holding firm's."""
    if value == NOBODY:
        return None
    if lead.assigned_partner_id is None:
        raise InvalidInput("Only a lead a partner holds can be assigned.")
    if value == ME:
        return assignment.find_salesperson(db.session, lead.assigned_partner_id,
                                           user_id=current_user.id)
    return assignment.find_salesperson(db.session, lead.assigned_partner_id, user_id=value)


def _said(lead: Lead, changed: bool) -> str:
    who = lead.assigned_user
    if not changed:
        return "Nothing changed: " + (f"it is with {assignment.person(who)} already."
                                      if who else "it is unassigned already.")
    if who is None:
        return "Unassigned: the lead is the whole firm's again."
    if who.id == current_user.id:
        return "Assigned to you: it is under My leads."
    return f"Assigned to {assignment.person(who)}: they get its emails from now on."


@bp.post("/<uuid:lead_id>/assign")
@login_required
def assign(lead_id: Any):  # type: ignore[no-untyped-def]
    """Give a lead the firm holds to one of its users, to oneself, or back to nobody."""
    found = visible_lead_or_404(db.session, current_user, lead_id)
    form = AssignForm()
    problem = ""
    status = 422
    if form.validate_on_submit():
        try:
            with db.session.begin_nested():  # a refusal undoes whatever was written
                changed = assignment.assign_as(db.session, found,
                                               current_user._get_current_object(),
                                               _assignee(form.assignee.data or "", found))
        except DomainError as error:
            if error.status == 404:
                raise
            problem, status = error.message, error.status
            for text in error.fields.values():
                form.assignee.errors = [*form.assignee.errors, text]
        else:
            message = _said(found, changed)
            if is_htmx():
                return _render_lead(found, message=message)
            flash(message, "success")
            return redirect(url_for("leads.lead", lead_id=found.id), 303)
    elif getattr(form, "csrf_token", None) is not None and form.csrf_token.errors:
        problem = "The form expired. Please try again."
    else:
        problem = "Pick a person from the list."
    found = visible_lead_or_404(db.session, current_user, lead_id)
    return _render_lead(found, status=status, message=problem, message_kind="error",
                        assign_failed=form)


@bp.post("/settings/assigning")
@login_required
def settings_assigning():  # type: ignore[no-untyped-def]
    """A partner administrator lets any of the firm's users assign leads, or only admins."""
    partner = _settings_admin()
    form = forms.AssigningForm()
    if not form.validate_on_submit():
        return _settings_error(partner, assigning_form=form)
    partner.users_may_assign = bool(form.users_may_assign.data)
    db.session.flush()
    return _settings_done("Saved: any of your users may assign leads to a colleague."
                          if partner.users_may_assign else
                          "Saved: only administrators assign leads to colleagues.")
