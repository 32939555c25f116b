"""A partner reaches only its own leads (a distributor also its dealers'), on every route.

The routes are enumerated from ``app.url_map``: a new page under ``/leads`` is covered
without anyone remembering to add it here.
"""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from portal.capture.services import capture_inquiry
from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Lead, LeadEvent
from portal.dispatch import services as routing_service
from portal.leads import services
from tests.conftest import PASSWORD


def _leads_rules(app):
    return [rule for rule in app.url_map.iter_rules() if rule.rule.startswith("/leads")]


def _urls(rule, lead_id, code):
    """Every concrete URL of ``rule`` for this lead (one per action name)."""
    values = {"lead_id": lead_id, "code": code, "task_id": 1}
    if "action" in rule.arguments:
        for action in services.PAGE_ACTIONS:
            yield rule.rule.replace("<uuid:lead_id>", str(lead_id)).replace(
                re.search(r"<any\([^>]*\):action>", rule.rule).group(0), action)
        return
    url = rule.rule
    for name in rule.arguments:
        url = re.sub(rf"<(?:[^:>]+:)?{name}>", str(values[name]), url)
    yield url


@pytest.fixture
def world(session, make_partner, make_lead, make_user):
    """Two dealers, two distributors with a dealer each, and a lead with each of them."""
    a = make_partner("DA", territories=["zip:50401"])
    b = make_partner("DB", territories=["zip:60601"], postal_code="60601")
    dist_x = make_partner("DX", kind="distributor", territories=["zip:70701"])
    dealer_x = make_partner("DXA", parent_id=dist_x.id, territories=["zip:70701"])
    dist_y = make_partner("DY", kind="distributor", territories=["zip:80801"])
    make_partner("DYA", parent_id=dist_y.id, territories=["zip:80801"])
    lead_a = make_lead(postal_code="50401", email="secret-a@example.com")
    routing_service.route_lead(session, lead_a)
    lead_x = make_lead(postal_code="70701", email="secret-x@example.com")
    routing_service.route_lead(session, lead_x)
    dist_x_user = make_user("partner", partner=dist_x)
    lifecycle.forward(session, lead_x, dealer_x, Actor.of(dist_x_user))
    session.commit()
    assert lead_a.assigned_partner_id == a.id and lead_x.assigned_partner_id == dealer_x.id
    return {"a": a, "b": b, "dist_x": dist_x, "dist_x_user": dist_x_user,
            "dist_y": dist_y, "lead_a": lead_a, "lead_x": lead_x}


def test_every_lead_route_is_404_for_another_partner(app, client, auth, session, world):
    lead = world["lead_a"]
    version = lead.version
    auth.login("partner", partner=world["b"])
    app.config["WTF_CSRF_ENABLED"] = False
    tried = 0
    for rule in _leads_rules(app):
        if "lead_id" not in rule.arguments:
            continue
        for url in _urls(rule, lead.id, world["a"].code):
            for method in {"GET", "POST"} & rule.methods:
                response = client.open(url, method=method, data={"reason": "out_of_area",
                                                                 "text": "x", "partner": "DB"})
                assert response.status_code == 404, (method, url, response.status_code)
                tried += 1
    # The lead page and every action at least: the enumeration is not vacuous.
    assert tried >= 1 + len(services.PAGE_ACTIONS)
    session.refresh(lead)
    assert lead.version == version and lead.assigned_partner_id == world["a"].id
    events = session.scalars(select(LeadEvent.actor_id).where(LeadEvent.lead_id == lead.id))
    assert all(actor is None for actor in events)


def test_managers_pages_are_404_for_partners(app, client, auth, world):
    auth.login("partner", partner=world["b"])
    staff_rules = [r for r in _leads_rules(app) if "lead_id" not in r.arguments
                   and r.endpoint in ("leads.search", "leads.queue", "leads.bulk",
                                      "leads.partner")]
    assert len(staff_rules) == 4
    for rule in staff_rules:
        for url in _urls(rule, world["lead_a"].id, world["a"].code):
            for method in {"GET", "POST"} & rule.methods:
                assert client.open(url, method=method).status_code == 404, url


def test_lists_and_search_never_show_another_partners_lead(client, auth, world):
    auth.login("partner", partner=world["b"])
    for tab in ("new", "contact", "open", "overdue", "closed"):
        page = client.get(f"/leads/?tab={tab}&q=secret").get_data(as_text=True)
        assert "secret-a" not in page and str(world["lead_a"].id) not in page
    dashboard = client.get("/").get_data(as_text=True)
    assert 'href="/leads/?tab=new"><span class="num">0</span>' in dashboard


