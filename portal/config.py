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
    # Every email (alerts, digests, invitations, resets, nurture steps, literature packs)
    # is a row first and is delivered by one policy (portal/core/mail.py):
    MAIL_TIMEOUT = 5.0  #: seconds an SMTP connect, read or write may take
    MAIL_RETRY_SECONDS = 60  #: first wait after a failed try; doubles each time ...
    MAIL_RETRY_MAX_SECONDS = 3600  #: ... up to this between tries
    MAIL_GIVE_UP_HOURS = 36  #: failed (with the reason, for a manager) after this much trying
    #: a claim older than this is a dead worker's: the email is sent again
    MAIL_SENDING_TIMEOUT_SECONDS = 600
    #: the address in links that leave the portal (emails, the embed snippet, the hosted
    #: form); None: where `make run` serves, http://$HOST:$PORT (127.0.0.1:5000)
    PORTAL_BASE_URL: str | None = None
    GEOCODER = "offline"  # or "nominatim": geopy's Nominatim, cached and rate-limited
    GEOCODER_DOMAIN = "nominatim.openstreetmap.org"
    GEOCODER_SCHEME = "https"
    GEOCODER_USER_AGENT = "channel-lead-portal"  # Nominatim's policy wants a real one
    GEOCODER_TIMEOUT = 5.0  # seconds per request
    GEOCODER_MIN_DELAY = 1.0  # seconds between requests (Nominatim's public limit is 1/s)
    MANUFACTURER_NAME = "Prairie Implement Co."
    #: the manufacturer's contact, named in literature packs when no dealer is assigned
    MANUFACTURER_ADDRESS = "1200 Implement Way"
    MANUFACTURER_CITY_LINE = "Des Moines, IA 50309"
    MANUFACTURER_PHONE = "(515) 555-0100"
    MANUFACTURER_EMAIL = "sales@prairie-implement.example"
    #: a repeat inquiry within this many days joins the existing lead
    DEDUP_DAYS = 90
    # Literature fulfilment.
    LITERATURE_MAX_BYTES = 15 * 1024 * 1024  # per uploaded brochure
    LITERATURE_MAX_PAGES = 60
    PACK_ATTACH_MAX_BYTES = 8 * 1024 * 1024  # larger packs go out as a signed link
    PACK_LINK_MAX_AGE_DAYS = 30
    PDF_RENDER_TIMEOUT = 60  # seconds a WeasyPrint render may take
    PDF_RENDER_PROCESSES = 1
    # Lifecycle and routing defaults (DESIGN §7).
    ACCEPT_SLA_HOURS = 24
    CONTACT_SLA_HOURS = 48
    OUTCOME_DUE_DAYS = 45
    #: more overdue outcomes than this stop a partner's new offers; None = gate off
    COMPLIANCE_GATE_MAX_OVERDUE: int | None = None
    MAX_OFFERS = 3
    # Alerts and digests (the notify area).
    DEFAULT_TIME_ZONE = "America/Chicago"  #: for users and firms who chose none
    CONTACT_REMINDER_HOURS = 4  #: remind this long before a first contact is late
    ALERT_LOOKBACK_DAYS = 7  #: how far back the clocks look for a reminder not yet written
    #: the routing what-if refuses edits that concern more recent leads than this
    WHATIF_MAX_AFFECTED = 20_000
    #: new password hashes: Argon2id at OWASP's parameters (portal/core/passwords.py), or a
    #: Werkzeug method ("scrypt", "pbkdf2:sha256:600000"); older hashes upgrade at sign-in
    PASSWORD_HASH_METHOD = "argon2id"
    # Sign-in throttling (portal.auth.services): an (account, address) pair gets
    # LOGIN_FREE_FAILURES tries, then waits LOGIN_FIRST_DELAY_SECONDS, doubling with each
    # failure up to LOGIN_MAX_DELAY_SECONDS. An address failing on many accounts, or an
    # account failing from many addresses, is stopped for the window, except where the
    # account signed in before (its usual addresses): nobody can lock its owner out.
    LOGIN_WINDOW_MINUTES = 60
    LOGIN_FREE_FAILURES = 5
    LOGIN_FIRST_DELAY_SECONDS = 30
    LOGIN_MAX_DELAY_SECONDS = 15 * 60
    LOGIN_MAX_FAILURES_PER_ADDRESS = 100
    LOGIN_MAX_FAILURES_PER_ACCOUNT = 50
    LOGIN_KNOWN_ADDRESS_DAYS = 90
    #: how many proxies (load balancers) in front of the portal set X-Forwarded-For and
    #: -Proto; 0 trusts none of them (a client could name any address it likes)
    TRUSTED_PROXIES = 0
    REMEMBER_COOKIE_DURATION_DAYS = 14
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    #: cookies only over HTTPS; None: when PORTAL_BASE_URL starts with https://
    SESSION_COOKIE_SECURE: bool | None = None
    REMEMBER_COOKIE_SECURE: bool | None = None
    REMEMBER_COOKIE_HTTPONLY = True
    REMEMBER_COOKIE_SAMESITE = "Lax"
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
    "MAIL_TIMEOUT": float,
    "MAIL_RETRY_SECONDS": float,
    "MAIL_RETRY_MAX_SECONDS": float,
    "MAIL_GIVE_UP_HOURS": float,
    "MAIL_SENDING_TIMEOUT_SECONDS": float,
    "PORTAL_BASE_URL": str,
    "GEOCODER": str,
    "GEOCODER_DOMAIN": str,
    "GEOCODER_SCHEME": str,
    "GEOCODER_USER_AGENT": str,
    "GEOCODER_TIMEOUT": float,
    "GEOCODER_MIN_DELAY": float,
    "HUEY_SQLITE_PATH": str,
    "MAIL_SINK_DIR": str,
    "DEFAULT_TIME_ZONE": str,
    "TRUSTED_PROXIES": int,
    "SESSION_COOKIE_SECURE": bool,
    "REMEMBER_COOKIE_SECURE": bool,
}


def _coerce(kind: type, raw: str) -> Any:
    if kind is bool:
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    if kind is int:
        return int(raw)
    if kind is float:
        return float(raw)
    return raw


def served_at() -> str:
    """Where `make run` (scripts/serve.sh) serves: ``HOST`` and ``PORT`` as it reads them;
    a wildcard host (all interfaces) is reached on this machine at 127.0.0.1."""
    host = os.environ.get("HOST") or "127.0.0.1"
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"  # an IPv6 address in a URL
    return f"http://{host}:{os.environ.get('PORT') or '5000'}"


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
    from portal.core.passwords import ARGON2ID, check_method

    check_method(str(app.config.get("PASSWORD_HASH_METHOD") or ARGON2ID))
    if not app.config.get("PORTAL_BASE_URL"):
        app.config["PORTAL_BASE_URL"] = served_at()
    # Served over HTTPS: the cookies never travel in clear (a proxy or Wi-Fi could read them).
    https = str(app.config["PORTAL_BASE_URL"]).lower().startswith("https://")
    for key in ("SESSION_COOKIE_SECURE", "REMEMBER_COOKIE_SECURE"):
        if app.config.get(key) is None:
            app.config[key] = https
    app.config.setdefault("HUEY_SQLITE_PATH", str(instance / "huey.db"))
    app.config.setdefault("MAIL_SINK_DIR", str(instance / "mail-sink"))
    from datetime import timedelta

    app.config["REMEMBER_COOKIE_DURATION"] = timedelta(
        days=app.config["REMEMBER_COOKIE_DURATION_DAYS"]
    )
