"""Channel Lead Portal: the Flask application factory."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask

ROOT = Path(__file__).resolve().parent.parent


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

    from portal.core import web
    from portal.extensions import csrf, db, htmx, login_manager, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(ROOT / "migrations"))
    csrf.init_app(app)
    htmx.init_app(app)
    login_manager.init_app(app)
    web.init_app(app)

    from portal.api.views import bp as api_bp
    from portal.auth.views import bp as auth_bp
    from portal.capture.views import bp as capture_bp
    from portal.dispatch.views import bp as whatif_bp
    from portal.home.views import bp as home_bp
    from portal.leads.views import bp as leads_bp
    from portal.manage.views import bp as manage_bp

    app.register_blueprint(home_bp)
    app.register_blueprint(auth_bp)
    app.register_blueprint(capture_bp)
    app.register_blueprint(manage_bp)
    app.register_blueprint(leads_bp)
    app.register_blueprint(whatif_bp)
    from portal.dedup.views import bp as merge_bp
    from portal.nurture.views import bp as nurture_bp
    from portal.rules.views import bp as rules_bp

    app.register_blueprint(rules_bp)
    app.register_blueprint(merge_bp)
    app.register_blueprint(nurture_bp)
    from portal.fulfilment.views import bp as fulfilment_bp

    app.register_blueprint(fulfilment_bp)
    app.register_blueprint(api_bp)
    csrf.exempt(api_bp)  # bearer tokens, no cookies: CSRF does not apply

    from portal import cli
    from portal.core import jobs

    jobs.init_app(app)
    cli.init_app(app)
    return app
