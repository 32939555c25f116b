"""Where each role starts: the dashboard, the admin front page, the readiness probe."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.home import views

    app.register_blueprint(views.bp)
