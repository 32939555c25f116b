"""A prospect's phone, email and street stay hidden from a partner until it accepts the
offer (a channel setting, on by default, managers may turn it off): every surface."""

from __future__ import annotations

import csv
import io

import pytest

from portal.core.models import Fulfilment, utcnow
from portal.dispatch import services as routing_service
from tests.conftest import PASSWORD
from tests.portal.test_notify import html_of, text_of, to

PHONE, EMAIL, STREET = "+15155550142", "hidden.prospect@example.com", "42 Secret Lane"
SECRETS = ("5550142", "555-0142", EMAIL, STREET)


def _text(response):
    return response.get_data(as_text=True)


def _shows_none(text):
    return not any(secret in text for secret in SECRETS)


def _shows_all(text):
    return EMAIL in text and STREET in text and "0142" in text


@pytest.fixture
def world(session, make_partner, make_user, make_lead, app):
    """A distributor with one dealer, and a lead (no name given) offered to the
    distributor; users for each, and a manager (forms posted without CSRF tokens)."""
    app.config["WTF_CSRF_ENABLED"] = False
    distributor = make_partner("X1", name="Big Distributor", kind="distributor",
                               territories=["zip:50401"])
    dealer = make_partner("D2", name="Small Dealer", parent_id=distributor.id,
                          territories=["zip:50499"])
    lead = make_lead(first_name="", last_name="", company="", email=EMAIL, phone=PHONE,
                     address=STREET, city="Mason City", postal_code="50401",
                     comments="Need a loader")
    people = {
        "distributor": make_user("partner", partner=distributor, partner_admin=True),
        "dealer": make_user("partner", partner=dealer, partner_admin=True),
        "manager": make_user("manager"),
    }
    session.add(Fulfilment(lead_id=lead.id, request_key=f"pack:{lead.id}", channel="email",
                           status="sent", delivery="attachment", sent_to=EMAIL,
                           sent_at=utcnow()))
    routing_service.route_lead(session, lead)
    session.commit()
    assert lead.assigned_partner_id == distributor.id and lead.status == "offered"
    return {"lead": lead, "x": distributor, "d2": dealer, **people}


def _sign_in(client, user):
    client.post("/auth/logout")
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303


def _token(client, user):
    response = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.get_json()['token']}"}


def test_every_surface_hides_contacts_until_the_accept(client, world, outbox):
    lead = world["lead"]
    # The offer's alert to the distributor's users: what was asked, no contact details.
    (alert,) = to(outbox, world["distributor"])
    assert "Need a loader" in text_of(alert)
    assert _shows_none(text_of(alert)) and _shows_none(html_of(alert))

    _sign_in(client, world["distributor"])
    page = _text(client.get(f"/leads/{lead.id}"))
    # the lead page, with its forward picker and literature: town and ZIP, no contacts
    assert "Mason City" in page and "50401" in page and "Forward to a dealer" in page
    assert "Shown once you accept the offer" in page
    assert "to the prospect" in page  # the literature went to an address not shown
    assert _shows_none(page)
    inbox = _text(client.get("/leads/?tab=new"))
    assert "Mason City" in inbox and _shows_none(inbox)
    export = _text(client.get("/leads/export.csv?tab=new"))
    assert "Mason City" in export and _shows_none(export)
    api = _token(client, world["distributor"])
    one = client.get(f"/api/v1/leads/{lead.id}", headers=api).get_json()
    assert one["contacts_hidden"] is True
    assert one["email"] is one["phone"] is one["address"] is None
    assert one["city"] == "Mason City" and one["postal_code"] == "50401"
    listed = client.get("/api/v1/leads", headers=api).get_json()["leads"]
    assert [(item["email"], item["contacts_hidden"]) for item in listed] == [(None, True)]

    # Forwarded to its dealer: the dealer's alert and pages hide them as well.
    outbox.clear()
    response = client.post(f"/leads/{lead.id}/forward", data={"partner": "D2"})
    assert response.status_code == 303
    (forward_alert,) = to(outbox, world["dealer"])
    assert _shows_none(text_of(forward_alert))
    dealers_tab = _text(client.get("/leads/?tab=dealers"))
    assert "Mason City" in dealers_tab and _shows_none(dealers_tab)
    _sign_in(client, world["dealer"])
    assert _shows_none(_text(client.get(f"/leads/{lead.id}")))

    # Accepted: shown to the dealer, on the page, in the API and the export; and to its
    # distributor, which follows its dealers' leads.
    assert client.post(f"/leads/{lead.id}/accept", data={"view": "page"}).status_code == 303
    assert _shows_all(_text(client.get(f"/leads/{lead.id}")))
    shown = client.get(f"/api/v1/leads/{lead.id}",
                       headers=_token(client, world["dealer"])).get_json()
    assert shown["email"] == EMAIL and shown["contacts_hidden"] is False
    rows = list(csv.DictReader(io.StringIO(
        _text(client.get("/leads/export.csv?tab=contact")).lstrip("\ufeff"))))
    assert [(row["email"], row["address"]) for row in rows] == [(EMAIL, STREET)]
    _sign_in(client, world["distributor"])
    assert _shows_all(_text(client.get(f"/leads/{lead.id}")))


