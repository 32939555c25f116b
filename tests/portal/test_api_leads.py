"""The JSON API: capture with qualification and routing, idempotency, reads, actions."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from portal.core.models import Lead, LeadEvent
from tests.conftest import PASSWORD


def token(client, user):
    response = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.json['token']}"}


HOT = {
    "first_name": "Dana", "last_name": "Miller", "company": "Miller Farms",
    "email": "Dana.Miller@Example.com", "phone": "(641) 555-0142", "postal_code": "50401",
    "country": "US", "product_line": "TRC", "campaign": None,
    "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker",
                "acres": "320"},
}


@pytest.fixture
def staff_headers(client, make_user):
    return token(client, make_user("manager"))


def test_hot_lead_is_qualified_ranked_and_routed_in_the_request(
        client, staff_headers, make_partner):
    dealer = make_partner("D-IA", territories=["zip:504*"])
    response = client.post("/api/v1/leads", json=HOT, headers=staff_headers)
    assert response.status_code == 201, response.json
    body = response.json
    assert body["status"] == "offered"
    assert body["rank"] == "hot" and body["score"] >= 70
    assert body["assigned_partner"] == dealer.code
    assert body["routing"]["summary"].startswith("Offered to D-IA")
    assert body["region"] == "US-IA"
    assert body["answers"]["acres"] == "320"
    assert [e["kind"] for e in body["events"]] == ["captured", "qualified", "offered"]
    assert body["version"] == 3


def test_researching_goes_to_nurture_and_is_not_routed(client, staff_headers, make_partner):
    make_partner("D-IA", territories=["zip:504*"])
    data = dict(HOT, answers={"timeline": "researching", "budget": "unknown"})
    body = client.post("/api/v1/leads", json=data, headers=staff_headers).json
    assert body["status"] == "nurture"
    assert "researching" in body["qualification_reason"]
    assert body["assigned_partner"] is None


def test_idempotency_key_returns_the_same_lead(client, staff_headers, session, make_partner):
    make_partner("D-IA", territories=["zip:504*"])
    headers = dict(staff_headers, **{"Idempotency-Key": "abc-123"})
    first = client.post("/api/v1/leads", json=HOT, headers=headers)
    second = client.post("/api/v1/leads", json=HOT, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json["id"] == second.json["id"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert session.scalar(select(func.count()).select_from(Lead)) == 1
    assert session.scalar(select(func.count()).select_from(LeadEvent).where(
        LeadEvent.kind == "inquiry")) == 0


def test_repeat_inquiry_attaches_to_the_existing_lead(client, staff_headers, session,
                                                       make_partner):
    make_partner("D-IA", territories=["zip:504*"])
    first = client.post("/api/v1/leads", json=HOT, headers=staff_headers).json
    again = dict(HOT, email="dana.miller@example.com", phone="")
    second = client.post("/api/v1/leads", json=again, headers=staff_headers)
    assert second.status_code == 200
    assert second.json["id"] == first["id"]
    assert second.json["inquiries"] == 2
    assert session.scalar(select(func.count()).select_from(Lead)) == 1
    kinds = [e["kind"] for e in second.json["events"]]
    assert "inquiry" in kinds


def test_nurtured_lead_that_comes_back_ready_is_routed(client, staff_headers, make_partner):
    make_partner("D-IA", territories=["zip:504*"])
    cold = dict(HOT, answers={"timeline": "12_months"})
    first = client.post("/api/v1/leads", json=cold, headers=staff_headers).json
    assert first["status"] == "nurture"
    ready = client.post("/api/v1/leads", json=HOT, headers=staff_headers).json
    assert ready["id"] == first["id"]
    assert ready["status"] == "offered"


@pytest.mark.parametrize("field,value,fragment", [
    ("email", "not-an-email", "valid email"),
    ("phone", "12", "phone"),
    ("postal_code", "5040", "5-digit"),
    ("first_name", "Eve\r\nBcc: x@y.z", "single line"),
    ("product_line", "NOPE", "Unknown product line"),
    ("comments", "x" * 5001, "5000"),
])
def test_bad_input_is_a_422_with_the_field_and_nothing_written(
        client, staff_headers, session, field, value, fragment):
    response = client.post("/api/v1/leads", json=dict(HOT, **{field: value}),
                           headers=staff_headers)
    assert response.status_code == 422
    assert fragment in response.json["fields"][field]
    assert session.scalar(select(func.count()).select_from(Lead)) == 0


def test_no_contact_details_is_refused(client, staff_headers):
    response = client.post("/api/v1/leads", json=dict(HOT, email="", phone=""),
                           headers=staff_headers)
    assert response.status_code == 422
    assert "email" in response.json["fields"]


def test_html_is_stored_as_text(client, staff_headers, make_product_line):
    make_product_line("TRC")
    body = client.post("/api/v1/leads", json=dict(HOT, company="<script>alert(1)</script>"),
                       headers=staff_headers).json
    assert body["company"] == "<script>alert(1)</script>"


def test_capture_needs_a_token(client):
    response = client.post("/api/v1/leads", json=HOT)
    assert response.status_code == 401
    assert response.json["error"] == "unauthorized"


def test_partner_sees_only_its_own_leads(client, staff_headers, make_partner, make_user):
    mine = make_partner("MINE", territories=["zip:50401"])
    other = make_partner("OTHER", territories=["zip:90210"])
    lead_mine = client.post("/api/v1/leads", json=HOT, headers=staff_headers).json
    lead_other = client.post("/api/v1/leads", json=dict(
        HOT, email="o@example.com", phone="", last_name="Other", postal_code="90210"),
        headers=staff_headers).json
    assert lead_other["assigned_partner"] == other.code

    headers = token(client, make_user("partner", partner=mine))
    listing = client.get("/api/v1/leads", headers=headers).json
    assert [lead["id"] for lead in listing["leads"]] == [lead_mine["id"]]
    assert client.get(f"/api/v1/leads/{lead_other['id']}", headers=headers).status_code == 404
    assert client.post(f"/api/v1/leads/{lead_other['id']}/actions", json={"action": "accept"},
                       headers=headers).status_code == 404
    assert client.get("/api/v1/leads/not-a-uuid", headers=headers).status_code == 404


def test_actions_walk_the_lifecycle_and_refuse_bad_transitions(
        client, staff_headers, make_partner, make_user):
    dealer = make_partner("WORK", territories=["zip:50401"])
    lead = client.post("/api/v1/leads", json=HOT, headers=staff_headers).json
    headers = token(client, make_user("partner", partner=dealer))
    url = f"/api/v1/leads/{lead['id']}/actions"

    early = client.post(url, json={"action": "won", "amount": 100}, headers=headers)
    assert early.status_code == 409
    assert early.json["status"] == "offered"

    for action in ({"action": "accept"}, {"action": "contact", "channel": "phone"},
                   {"action": "quote", "amount": "24,500"}):
        response = client.post(url, json=action, headers=headers)
        assert response.status_code == 200, response.json

    missing = client.post(url, json={"action": "lost", "reason": "competitor"}, headers=headers)
    assert missing.status_code == 422
    assert "competitor" in missing.json["fields"]

    done = client.post(url, json={"action": "lost", "reason": "competitor",
                                  "competitor": "Acme Iron"}, headers=headers)
    assert done.status_code == 200
    assert done.json["status"] == "lost" and done.json["lost_to"] == "Acme Iron"


def test_decline_reroutes_and_the_decliner_loses_sight(
        client, staff_headers, make_partner, make_user):
    first = make_partner("FIRST", territories=["zip:50401"])
    second = make_partner("SECOND", territories=["zip:504*"])
    lead = client.post("/api/v1/leads", json=HOT, headers=staff_headers).json
    assert lead["assigned_partner"] == first.code
    headers = token(client, make_user("partner", partner=first))
    url = f"/api/v1/leads/{lead['id']}/actions"

    assert client.post(url, json={"action": "decline"}, headers=headers).status_code == 422
    response = client.post(url, json={"action": "decline", "reason": "out_of_area"},
                           headers=headers)
    assert response.status_code == 200
    assert response.json["status"] == "removed"
    now = client.get(f"/api/v1/leads/{lead['id']}", headers=staff_headers).json
    assert now["assigned_partner"] == second.code and now["status"] == "offered"


def test_openapi_describes_the_lead_endpoints(client):
    spec = client.get("/api/v1/openapi.json").json
    assert {"/tokens", "/leads", "/leads/{id}", "/leads/{id}/actions"} <= set(spec["paths"])
