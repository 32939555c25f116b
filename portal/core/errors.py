"""The one domain error: a refusal with a message, field errors, a stable code and the HTTP
status it answers with. Services raise it; one handler answers it for pages, htmx
fragments and the API alike, and the request boundary rolls back whatever was written."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A request the portal refuses, in words for whoever asked.

    ``fields`` names the inputs to correct (field → what to do); ``extra`` goes into the
    API's JSON answer as it is (``status`` for a refused transition, say).
    """

    status = 422
    code = "invalid_input"

    def __init__(self, message: str, fields: dict[str, str] | None = None, *,
                 code: str | None = None, status: int | None = None, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.extra = extra


class InvalidInput(DomainError):
    """Bad or missing input: 422 with the fields to correct."""


class InvalidTransition(DomainError):
    """The action does not apply to the lead's current state: 409 with that state."""

    status = 409
    code = "invalid_transition"

    def __init__(self, message: str, current_status: str) -> None:
        super().__init__(message)
        self.current_status = current_status
        self.extra = {"status": current_status}  # the API's 409 says where the lead is


class NotFound(DomainError):
    """Not there, or not the asker's to see or touch: 404 either way (no existence leak)."""

    status = 404
    code = "not_found"


class Conflict(DomainError):
    """The request clashes with the data as it is now (a code taken, capacity full): 409."""

    status = 409
    code = "conflict"


class AtCapacity(Conflict):
    """The partner filled up between the routing decision and the offer."""

    code = "at_capacity"