def test_staff_always_see_contacts(client, world):
    _sign_in(client, world["manager"])
    assert _shows_all(_text(client.get(f"/leads/{world['lead'].id}")))
    one = client.get(f"/api/v1/leads/{world['lead'].id}",
                     headers=_token(client, world["manager"])).get_json()
    assert one["email"] == EMAIL and one["contacts_hidden"] is False


def test_a_manager_turns_the_setting_off_and_partners_see_contacts_at_once(
        client, session, world, app):
    lead = world["lead"]
    _sign_in(client, world["manager"])
    page = _text(client.get("/manage/channel"))
    assert 'name="hide_contacts_until_accepted"' in page and "checked" in page
    response = client.post("/manage/channel", data={})  # the box unticked
    assert response.status_code == 303
    assert "as soon as a lead is offered" in _text(client.get("/manage/channel"))
    assert "Channel settings" in _text(client.get("/manage/"))

    _sign_in(client, world["distributor"])
    assert _shows_all(_text(client.get(f"/leads/{lead.id}")))
    one = client.get(f"/api/v1/leads/{lead.id}",
                     headers=_token(client, world["distributor"])).get_json()
    assert one["email"] == EMAIL and one["contacts_hidden"] is False
    assert EMAIL in _text(client.get("/leads/export.csv?tab=new"))

    # and on again: hidden again
    _sign_in(client, world["manager"])
    client.post("/manage/channel", data={"hide_contacts_until_accepted": "y"})
    _sign_in(client, world["distributor"])
    assert _shows_none(_text(client.get(f"/leads/{lead.id}")))


def test_partners_may_not_change_the_setting(client, world):
    _sign_in(client, world["distributor"])
    assert client.get("/manage/channel").status_code == 403
    assert client.post("/manage/channel", data={}).status_code == 403
    _sign_in(client, world["distributor"])
    assert _shows_none(_text(client.get(f"/leads/{world['lead'].id}")))


def test_a_partner_sees_the_contacts_of_a_lead_it_captured(client, session, world,
                                                           make_lead):
    # a walk-in the dealer typed in itself, held by nobody else
    own = make_lead(email="walkin@example.com", owner_partner_id=world["d2"].id)
    session.commit()
    _sign_in(client, world["dealer"])
    assert "walkin@example.com" in _text(client.get(f"/leads/{own.id}"))


def test_no_way_around_it_assign_search_tasks_the_card_and_the_drill_down(client, world, session):
    """The lead has no name: nothing may call it by its email, and a search may not find
    it by its phone or email, until the accept (a review found each of these)."""
    from portal.leads import tasks as task_service

    lead, holder = world["lead"], world["distributor"]
    _sign_in(client, holder)
    # "Assign to me" on the API answers the lead as the caller may read it.
    body = client.patch(f"/api/v1/leads/{lead.id}", headers=_token(client, holder),
                        json={"assignee": "me"}).get_json()
    assert body["contacts_hidden"] is True and body["email"] is None and body["phone"] is None
    # A search on the new offers: by the phone's digits or the email, nothing; by the town,
    # the lead.
    for q in ("0142", "5155550142", "hidden.prospect"):
        found = _text(client.get(f"/leads/?tab=new&q={q}"))
        assert f"/leads/{lead.id}" not in found and "No new offers right now." in found, q
    assert f"/leads/{lead.id}" in _text(client.get("/leads/?tab=new&q=Mason"))
    # Tasks due today, the task's reminder, a card after a refused decline: no address.
    today = utcnow().date().isoformat()
    task_service.add_task(session, lead, holder, kind="call_back", day=today, clock="00:00",
                          time_zone="UTC")
    session.commit()
    assert _shows_none(_text(client.get("/leads/tasks")))
    refused = client.post(f"/leads/{lead.id}/decline", data={"view": "card", "reason": ""},
                          headers={"HX-Request": "true"})
    assert refused.status_code == 422 and _shows_none(_text(refused))
    # The partner's report drill-down of its offers.
    drill = _text(client.get(f"/reports/leads?figure=offered&partner={world['x'].code}"))
    assert "Unnamed prospect" in drill and _shows_none(drill)

    # Accepted: the search finds it by its phone.
    client.post(f"/leads/{lead.id}/accept")
    assert f"/leads/{lead.id}" in _text(client.get("/leads/?tab=contact&q=0142"))
