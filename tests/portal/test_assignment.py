"""Assignment within a firm: a partner's administrator gives a lead to one of its
salespeople, a user takes an unassigned one; the status never moves, the timeline says who
and by whom, the assignee gets the lead's emails, and a lead that changes firm (or a user
who leaves) lets go. Both databases, real SMTP."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import assignment, lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Lead, LeadEvent, MailPreference
from portal.dispatch import services as routing_service
from portal.notify import jobs as notify_jobs
from portal.users.services import set_user_active
from tests.portal.test_notify import subject, text_of, to


@pytest.fixture
def firm(make_partner: Any, make_user: Any) -> dict[str, Any]:
    """Prairie Tractors with Bob (administrator), Ann and Cy (salespeople), and another
    dealer's user Zed."""
    dealer = make_partner("D1", name="Prairie Tractors", territories=["zip:50401"])
    other = make_partner("D2", name="Other Dealer", territories=["zip:60601"])

    def person(partner: Any, name: str, email: str, **more: Any) -> Any:
        user = make_user("partner", partner=partner, email=email, **more)
        user.name = name
        return user

    return {
        "dealer": dealer, "other": other,
        "bob": person(dealer, "Bob Stone", "bob@d1.test", partner_admin=True),
        "ann": person(dealer, "Ann Lee", "ann@d1.test"),
        "cy": person(dealer, "Cy Young", "cy@d1.test"),
        "zed": person(other, "Zed Other", "zed@d2.test"),
    }


def held_lead(session: Any, make_lead: Any, firm: dict[str, Any], **fields: Any) -> Lead:
    lead = make_lead(postal_code="50401", **fields)
    routing_service.route_lead(session, lead)
    assert lead.assigned_partner_id == firm["dealer"].id
    lifecycle.accept(session, lead, Actor.of(firm["bob"]))
    session.commit()
    return lead


def assigned_events(session: Any, lead: Lead) -> list[LeadEvent]:
    return list(session.scalars(select(LeadEvent).where(
        LeadEvent.lead_id == lead.id, LeadEvent.kind == "assigned").order_by(LeadEvent.seq)))


# --- the page -------------------------------------------------------------------------------


def test_the_admin_assigns_a_colleague_on_the_lead_page_and_the_status_stays(
        session, client, auth, make_lead, firm):
    lead = held_lead(session, make_lead, firm)
    auth.login_as(firm["bob"])
    page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "Unassigned: nobody of the firm has taken it yet." in page
    assert ">Ann Lee</option>" in page and "Zed Other" not in page  # only the firm's

    answer = client.post(f"/leads/{lead.id}/assign", data={"assignee": str(firm["ann"].id)})
    assert answer.status_code == 303 and answer.headers["Location"] == f"/leads/{lead.id}"
    page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "Assigned to Ann Lee: they get its emails from now on." in page
    assert "Assigned to <strong>Ann Lee</strong>" in page
    assert "Assigned to Ann Lee by Bob Stone" in page  # the timeline
    session.refresh(lead)
    assert lead.status == "accepted" and lead.assigned_user_id == firm["ann"].id

    # With htmx the lead panel comes back, saying so.
    answer = client.post(f"/leads/{lead.id}/assign", data={"assignee": ""},
                         headers={"HX-Request": "true"})
    fragment = answer.get_data(as_text=True)
    assert answer.status_code == 200
    assert fragment.lstrip().startswith('<section class="lead-detail"')
    assert "Unassigned: the lead is the whole firm&#39;s again." in fragment
    assert "Unassigned by Bob Stone (was with Ann Lee)" in fragment
    session.refresh(lead)
    assert lead.assigned_user_id is None and lead.status == "accepted"


def test_another_firms_user_is_refused_and_nothing_is_written(
        session, client, auth, make_lead, firm):
    lead = held_lead(session, make_lead, firm)
    version = lead.version
    auth.login_as(firm["bob"])
    for value in (str(firm["zed"].id), "99999999", "not a person"):
        answer = client.post(f"/leads/{lead.id}/assign", data={"assignee": value})
        assert answer.status_code == 422
        page = answer.get_data(as_text=True)
        assert "Pick one of your firm&#39;s active users." in page or "Pick a person" in page
    session.refresh(lead)
    assert lead.assigned_user_id is None and lead.version == version
    assert assigned_events(session, lead) == []
    # Nor through the service, whoever calls it.
    with pytest.raises(assignment.InvalidInput):
        assignment.assign(session, lead, firm["zed"], Actor.of(firm["bob"]))


