"""`flask --app portal route` killed (SIGKILL) in the middle of a run: the batches it
committed stand, the one it was writing is gone whole, and the next run routes the rest;
every lead is offered exactly once and the capacity counters equal the open leads."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask_migrate import upgrade

from portal import create_app
from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import (
    OPEN_STATUSES,
    Lead,
    LeadEvent,
    Offer,
    Partner,
    ProductLine,
    Territory,
)
from portal.extensions import db
from tests.conftest import BACKENDS, _create_postgres_database, base_config

LEADS = 600


@pytest.fixture(params=BACKENDS)
def portal_env(request: pytest.FixtureRequest, tmp_path: Path
               ) -> Iterator[tuple[Flask, dict[str, str]]]:
    """A migrated database of this backend with dealers and LEADS qualified leads waiting
    for routing; the app and the environment a `flask` process needs to use it."""
    drop: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'portal.db'}"
    else:
        url, drop = _create_postgres_database(os.environ["TEST_DATABASE_URL"])
    app = create_app(base_config(url))
    with app.app_context():
        upgrade()
        session = db.session
        line = ProductLine(code="TRC", name="Tractors")
        for n, capacity in enumerate((None, 300, 40)):
            dealer = Partner(code=f"KD{n}", name=f"Killed-run dealer {n}", kind="dealer",
                             postal_code="50401", country="US", region="US-IA",
                             latitude=43.15 + n / 100, longitude=-93.2, capacity=capacity,
                             email=f"kd{n}@dealer.test")
            dealer.product_lines = [line]
            dealer.territories = [Territory(kind="zip", value="50401", position=0)]
            session.add(dealer)
        actor = Actor.system("test")
        for n in range(LEADS):
            lead = Lead(first_name="Rou", last_name=f"Ted{n}", email=f"routed{n}@example.com",
                        postal_code="50401", country="US", region="US-IA", product_line=line)
            lifecycle.capture(session, lead, actor)
            lifecycle.qualify(session, lead, "qualified", reason="test", score=80, rank="hot",
                              actor=actor)
            if n % 100 == 99:
                session.flush()
        session.commit()
    env = {**os.environ, "DATABASE_URL": url, "SECRET_KEY": "test-secret-key-not-for-production",
           "PORTAL_INSTANCE_PATH": str(tmp_path), "HUEY_SQLITE_PATH": str(tmp_path / "q.db")}
    try:
        yield app, env
    finally:
        with app.app_context():
            db.engine.dispose()
        if drop:
            drop()


def _offered(app: Flask) -> int:
    """The offers committed so far, read on a plain connection: the app's own sessions
    outside a request begin SQLite transactions IMMEDIATE, and would wait for the run's
    write lock until it ended."""
    engine = sa.create_engine(app.config["DATABASE_URL"])
    try:
        with engine.connect() as conn:
            return conn.scalar(sa.select(sa.func.count()).select_from(Offer)) or 0
    finally:
        engine.dispose()


def test_a_routing_run_killed_midway_loses_and_doubles_nothing(
        portal_env: tuple[Flask, dict[str, str]]) -> None:
    app, env = portal_env
    command = [sys.executable, "-m", "flask", "--app", "portal", "route", "--batch", "20"]
    run = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while _offered(app) == 0:  # its first batches are committed: kill it now
            assert run.poll() is None, "the run ended before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.01)
        run.send_signal(signal.SIGKILL)
    finally:
        run.wait(timeout=30)
    offered_before = _offered(app)
    assert 0 < offered_before < LEADS, "killed midway (make LEADS larger if this fails)"

    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr

    with app.app_context():
        session = db.session
        per_lead = session.execute(sa.select(Offer.lead_id, sa.func.count()).group_by(
            Offer.lead_id)).all()
        assert len(per_lead) == LEADS and {n for _, n in per_lead} == {1}, "each offered once"
        events = session.scalar(sa.select(sa.func.count()).select_from(LeadEvent).where(
            LeadEvent.kind == "offered"))
        assert events == LEADS
        for partner in session.scalars(sa.select(Partner)):
            real = session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
                Lead.assigned_partner_id == partner.id, Lead.status.in_(list(OPEN_STATUSES))))
            assert partner.open_leads == real, partner.code
            if partner.capacity is not None:
                assert real <= partner.capacity
        session.rollback()
