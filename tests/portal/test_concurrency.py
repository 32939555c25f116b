"""Simultaneous actions on one lead: exactly one wins, the others answer 409.

These run on the app's own engine and pooled connections (no outer test transaction), with
threads sending real API requests at once, on every backend. PostgreSQL runs them truly in
parallel; SQLite serialises writers. The rows are committed and removed again.
"""

from __future__ import annotations

import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from portal import create_app
from portal.core import lifecycle, rollups
from portal.core.lifecycle import Actor
from portal.core.models import (
    OPEN_STATUSES,
    Fulfilment,
    Lead,
    LeadEvent,
    LoginAttempt,
    Offer,
    Partner,
    ProductLine,
    Territory,
    User,
)
from portal.dispatch import services as routing_service
from portal.extensions import db
from tests.conftest import PASSWORD, base_config

THREADS = 20


@pytest.fixture
def own_app(migrated_app: Flask, tmp_path: Any) -> Iterator[Flask]:
    """A second app on the run's migrated database, answering errors as production does.
    Jobs are queued for a worker (none runs) as in production: run at once inside twenty
    requests, each would hold a second pooled connection."""
    config = base_config(migrated_app.config["DATABASE_URL"])
    config.update(PROPAGATE_EXCEPTIONS=False, HUEY_IMMEDIATE=False,
                  HUEY_SQLITE_PATH=str(tmp_path / "huey.db"))
    app = create_app(config)
    yield app
    with app.app_context():
        db.engine.dispose()


@pytest.fixture
def world(own_app: Flask) -> Iterator[dict[str, Any]]:
    """Two dealers with the same territory (capacity 5 each), two users of the first, and a
    hot lead routed to the first, all committed; removed afterwards."""
    tag = uuid.uuid4().hex[:8].upper()
    with own_app.app_context():
        session = db.session
        line = ProductLine(code=f"C{tag[:5]}", name=f"Race line {tag}")
        partners = []
        for n in (1, 2):
            partner = Partner(code=f"RACE{n}{tag}", name=f"Race dealer {n}", kind="dealer",
                              email=f"race{n}{tag.lower()}@dealer.test", postal_code="50401",
                              country="US", region="US-IA", latitude=43.15 + n / 100,
                              longitude=-93.2, capacity=5)
            partner.product_lines = [line]
            partner.territories = [Territory(kind="zip", value="50401", position=0)]
            partners.append(partner)
        users = [User(email=f"race{n}{tag.lower()}@dealer.test", name=f"Racer {n}",
                      role="partner", partner=partners[0]) for n in (1, 2)]
        for user in users:
            user.set_password(PASSWORD)
        session.add_all([*partners, *users])
        session.flush()
        lead = Lead(first_name="Rae", last_name=f"Race{tag}", email=f"rae{tag}@example.com",
                    postal_code="50401", country="US", region="US-IA", product_line=line)
        lifecycle.capture(session, lead, Actor.system("test"))
        lifecycle.qualify(session, lead, "qualified", reason="test", score=90, rank="hot",
                          actor=Actor.system("test"))
        session.flush()
        routing_service.route_lead(session, lead)
        first = partners[0]
        assert lead.assigned_partner_id == first.id, "the nearer dealer holds the offer"
        session.commit()
        ids = {"lead": lead.id, "line": line.id, "partners": [p.id for p in partners],
               "holder": first.id, "users": [u.id for u in users],
               "emails": [u.email for u in users]}
    try:
        yield ids
    finally:
        with own_app.app_context():
            session = db.session
            rollups.forget_leads(session.connection(), [ids["lead"]])  # counted, going
            session.execute(sa.delete(Lead).where(Lead.id == ids["lead"]))
            session.execute(sa.delete(User).where(User.id.in_(ids["users"])))
            session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email.in_(ids["emails"])))
            for partner_id in ids["partners"]:
                session.delete(session.get(Partner, partner_id))
            session.flush()
            session.execute(sa.delete(ProductLine).where(ProductLine.id == ids["line"]))
            session.commit()


def _tokens(app: Flask, emails: list[str]) -> list[str]:
    client = app.test_client()
    tokens = []
    for email in emails:
        response = client.post("/api/v1/tokens", json={"email": email, "password": PASSWORD})
        assert response.status_code == 201, response.get_json()
        tokens.append(response.get_json()["token"])
    return tokens


