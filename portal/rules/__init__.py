"""The manufacturer's qualification and ranking rules, versioned, with a try-it preview."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.rules import views

    app.register_blueprint(views.bp)
