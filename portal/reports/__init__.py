"""Channel performance: per-partner follow-up, response time, compliance and
won/lost-to-competitor, the overview, scorecards and the reports API (DESIGN §7)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint (its routes live in views, views_overview,
    views_analysis and views_compliance)."""
    from portal.reports import (  # noqa: F401 - each adds its routes to the blueprint
        commands,
        views,
        views_analysis,
        views_compliance,
        views_overview,
    )

    app.register_blueprint(views.bp)
    app.cli.add_command(commands.reports_group)
