"""The partner's inbox, the lead page and its actions, the managers' search, queue and
bulk actions."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint."""
    from portal.core.lifecycle import on_event
    from portal.core.tasks import close_when_lead_leaves

    # assign and task_views add their routes to views.bp
    from portal.leads import assign, channel_views, task_views, views  # noqa: F401

    on_event(close_when_lead_leaves)  # a lead leaving its firm closes the firm's tasks
    app.register_blueprint(views.bp)
    app.register_blueprint(channel_views.bp)
