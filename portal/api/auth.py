"""Bearer tokens for the JSON API: random, stored as a hash, revocable one by one, expiring,
dead after a password change or "sign out everywhere"."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import g, request
from werkzeug.wrappers import Response

from portal.auth import sessions
from portal.core.jobs import jobs, queue_nudge
from portal.core.models import ApiToken, User, utcnow
from portal.core.web import json_error
from portal.extensions import db

F = TypeVar("F", bound=Callable[..., Any])


def issue_token(user: User, label: str = "") -> str:
    """A new bearer token for ``user`` (shown once; only its hash is kept)."""
    return sessions.issue_api_token(db.session, user, label)


def token_for_bearer(header: str | None) -> ApiToken | None:
    """The live token an ``Authorization: Bearer …`` header names, else None."""
    if not header or not header.startswith("Bearer "):
        return None
    return sessions.api_token_for(db.session, header[7:].strip())


def user_for_bearer(header: str | None) -> User | None:
    """The active user an ``Authorization: Bearer …`` header names, else None."""
    row = token_for_bearer(header)
    return row.user if row is not None else None


def _note_use(response: Response, row: ApiToken) -> None:
    # Reading requests may not write (their transaction is read-only), so the use is
    # written by a job queued once the response is done, at most every few minutes.
    now = utcnow()
    if not sessions.needs_last_used(row, now):
        return
    queue, token_id = jobs(), row.id
    response.call_on_close(lambda: queue_nudge("note_api_token_use", token_id,
                                               now.isoformat(), queue=queue))


def token_required(view: F) -> F:
    """401 with a JSON error unless a valid bearer token is sent; sets ``g.api_user``."""

    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        row = token_for_bearer(request.headers.get("Authorization"))
        if row is None:
            response, status = json_error(
                401, "unauthorized", "Send a valid token: Authorization: Bearer <token>."
            )
            response.headers["WWW-Authenticate"] = 'Bearer realm="api"'
            return response, status
        g.api_user = row.user
        g.api_token = row
        return view(*args, **kwargs)

    return wrapped  # type: ignore[return-value]


def note_token_use(response: Response) -> Response:
    """After an API request made with a token: have its last use written down."""
    row = g.get("api_token")
    if row is not None and response.status_code < 500:
        _note_use(response, row)
    return response
