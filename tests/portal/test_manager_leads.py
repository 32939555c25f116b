"""Channel managers: lead search, the unassigned queue, routing history, reassign, bulk."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Campaign, Lead, LeadEvent, utcnow
from portal.dispatch import services as routing_service
from tests.conftest import PASSWORD

HTMX = {"HX-Request": "true"}


def _text(response):
    return response.get_data(as_text=True)


def _routed(session, make_lead, **fields):
    lead = make_lead(**fields)
    routing_service.route_lead(session, lead)
    session.commit()  # requests share the session; a GET rolls back what is not committed
    return lead


@pytest.fixture
def manager(auth):
    return auth.login("manager")


@pytest.fixture
def partners(make_partner):
    return (make_partner("IA1", territories=["region:US-IA"]),
            make_partner("IL1", territories=["region:US-IL"], region="US-IL"))


def test_search_filters_by_status_partner_region_line_rank_campaign_age_overdue(
        client, session, manager, partners, make_lead, make_partner, make_user):
    ia, il = partners
    make_partner("MW1", territories=["region:US-IA"], product_lines=["MWR"])
    campaign = Campaign(code="SPRING", name="Spring show")
    session.add(campaign)
    session.flush()
    iowa = _routed(session, make_lead, last_name="Iowa", region="US-IA", rank="hot",
                   campaign=campaign)
    illinois = _routed(session, make_lead, last_name="Illinois", region="US-IL",
                       postal_code="60601", rank="cold")
    mower = _routed(session, make_lead, last_name="Mower", region="US-IA", product_line="MWR",
                    rank="warm")
    old = _routed(session, make_lead, last_name="Old", region="US-IA", rank="warm")
    old.created_at = utcnow() - timedelta(days=200)
    lifecycle.accept(session, old, Actor.of(make_user("partner", partner=ia)))
    old.accepted_at = utcnow() - timedelta(days=100)
    session.commit()

    def names(query):
        page = _text(client.get(f"/leads/search?{query}"))
        return {n for n in ("Iowa", "Illinois", "Mower", "Old") if f"Pat {n}<" in page}

    assert names("") == {"Iowa", "Illinois", "Mower", "Old"}
    assert names("status=accepted") == {"Old"}
    assert names("partner=IL1") == {"Illinois"}
    assert names("partner=il1") == {"Illinois"}  # a code, in any case
    # A name, or part of one, when no code is that: what a manager remembers of a dealer.
    il.name, ia.name = "Prairie State Tractor", "Hawkeye Farm & Lawn"
    session.commit()
    assert names("partner=prairie+state") == {"Illinois"}
    assert names("partner=farm") == {"Iowa", "Old"}
    assert names("partner=%25") == set()  # % is a character, not a wildcard
    # A partner's name typed into the text search finds no lead, and says where to go.
    hint = _text(client.get("/leads/search?q=prairie+state"))
    assert "No leads match." in hint
    assert '<a href="/leads/search?partner=IL1">Prairie State Tractor (IL1)</a>' in hint
    assert names("region=US-IL") == {"Illinois"}
    assert names("product_line=MWR") == {"Mower"}
    assert names("rank=cold") == {"Illinois"}
    assert names("campaign=SPRING") == {"Iowa"}
    assert names("age=older") == {"Old"}
    assert names("age=7") == {"Iowa", "Illinois", "Mower"}
    assert names("overdue=y") == {"Old"}
    assert names(f"q={illinois.email}") == {"Illinois"}
    assert iowa.assigned_partner_id == ia.id and mower.assigned_partner.code == "MW1"

    fragment = client.get("/leads/search?rank=cold", headers=HTMX)
    assert "<html" not in _text(fragment) and 'id="lead-results"' in _text(fragment)
    assert "HX-Request" in fragment.headers["Vary"]


def test_unassigned_queue_shows_why_and_routes_again(
        client, session, manager, make_lead, make_partner):
    lead = _routed(session, make_lead, last_name="Nowhere", postal_code="99501",
                   region="US-AK")
    assert lead.status == "unassigned"
    page = _text(client.get("/leads/queue"))
    assert "Pat Nowhere" in page and lead.routing["summary"] in page
    assert 'hx-post="/leads/' in page and "Route again" in page

    # Routed again with still nobody for Alaska: said as a warning, and the card keeps
    # its reason and its button.
    again = _text(client.post(f"/leads/{lead.id}/route", data={"view": "card"}, headers=HTMX))
    assert "flash-warning" in again and "Still unassigned" in again
    assert lead.routing["summary"] in again and "Route again" in again
    assert f'hx-post="/leads/{lead.id}/route"' in again
    assert '<a href="/leads/queue">&larr; Unassigned queue</a>' in _text(
        client.get(f"/leads/{lead.id}"))

    # A manager adds a partner for Alaska, then routes the lead again from the queue.
    make_partner("AK1", territories=["region:US-AK"], region="US-AK")
    session.commit()
    response = client.post(f"/leads/{lead.id}/route", data={"view": "card"}, headers=HTMX)
    assert response.status_code == 200
    body = _text(response)
    assert "<html" not in body and "Offered to AK1" in body
    session.refresh(lead)
    assert lead.status == "offered" and lead.assigned_partner.code == "AK1"
    assert "Pat Nowhere" not in _text(client.get("/leads/queue"))


def test_lead_page_shows_routing_history_with_the_explanation(
        client, session, manager, partners, make_lead, make_user):
    ia, il = partners
    lead = _routed(session, make_lead, region="US-IA")
    lifecycle.decline(session, lead, Actor.of(make_user("partner", partner=ia)),
                      reason="no_capacity")
    routing_service.route_lead(session, lead)
    session.commit()

    page = _text(client.get(f"/leads/{lead.id}"))
    assert "Routing history" in page
    assert "IA1" in page and "by rule" in page and "Declined" in page
    assert "No capacity right now" in page
    assert "Partners considered" in page and "Kept" in page
    assert lead.routing["summary"] in page


def test_reassign_by_hand_needs_a_reason(client, session, manager, partners, make_lead):
    ia, il = partners
    lead = _routed(session, make_lead, region="US-IA")
    refused = client.post(f"/leads/{lead.id}/reassign", data={"partner": "IL1"})
    assert refused.status_code == 422 and "Give a reason." in _text(refused)
    unknown = client.post(f"/leads/{lead.id}/reassign",
                          data={"partner": "NOPE", "reason": "x"})
    assert unknown.status_code == 422 and "Unknown partner." in _text(unknown)

    response = client.post(f"/leads/{lead.id}/reassign",
                           data={"partner": "IL1", "reason": "customer asked for Illinois"})
    assert response.status_code == 303
    session.refresh(lead)
    assert lead.assigned_partner_id == il.id and lead.status == "offered"
    offer = lifecycle.current_offer(session, lead)
    assert offer.method == "manual" and offer.reason == "customer asked for Illinois"
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "by hand" in page and "customer asked for Illinois" in page


def test_reassign_refuses_an_ineligible_partner_unless_overridden_and_logged(
        app, client, session, manager, partners, make_lead, make_partner, make_user):
    ia, il = partners
    mowers_only = make_partner("MW2", territories=["region:US-IL"], product_lines=["MWR"])
    paused = make_partner("PZ1", territories=["region:US-IL"])
    paused.active, paused.paused_reason = False, "owner on leave"
    full = make_partner("FL1", territories=["region:US-IL"], capacity=1)
    full.open_leads = 1
    lead = _routed(session, make_lead, region="US-IA")  # a tractor lead (TRC)
    session.commit()
    for code, why in (("MW2", "does not sell"), ("PZ1", "is paused: owner on leave"),
                      ("FL1", "is full: 1 open of 1")):
        refused = client.post(f"/leads/{lead.id}/reassign",
                              data={"partner": code, "reason": "closer to the farm"})
        assert refused.status_code == 422, code
        page = _text(refused)
        assert f"{code} {why}" in page and "override" in page.lower()
    session.refresh(lead)
    assert lead.assigned_partner_id == ia.id, "nothing moved"

    done = client.post(f"/leads/{lead.id}/reassign", data={
        "partner": "MW2", "reason": "the customer buys mowers too", "override": "y"})
    assert done.status_code == 303
    session.refresh(lead)
    assert lead.assigned_partner_id == mowers_only.id
    offer = lifecycle.current_offer(session, lead)
    assert offer.reason.startswith("override: MW2 does not sell")
    assert offer.reason.endswith("the customer buys mowers too")
    assert "override: MW2 does not sell" in _text(client.get(f"/leads/{lead.id}"))

    # The API: the same rule, and the same override (DESIGN §6).
    other = _routed(session, make_lead, region="US-IA")
    session.commit()
    token = client.post("/api/v1/tokens", json={"email": make_user("manager").email,
                                                "password": PASSWORD}).get_json()["token"]
    api = {"Authorization": f"Bearer {token}"}
    refused = client.post(f"/api/v1/leads/{other.id}/actions", headers=api, json={
        "action": "reassign", "partner": "PZ1", "reason": "x"})
    assert refused.status_code == 422 and "paused" in refused.get_json()["fields"]["partner"]
    overridden = client.post(f"/api/v1/leads/{other.id}/actions", headers=api, json={
        "action": "reassign", "partner": "PZ1", "reason": "covers for IA1", "override": True})
    assert overridden.status_code == 200
    assert overridden.get_json()["assigned_partner"] == "PZ1"


def _picks(page: str) -> list[tuple[str, str]]:
    """The reassign picker's partners as shown: (code, "Eligible" or why not), in order."""
    import re

    return [(code, " ".join(verdict.split())) for code, verdict in re.findall(
        r'name="partner" value="([^"]+)".*?class="(?:eligible|why-not)">([^<]+)<', page,
        re.S)]


