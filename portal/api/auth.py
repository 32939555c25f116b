"""Bearer tokens for the JSON API: signed, expiring, dead after a password change."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import current_app, g, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from portal.core.models import User
from portal.core.web import json_error
from portal.extensions import db

F = TypeVar("F", bound=Callable[..., Any])
_SALT = "api-token"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_SALT)


def issue_token(user: User) -> str:
    """A bearer token for ``user``."""
    return _serializer().dumps({"u": user.id, "v": user.session_version})


def user_for_bearer(header: str | None) -> User | None:
    """The active user an ``Authorization: Bearer …`` header names, else None."""
    if not header or not header.startswith("Bearer "):
        return None
    max_age = current_app.config["API_TOKEN_MAX_AGE_DAYS"] * 86400
    try:
        data = _serializer().loads(header[7:].strip(), max_age=max_age)
    except (SignatureExpired, BadSignature):
        return None
    user = db.session.get(User, data.get("u"))
    if user is None or not user.active or user.session_version != data.get("v"):
        return None
    return user


def token_required(view: F) -> F:
    """401 with a JSON error unless a valid bearer token is sent; sets ``g.api_user``."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        user = user_for_bearer(request.headers.get("Authorization"))
        if user is None:
            response, status = json_error(
                401, "unauthorized", "Send a valid token: Authorization: Bearer <token>."
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response, status
        g.api_user = user
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]
