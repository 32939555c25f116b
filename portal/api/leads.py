"""``/api/v1/leads``: capture, read and act on leads with a bearer token."""

from __future__ import annotations

from typing import Any

from flask import g, jsonify, request
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import selectinload

from portal.api.auth import token_required
from portal.api.serialize import lead_json
from portal.api.views import bp, json_body
from portal.capture.services import capture_inquiry
from portal.core import assignment, channel, lifecycle
from portal.core.access import visible_lead, visible_to
from portal.core.database import lost_a_race
from portal.core.errors import DomainError, InvalidInput, NotFound
from portal.core.models import Lead, LeadStatus, Partner, User
from portal.core.models.codes import code_is
from portal.core.pagination import MAX_PAGE
from portal.core.web import json_error
from portal.extensions import db
from portal.leads.actions import perform_action

MAX_PER_PAGE = 100


def _lead_json(lead: Lead) -> dict[str, Any]:
    """One lead as the caller may read it (contact details per ``core.channel``)."""
    return lead_json(lead, contacts=channel.contact_reader(db.session, g.api_user)(lead))


@bp.post("/leads")
@token_required
def create_lead():  # type: ignore[no-untyped-def]
    """Capture an inquiry; a repeated ``Idempotency-Key`` returns the first lead."""
    body = json_body()
    if body is None:
        return json_error(400, "bad_request", "Send the lead as a JSON object.")
    user = g.api_user
    key = request.headers.get("Idempotency-Key") or None
    owner = user.partner if not user.is_staff else None
    actor = lifecycle.Actor.of(user, device="api")
    try:
        result = capture_inquiry(db.session, body, actor, idempotency_scope=f"user:{user.id}",
                                 idempotency_key=key, owner_partner=owner)
        db.session.flush()
    except DBAPIError as error:
        # A concurrent request won the race (the same key committed first, or the server
        # broke a deadlock by failing this one): once more, and it finds the winner's lead.
        if not lost_a_race(error):
            raise
        db.session.rollback()
        result = capture_inquiry(db.session, body, actor, idempotency_scope=f"user:{user.id}",
                                 idempotency_key=key, owner_partner=owner)
    response = jsonify(_lead_json(result.lead))
    if "idempotent replay" in result.notes:
        response.headers["Idempotent-Replayed"] = "true"
        return response, 201
    return response, 201 if result.created else 200


@bp.get("/leads")
@token_required
def list_leads():  # type: ignore[no-untyped-def]
    """Leads the caller may see, newest first; ``status``, ``partner``, ``page``, ``per_page``."""
    user = g.api_user
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 50))
    except ValueError:
        return json_error(400, "bad_request", "page and per_page are whole numbers.")
    # Out of range is the client's mistake, said as such (as the OpenAPI file states the
    # ranges), not quietly read as page 1; the cap keeps OFFSET a 64-bit integer.
    if not 1 <= page <= MAX_PAGE or not 1 <= per_page <= MAX_PER_PAGE:
        return json_error(400, "bad_request", f"page is 1 to {MAX_PAGE:,} and per_page 1 to "
                          f"{MAX_PER_PAGE}.")
    query = select(Lead).where(visible_to(user))
    status = request.args.get("status")
    if status:
        if status not in {s.value for s in LeadStatus}:
            return json_error(422, "invalid_input", f"Unknown status {status!r}.",
                              {"status": "Unknown status."})
        query = query.where(Lead.status == status)
    assignee = request.args.get("assignee")
    if assignee:
        if assignee == "none":
            query = query.where(Lead.assigned_user_id.is_(None))
        else:
            who = user.id if assignee == "me" else select(User.id).where(
                User.email == assignee.strip().lower()).scalar_subquery()
            query = query.where(Lead.assigned_user_id == who)
    partner_code = request.args.get("partner")
    if partner_code:
        query = query.where(Lead.assigned_partner_id.in_(
            select(Partner.id).where(code_is(Partner.code, partner_code))))
    total = db.session.scalar(select(func.count()).select_from(query.subquery()))
    leads = db.session.scalars(
        query.options(selectinload(Lead.product_line), selectinload(Lead.campaign),
                      selectinload(Lead.source), selectinload(Lead.assigned_partner),
                      selectinload(Lead.owner_partner), selectinload(Lead.lost_competitor),
                      selectinload(Lead.assigned_user))
        .order_by(Lead.created_at.desc(), Lead.id)
        .limit(per_page).offset((page - 1) * per_page)
    ).all()
    readable = channel.contact_reader(db.session, user)
    return jsonify({"leads": [lead_json(lead, events=False, contacts=readable(lead))
                              for lead in leads],
                    "page": page, "per_page": per_page, "total": total})


