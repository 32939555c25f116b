"""The app's plumbing: schema agrees with migrations, pages render, errors are styled."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from portal.core.models.base import in_autogenerate
from portal.extensions import db


def test_models_and_migrations_agree(app):
    """Autogenerate finds nothing to add: every model change shipped its revision."""
    context = MigrationContext.configure(db.session.connection(), opts={
        "compare_type": True, "include_object": in_autogenerate})
    with warnings.catch_warnings():
        # SQLite's reflection cannot read an index on an expression (lower(code), 0011);
        # SQLAlchemy and Alembic say so and leave those out there. PostgreSQL compares them.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified expression")
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_login_page_renders_with_csrf_field(client):
    response = client.get("/auth/login")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'name="csrf_token"' in page
    assert "Keep me signed in" in page
    assert "htmx.min.js" in page


def test_pages_need_sign_in(client):
    response = client.get("/")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_unknown_page_is_a_styled_404(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert "Not found" in response.get_data(as_text=True)


def test_api_errors_are_json(client):
    response = client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_health_answers(client):
    assert client.get("/healthz").json == {"status": "ok"}
    assert client.get("/readyz").json == {"status": "ready"}


def test_partner_cannot_open_admin_pages(auth, client, make_partner):
    auth.login("partner", partner=make_partner())
    assert client.get("/manage/").status_code == 403
    assert client.get("/manage/partners").status_code == 403


def test_missing_secret_key_refuses_to_start(monkeypatch, tmp_path):
    import pytest

    from portal import create_app

    monkeypatch.delenv("SECRET_KEY", raising=False)
    # An instance folder without config.py: `make run` writes a key into the real one.
    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    with pytest.raises(RuntimeError, match="SECRET_KEY is not set"):
        create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/x.db"})


def test_links_leaving_the_portal_follow_the_port_it_is_served_on(monkeypatch, tmp_path):
    from portal import create_app

    monkeypatch.setenv("PORTAL_INSTANCE_PATH", str(tmp_path))
    monkeypatch.delenv("PORTAL_BASE_URL", raising=False)
    monkeypatch.delenv("HOST", raising=False)
    monkeypatch.delenv("PORT", raising=False)
    config = {"DATABASE_URL": f"sqlite:///{tmp_path}/x.db", "SECRET_KEY": "k"}
    assert create_app(config).config["PORTAL_BASE_URL"] == "http://127.0.0.1:5000"
    monkeypatch.setenv("PORT", "8123")  # PORT=8123 make run
    assert create_app(config).config["PORTAL_BASE_URL"] == "http://127.0.0.1:8123"
    monkeypatch.setenv("HOST", "0.0.0.0")  # every interface: this machine is 127.0.0.1
    assert create_app(config).config["PORTAL_BASE_URL"] == "http://127.0.0.1:8123"
    monkeypatch.setenv("HOST", "leads.example.com")
    assert create_app(config).config["PORTAL_BASE_URL"] == "http://leads.example.com:8123"
    monkeypatch.setenv("PORTAL_BASE_URL", "https://leads.example.com")  # named: it wins
    assert create_app(config).config["PORTAL_BASE_URL"] == "https://leads.example.com"


def test_prepare_migrates_an_empty_database_once_and_builds_the_rollups(tmp_path):
    # What `make run` and a deploy run first: migrations, then the reports' rollups; run
    # again on a current database it changes nothing and runs no migration.
    import os
    import sqlite3
    import subprocess
    import sys

    env = dict(os.environ, PORTAL_INSTANCE_PATH=str(tmp_path), SECRET_KEY="prepare-test",
               DATABASE_URL=f"sqlite:///{tmp_path / 'portal.db'}")
    command = [sys.executable, "-m", "flask", "--app", "portal", "prepare"]
    first = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert "Running upgrade  -> 0001_foundation" in first.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert "Running upgrade" not in again.stderr and again.stdout == ""
    with sqlite3.connect(tmp_path / "portal.db") as conn:
        [(version,)] = conn.execute("SELECT version_num FROM alembic_version").fetchall()
        [(state,)] = conn.execute("SELECT state FROM rollup_state").fetchall()
    from alembic.script import ScriptDirectory

    assert version == ScriptDirectory("migrations").get_current_head()
    assert state == "built"


def test_every_page_has_the_portals_icon(client):
    page = client.get("/auth/login").get_data(as_text=True)
    assert '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">' in page
    with client.get("/static/favicon.svg") as icon:
        assert icon.status_code == 200 and icon.mimetype == "image/svg+xml"
        assert b"<svg" in icon.data
