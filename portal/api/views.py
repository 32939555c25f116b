"""The JSON API under ``/api/v1`` (DESIGN §6)."""

from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, jsonify, request

from portal.api.auth import issue_token, note_token_use, token_required
from portal.api.openapi import spec
from portal.auth import services as auth_services
from portal.core.checks import text_problem
from portal.core.errors import InvalidInput
from portal.core.web import json_error
from portal.extensions import db

bp = Blueprint("api", __name__, url_prefix="/api/v1")
bp.after_request(note_token_use)


#: deeper than any body of ours (a lead's answers are two levels down): a deeper one is a
#: probe, and Python's parser would recurse until it fails
MAX_JSON_DEPTH = 8


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_body() -> dict[str, Any] | None:
    """The request's JSON object, or None when the body is not one (malformed, NaN or
    Infinity, nested deeper than ``MAX_JSON_DEPTH``); InvalidInput (422, on the field's
    path) when a string in it is not text (``checks.text_problem``), keys included."""
    if not request.is_json:
        return None
    raw = request.get_data(cache=True)
    if _too_deep(raw):
        return None
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    fields: dict[str, str] = {}
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if problem := text_problem(value):
                fields[path] = problem
        elif isinstance(value, dict):
            for key, item in value.items():
                name = f"{path}.{key}" if path else key
                if problem := text_problem(key):
                    fields[f"{path}.{key!r}" if path else repr(key)] = problem
                else:
                    stack.append((name, item))
        elif isinstance(value, list):
            stack.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
    if fields:
        raise InvalidInput("Some text cannot be kept: correct the fields listed.", fields)
    return data


def _too_deep(raw: bytes) -> bool:
    """Nesting deeper than ``MAX_JSON_DEPTH``, counted on the bytes before parsing, strings
    left out (a note may well say "[[[")."""
    depth = 0
    for token in _TOKENS.finditer(raw):
        if token[0] in (b"[", b"{"):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                return True
        elif token[0] in (b"]", b"}"):
            depth -= 1
    return False


#: a string (to skip; an unterminated one runs to the end, so that the scan stays linear
#: whatever the bytes) or a bracket
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.?)*(?:"|\Z)|[][{}]', re.S)


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
