"""The JSON API under ``/api/v1`` with bearer tokens (DESIGN §6)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    # The lead endpoints live in their own module, on the same blueprint.
    from portal.api import leads, reports, tasks, views  # noqa: F401
    from portal.extensions import csrf

    app.register_blueprint(views.bp)
    csrf.exempt(views.bp)  # bearer tokens, no cookies: CSRF does not apply