def test_distributor_sees_its_dealers_leads_but_not_another_distributors(
        app, client, auth, world, make_user):
    lead = world["lead_x"]
    auth.login_as(world["dist_x_user"])
    assert client.get(f"/leads/{lead.id}").status_code == 200
    assert lead.name in client.get("/leads/?tab=dealers").get_data(as_text=True)
    # Its dealer's lead is visible, but only a pull-back is its to do.
    assert client.post(f"/leads/{lead.id}/accept", data={}).status_code == 404

    auth.logout()
    auth.login_as(make_user("partner", partner=world["dist_y"]))
    app.config["WTF_CSRF_ENABLED"] = False
    assert client.get(f"/leads/{lead.id}").status_code == 404
    assert client.post(f"/leads/{lead.id}/pull_back",
                       data={"reason": "mine now"}).status_code == 404
    page = client.get("/leads/?tab=dealers").get_data(as_text=True)
    assert lead.name not in page


def test_a_dealer_does_not_see_its_distributors_other_leads(
        client, auth, session, world, make_lead):
    # A lead the distributor keeps for itself is not its dealers' business.
    kept = make_lead(postal_code="70701", email="kept@example.com")
    routing_service.route_lead(session, kept)
    session.commit()
    assert kept.assigned_partner_id == world["dist_x"].id
    dealer = session.get(Lead, world["lead_x"].id).assigned_partner
    auth.login("partner", partner=dealer)
    assert client.get(f"/leads/{kept.id}").status_code == 404
    assert client.get(f"/leads/{world['lead_x'].id}").status_code == 200


def test_a_bad_lead_id_is_a_404_not_a_500(client, auth, world):
    auth.login("partner", partner=world["a"])
    assert client.get("/leads/not-a-uuid").status_code == 404
    assert client.post("/leads/00000000-0000-0000-0000-000000000000/accept").status_code == 404
    assert client.post(f"/leads/{world['lead_a'].id}/explode").status_code in (404, 405)


def test_a_partner_loses_sight_of_its_own_capture_once_reassigned_away(
        app, client, auth, session, world, make_user):
    a, b = world["a"], world["b"]
    a_user = make_user("partner", partner=a)
    walk_in = capture_inquiry(session, {
        "first_name": "Walt", "last_name": "Kin", "email": "walt-secret@example.com",
        "postal_code": "50401", "product_line": "TRC",
        "answers": {"timeline": "now", "budget": "approved"}}, Actor.of(a_user),
        owner_partner=a).lead
    lifecycle.reassign(session, walk_in, b, Actor.of(make_user("manager")),
                       reason="A is leaving the line")
    lifecycle.add_note(session, walk_in, Actor.of(make_user("partner", partner=b)),
                       text="B's private pricing notes")
    session.commit()
    assert walk_in.owner_partner_id == a.id and walk_in.assigned_partner_id == b.id

    auth.login_as(a_user)
    app.config["WTF_CSRF_ENABLED"] = False
    tried = 0
    for rule in _leads_rules(app):
        if "lead_id" not in rule.arguments:
            continue
        for url in _urls(rule, walk_in.id, a.code):
            for method in {"GET", "POST"} & rule.methods:
                response = client.open(url, method=method, data={"text": "x"})
                assert response.status_code == 404, (method, url, response.status_code)
                tried += 1
    assert tried >= 1 + len(services.PAGE_ACTIONS)
    for tab in ("new", "contact", "open", "overdue", "closed"):
        page = client.get(f"/leads/?tab={tab}&q=walt").get_data(as_text=True)
        assert "walt-secret" not in page and "pricing notes" not in page
    token = client.post("/api/v1/tokens", json={"email": a_user.email,
                                                "password": PASSWORD}).get_json()["token"]
    api = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/api/v1/leads/{walk_in.id}", headers=api).status_code == 404
    listed = client.get("/api/v1/leads", headers=api).get_json()
    assert str(walk_in.id) not in str(listed)

    # The new holder sees it, notes and all.
    auth.logout()
    auth.login("partner", partner=b)
    page = client.get(f"/leads/{walk_in.id}")
    assert page.status_code == 200 and "pricing notes" in page.get_data(as_text=True)
