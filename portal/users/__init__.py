"""People: the staff and partner accounts, their roles and password links."""

from __future__ import annotations

from flask import Flask


def init_app(app: Flask) -> None:
    """Register the area's blueprint and commands."""
    from portal.users import commands, views

    app.register_blueprint(views.bp)
    app.cli.add_command(commands.create_user)
