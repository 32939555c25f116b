"""The partner's inbox, the lead page and its actions, the managers' search, queue and
bulk actions."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.leads import channel_views, views

    app.register_blueprint(views.bp)
    app.register_blueprint(channel_views.bp)
