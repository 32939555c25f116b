"""The portal side of routing: offers, expiry, geography and the what-if preview, around
the pure engine in ``routing/`` (named so it does not shadow it)."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint, jobs and commands."""
    # Importing the jobs module registers its jobs with the queue.
    from portal.dispatch import commands, jobs, views  # noqa: F401 - jobs registers

    app.register_blueprint(views.bp)
    app.cli.add_command(commands.route)
    app.cli.add_command(commands.geo_group)
