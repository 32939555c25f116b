"""Distributors and dealers: their records, territories, product lines, capacity and the
partners CSV."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint and commands."""
    # Importing the commands module adds "import partners" and "export partners".
    from portal.partners import commands, views  # noqa: F401

    app.register_blueprint(views.bp)