def test_a_salesperson_takes_an_unassigned_lead_but_gives_none_to_others_unless_allowed(
        session, client, auth, make_lead, firm):
    lead = held_lead(session, make_lead, firm)
    auth.login_as(firm["ann"])
    page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "Assign to me" in page and "<select" not in page.split("assign-line")[1][:600]
    refused = client.post(f"/leads/{lead.id}/assign", data={"assignee": str(firm["cy"].id)})
    assert refused.status_code == 403
    assert "Only your firm&#39;s administrators assign leads to colleagues" in (
        refused.get_data(as_text=True))
    session.refresh(lead)
    assert lead.assigned_user_id is None

    assert client.post(f"/leads/{lead.id}/assign", data={"assignee": "me"}).status_code == 303
    page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    assert "Assigned to you: it is under My leads." in page
    assert "Assigned to Ann Lee (took it)" in page and "Give it back (unassign)" in page
    # Taken twice (a second tab): nothing changes, and nothing is refused.
    assert client.post(f"/leads/{lead.id}/assign", data={"assignee": "me"}).status_code == 303
    assert "Nothing changed: it is with Ann Lee already." in client.get(
        f"/leads/{lead.id}").get_data(as_text=True)
    assert len(assigned_events(session, lead)) == 1

    # Cy cannot take Ann's lead; once the firm allows it, anyone assigns.
    auth.logout()
    auth.login_as(firm["cy"])
    assert client.post(f"/leads/{lead.id}/assign", data={"assignee": "me"}).status_code == 403
    firm["dealer"].users_may_assign = True
    session.commit()
    assert client.post(f"/leads/{lead.id}/assign", data={"assignee": "me"}).status_code == 303
    session.refresh(lead)
    assert lead.assigned_user_id == firm["cy"].id


def test_another_partners_lead_is_a_404_and_staff_may_not_assign(
        session, client, auth, make_lead, make_user, firm):
    lead = held_lead(session, make_lead, firm)
    auth.login_as(firm["zed"])
    assert client.post(f"/leads/{lead.id}/assign", data={"assignee": "me"}).status_code == 404
    auth.logout()
    auth.login_as(make_user("manager"))
    answer = client.post(f"/leads/{lead.id}/assign", data={"assignee": str(firm["ann"].id)})
    assert answer.status_code == 403
    session.refresh(lead)
    assert lead.assigned_user_id is None


# --- the assignee belongs to the firm holding the lead ---------------------------------------


def test_the_assignee_is_cleared_when_the_lead_changes_firm(
        session, make_partner, make_user, make_lead, firm):
    bob, ann = firm["bob"], firm["ann"]
    manager = make_user("manager")
    lead = held_lead(session, make_lead, firm)
    assignment.assign(session, lead, ann, Actor.of(bob))
    lifecycle.reassign(session, lead, firm["other"], Actor.of(manager), reason="closer",
                       override=True)
    assert lead.assigned_user_id is None and lead.assigned_partner_id == firm["other"].id
    withdrawn = session.scalars(select(LeadEvent).where(
        LeadEvent.lead_id == lead.id, LeadEvent.kind == "withdrawn")).one()
    assert withdrawn.data["assignee_id"] == ann.id  # so Ann hears it was taken back

    # A distributor's assignee goes when it forwards, and its dealer's when it pulls back.
    distributor = make_partner("X1", kind="distributor", territories=["zip:70701"])
    dealer = make_partner("X1A", parent_id=distributor.id)
    dist_admin = make_user("partner", partner=distributor, partner_admin=True)
    dist_seller = make_user("partner", partner=distributor)
    dealer_seller = make_user("partner", partner=dealer)
    other = make_lead(postal_code="70701")
    routing_service.route_lead(session, other)
    assert other.assigned_partner_id == distributor.id
    assignment.assign(session, other, dist_seller, Actor.of(dist_admin))
    lifecycle.forward(session, other, dealer, Actor.of(dist_admin))
    assert other.assigned_user_id is None
    assignment.assign(session, other, dealer_seller, Actor.of(dealer_seller))
    assert other.assigned_user_id == dealer_seller.id
    from portal.leads.services import pull_back

    pull_back(session, other, dist_admin, reason="the prospect called us")
    assert other.assigned_user_id is None and other.assigned_partner_id == distributor.id

    # Declined: back to routing, nobody's.
    third = make_lead(postal_code="50401")
    routing_service.route_lead(session, third)
    assignment.assign(session, third, ann, Actor.of(bob))
    lifecycle.decline(session, third, Actor.of(bob), reason="no_capacity")
    assert third.assigned_user_id is None


