"""Literature: the library, personalised packs by email or post, print batches."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint, jobs."""
    # Importing the jobs module registers its jobs with the queue.
    from portal.fulfilment import jobs, views  # noqa: F401

    app.register_blueprint(views.bp)