def test_reassign_picker_finds_partners_by_name_code_or_town_and_says_who_may_take_it(
        client, session, manager, partners, make_lead, make_partner, make_user):
    ia, il = partners
    # no position of its own: measured from its ZIP's centre (50401, Mason City), as
    # routing measures (a form or an import stores none)
    lead = _routed(session, make_lead, region="US-IA", postal_code="50401")
    assert lead.latitude is None
    near = make_partner("NR1", name="Cerro Gordo Tractor", city="Clear Lake",
                        latitude=43.14, longitude=-93.38)
    far = make_partner("FR1", name="Des Moines Tractor", city="Des Moines",
                       latitude=41.59, longitude=-93.62)
    make_partner("MW2", name="Mason City Mowers", city="Mason City", product_lines=["MWR"])
    paused = make_partner("PZ1", name="Prairie Tractor", city="Ames", latitude=42.03,
                          longitude=-93.62)
    paused.active, paused.paused_reason = False, "owner on leave"
    session.commit()

    # Without a search: the nearest active partners that sell the lead's line, nearest
    # first; the partner holding it now is not offered; the mower dealer is not there.
    page = _text(client.get(f"/leads/{lead.id}"))
    picks = _picks(page)
    assert [code for code, _ in picks] == ["IL1", "NR1", "FR1"]  # 0, 14, 175 km
    assert all(verdict == "Eligible" for _, verdict in picks)
    assert "Clear Lake" in page and "km" in page

    # A search by name, code or town, in any case: eligible first, each refusal in words.
    found = _picks(_text(client.get(f"/leads/{lead.id}/reassign/partners?partner_q=mason",
                                    headers=HTMX)))
    line = lead.product_line.name.lower()
    assert ("MW2", f"Not eligible: MW2 does not sell {line}") in found
    assert _picks(_text(client.get(f"/leads/{lead.id}/reassign/partners?partner_q=pz1",
                                   headers=HTMX))) == [
        ("PZ1", "Not eligible: PZ1 is paused: owner on leave")]
    assert [c for c, _ in _picks(_text(client.get(
        f"/leads/{lead.id}/reassign/partners?partner_q=clear+lake", headers=HTMX)))] == ["NR1"]
    nothing = _text(client.get(f"/leads/{lead.id}/reassign/partners?partner_q=%25"))
    assert _picks(nothing) == [] and "No partner matches" in nothing  # % is not a wildcard

    # Without JavaScript the search is the lead page again, with the picker open.
    plain = _text(client.get(f"/leads/{lead.id}?partner_q=des+moines"))
    assert '<details class="fold reassign" id="reassign" open>' in plain
    assert [c for c, _ in _picks(plain)] == ["FR1"]

    # A refused pick comes back checked, with why; the override goes through.
    refused = client.post(f"/leads/{lead.id}/reassign",
                          data={"partner": "MW2", "reason": "asked for it"})
    assert refused.status_code == 422
    page = _text(refused)
    assert 'value="MW2" checked' in page and f"MW2 does not sell {line}" in page
    done = client.post(f"/leads/{lead.id}/reassign",
                       data={"partner": "NR1", "reason": "closer to the farm"})
    assert done.status_code == 303
    session.refresh(lead)
    assert lead.assigned_partner_id == near.id and far.id != near.id

    # Only staff have the picker.
    client.post("/auth/logout")
    dealer = make_user("partner", partner=near)
    session.commit()
    client.post("/auth/login", data={"email": dealer.email, "password": PASSWORD})
    assert client.get(f"/leads/{lead.id}/reassign/partners?partner_q=a").status_code == 404
    assert 'name="partner_q"' not in _text(client.get(f"/leads/{lead.id}"))


