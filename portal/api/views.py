"""The JSON API under ``/api/v1`` (DESIGN §6)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, jsonify, request

from portal.api.auth import issue_token, note_token_use, token_required
from portal.api.openapi import spec
from portal.auth import services as auth_services
from portal.core.web import json_error
from portal.extensions import db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.after_request(note_token_use)


def json_body() -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not a JSON object."""
    data = request.get_json(silent=True)
    return data if isinstance(data, dict) else None


@bp.post("/tokens")
def create_token():  # type: ignore[no-untyped-def]
    """Exchange email and password for a bearer token (throttled like the sign-in page)."""
    body = json_body()
    if body is None:
        return json_error(400, "bad_request", "Send a JSON object: {\"email\", \"password\"}.")
    fields = {k: "Required." for k in ("email", "password") if not isinstance(body.get(k), str)
              or not body.get(k)}
    if fields:
        return json_error(422, "invalid_input", "Email and password are required.", fields)
    try:
        user = auth_services.authenticate(db.session, body["email"], body["password"],
                                          request.remote_addr or "unknown")
    except auth_services.SignInRefused as refused:
        db.session.commit()  # keep the failed attempt for throttling
        if refused.throttled:
            response, status = json_error(429, "throttled", refused.message,
                                          retry_after=refused.retry_after())
            response.headers["Retry-After"] = str(refused.retry_after())
            return response, status
        return json_error(401, "unauthorized", refused.message)
    label = body.get("label") if isinstance(body.get("label"), str) else ""
    return jsonify({"token": issue_token(user, label), "role": user.role}), 201


@bp.get("/me")
@token_required
def me():  # type: ignore[no-untyped-def]
    """Who the token belongs to."""
    from flask import g

    user = g.api_user
    return jsonify({"email": user.email, "name": user.name, "role": user.role,
                    "partner": user.partner.code if user.partner else None})


@bp.get("/openapi.json")
def openapi():  # type: ignore[no-untyped-def]
    """The OpenAPI 3.1 description of what this API offers."""
    return jsonify(spec())
