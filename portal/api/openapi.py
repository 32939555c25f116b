"""The OpenAPI document: what exists, kept next to the views that implement it."""

from __future__ import annotations

from typing import Any

ERROR = {
    "type": "object",
    "required": ["error", "message", "fields"],
    "properties": {
        "error": {"type": "string"},
        "message": {"type": "string"},
        "fields": {"type": "object", "additionalProperties": {"type": "string"}},
    },
}


def _errors(*codes: int) -> dict[str, Any]:
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
            "schemas": {"Error": ERROR},
        },
        "security": [{"bearer": []}],
        "paths": {
            "/tokens": {
                "post": {
                    "summary": "Exchange email and password for a bearer token",
                    "security": [],
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {
                            "type": "object",
                            "required": ["email", "password"],
                            "properties": {"email": {"type": "string"},
                                           "password": {"type": "string"}},
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
            "/me": {
                "get": {
                    "summary": "The token's user",
                    "responses": {"200": {"description": "the user"}, **_errors(401)},
                }
            },
        },
    }
