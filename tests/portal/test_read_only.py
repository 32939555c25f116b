"""Requests that only read run in transactions the database holds to reading.

These run on the app's own engine and pooled connections (no outer test transaction, as
in production), on every backend: the rows they need are committed and removed again.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.core import lifecycle, rollups
from portal.core.lifecycle import Actor
from portal.core.models import (
    Lead,
    LeadEvent,
    LoginAttempt,
    Partner,
    ProductLine,
    Territory,
    User,
)
from portal.dispatch import services as routing_service
from portal.extensions import db
from tests.conftest import PASSWORD, base_config

WRITTEN = "Written by a GET"


@pytest.fixture
def own_app(migrated_app: Flask) -> Iterator[Flask]:
    """A second app on the run's migrated database, with two pages that (wrongly) try to
    change a partner while answering a GET: through the ORM and with a plain UPDATE."""
    config = base_config(migrated_app.config["DATABASE_URL"])
    # As in production: an error is the error page, not an exception raised in the test.
    config.update(WTF_CSRF_ENABLED=False, PROPAGATE_EXCEPTIONS=False)
    app = create_app(config)

    @app.get("/test-only/orm-write/<int:partner_id>")
    def orm_write(partner_id: int) -> str:
        partner = db.session.get(Partner, partner_id)
        assert partner is not None
        partner.name = WRITTEN
        return "written"

    @app.get("/test-only/core-write/<int:partner_id>")
    def core_write(partner_id: int) -> str:
        db.session.execute(sa.update(Partner).where(Partner.id == partner_id)
                           .values(name=WRITTEN))
        return "written"

    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def committed(own_app: Flask) -> Iterator[dict[str, Any]]:
    """A dealer (territory 50401), its user and a lead offered to it, committed; all of
    it deleted afterwards (lead events and offers go with the lead)."""
    tag = uuid.uuid4().hex[:8].upper()
    with own_app.app_context():
        session = db.session
        before = _row_counts(session)
        line = ProductLine(code=f"R{tag[:5]}", name=f"Read-only line {tag}")
        partner = Partner(code=f"RO{tag}", name=f"Read-only dealer {tag}", kind="dealer",
                          email=f"ro{tag.lower()}@dealer.test", postal_code="50401",
                          country="US", region="US-IA", latitude=43.15, longitude=-93.2)
        partner.product_lines = [line]
        partner.territories = [Territory(kind="zip", value="50401", position=0)]
        user = User(email=f"ro{tag.lower()}@dealer.test", name="Read Only", role="partner",
                    partner=partner)
        user.set_password(PASSWORD)
        lead = Lead(first_name="Robin", last_name=f"Reader{tag}", email=f"r{tag}@example.com",
                    postal_code="50401", country="US", region="US-IA", product_line=line)
        session.add_all([partner, user])
        lifecycle.capture(session, lead, Actor.system("test"))
        lifecycle.qualify(session, lead, "qualified", reason="test", score=90, rank="hot",
                          actor=Actor.system("test"))
        session.flush()
        routing_service.route_lead(session, lead)
        assert lead.assigned_partner_id == partner.id, "the dealer holds the offer"
        session.commit()
        ids = {"partner": partner.id, "user": user.id, "lead": lead.id, "line": line.id,
               "email": user.email, "name": partner.name, "prospect": lead.name}
    try:
        yield ids
    finally:
        with own_app.app_context():
            session = db.session
            rollups.forget_leads(session.connection(), [ids["lead"]])  # counted, going
            session.execute(sa.delete(Lead).where(Lead.id == ids["lead"]))
            session.execute(sa.delete(User).where(User.id == ids["user"]))
            session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == ids["email"]))
            session.delete(session.get(Partner, ids["partner"]))
            session.flush()
            session.execute(sa.delete(ProductLine).where(ProductLine.id == ids["line"]))
            session.commit()
            # Other tests share this database: nothing of this one may stay.
            assert _row_counts(session) == before


def _row_counts(session: Any) -> dict[str, int]:
    return {model.__name__: session.scalar(sa.select(sa.func.count()).select_from(model))
            for model in (ProductLine, Partner, Territory, User, LoginAttempt, Lead,
                          LeadEvent)}


def _partner_name(app: Flask, partner_id: int) -> str:
    with app.app_context():
        return db.session.scalar(sa.select(Partner.name).where(Partner.id == partner_id))


@pytest.mark.parametrize("how", ["orm-write", "core-write"])
def test_a_page_that_tries_to_write_fails_and_writes_nothing(own_app, committed, how):
    """A GET that changes a row (a bug) is an error page on every database, never a
    silent write or a silently dropped one."""
    client = own_app.test_client()
    response = client.get(f"/test-only/{how}/{committed['partner']}")
    assert response.status_code == 500
    assert "written" not in response.get_data(as_text=True)
    assert _partner_name(own_app, committed["partner"]) == committed["name"]
    # The connection the refused read ran on still writes for the next request.
    client.post("/auth/login", data={"email": committed["email"], "password": PASSWORD})
    assert client.get("/leads/?tab=new").status_code == 200


def test_a_dealer_reads_then_accepts_on_the_same_pooled_connections(own_app, committed):
    """Reading pages many times (PostgreSQL prepares their statements after five) and then
    an action: the read-only transactions neither linger nor refuse the write."""
    client = own_app.test_client()
    signed_in = client.post("/auth/login",
                            data={"email": committed["email"], "password": PASSWORD})
    assert signed_in.status_code == 303
    for _ in range(8):
        inbox = client.get("/leads/?tab=new")
        assert inbox.status_code == 200
        assert committed["prospect"] in inbox.get_data(as_text=True)
    accepted = client.post(f"/leads/{committed['lead']}/accept", data={"view": "page"})
    assert accepted.status_code == 303
    page = client.get(accepted.headers["Location"]).get_data(as_text=True)
    assert f"Accepted {committed['prospect']}: the lead is yours" in page
    with own_app.app_context():
        lead = db.session.get(Lead, committed["lead"])
        assert lead is not None and lead.status == "accepted"
        kinds = db.session.scalars(sa.select(LeadEvent.kind)
                                   .where(LeadEvent.lead_id == lead.id)).all()
        assert "accepted" in kinds
    contact = client.get("/leads/?tab=contact").get_data(as_text=True)
    assert committed["prospect"] in contact