def test_bulk_reassign_names_the_partner_by_code_or_by_a_name_only_it_has(
        client, session, manager, partners, make_lead, make_partner):
    make_partner("PT1", name="Prairie Tractor & Supply")
    make_partner("PI2", name="Prairie Implement")
    leads = [_routed(session, make_lead, last_name=f"Named{n}", region="US-IA")
             for n in range(2)]
    session.commit()

    def plan(partner):
        return client.post("/leads/bulk", data={
            "action": "reassign", "ids": [str(lead.id) for lead in leads],
            "partner": partner, "reason": "new dealer"})

    review = plan("prairie implement")
    assert review.status_code == 200
    assert "To <strong>Prairie Implement (PI2)</strong>" in _text(review)
    assert "2 leads will change" in _text(review)
    several = _text(plan("prairie"))
    assert ("Several match “prairie”: Prairie Implement (PI2); Prairie Tractor &amp; Supply "
            "(PT1). Enter the code of one.") in several
    assert "No partner&#39;s code or name holds “nowhere”" in _text(plan("nowhere"))
    assert all(lead.assigned_partner.code == "IA1" for lead in leads), "nothing moved"


def test_bulk_reassign_leaves_out_the_leads_the_partner_cannot_take(
        client, session, manager, partners, make_lead, make_partner):
    small = make_partner("SM1", territories=["region:US-IL"], capacity=1)
    leads = [_routed(session, make_lead, last_name=f"Bulk{n}", region="US-IA")
             for n in range(3)]
    session.commit()
    review = client.post("/leads/bulk", data={
        "action": "reassign", "ids": [str(lead.id) for lead in leads], "partner": "SM1",
        "reason": "new dealer"})
    assert review.status_code == 200
    page = _text(review)
    assert page.count("SM1 is full") == 2, "room for one: the other two are left out"
    assert small.capacity == 1


