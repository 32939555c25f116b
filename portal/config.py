"""Configuration: defaults, then ``instance/config.py``, then environment variables."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask


class Defaults:
    """Settings every deployment starts from; none of them is a secret."""

    DATABASE_URL: str | None = None  # None: sqlite file in the instance folder
    REDIS_URL: str | None = None
    MAIL_SERVER: str | None = None  # None: mail is written to instance/mail-sink/
    MAIL_PORT = 25
    MAIL_USE_TLS = False
    MAIL_USERNAME: str | None = None
    MAIL_PASSWORD: str | None = None
    MAIL_DEFAULT_SENDER = "Channel Lead Portal <leads@portal.localhost>"
    PORTAL_BASE_URL = "http://127.0.0.1:5000"
    GEOCODER = "offline"
    MANUFACTURER_NAME = "Prairie Implement Co."
    # Lifecycle and routing defaults (DESIGN §7).
    ACCEPT_SLA_HOURS = 24
    CONTACT_SLA_HOURS = 48
    OUTCOME_DUE_DAYS = 45
    MAX_OFFERS = 3
    # Sign-in throttling: failures within the window before further tries are refused.
    LOGIN_WINDOW_MINUTES = 15
    LOGIN_MAX_FAILURES_PER_ACCOUNT = 5
    LOGIN_MAX_FAILURES_PER_ADDRESS = 20
    REMEMBER_COOKIE_DURATION_DAYS = 14
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    MAX_CONTENT_LENGTH = 20 * 1024 * 1024  # uploads above this are refused with 413
    PARTNERS_CSV_MAX_BYTES = 10 * 1024 * 1024
    API_TOKEN_MAX_AGE_DAYS = 30
    PAGE_SIZE = 25
    WTF_CSRF_TIME_LIMIT = None  # tokens live as long as the session


_ENV_KEYS: dict[str, type] = {
    "SECRET_KEY": str,
    "DATABASE_URL": str,
    "REDIS_URL": str,
    "MAIL_SERVER": str,
    "MAIL_PORT": int,
    "MAIL_USE_TLS": bool,
    "MAIL_USERNAME": str,
    "MAIL_PASSWORD": str,
    "MAIL_DEFAULT_SENDER": str,
    "PORTAL_BASE_URL": str,
    "GEOCODER": str,
    "HUEY_SQLITE_PATH": str,
}


def _coerce(kind: type, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    return raw


def load(app: Flask, test_config: dict[str, Any] | None) -> None:
    """Fill ``app.config`` in the documented order and derive what depends on it."""
    app.config.from_object(Defaults)
    app.config.from_pyfile("config.py", silent=True)
    for key, kind in _ENV_KEYS.items():
        raw = os.environ.get(key)
        if raw not in (None, ""):
            app.config[key] = _coerce(kind, raw)
    if test_config:
        app.config.update(test_config)

    if not app.config.get("SECRET_KEY"):
        raise RuntimeError(
            "SECRET_KEY is not set. Set the SECRET_KEY environment variable or put "
            "SECRET_KEY = '...' in instance/config.py (`make run` writes one for you)."
        )
    instance = Path(app.instance_path)
    if not app.config.get("DATABASE_URL"):
        app.config["DATABASE_URL"] = f"sqlite:///{instance / 'portal.db'}"
    app.config.setdefault("HUEY_SQLITE_PATH", str(instance / "huey.db"))
    app.config.setdefault("MAIL_SINK_DIR", str(instance / "mail-sink"))
    from datetime import timedelta

    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(
        days=app.config["REMEMBER_COOKIE_DURATION_DAYS"]
    )
