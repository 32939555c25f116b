"""Channel performance: per-partner follow-up, response time, compliance and
won/lost-to-competitor, the overview, scorecards and the reports API (DESIGN §7)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint (its routes are in views and views_compliance)."""
    from portal.reports import views, views_compliance  # noqa: F401 - adds its routes

    app.register_blueprint(views.bp)