def test_a_deactivated_users_leads_go_back_to_the_firm_with_a_word_on_the_timeline(
        session, client, auth, make_user, make_lead, firm):
    admin = make_user("admin")
    lead = held_lead(session, make_lead, firm)
    assignment.assign(session, lead, firm["ann"], Actor.of(firm["bob"]))
    session.commit()
    set_user_active(session, firm["ann"], acting=admin, active=False)
    session.commit()
    session.refresh(lead)
    assert lead.assigned_user_id is None and lead.status == "accepted"
    assert assigned_events(session, lead)[-1].data["text"] == (
        f"Unassigned by {admin.name} (was with Ann Lee): Ann Lee's account was deactivated")
    # and a deactivated user cannot be given one
    auth.login_as(firm["bob"])
    answer = client.post(f"/leads/{lead.id}/assign", data={"assignee": str(firm["ann"].id)})
    assert answer.status_code == 422


# --- the assignee gets the lead's emails ---------------------------------------------------------


def test_the_assignee_gets_lead_assigned_and_then_the_leads_reminders(
        session, make_lead, firm, outbox):
    bob, ann, cy = firm["bob"], firm["ann"], firm["cy"]
    lead = held_lead(session, make_lead, firm, comments="Needs a loader by March")
    outbox.clear()
    assignment.assign(session, lead, ann, Actor.of(bob))
    session.commit()
    (message,) = outbox
    assert message["To"] == ann.email
    assert subject(message).startswith("Lead assigned to you by Bob Stone: Hot · TRC line")
    text = text_of(message)
    assert "Bob Stone assigned this lead to you" in text and "Needs a loader by March" in text
    assert f"http://portal.test/leads/{lead.id}" in text

    # The first-contact reminder goes to Ann alone, the escalation to her and the admin.
    outbox.clear()
    notify_jobs.sweep(now=lead.offered_at + timedelta(hours=44, minutes=30))
    assert [m["To"] for m in outbox] == [ann.email]
    assert subject(outbox[0]).startswith("Reminder: first contact due")
    outbox.clear()
    notify_jobs.sweep(now=lead.offered_at + timedelta(hours=49))
    assert sorted(m["To"] for m in outbox) == sorted([ann.email, bob.email])
    assert cy.email not in {m["To"] for m in outbox}

    # Taking a lead oneself sends nothing; an assignee who wants no alerts gets none.
    outbox.clear()
    session.add(MailPreference(user_id=cy.id, alerts="off"))
    firm["dealer"].users_may_assign = True
    assignment.assign(session, lead, ann, Actor.of(ann))  # unchanged: nothing
    assignment.assign(session, lead, cy, Actor.of(ann))
    session.commit()
    assert outbox == []


def test_a_repeat_inquiry_tells_the_assignee_and_unassigned_leads_keep_their_recipients(
        session, make_lead, firm, outbox):
    from portal.capture.services import capture_inquiry

    bob, ann, cy = firm["bob"], firm["ann"], firm["cy"]
    lead = held_lead(session, make_lead, firm, email="pat@farmexample.com",
                     email_normalized="pat@farmexample.com")

    def asked_again(assignee: Any, comments: str) -> list[str]:
        assignment.assign(session, lead, assignee, Actor.of(bob))
        session.commit()
        outbox.clear()
        capture_inquiry(session, {"first_name": "Pat", "email": "pat@farmexample.com",
                                  "postal_code": "50401", "comments": comments},
                        Actor.system("web-form"))
        session.commit()
        return [m["To"] for m in outbox]

    assert asked_again(ann, "Call me today") == [ann.email]
    assert subject(outbox[0]).startswith("Prospect asked again")
    # Back to nobody: the whole firm hears, as before.
    assert sorted(asked_again(None, "Still waiting")) == sorted(
        u.email for u in (bob, ann, cy))


def test_taken_back_tells_the_assignee_who_had_it(session, make_user, make_lead, firm, outbox):
    bob, ann = firm["bob"], firm["ann"]
    lead = held_lead(session, make_lead, firm)
    assignment.assign(session, lead, ann, Actor.of(bob))
    session.commit()
    outbox.clear()
    lifecycle.reassign(session, lead, firm["other"], Actor.of(make_user("manager")),
                       reason="the prospect moved", override=True)
    session.commit()
    taken = [m for m in outbox if subject(m).startswith("Lead taken back")]
    assert [m["To"] for m in taken] == [ann.email]
    assert "the prospect moved" in text_of(taken[0])
    assert to(outbox, firm["zed"])  # the new firm hears of its new lead