def test_bulk_actions_ask_for_confirmation_then_apply(
        client, session, manager, partners, make_lead):
    ia, il = partners
    first = _routed(session, make_lead, last_name="One", region="US-IA")
    second = _routed(session, make_lead, last_name="Two", region="US-IA")
    closed = _routed(session, make_lead, last_name="Three", region="US-IA")
    lifecycle.disqualify(session, closed, Actor.system("test"), reason="spam")
    session.commit()
    ids = [str(first.id), str(second.id), str(closed.id)]

    search = _text(client.get("/leads/search?region=US-IA"))
    assert 'name="ids"' in search and "Review" in search

    missing = client.post("/leads/bulk", data={"action": "reassign", "ids": ids,
                                               "partner": "IL1"})
    assert missing.status_code == 422 and "A reason is required." in _text(missing)

    review = client.post("/leads/bulk", data={
        "action": "reassign", "ids": ids, "partner": "IL1", "reason": "territory swap",
        "next": "/leads/search?region=US-IA"})
    assert review.status_code == 200
    page = _text(review)
    assert "Confirm: change 2 leads" in page and "Skipped" in page and "Pat Three" in page
    session.refresh(first)
    assert first.assigned_partner_id == ia.id  # nothing changed before confirming

    done = client.post("/leads/bulk", data={
        "action": "reassign", "ids": ids, "partner": "IL1", "reason": "territory swap",
        "confirm": "yes", "next": "/leads/search?region=US-IA"})
    assert done.status_code == 303
    assert done.headers["Location"] == "/leads/search?region=US-IA"
    assert "2 leads changed. 1 skipped." in _text(client.get(done.headers["Location"]))
    for lead in (first, second):
        session.refresh(lead)
        assert lead.assigned_partner_id == il.id


