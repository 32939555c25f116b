"""The partner's inbox, the lead page and its actions, the managers' search, queue and
bulk actions."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.leads import assign, views  # noqa: F401 - assign adds its routes to bp

    app.register_blueprint(views.bp)
