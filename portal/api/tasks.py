"""``/api/v1/leads/{id}/tasks``: a lead's follow-up tasks (the firm holding it, and staff)."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify

from portal.api.auth import token_required
from portal.api.views import bp, json_body
from portal.core.access import visible_lead
from portal.core.errors import InvalidInput, NotFound
from portal.core.models import Lead
from portal.core.web import json_error
from portal.extensions import db
from portal.leads import tasks


def _lead(lead_id: str) -> Lead:
    """The lead, if the caller may see its tasks; else 404 (as for a lead not there)."""
    lead = visible_lead(db.session, g.api_user, lead_id)
    if lead is None or not tasks.may_see(lead, g.api_user):
        raise NotFound("No such lead.")
    return lead


@bp.get("/leads/<lead_id>/tasks")
@token_required
def list_tasks(lead_id: str):  # type: ignore[no-untyped-def]
    """The lead's follow-up tasks, open ones first by due time."""
    lead = _lead(lead_id)
    return jsonify({"tasks": [tasks.task_json(task)
                              for task in tasks.lead_tasks(db.session, lead, g.api_user)]})


@bp.post("/leads/<lead_id>/tasks")
@token_required
def add_task(lead_id: str):  # type: ignore[no-untyped-def]
    """Add a task: ``kind``, ``due_date``, ``due_time`` (HH:MM), ``time_zone``, ``note``."""
    lead = _lead(lead_id)
    body = json_body()
    if body is None:
        return json_error(400, "bad_request", "Send the task as a JSON object.")
    task = tasks.add_task(db.session, lead, g.api_user, kind=body.get("kind"),
                          day=body.get("due_date"), clock=body.get("due_time"),
                          note=body.get("note"), time_zone=body.get("time_zone"),
                          device="api")
    return jsonify(tasks.task_json(task)), 201


@bp.patch("/leads/<lead_id>/tasks/<int:task_id>")
@token_required
def update_task(lead_id: str, task_id: int):  # type: ignore[no-untyped-def]
    """Tick a task off (``{"done": true}``) or open it again (``false``)."""
    lead = _lead(lead_id)
    body: Any = json_body()
    if body is None:
        return json_error(400, "bad_request", 'Send {"done": true|false} as a JSON object.')
    if not isinstance(body.get("done"), bool):
        raise InvalidInput("done is true or false.", {"done": "Send true or false."})
    task = tasks.set_done(db.session, lead, g.api_user, task_id, body["done"], device="api")
    return jsonify(tasks.task_json(task))


@bp.delete("/leads/<lead_id>/tasks/<int:task_id>")
@token_required
def delete_task(lead_id: str, task_id: int):  # type: ignore[no-untyped-def]
    """Delete a task set by mistake (its timeline events stay)."""
    lead = _lead(lead_id)
    tasks.delete_task(db.session, lead, g.api_user, task_id, device="api")
    return "", 204
