"""Channel performance: per-partner follow-up, response time, compliance and
won/lost-to-competitor, the overview, scorecards and the reports API (DESIGN §7)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint (with the analysis pages' routes on it)."""
    from portal.reports import views, views_analysis  # noqa: F401 - its routes join bp

    app.register_blueprint(views.bp)
