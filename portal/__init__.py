"""Channel Lead Portal: the Flask application factory."""

from __future__ import annotations

import os
from importlib import import_module
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
#: the areas, each a package whose init_app registers its blueprint, jobs and commands
AREAS = ("home", "auth", "users", "catalog", "partners", "capture", "dispatch", "leads",
         "dedup", "rules", "nurture", "fulfilment", "notify", "reports", "api")


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the portal app: config, extensions, blueprints, errors and commands."""
    app = Flask(
        __name__,
        # PORTAL_INSTANCE_PATH: another instance folder (its config.py, SQLite files,
        # mail sink), e.g. for a second portal on one machine.
        instance_path=os.environ.get("PORTAL_INSTANCE_PATH") or str(ROOT / "instance"),
        instance_relative_config=True,
        template_folder=str(ROOT / "templates"),
        static_folder=str(ROOT / "static"),
    )
    from portal import config

    config.load(app, test_config)

    from portal.core import jobs, web
    from portal.extensions import csrf, db, htmx, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    web.init_app(app)
    jobs.init_app(app)

    from portal import cli

    cli.init_app(app)
    for area in AREAS:
        import_module(f"portal.{area}").init_app(app)
    return app
