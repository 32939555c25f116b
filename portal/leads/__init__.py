"""The partner's inbox, the lead page and its actions, the managers' search, queue and
bulk actions."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    # assign adds its routes to views.bp
    from portal.leads import assign, channel_views, views  # noqa: F401

    app.register_blueprint(views.bp)
    app.register_blueprint(channel_views.bp)
