"""The OpenAPI document: what exists, kept next to the views that implement it."""

from __future__ import annotations

from typing import Any

from portal.core.models import LeadStatus
from portal.core.pagination import MAX_PAGE
from portal.core.transitions import API_ACTIONS

ERROR = {
    "type": "object",
    "required": ["error", "message", "fields"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


_TEXT = {"type": "string"}
INQUIRY = {
    "type": "object",
    "properties": {
        **{name: _TEXT for name in (
            "first_name", "last_name", "company", "email", "phone", "address", "city",
            "region", "postal_code", "country", "product_line", "campaign", "source",
            "comments", "external_id")},
        "wants_literature": {"type": "boolean"},
        "answers": {"type": "object", "properties": {
            "timeline": {"enum": ["now", "3_months", "6_months", "12_months", "researching"]},
            "budget": {"enum": ["approved", "planned", "none", "unknown"]},
            "role": {"enum": ["decision_maker", "influencer", "user", "other"]},
        }, "additionalProperties": {"type": "string"}},
    },
}
LEAD = {
    "type": "object",
    "required": ["id", "status", "rank", "score", "product_line", "postal_code", "country",
                 "assigned_partner", "routing", "version"],
    "properties": {
        "id": {"type": "string", "format": "uuid"}, "status": _TEXT,
        "rank": {"type": ["string", "null"]}, "score": {"type": "integer"},
        "assigned_partner": {"type": ["string", "null"]},
        "assignee": {"type": ["string", "null"], "format": "email",
                     "description": "the salesperson of the holding partner who works "
                                    "it (their email), or null: the firm as a whole"},
        "assignee_name": {"type": ["string", "null"]},
        "routing": {"type": ["object", "null"]}, "version": {"type": "integer"},
        **{name: {"type": ["string", "null"], "description": "null while contacts_hidden"}
           for name in ("email", "phone", "address")},
        "contacts_hidden": {"type": "boolean", "description": "the caller is a partner that "
                            "has not accepted the lead, and the manufacturer shows contact "
                            "details only after the accept: email, phone and address are "
                            "null (town, ZIP, region and name are given)"},
        "events": {"type": "array", "items": {"type": "object"}},
    },
}
ACTION = {
    "type": "object",
    "required": ["action"],
    "properties": {
        "action": {"enum": list(API_ACTIONS)},  # the transition table's
        "reason": _TEXT, "competitor": _TEXT, "amount": {"type": ["number", "string"]},
        "channel": _TEXT, "date": {"type": "string", "format": "date"}, "text": _TEXT,
        "partner": _TEXT,
        "override": {"type": "boolean", "description": "reassign: to a partner that is not "
                     "eligible (paused, full, not selling the line); logged with the reason"},
    },
}
ASSIGNMENT = {
    "type": "object",
    "required": ["assignee"],
    "additionalProperties": False,
    "properties": {
        "assignee": {"type": ["string", "null"], "description":
                     "an active user of the partner holding the lead (their email), \"me\" "
                     "to take it, or null: back to the firm as a whole"},
    },
}
LEAD_REF = {"$ref": "#/components/schemas/Lead"}
ID_PARAM = {"name": "id", "in": "path", "required": True,
            "schema": {"type": "string", "format": "uuid"}}


def _errors(*codes: int) -> dict[str, Any]:
    """The error answers of an operation: ``codes``, and those any request may get (400:
    a body or query that cannot be read, e.g. a NUL; 503: the database did not answer,
    nothing was saved, try again)."""
    codes = tuple(sorted({*codes, 400, 503}))
    return {
        str(code): {
            "description": "error",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        for code in codes
    }


def spec() -> dict[str, Any]:
    """Build the document (paths are added here as the API grows)."""
    return {
        "openapi": "3.1.0",
        "info": {"title": "Channel Lead Portal API", "version": "1"},
        "servers": [{"url": "/api/v1"}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": ERROR, "Inquiry": INQUIRY, "Lead": LEAD, "Action": ACTION,
                        "Assignment": ASSIGNMENT},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/tokens": {
                "post": {
                    "summary": "Exchange email and password for a bearer token",
                    "description": "The token is shown once; its owner sees it (by its first "
                                   "characters and label) and revokes it on their account "
                                   "page. Throttled like the sign-in page: 429 with "
                                   "Retry-After.",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["email", "password"],
                            "properties": {"email": {"type": "string"},
                                           "password": {"type": "string"},
                                           "label": {"type": "string", "maxLength": 80}},
                        }}},
                    },
                    "responses": {
                        "201": {"description": "token", "content": {"application/json": {
                            "schema": {"type": "object", "properties": {
                                "token": {"type": "string"}, "role": {"type": "string"}}}}}},
                        **_errors(400, 401, 422, 429),
                    },
                }
            },
            "/leads": {
                "post": {
                    "summary": "Capture an inquiry (qualified, ranked and routed at once)",
                    "parameters": [{"name": "Idempotency-Key", "in": "header",
                                    "schema": {"type": "string", "maxLength": 200},
                                    "description": "A repeat returns the same lead."}],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Inquiry"}}}},
                    "responses": {
                        "201": {"description": "the new lead (or the replayed one)",
                                "content": {"application/json": {"schema": LEAD_REF}}},
                        "200": {"description": "a repeat inquiry joined an existing lead",
                                "content": {"application/json": {"schema": LEAD_REF}}},
                        **_errors(400, 401, 422),
                    },
                },
                "get": {
                    "summary": "Leads the caller may see, newest first",
                    "parameters": [
                        {"name": "status", "in": "query",
                         "schema": {"enum": [status.value for status in LeadStatus]}},
                        {"name": "partner", "in": "query", "schema": {"type": "string"}},
                        {"name": "assignee", "in": "query", "schema": {"type": "string"},
                         "description": "\"me\", \"none\" (unassigned) or a user's email"},
                        {"name": "page", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PAGE}},
                        {"name": "per_page", "in": "query",
                         "schema": {"type": "integer", "minimum": 1, "maximum": 100}},
                    ],
                    "responses": {"200": {"description": "a page of leads"},
                                  **_errors(400, 401, 422)},
                },
            },
            "/reports/partners": {
                "get": {
                    "summary": "Each partner's figures (DESIGN §7) over the offers made in a "
                               "period; staff see all, a distributor itself and its dealers, "
                               "a dealer itself",
                    "parameters": [
                        {"name": "since", "in": "query",
                         "schema": {"type": "string", "format": "date"}},
                        {"name": "until", "in": "query",
                         "schema": {"type": "string", "format": "date"}},
                    ],
                    "responses": {"200": {"description": "{since, until, partners: [{code, "
                                                         "offered, accepted, …}]}"},
                                  **_errors(401, 422)},
                },
            },
            "/leads/{id}": {
                "get": {
                    "summary": "One lead with its events (404 when not yours to see)",
                    "parameters": [ID_PARAM],
                    "responses": {"200": {"description": "the lead", "content": {
                        "application/json": {"schema": LEAD_REF}}}, **_errors(401, 404)},
                },
                "patch": {
                    "summary": "Assign a lead your firm holds to one of its users (not a "
                               "state change: the status stays; the timeline records it)",
                    "description": "A partner's administrators (or any of its users, where "
                                   "the firm allows it) assign to any active user of the "
                                   "firm or back to nobody; a user may take an unassigned "
                                   "lead (\"me\") or give back their own. Another firm's "
                                   "user is refused (422); staff may not assign (403).",
                    "parameters": [ID_PARAM],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Assignment"}}}},
                    "responses": {"200": {"description": "the lead, with its assignee",
                                          "content": {"application/json": {
                                              "schema": LEAD_REF}}},
                                  **_errors(401, 403, 404, 422)},
                },
            },
            "/leads/{id}/actions": {
                "post": {
                    "summary": "Act on a lead; 409 with the current status when not allowed",
                    "parameters": [ID_PARAM],
                    "requestBody": {"required": True, "content": {"application/json": {
                        "schema": {"$ref": "#/components/schemas/Action"}}}},
                    "responses": {"200": {"description": "the lead after the action"},
                                  **_errors(400, 401, 404, 409, 422)},
                }
            },
            "/me": {
                "get": {
                    "summary": "The token's user",
                    "responses": {"200": {"description": "the user"}, **_errors(401)},
                }
            },
        },
    }