def _at_once(app: Flask, lead_id: uuid.UUID, requests: list[tuple[str, dict[str, Any]]]
             ) -> list[tuple[int, dict[str, Any]]]:
    """Send every (token, body) action at the same moment, one thread each."""
    start = threading.Barrier(len(requests))
    answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(requests)

    def send(n: int, token: str, body: dict[str, Any]) -> None:
        client = app.test_client()
        start.wait()
        response = client.post(f"/api/v1/leads/{lead_id}/actions", json=body,
                               headers={"Authorization": f"Bearer {token}"})
        answers[n] = (response.status_code, response.get_json() or {})

    threads = [threading.Thread(target=send, args=(n, token, body))
               for n, (token, body) in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


def _facts(app: Flask, ids: dict[str, Any]) -> dict[str, Any]:
    with app.app_context():
        session = db.session
        lead = session.get(Lead, ids["lead"])
        assert lead is not None
        kinds = Counter(session.scalars(
            sa.select(LeadEvent.kind).where(LeadEvent.lead_id == lead.id)))
        pending = session.scalar(sa.select(sa.func.count()).select_from(Offer).where(
            Offer.lead_id == lead.id, Offer.response == "pending"))
        stored = {p: session.scalar(sa.select(Partner.open_leads).where(Partner.id == p))
                  for p in ids["partners"]}
        real = {p: session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
            Lead.assigned_partner_id == p, Lead.status.in_(list(OPEN_STATUSES))))
            for p in ids["partners"]}
        facts = {"status": lead.status, "partner": lead.assigned_partner_id, "kinds": kinds,
                 "pending": pending, "stored": stored, "real": real}
        session.rollback()
        return facts


def test_twenty_accepts_at_once_one_wins(own_app, world):
    tokens = _tokens(own_app, world["emails"])
    answers = _at_once(own_app, world["lead"],
                       [(tokens[n % 2], {"action": "accept"}) for n in range(THREADS)])
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 1, 409: THREADS - 1}, answers
    refused = [body for status, body in answers if status == 409]
    assert {body["status"] for body in refused} == {"accepted"}
    facts = _facts(own_app, world)
    assert facts["status"] == "accepted"
    assert facts["kinds"]["accepted"] == 1
    assert facts["stored"] == facts["real"]


def test_accepts_against_declines_one_wins_and_the_counts_hold(own_app, world):
    tokens = _tokens(own_app, world["emails"])
    bodies = [{"action": "accept"}, {"action": "decline", "reason": "no_capacity"}] * 10
    answers = _at_once(own_app, world["lead"],
                       [(tokens[n % 2], body) for n, body in enumerate(bodies)])
    statuses = Counter(status for status, _ in answers)
    assert statuses == {200: 1, 409: THREADS - 1} or (
        # a decline that wins re-routes the lead away: later ones no longer see it (404)
        statuses[200] == 1 and statuses[200] + statuses[409] + statuses[404] == THREADS
        and statuses[500] == 0), answers
    facts = _facts(own_app, world)
    assert facts["kinds"]["accepted"] + facts["kinds"]["declined"] == 1, facts["kinds"]
    assert facts["pending"] <= 1, "one offer at most waits for an answer"
    if facts["kinds"]["declined"]:
        assert facts["kinds"]["offered"] == 2, "re-routed once"
        assert facts["partner"] != world["holder"]
    assert facts["stored"] == facts["real"], "open-lead counters match the open leads"


def test_twenty_outcomes_at_once_one_is_recorded(own_app, world):
    tokens = _tokens(own_app, world["emails"])
    first = _at_once(own_app, world["lead"], [(tokens[0], {"action": "accept"})])
    assert first[0][0] == 200
    outcomes = [{"action": "won", "amount": "1000"},
                {"action": "lost", "reason": "price"},
                {"action": "no_interest"},
                {"action": "quote", "amount": "900"}] * 5
    answers = _at_once(own_app, world["lead"],
                       [(tokens[n % 2], body) for n, body in enumerate(outcomes)])
    statuses = Counter(status for status, _ in answers)
    assert statuses[500] == 0, answers
    facts = _facts(own_app, world)
    closed = sum(facts["kinds"][k] for k in ("won", "lost", "no_interest"))
    assert closed == 1, facts["kinds"]
    # Quotes may land before the one outcome, never after it.
    assert statuses[200] == 1 + facts["kinds"]["quoted"]
    assert facts["status"] in ("won", "lost", "no_interest")
    assert facts["stored"] == facts["real"]


# --- captures of one person at once --------------------------------------------------------