def test_bulk_close_as_duplicate_and_reroute_by_htmx(
        client, session, manager, partners, make_lead, make_user):
    ia, il = partners
    dup = _routed(session, make_lead, last_name="Dup", region="US-IA")
    again = _routed(session, make_lead, last_name="Again", region="US-IA")

    response = client.post("/leads/bulk", headers=HTMX, data={
        "action": "duplicate", "ids": [str(dup.id)], "reason": "same farm as #12",
        "confirm": "yes", "next": "/leads/search?region=US-IA"})
    assert response.status_code == 200
    body = _text(response)
    assert "<html" not in body and "1 leads changed." in body
    session.refresh(dup)
    assert dup.status == "disqualified" and "duplicate" in dup.qualification_reason
    session.refresh(ia)
    assert ia.open_leads == 1

    # Route again, once a partner covers the area: the queued lead is offered.
    lifecycle.decline(session, again, Actor.of(make_user("partner", partner=ia)),
                      reason="other")
    routing_service.route_lead(session, again)  # nobody else fits Iowa: unassigned
    session.commit()
    assert again.status == "unassigned"
    il_iowa = il
    il_iowa.territories[0].value = "US-IA"
    il_iowa.updated_at = utcnow()
    session.commit()
    response = client.post("/leads/bulk", data={
        "action": "reroute", "ids": [str(again.id)], "confirm": "yes",
        "next": "/leads/queue"})
    assert response.status_code == 303
    session.refresh(again)
    assert again.status == "offered" and again.assigned_partner_id == il.id


def test_partner_page_shows_leads_load_users_territories(
        client, session, manager, partners, make_lead, make_user):
    ia, _il = partners
    ia.capacity = 10
    make_user("partner", partner=ia, email="boss@ia1.test", partner_admin=True)
    _routed(session, make_lead, last_name="Load", region="US-IA")
    page = _text(client.get("/leads/partners/IA1"))
    assert "1</strong> of 10" in page
    assert "boss@ia1.test" in page and "region:US-IA" in page
    assert "Pat Load" in page
    assert client.get("/leads/partners/NOPE").status_code == 404


def test_conflicts_are_listed_and_marked_reviewed(client, session, manager, partners,
                                                  make_lead):
    lead = _routed(session, make_lead, region="US-IA")
    lifecycle.record_event(session, lead, "conflict", Actor.system("sync:abc"), now=utcnow(),
                           data={"reason": "won recorded offline after reassignment"})
    session.commit()
    conflict = session.scalars(select(LeadEvent).where(LeadEvent.kind == "conflict")).one()
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "Conflicts to review" in page and "won recorded offline" in page

    response = client.post(f"/leads/{lead.id}/review_conflict",
                           data={"event": str(conflict.id), "note": "checked with dealer"})
    assert response.status_code == 303
    assert "Conflicts to review" not in _text(client.get(f"/leads/{lead.id}"))