# --- who holds what ------------------------------------------------------------------------------


def test_my_leads_beside_the_firms_on_the_inbox_dashboard_and_settings(
        session, client, auth, make_lead, firm):
    bob, ann = firm["bob"], firm["ann"]
    mine = held_lead(session, make_lead, firm, first_name="Mia", last_name="Mine")
    theirs = held_lead(session, make_lead, firm, first_name="Theo", last_name="Theirs")
    nobodys = held_lead(session, make_lead, firm, first_name="Nell", last_name="Nobody")
    assignment.assign(session, mine, ann, Actor.of(bob))
    assignment.assign(session, theirs, firm["cy"], Actor.of(bob))
    session.commit()
    assert nobodys.assigned_user_id is None

    auth.login_as(ann)
    firms = client.get("/leads/?tab=contact").get_data(as_text=True)
    assert all(name in firms for name in ("Mia Mine", "Theo Theirs", "Nell Nobody"))
    assert "assigned to <strong>Ann Lee</strong>" in firms
    assert "assigned to <strong>Cy Young</strong>" in firms
    own = client.get("/leads/?tab=contact&assignee=me").get_data(as_text=True)
    assert "Mia Mine" in own and "Theo Theirs" not in own and "Nell Nobody" not in own
    # The tabs count her leads and keep to them.
    assert 'href="/leads/?tab=contact&amp;assignee=me"' in own
    assert 'aria-label="1 leads">1</span>' in own.split('id="lead-tabs"')[1].split("</nav>")[0]
    free = client.get("/leads/?tab=contact&assignee=none").get_data(as_text=True)
    assert "Nell Nobody" in free and "Mia Mine" not in free
    # A salesperson filters by me or nobody; only an administrator by each colleague.
    assert f'<option value="{firm["cy"].id}">' not in firms
    dashboard = client.get("/").get_data(as_text=True)
    tiles = dashboard.split("Assigned to you")[1]
    assert 'href="/leads/?tab=contact&amp;assignee=me"><span class="num">1</span>' in tiles

    auth.logout()
    auth.login_as(bob)
    page = client.get(f"/leads/?tab=contact&assignee={firm['cy'].id}").get_data(as_text=True)
    assert "Theo Theirs" in page and "Mia Mine" not in page
    assert f'<option selected value="{firm["cy"].id}">Cy Young</option>' in page
    settings = client.get("/leads/settings").get_data(as_text=True)
    row = settings.split("ann@d1.test")[1].split("</tr>")[0]
    assert '<td class="num">1</td>' in row
    assert "Open leads nobody has taken:" in settings
    assert ">1</a>." in settings.split("Open leads nobody has taken:")[1][:200]


def test_an_administrator_lets_every_user_assign_in_settings(session, client, auth, firm):
    auth.login_as(firm["bob"])
    answer = client.post("/leads/settings/assigning", data={"users_may_assign": "y"})
    assert answer.status_code == 303
    assert "any of your users may assign leads" in client.get("/leads/settings").get_data(
        as_text=True)
    session.refresh(firm["dealer"])
    assert firm["dealer"].users_may_assign is True
    auth.logout()
    auth.login_as(firm["ann"])
    assert client.post("/leads/settings/assigning", data={}).status_code == 403


# --- the API -----------------------------------------------------------------------------------


