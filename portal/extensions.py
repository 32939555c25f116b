"""Extensions, created unbound and attached to an app in ``create_app``."""

from __future__ import annotations

from flask_htmx import HTMX
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from portal.core.database import db

login_manager = LoginManager()
csrf = CSRFProtect()
htmx = HTMX()
migrate = Migrate()

__all__ = ["db", "login_manager", "csrf", "htmx", "migrate"]
