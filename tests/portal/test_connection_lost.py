"""A PostgreSQL connection dropped in the middle of a capture: nothing half-written, the
client is told to try again (503, Retry-After), and its retry with the same
Idempotency-Key makes the lead and its pack exactly once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.core import rollups
from portal.core.models import Fulfilment, Lead, LoginAttempt, ProductLine, User
from portal.extensions import db
from tests.conftest import PASSWORD, base_config


@pytest.fixture
def pg_app(migrated_app: Flask, tmp_path: Any) -> Iterator[Flask]:
    """An app on the run's database answering errors as production does, with a committed
    manager and product line (removed afterwards); PostgreSQL only."""
    if not migrated_app.config["DATABASE_URL"].startswith("postgresql"):
        pytest.skip("a connection that drops is a server's: SQLite has none")
    config = base_config(migrated_app.config["DATABASE_URL"])
    config.update(PROPAGATE_EXCEPTIONS=False, HUEY_IMMEDIATE=False,
                  HUEY_SQLITE_PATH=str(tmp_path / "huey.db"))
    app = create_app(config)
    tag = uuid.uuid4().hex[:6].upper()
    with app.app_context():
        user = User(email=f"cut-{tag.lower()}@maker.test", name="Cut", role="manager")
        user.set_password(PASSWORD)
        db.session.add_all([user, ProductLine(code=f"K{tag}", name=f"Cut line {tag}")])
        db.session.commit()
    app.config["TEST_TAG"] = tag
    yield app
    with app.app_context():
        session = db.session
        ids = list(session.scalars(sa.select(Lead.id).where(Lead.last_name == f"Cut{tag}")))
        rollups.forget_leads(session.connection(), ids)
        session.execute(sa.delete(Lead).where(Lead.id.in_(ids)))
        session.execute(sa.delete(User).where(User.email == f"cut-{tag.lower()}@maker.test"))
        session.execute(sa.delete(LoginAttempt).where(
            LoginAttempt.email == f"cut-{tag.lower()}@maker.test"))
        session.execute(sa.delete(ProductLine).where(ProductLine.code == f"K{tag}"))
        session.commit()
        db.engine.dispose()


def _cut_after(app: Flask, statement_start: str) -> list[int]:
    """Terminate the server connection that runs the first statement starting with
    ``statement_start`` (from another connection, as a failover or a network cut does)."""
    cut: list[int] = []
    admin = sa.create_engine(app.config["DATABASE_URL"], isolation_level="AUTOCOMMIT")

    @sa.event.listens_for(db.engine, "after_cursor_execute")
    def cut_here(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not cut and statement.lstrip().upper().startswith(statement_start):
            pid = cursor.connection.info.backend_pid
            cut.append(pid)
            with admin.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()

    return cut


def test_a_capture_cut_mid_transaction_is_retried_and_made_once(pg_app: Flask) -> None:
    tag = pg_app.config["TEST_TAG"]
    client = pg_app.test_client()
    token = client.post("/api/v1/tokens", json={"email": f"cut-{tag.lower()}@maker.test",
                                                "password": PASSWORD}).get_json()["token"]
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": f"cut-{tag}"}
    body = {"first_name": "Kat", "last_name": f"Cut{tag}", "email": f"kat{tag}@example.com",
            "postal_code": "50401", "product_line": f"K{tag}", "wants_literature": True,
            "answers": {"timeline": "now", "budget": "approved"}}
    with pg_app.app_context():
        cut = _cut_after(pg_app, "INSERT INTO LEAD_EVENTS")
    first = client.post("/api/v1/leads", json=body, headers=headers)
    assert cut, "the connection was cut mid-capture"
    assert first.status_code == 503, first.get_data(as_text=True)
    assert first.get_json()["error"] == "unavailable"
    assert first.headers["Retry-After"]
    with pg_app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
            Lead.last_name == f"Cut{tag}")) == 0, "nothing half-written"
        db.session.rollback()

    again = client.post("/api/v1/leads", json=body, headers=headers)
    assert again.status_code == 201, again.get_data(as_text=True)
    replay = client.post("/api/v1/leads", json=body, headers=headers)
    assert replay.get_json()["id"] == again.get_json()["id"]
    with pg_app.app_context():
        leads = list(db.session.scalars(sa.select(Lead).where(Lead.last_name == f"Cut{tag}")))
        assert len(leads) == 1 and leads[0].inquiries == 1
        packs = db.session.scalar(sa.select(sa.func.count()).select_from(Fulfilment).where(
            Fulfilment.lead_id == leads[0].id))
        assert packs == 1
        db.session.rollback()


def test_a_page_cut_mid_request_says_try_again(pg_app: Flask) -> None:
    client = pg_app.test_client()
    with pg_app.app_context():
        _cut_after(pg_app, "SELECT")
    page = client.get("/readyz", headers={"Accept": "text/html"})
    assert page.status_code == 503
    assert "try again" in page.get_data(as_text=True).lower()
    assert client.get("/readyz").status_code == 200, "the pool recovers by itself"
