"""Partners are told at once: alerts for offers, reminders and escalations; digests."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint, jobs, commands and its lifecycle listener."""
    # Importing the jobs module registers its jobs with the queue.
    from portal.core.lifecycle import on_event
    from portal.extensions import csrf
    from portal.notify import (  # noqa: F401 - jobs registers
        alerts,
        commands,
        jobs,
        prospect,
        views,
    )

    on_event(alerts.on_lead_event)
    on_event(prospect.on_lead_event)
    app.register_blueprint(views.bp)
    csrf.exempt(views.unsubscribe)  # a mail client's POST: the token is the proof
    app.cli.add_command(commands.digests_group)
