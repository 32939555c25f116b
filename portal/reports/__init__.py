"""Channel performance: per-partner follow-up, response time, compliance and
won/lost-to-competitor, the overview, scorecards and the reports API (DESIGN §7)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint (its routes live in views, views_overview and
    views_analysis)."""
    from portal.reports import views, views_analysis, views_overview  # noqa: F401 - routes

    app.register_blueprint(views.bp)
