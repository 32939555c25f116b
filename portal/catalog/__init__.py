"""The manufacturer's catalog: product lines, competitors, campaigns and lead sources."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.catalog import views

    app.register_blueprint(views.bp)
