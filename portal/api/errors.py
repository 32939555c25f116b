"""JSON errors: ``{"error": code, "message": …, "fields": {…}}`` with the right status."""

from __future__ import annotations

from flask import Response, jsonify


def json_error(http_status: int, code: str, message: str,
               fields: dict[str, str] | None = None, **extra: object) -> tuple[Response, int]:
    """A JSON error response in the API's one shape."""
    body: dict[str, object] = {"error": code, "message": message, "fields": fields or {}}
    body.update(extra)
    return jsonify(body), http_status
