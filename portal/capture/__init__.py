"""Every way in: public campaign forms, a partner's own capture, the leads CSV import."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint, jobs and commands."""
    # Importing the jobs module registers its jobs with the queue.
    from portal.capture import commands, jobs, views  # noqa: F401

    app.register_blueprint(views.bp)