def bearer(client: Any, user: Any) -> dict[str, str]:
    from tests.conftest import PASSWORD

    answer = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert answer.status_code == 201
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_the_api_assigns_with_patch_and_refuses_what_the_page_refuses(
        session, client, make_lead, make_user, firm):
    lead = held_lead(session, make_lead, firm)
    url = f"/api/v1/leads/{lead.id}"
    bob = bearer(client, firm["bob"])
    assert client.get(url, headers=bob).get_json()["assignee"] is None

    answer = client.patch(url, json={"assignee": "ANN@d1.test"}, headers=bob)
    assert answer.status_code == 200
    body = answer.get_json()
    assert body["assignee"] == "ann@d1.test" and body["assignee_name"] == "Ann Lee"
    assert body["status"] == "accepted"
    assert body["events"][-1]["kind"] == "assigned"
    assert body["events"][-1]["data"]["text"] == "Assigned to Ann Lee by Bob Stone"
    assert body["events"][-1]["device"] == "api"

    mine = client.get("/api/v1/leads?assignee=ann@d1.test", headers=bob).get_json()
    assert [one["id"] for one in mine["leads"]] == [str(lead.id)]
    assert client.get("/api/v1/leads?assignee=none", headers=bob).get_json()["total"] == 0

    for refused, status in (({"assignee": "zed@d2.test"}, 422),
                            ({"assignee": "nobody@nowhere.test"}, 422),
                            ({"assignee": 7}, 422), ({}, 422),
                            ({"assignee": None, "status": "won"}, 422)):
        answer = client.patch(url, json=refused, headers=bob)
        assert answer.status_code == status, refused
        assert answer.get_json()["error"] == "invalid_input"
    zed_error = client.patch(url, json={"assignee": "zed@d2.test"}, headers=bob).get_json()
    assert zed_error["fields"] == {"assignee": "Pick one of your firm's active users."}
    assert client.patch(url, data="[", headers={**bob, "Content-Type": "application/json"}
                        ).status_code == 400

    ann = bearer(client, firm["ann"])
    refused = client.patch(url, json={"assignee": "cy@d1.test"}, headers=ann)
    assert refused.status_code == 403 and refused.get_json()["error"] == "forbidden"
    assert client.patch(url, json={"assignee": None}, headers=ann).get_json()["assignee"] is None
    assert client.patch(url, json={"assignee": "me"}, headers=ann).get_json()["assignee"] == (
        "ann@d1.test")
    assert client.get("/api/v1/leads?assignee=me", headers=ann).get_json()["total"] == 1

    assert client.patch(url, json={"assignee": None},
                        headers=bearer(client, firm["zed"])).status_code == 404
    assert client.patch(url, json={"assignee": None},
                        headers=bearer(client, make_user("manager"))).status_code == 403
    session.refresh(lead)
    assert lead.assigned_user_id == firm["ann"].id


def test_the_openapi_file_documents_the_assignment(client):
    spec = client.get("/api/v1/openapi.json").get_json()
    patch = spec["paths"]["/leads/{id}"]["patch"]
    assert patch["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Assignment"}
    assert set(patch["responses"]) >= {"200", "403", "404", "422"}
    assert "assignee" in spec["components"]["schemas"]["Lead"]["properties"]


def test_the_list_csv_says_who_holds_each_lead_and_exports_my_leads(
        session, client, auth, make_lead, firm):
    import csv
    import io

    bob, ann = firm["bob"], firm["ann"]
    mine = held_lead(session, make_lead, firm, first_name="Mia", last_name="Mine")
    held_lead(session, make_lead, firm, first_name="Nell", last_name="Nobody")
    assignment.assign(session, mine, ann, Actor.of(bob))
    session.commit()

    def rows(url: str) -> list[dict[str, str]]:
        text = client.get(url).get_data(as_text=True).lstrip("\ufeff")
        return list(csv.DictReader(io.StringIO(text)))

    auth.login_as(bob)
    found = {row["name"]: row["assigned_to"] for row in rows("/leads/export.csv?tab=contact")}
    assert found == {"Mia Mine": "Ann Lee", "Nell Nobody": ""}
    auth.logout()
    auth.login_as(ann)
    assert [row["name"] for row in rows("/leads/export.csv?tab=contact&assignee=me")] == [
        "Mia Mine"]


def test_an_action_on_my_leads_brings_my_tab_counts_along(
        session, client, auth, make_lead, firm):
    bob, ann = firm["bob"], firm["ann"]
    lead = make_lead(postal_code="50401", first_name="Otto", last_name="Offer")
    routing_service.route_lead(session, lead)
    held_lead(session, make_lead, firm)  # the firm's, not Ann's
    assignment.assign(session, lead, ann, Actor.of(bob))
    session.commit()
    auth.login_as(ann)
    answer = client.post(f"/leads/{lead.id}/accept", data={"view": "card"}, headers={
        "HX-Request": "true",
        "HX-Current-URL": "http://portal.test/leads/?tab=new&assignee=me"})
    assert answer.status_code == 200
    tabs = answer.get_data(as_text=True).split('id="lead-tabs"')[1].split("</nav>")[0]
    # Ann's own counts (one accepted, none new), and the tabs keep to My leads.
    assert 'href="/leads/?tab=contact&amp;assignee=me"' in tabs
    contact = tabs.split("tab-contact")[1].split("</a>")[0]
    assert 'aria-label="1 leads">1</span>' in contact
    new = tabs.split("tab-new")[1].split("</a>")[0]
    assert 'aria-label="0 leads">0</span>' in new