def test_manager_dashboard_counts_link_to_the_queue(client, session, manager, make_lead):
    _routed(session, make_lead, postal_code="99501", region="US-AK")
    page = _text(client.get("/", follow_redirects=True))  # the channel overview
    assert 'href="/leads/queue"><span class="num">1</span><span class="label">Unassigned' in page



def test_search_finds_a_lead_by_first_and_last_name_together(auth, client, session, make_lead):
    """A manager types the full name as the prospect gave it."""
    make_lead(first_name="Henrik", last_name="Aasland", postal_code="50401")
    make_lead(first_name="Henrik", last_name="Other", postal_code="50401")
    session.commit()
    auth.login("manager")
    page = client.get("/leads/search?q=Henrik+Aasland").get_data(as_text=True)
    assert "Aasland" in page
    assert "Other" not in page


def test_search_words_are_found_inside_any_field_and_across_none(
        auth, client, session, make_lead):
    """Each word matches inside a name, company, email, phone, postal code or city, in any
    case; every word must match; one word never runs from one field into the next."""
    make_lead(first_name="Marguerite", last_name="Okonkwo", company="Riverbend Farms",
              email="mo@riverbend.example", phone="(641) 555-0199",
              phone_normalized="+16415550199", city="Clear Lake")
    make_lead(first_name="Other", last_name="Prospect", city="Mason City")
    session.commit()
    auth.login("manager")

    def found(q):
        page = client.get("/leads/search", query_string={"q": q}).get_data(as_text=True)
        return "Marguerite Okonkwo" in page  # the card's name (the form repeats only q)

    for q in ("guerit", "KONK", "bend farm", "riverbend.exam", "lear lak", "Okonkwo Riverbend",
              # the phone, however it is typed
              "(641) 555-0199", "641 555 0199", "641-555-0199", "6415550199", "+16415550199",
              "555-0199", "641.555.0199"):
        assert found(q), q
    assert not found("641-555-0198")
    assert not found("kwoRiver")  # the last name's end and the company's start
    assert not found("Okonkwo Mason")  # Mason is the other prospect's


def test_text_search_is_answered_from_the_trigram_index_on_postgresql(app, session):
    """The search's expression is the one migration 0010 indexed: PostgreSQL can find
    words from the index instead of reading every lead (2.6 s at 1,000,000)."""
    from sqlalchemy import text

    from portal.leads import partner_inbox

    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("the trigram index is PostgreSQL's (pg_trgm); SQLite reads the table")
    if not session.scalar(text("SELECT count(*) FROM pg_extension WHERE extname = 'pg_trgm'")):
        pytest.skip("pg_trgm is not installed on this server: migration 0010 left the index out")
    # The search's own WHERE clause, with every way to read the leads but a bitmap of
    # index conditions switched off (a test database is tiny: a scan would win): only
    # an index of this very expression can answer it.
    statement = select(Lead.id).where(partner_inbox._words_match(["%okonkwo%"]))
    sql = str(statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    for switch in ("enable_seqscan", "enable_indexscan", "enable_indexonlyscan"):
        session.execute(text(f"SET LOCAL {switch} = off"))
    plan = "\n".join(row[0] for row in session.execute(text("EXPLAIN " + sql.replace("%%", "%"))))
    assert "Bitmap Index Scan on ix_leads_search_trgm" in plan, plan


def test_the_two_partner_pages_link_to_each_other(client, session, manager, partners):
    ia, _ = partners
    session.commit()  # a GET rolls back what is not committed
    details = _text(client.get(f"/manage/partners/{ia.code}"))
    assert f'href="/leads/partners/{ia.code}"' in details
    leads = _text(client.get(f"/leads/partners/{ia.code}"))
    assert f'href="/manage/partners/{ia.code}"' in leads