@bp.get("/leads/<lead_id>")
@token_required
def get_lead(lead_id: str):  # type: ignore[no-untyped-def]
    """One lead with its events; 404 when it is not the caller's to see."""
    lead = visible_lead(db.session, g.api_user, lead_id)
    if lead is None:
        return json_error(404, "not_found", "No such lead.")
    return jsonify(_lead_json(lead))


def _lead_and_body(lead_id: str, shape: str) -> tuple[Any, Lead, dict[str, Any]]:
    """The caller, the lead (404 when it is not theirs to see) and the request's JSON
    object (400 when the body is not one, saying to send ``shape``)."""
    user = g.api_user
    lead = visible_lead(db.session, user, lead_id)
    if lead is None:
        raise NotFound("No such lead.")
    body = json_body()
    if body is None:
        raise DomainError(f"Send {shape} as a JSON object.", code="bad_request", status=400)
    return user, lead, body


@bp.post("/leads/<lead_id>/actions")
@token_required
def lead_action(lead_id: str):  # type: ignore[no-untyped-def]
    """Apply an action (accept, decline, contact, …); 409 when the state does not allow it."""
    user, lead, body = _lead_and_body(lead_id, '{"action": …}')
    if not isinstance(body.get("action"), str):
        return json_error(400, "bad_request", 'Send {"action": …} as a JSON object.')
    args: dict[str, Any] = {k: v for k, v in body.items() if k != "action"}
    # A refusal (409 with the lead's state, 404, 422) is answered by the one error handler.
    perform_action(db.session, lead, body["action"], args, lifecycle.Actor.of(user, device="api"))
    db.session.flush()
    db.session.refresh(lead)
    if db.session.scalars(select(Lead.id).where(Lead.id == lead.id, visible_to(user))).first():
        return jsonify(_lead_json(lead))
    # Declined or forwarded away: the caller no longer sees the lead.
    return jsonify({"id": str(lead.id), "status": "removed",
                    "message": "The lead is no longer yours."})


@bp.patch("/leads/<lead_id>")
@token_required
def patch_lead(lead_id: str):  # type: ignore[no-untyped-def]
    """Assign a lead the caller's firm holds: ``{"assignee": email | "me" | null}``."""
    user, lead, body = _lead_and_body(lead_id, '{"assignee": …}')
    unknown = sorted(set(body) - {"assignee"})
    if unknown or "assignee" not in body:
        fields = {name: "Not a field this call changes." for name in unknown}
        if "assignee" not in body:
            fields["assignee"] = "Required: an email, \"me\" or null."
        raise InvalidInput("Only the assignee can be changed here.", fields)
    value = body["assignee"]
    if value is not None and not isinstance(value, str):
        raise InvalidInput("The assignee is an email, \"me\" or null.",
                           {"assignee": "An email, \"me\" or null."})
    assignment.check_holder(user, lead)
    person = None
    if value is not None and lead.assigned_partner_id is not None:
        person = assignment.find_salesperson(
            db.session, lead.assigned_partner_id,
            **({"user_id": user.id} if value == "me" else {"email": value}))
    assignment.assign_as(db.session, lead, user, person, device="api")
    db.session.flush()
    db.session.refresh(lead)
    return jsonify(_lead_json(lead))
