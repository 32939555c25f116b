"""Duplicate leads: managers merge two leads of one person by hand, and undo a merge."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.dedup import views

    app.register_blueprint(views.bp)
