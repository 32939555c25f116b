"""Backup and restore drill: a running portal's data goes into an archive, comes back in a
new, empty database, and the portal works on it (sign in, the lead, its literature)."""

from __future__ import annotations

import os
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from portal import create_app
from portal.capture.services import capture_inquiry
from portal.core.lifecycle import Actor
from portal.core.models import Lead, LeadEvent, Partner, ProductLine, Territory, User
from portal.extensions import db
from tests.conftest import BACKENDS, PASSWORD, _create_postgres_database, base_config


@pytest.fixture(params=BACKENDS)
def new_database(request: pytest.FixtureRequest, tmp_path: Path
                 ) -> Iterator[Callable[[str], Flask]]:
    """``new_database(name)``: an app on a new, empty database and instance folder of this
    backend; all dropped afterwards."""
    drops: list[Callable[[], None]] = []
    apps: list[Flask] = []

    def make(name: str) -> Flask:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path / f'{name}.db'}"
        else:
            url, drop = _create_postgres_database(os.environ["TEST_DATABASE_URL"])
            drops.append(drop)
        config = base_config(url)
        config.update(LITERATURE_DIR=str(tmp_path / name / "literature"),
                      HUEY_IMMEDIATE=False, HUEY_SQLITE_PATH=str(tmp_path / f"{name}-q.db"))
        app = create_app(config)
        apps.append(app)
        return app

    yield make
    for app in apps:
        with app.app_context():
            db.engine.dispose()
    for drop in drops:
        drop()


def _run(app: Flask, *args: str) -> Any:
    """``flask --app portal ARGS`` on ``app``, as the command line runs it."""
    with app.app_context():
        return app.test_cli_runner().invoke(args=list(args))


def _some_data(app: Flask) -> dict[str, Any]:
    """A dealer and its user, a captured and routed lead, and a literature file."""
    with app.app_context():
        upgrade()
        session = db.session
        line = ProductLine(code="TRC", name="Tractors")
        dealer = Partner(code="BK1", name="Backup Dealer", kind="dealer", postal_code="50401",
                         country="US", region="US-IA", latitude=43.15, longitude=-93.2,
                         email="bk1@dealer.test")
        dealer.product_lines = [line]
        dealer.territories = [Territory(kind="zip", value="50401", position=0)]
        user = User(email="bk1@dealer.test", name="Bea Kupp", role="partner", partner=dealer)
        user.set_password(PASSWORD)
        session.add_all([line, dealer, user])
        session.flush()
        lead = capture_inquiry(session, {
            "first_name": "Rhea", "last_name": "Stored", "email": "rhea@example.com",
            "postal_code": "50401", "product_line": "TRC",
            "answers": {"timeline": "now", "budget": "approved"}}, Actor.system("test")).lead
        session.commit()
        assert lead.assigned_partner_id == dealer.id
        literature = Path(app.config["LITERATURE_DIR"])
        literature.mkdir(parents=True)
        (literature / "brochure.pdf").write_bytes(b"%PDF-1.4 the brochure")
        return {"lead": str(lead.id), "events": session.scalar(
            sa.select(sa.func.count()).select_from(LeadEvent))}


def test_a_backup_restores_into_a_new_database_and_the_portal_works_on_it(
        new_database: Callable[[str], Flask], tmp_path: Path) -> None:
    live = new_database("live")
    made = _some_data(live)
    archive = tmp_path / "portal-backup.tar.gz"
    taken = _run(live, "backup", str(archive))
    assert taken.exit_code == 0, taken.output
    assert "1 literature files" in taken.output
    with tarfile.open(archive) as opened:
        names = set(opened.getnames())
    assert "manifest.json" in names and "literature/brochure.pdf" in names

    # A restore never merges into a database in use.
    refused = _run(live, "restore", str(archive))
    assert refused.exit_code != 0 and "not empty" in refused.output

    fresh = new_database("fresh")
    restored = _run(fresh, "restore", str(archive))
    assert restored.exit_code == 0, restored.output
    with fresh.app_context():
        session = db.session
        lead = session.get(Lead, uuid.UUID(made["lead"]))
        assert lead is not None and lead.name == "Rhea Stored"
        assert lead.assigned_partner is not None and lead.assigned_partner.code == "BK1"
        assert session.scalar(
            sa.select(sa.func.count()).select_from(LeadEvent)) == made["events"]
        session.rollback()
    assert (Path(fresh.config["LITERATURE_DIR"]) / "brochure.pdf").read_bytes() == (
        b"%PDF-1.4 the brochure")
    # The dealer signs in with the password it had and finds its lead.
    client = fresh.test_client()
    fresh.config["WTF_CSRF_ENABLED"] = False
    signed_in = client.post("/auth/login", data={"email": "bk1@dealer.test",
                                                 "password": PASSWORD})
    assert signed_in.status_code == 303
    page = client.get(f"/leads/{made['lead']}")
    assert page.status_code == 200 and "Rhea Stored" in page.get_data(as_text=True)


def test_restore_refuses_what_is_not_a_backup(new_database: Callable[[str], Flask],
                                              tmp_path: Path) -> None:
    fresh = new_database("fresh")
    bogus = tmp_path / "bogus.tar.gz"
    with tarfile.open(bogus, "w:gz") as archive:
        evil = tmp_path / "evil.txt"
        evil.write_text("x")
        archive.add(evil, arcname="../evil.txt")
    answer = _run(fresh, "restore", str(bogus))
    assert answer.exit_code != 0 and "Not a portal backup" in answer.output
    not_gzip = tmp_path / "plain.txt"
    not_gzip.write_text("hello")
    answer = _run(fresh, "restore", str(not_gzip))
    assert answer.exit_code != 0 and "Not a portal backup" in answer.output
    with fresh.app_context():
        with db.engine.connect() as conn:
            assert sa.inspect(conn).get_table_names() == [], "nothing half-restored"