def _captures_at_once(app: Flask, requests: list[tuple[str, dict[str, Any], dict[str, str]]]
                      ) -> list[tuple[int, dict[str, Any]]]:
    """POST every (token, body, extra headers) capture at the same moment, one thread each."""
    start = threading.Barrier(len(requests))
    answers: list[tuple[int, dict[str, Any]]] = [(0, {})] * len(requests)

    def send(n: int, token: str, body: dict[str, Any], headers: dict[str, str]) -> None:
        client = app.test_client()
        start.wait()
        response = client.post("/api/v1/leads", json=body,
                               headers={"Authorization": f"Bearer {token}", **headers})
        answers[n] = (response.status_code, response.get_json() or {})

    threads = [threading.Thread(target=send, args=(n, *request))
               for n, request in enumerate(requests)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return answers


@pytest.fixture
def staff_token(own_app: Flask) -> Iterator[str]:
    """A manager's API token, committed; removed afterwards."""
    email = f"racer-manager-{uuid.uuid4().hex[:8]}@maker.test"
    with own_app.app_context():
        user = User(email=email, name="Race manager", role="manager")
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.commit()
        user_id = user.id
    try:
        yield _tokens(own_app, [email])[0]
    finally:
        with own_app.app_context():
            db.session.execute(sa.delete(User).where(User.id == user_id))
            db.session.execute(sa.delete(LoginAttempt).where(LoginAttempt.email == email))
            db.session.commit()


def _person(own_app: Flask, world: dict[str, Any]) -> dict[str, Any]:
    with own_app.app_context():
        line = db.session.get(ProductLine, world["line"])
        assert line is not None
        code = line.code
    tag = uuid.uuid4().hex[:8]
    return {"first_name": "Dana", "last_name": f"Twin{tag}", "email": f"dana{tag}@example.com",
            "postal_code": "50401", "product_line": code, "wants_literature": True,
            "answers": {"timeline": "now", "budget": "approved"}}


@pytest.fixture
def forget_person(own_app: Flask) -> Iterator[list[str]]:
    """Emails whose leads the test made; they are removed afterwards."""
    emails: list[str] = []
    yield emails
    with own_app.app_context():
        session = db.session
        ids = list(session.scalars(sa.select(Lead.id).where(Lead.email.in_(emails))))
        rollups.forget_leads(session.connection(), ids)
        session.execute(sa.delete(Lead).where(Lead.id.in_(ids)))
        session.commit()


def _made(app: Flask, email: str) -> tuple[list[int], int]:
    """The inquiries counted on each lead of ``email``, and the packs requested for them."""
    with app.app_context():
        session = db.session
        leads = list(session.scalars(sa.select(Lead).where(Lead.email == email)))
        packs = session.scalar(sa.select(sa.func.count()).select_from(Fulfilment).where(
            Fulfilment.lead_id.in_([lead.id for lead in leads])))
        counted = [lead.inquiries for lead in leads]
        session.rollback()
        return counted, packs or 0


def test_twenty_identical_captures_at_once_make_one_lead_and_one_pack(
        own_app, world, staff_token, forget_person):
    person = _person(own_app, world)
    forget_person.append(person["email"])
    answers = _captures_at_once(own_app, [(staff_token, person, {})] * THREADS)
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 1, 200: THREADS - 1}, answers
    assert len({body["id"] for _, body in answers}) == 1, "every answer names the one lead"
    counted, packs = _made(own_app, person["email"])
    assert counted == [THREADS], "one lead, every inquiry counted on it"
    assert packs == 1, "one literature pack for one person"
    facts = _facts(own_app, world)
    assert facts["stored"] == facts["real"], "open-lead counters match the open leads"


def test_a_partners_own_captures_of_one_person_make_one_lead(own_app, world, forget_person):
    token = _tokens(own_app, world["emails"][:1])[0]
    person = _person(own_app, world)
    forget_person.append(person["email"])
    answers = _captures_at_once(own_app, [(token, person, {})] * 10)
    statuses = Counter(status for status, _ in answers)
    assert statuses == {201: 1, 200: 9}, answers
    counted, packs = _made(own_app, person["email"])
    assert counted == [10]
    assert packs == 1


def test_one_idempotency_key_with_two_bodies_is_refused_not_dropped(
        own_app, world, staff_token, forget_person):
    first, second = _person(own_app, world), _person(own_app, world)
    forget_person.extend([first["email"], second["email"]])
    key = {"Idempotency-Key": f"race-{uuid.uuid4().hex}"}
    client = own_app.test_client()
    headers = {"Authorization": f"Bearer {staff_token}", **key}
    made = client.post("/api/v1/leads", json=first, headers=headers)
    assert made.status_code == 201
    again = client.post("/api/v1/leads", json=first, headers=headers)
    assert again.status_code == 201 and again.get_json()["id"] == made.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/api/v1/leads", json=second, headers=headers)
    assert other.status_code == 422, other.get_json()
    assert other.get_json()["error"] == "idempotency_key_reused"
    assert "Idempotency-Key" in other.get_json()["message"]
    assert _made(own_app, second["email"]) == ([], 0), "nothing written for the second body"
    # At once: the same key with two bodies still makes one lead, and the other is refused.
    key = {"Idempotency-Key": f"race-{uuid.uuid4().hex}"}
    third, fourth = _person(own_app, world), _person(own_app, world)
    forget_person.extend([third["email"], fourth["email"]])
    answers = _captures_at_once(own_app, [(staff_token, third, key), (staff_token, fourth, key)]
                                * 5)
    statuses = Counter(status for status, _ in answers)
    assert statuses[500] == 0 and statuses[422] == 5 and statuses[201] == 5, answers
    made_third, made_fourth = _made(own_app, third["email"]), _made(own_app, fourth["email"])
    assert sorted([made_third, made_fourth]) == [([], 0), ([1], 1)]
