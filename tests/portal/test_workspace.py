"""The partner workspace: inbox tabs, lead page, every action by plain POST and by htmx."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta
from html.parser import HTMLParser

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import (
    Competitor,
    LeadEvent,
    Offer,
    User,
    utcnow,
)
from portal.dispatch import services as routing_service

HTMX = {"HX-Request": "true"}


def _route(session, lead):
    result = routing_service.route_lead(session, lead)
    # Requests share the test's session and a GET rolls back what is not committed.
    session.commit()
    return result


def _offered(session, make_lead, partner, **fields):
    lead = make_lead(postal_code=fields.pop("postal_code", "50401"), **fields)
    _route(session, lead)
    assert lead.assigned_partner_id == partner.id
    return lead


def _accepted(session, make_lead, partner, user, **fields):
    lead = _offered(session, make_lead, partner, **fields)
    lifecycle.accept(session, lead, Actor.of(user))
    session.commit()
    return lead


def _make_overdue(session, lead, days=50):
    # The outcome clock started long ago: as if accepted ``days`` days back.
    lead.accepted_at = utcnow() - timedelta(days=days)
    session.commit()


@pytest.fixture
def dealer(make_partner):
    return make_partner("D1", name="Prairie Tractors", territories=["zip:50401"])


@pytest.fixture
def dealer_user(auth, dealer):
    return auth.login("partner", partner=dealer)


def _text(response):
    return response.get_data(as_text=True)


# --- inbox ----------------------------------------------------------------------------------


def test_inbox_tabs_show_counts_and_new_offers_with_time_left(
        client, session, dealer, dealer_user, make_lead):
    first = _offered(session, make_lead, dealer, first_name="Ann", last_name="Offered")
    _accepted(session, make_lead, dealer, dealer_user, first_name="Bob",
              last_name="Accepted")
    late = _accepted(session, make_lead, dealer, dealer_user, first_name="Cy",
                     last_name="Late")
    lifecycle.advance(session, late, "contacted", Actor.of(dealer_user),
                      data={"channel": "phone"})
    _make_overdue(session, late)

    response = client.get("/leads/")
    assert response.status_code == 200
    page = _text(response)
    assert "HX-Request" in response.headers["Vary"]
    counts = dict(re.findall(r'class="tab tab-(\w+)[^"]*"[^>]*>[^<]*<span class="count"[^>]*>(\d+)',
                             page))
    assert counts == {"new": "1", "contact": "1", "open": "1", "overdue": "1", "closed": "0"}
    assert "Ann Offered" in page and "Bob Accepted" not in page
    assert "Accept within:" in page and "left" in page
    # Overdue leads are pointed out on every tab.
    assert "1 lead needs an outcome" in page
    assert f"lead-{first.id}-name" in page and f"/leads/{first.id}" in page

    contact = _text(client.get("/leads/?tab=contact"))
    assert "Bob Accepted" in contact and "Ann Offered" not in contact


def test_overdue_leads_are_pinned_first_and_marked(
        client, session, dealer, dealer_user, make_lead):
    fresh = _accepted(session, make_lead, dealer, dealer_user, last_name="Fresh")
    old = _accepted(session, make_lead, dealer, dealer_user, last_name="Stale")
    for lead in (fresh, old):
        lifecycle.advance(session, lead, "contacted", Actor.of(dealer_user))
    _make_overdue(session, old)
    # Make the fresh one accepted earlier than nothing else would pin it.
    fresh.accepted_at = utcnow() - timedelta(days=2)
    session.commit()

    page = _text(client.get("/leads/?tab=open"))
    assert page.index("Pat Stale") < page.index("Pat Fresh")
    card = page[page.index("Pat Stale") - 600:page.index("Pat Stale")]
    assert "is-late" in card
    assert "Overdue: report the outcome" in page

    overdue = _text(client.get("/leads/?tab=overdue"))
    assert "Pat Stale" in overdue and "Pat Fresh" not in overdue


def test_inbox_filters_search_and_htmx_fragment(
        client, session, dealer, dealer_user, make_lead, make_partner):
    make_partner("OTHERLINE", territories=["zip:50401"], product_lines=["MWR"])
    _offered(session, make_lead, dealer, first_name="Hot", last_name="Tractor", rank="hot")
    _offered(session, make_lead, dealer, first_name="Cold", last_name="Tractor", rank="cold",
             company="Frosty Farms")

    ranked = _text(client.get("/leads/?tab=new&rank=cold"))
    assert "Cold Tractor" in ranked and "Hot Tractor" not in ranked

    found = _text(client.get("/leads/?tab=new&q=frosty"))
    assert "Cold Tractor" in found and "Hot Tractor" not in found

    fragment = client.get("/leads/?tab=new&rank=hot", headers=HTMX)
    assert fragment.status_code == 200
    body = _text(fragment)
    assert "<html" not in body and 'id="lead-list"' in body
    assert "Hot Tractor" in body and "Cold Tractor" not in body
    assert "HX-Request" in fragment.headers["Vary"]
    # Restoring the page from history (Back) asks for all of it, filters in the form.
    restored = _text(client.get("/leads/?tab=new&rank=hot", headers={
        **HTMX, "HX-History-Restore-Request": "true"}))
    assert "<html" in restored and "Hot Tractor" in restored
    assert '<option selected value="hot">' in restored


def test_inbox_paginates(client, session, dealer, dealer_user, make_lead, app):
    app.config["PAGE_SIZE"] = 2
    for n in range(5):
        _offered(session, make_lead, dealer, last_name=f"Paged{n}")
    first = _text(client.get("/leads/?tab=new"))
    assert "Page 1 of 3" in first
    third = _text(client.get("/leads/?tab=new&page=3"))
    assert "Pat Paged4" in third and "Pat Paged0" not in third


def test_inbox_query_count_does_not_grow_with_leads(
        client, session, dealer, dealer_user, make_lead, count_queries, app):
    app.config["PAGE_SIZE"] = 50

    def make(n):
        for _ in range(n):
            lead = _offered(session, make_lead, dealer)
            if _ % 3 == 0:
                lifecycle.accept(session, lead, Actor.of(dealer_user))
        session.commit()

    def measure():
        counts = []
        for url in ("/leads/?tab=new", "/leads/?tab=contact", "/leads/?tab=overdue",
                    "/leads/?tab=new&q=Pat+Prospect"):
            with count_queries() as counter:
                assert client.get(url).status_code == 200
            counts.append(counter.count)
        return counts

    make(30)
    small = measure()
    make(270)
    large = measure()
    assert small == large
    # the user with its partner, the tab counts, the product lines, the page of cards,
    # the page's next follow-up tasks; a search adds the list's own count and its matches
    # on the other tabs
    assert max(large[:3]) <= 5 and large[3] <= 7


def _won(session, make_lead, partner, user, **fields):
    lead = _accepted(session, make_lead, partner, user, **fields)
    lifecycle.close(session, lead, "won", Actor.of(user), data={"amount": "100"})
    session.commit()
    return lead


@pytest.fixture
def small_cap(monkeypatch):
    """The closed tab counts up to 2 (the statements are built with the cap: rebuild)."""
    from portal.leads import partner_inbox

    monkeypatch.setattr(partner_inbox, "TAB_COUNT_CAP", 2)
    partner_inbox.counts_statement.cache_clear()
    partner_inbox._inbox_statements.cache_clear()
    yield
    monkeypatch.undo()
    partner_inbox.counts_statement.cache_clear()
    partner_inbox._inbox_statements.cache_clear()


def test_closed_tab_counts_up_to_the_cap_then_shows_a_plus(
        client, session, dealer, dealer_user, make_lead, small_cap, app):
    app.config["PAGE_SIZE"] = 1
    for n in range(3):
        _won(session, make_lead, dealer, dealer_user, last_name=f"Closed{n}")

    page = _text(client.get("/leads/?tab=closed"))
    assert re.search(r'class="tab tab-closed[^"]*"[^>]*>Closed <span class="count" '
                     r'aria-label="2\+ leads">2\+</span>', page)
    assert 'Page 1 of 2 &middot; <span id="lead-total">2+</span> in all' in page
    last = _text(client.get("/leads/?tab=closed&page=2"))
    assert "Only the first 2 are listed: search or filter to find the others." in last
    # A search narrows below the cap: exact again.
    found = _text(client.get("/leads/?tab=closed&q=Closed1"))
    assert "Pat Closed1" in found and '"lead-total">1</span> in all' in found
    assert "2+" not in found.split('id="lead-list"')[1]


def test_working_tabs_count_and_page_past_the_cap(
        client, session, dealer, dealer_user, make_lead, small_cap, app):
    app.config["PAGE_SIZE"] = 1
    for n in range(3):
        _accepted(session, make_lead, dealer, dealer_user, last_name=f"Working{n}")
    page = _text(client.get("/leads/?tab=contact"))
    assert re.search(r'aria-label="3 leads">3</span>', page)
    assert 'Page 1 of 3 &middot; <span id="lead-total">3</span> in all' in page
    last = _text(client.get("/leads/?tab=contact&page=3"))
    assert "Pat Working2" in last and "Only the first" not in last


class _Forms(HTMLParser):
    """The forms of a piece of HTML as a browser would submit them: action, fields."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.forms: list[dict] = []
        self.ids: dict[str, str] = {}  # element id -> tag
        self.labels: list[str] = []  # what each <label for> points at
        self.feed(html)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids[attrs["id"]] = tag
        if tag == "label":
            self.labels.append(attrs["for"])
        elif tag == "form":
            self.forms.append({"action": attrs["action"], "hx-post": attrs.get("hx-post"),
                               "fields": {}, "options": []})
        elif tag in ("input", "select") and self.forms:
            self.forms[-1]["fields"][attrs["name"]] = attrs.get("value", "")
        elif tag == "option" and self.forms:
            self.forms[-1]["options"].append(attrs["value"])


def _cards(page):
    return {re.search(r'href="/leads/([0-9a-f-]{36})"', card).group(1): card
            for card in page.split('<article class="lead-card')[1:]}


def test_each_new_offer_card_posts_accept_and_decline_for_its_own_lead(
        client, session, dealer, dealer_user, make_lead, make_partner, app):
    """What the browser gets on every card works as it stands: each form posts to its own
    lead with the page's CSRF token, comes back to the list, and its labels and ids fit."""
    second = make_partner("D2", territories=["zip:504*"])
    leads = [_offered(session, make_lead, dealer, last_name=f"Card{n}", rank="hot")
             for n in range(3)]
    _accepted(session, make_lead, dealer, dealer_user, last_name="Working", rank="hot")
    app.config["WTF_CSRF_ENABLED"] = True
    list_url = "/leads/?tab=new&rank=hot"
    page = _text(client.get(list_url))
    token = re.search(r'"X-CSRFToken": "([^"]+)"', page).group(1)

    cards = _cards(page)
    assert set(cards) == {str(lead.id) for lead in leads}
    for lead_id, card in cards.items():
        parsed = _Forms(card)
        accept, decline = parsed.forms
        for form, action in ((accept, "accept"), (decline, "decline")):
            assert form["action"] == form["hx-post"] == f"/leads/{lead_id}/{action}"
            assert form["fields"]["csrf_token"] == token
            assert form["fields"]["next"] == list_url and form["fields"]["view"] == "card"
        assert decline["options"] == ["", "out_of_area", "no_capacity", "not_our_product",
                                      "duplicate", "other"]
        assert set(decline["fields"]) == {"view", "next", "reason", "detail", "csrf_token"}
        assert parsed.labels == [f"reason-decline-{lead_id}", f"detail-decline-{lead_id}"]
        assert all(parsed.ids[target] in ("select", "input") for target in parsed.labels)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # every element id on the page is its own
    # Cards of other stages carry no quick actions.
    assert "/accept" not in _text(client.get("/leads/?tab=contact"))

    # A card's decline form, submitted as it stands with a reason picked: done, and
    # back to the list it came from.
    first = _Forms(cards[str(leads[0].id)]).forms[1]
    answer = client.post(first["action"], data={**first["fields"], "reason": "no_capacity"})
    assert answer.status_code == 303 and answer.headers["Location"] == list_url
    session.refresh(leads[0])
    assert leads[0].assigned_partner_id == second.id

    # By htmx without a reason: the card comes back with its decline form open, the
    # error next to the reason, the details kept, and still the list's URL to go back to.
    other = _Forms(cards[str(leads[1].id)]).forms[1]
    refused = client.post(other["action"], headers=HTMX,
                          data={**other["fields"], "detail": "Call <after> May"})
    body = _text(refused)
    assert refused.status_code == 422 and body.lstrip().startswith("<article")
    assert '<details class="fold" open>' in body
    error_id = f"reason-decline-{leads[1].id}-error"
    assert f'aria-describedby="{error_id}" aria-invalid="true"' in body
    assert f'<p class="error" id="{error_id}">Pick a reason.</p>' in body
    assert 'name="detail" type="text" value="Call &lt;after&gt; May"' in body
    session.refresh(leads[1])
    assert leads[1].status == "offered" and leads[1].assigned_partner_id == dealer.id
    again = _Forms(body).forms[1]  # as the user corrects it: its token still serves
    assert again["fields"]["next"] == list_url and again["fields"]["detail"] == "Call <after> May"
    done = client.post(again["action"], headers=HTMX, data={**again["fields"], "reason": "other"})
    assert done.status_code == 200 and "Declined" in _text(done)
    session.refresh(leads[1])
    assert leads[1].assigned_partner_id == second.id


def test_a_bad_filter_value_is_dropped_and_marked_every_time(
        client, session, dealer, dealer_user, make_lead):
    _offered(session, make_lead, dealer, last_name="Kept", rank="hot")
    for _ in range(2):  # the second answer comes from what the first one checked
        page = _text(client.get("/leads/?tab=new&rank=lukewarm"))
        assert "Pat Kept" in page
        assert re.search(r'<p class="error" id="rank-error">', page)


# --- lead page ------------------------------------------------------------------------------


def test_lead_page_shows_prospect_inquiry_rank_timeline(
        client, session, dealer, dealer_user, make_lead):
    lead = _offered(session, make_lead, dealer, phone="+1 641 555 0100", company="Acme Farms",
                    comments="Need a <b>tractor</b> by May", answers={"timeline": "now"})
    lifecycle.record_event(session, lead, "literature_sent", Actor.system("fulfilment"),
                           now=utcnow(), data={"title": "Tractor brochure 2026"})
    session.commit()

    page = _text(client.get(f"/leads/{lead.id}"))
    # contact details wait for the accept (the channel setting's default)
    assert "Shown once you accept the offer" in page and lead.email not in page
    assert "Acme Farms" in page
    assert "Need a &lt;b&gt;tractor&lt;/b&gt; by May" in page  # escaped, never |safe
    assert "Timeline" in page and "Offered" in page and "Captured" in page
    assert "80 / 100" in page and "test" in page  # score and the qualification reason
    assert "Tractor brochure 2026" in page
    assert "Accept within:" in page
    assert "If you do not accept it by then, the portal offers it to another partner" in page
    lifecycle.accept(session, lead, Actor.of(dealer_user))
    session.commit()
    page = _text(client.get(f"/leads/{lead.id}"))
    assert 'href="tel:' in page and f'href="mailto:{lead.email}"' in page


# --- actions by plain POST -------------------------------------------------------------------


def test_accept_by_plain_post_redirects_and_shows_the_change(
        client, session, dealer, dealer_user, make_lead):
    lead = _offered(session, make_lead, dealer)
    response = client.post(f"/leads/{lead.id}/accept", data={"view": "page"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/leads/{lead.id}")
    page = _text(client.get(response.headers["Location"]))
    assert f"Accepted {lead.name}: the lead is yours" in page
    assert "Record what happened" in page
    session.refresh(lead)
    assert lead.status == "accepted"


def test_decline_needs_a_reason_then_reroutes_to_the_next_partner(
        client, session, dealer, dealer_user, make_lead, make_partner):
    second = make_partner("D2", territories=["zip:504*"])
    lead = _offered(session, make_lead, dealer)

    refused = client.post(f"/leads/{lead.id}/decline", data={"view": "page"})
    assert refused.status_code == 422
    assert "Pick a reason." in _text(refused)
    session.refresh(lead)
    assert lead.status == "offered" and lead.assigned_partner_id == dealer.id
    # From an inbox card without JavaScript: the whole lead page (not a bare card), the
    # decline form open with its error, still going back to the list afterwards.
    answer = client.post(f"/leads/{lead.id}/decline",
                         data={"view": "card", "next": "/leads/?tab=new"})
    assert answer.status_code == 422
    from_card = _text(answer)
    assert "<html" in from_card and "Pick a reason." in from_card
    assert '<details class="fold" open>' in from_card
    assert 'name="next" type="hidden" value="/leads/?tab=new"' in from_card
    assert 'name="view" type="hidden" value="page"' in from_card  # one of the page's forms
    session.refresh(lead)
    assert lead.status == "offered"

    response = client.post(f"/leads/{lead.id}/decline",
                           data={"view": "card", "reason": "out_of_area",
                                 "next": "/leads/?tab=new"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/leads/?tab=new"
    session.refresh(lead)
    assert lead.assigned_partner_id == second.id and lead.status == "offered"
    declined = session.scalars(select(Offer).where(Offer.lead_id == lead.id,
                                                   Offer.partner_id == dealer.id)).one()
    assert declined.response == "declined" and declined.decline_reason == "Out of our area"
    assert "goes to another partner" in _text(client.get("/leads/"))
    # The decliner no longer sees it.
    assert client.get(f"/leads/{lead.id}").status_code == 404


def test_the_working_stages_to_won(client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user)
    steps = [
        ("contact", {"channel": "visit"}, "contacted"),
        ("appointment", {"date": "2026-12-01"}, "appointment"),
        ("quote", {"amount": "$48,500"}, "quoted"),
    ]
    for action, data, status in steps:
        response = client.post(f"/leads/{lead.id}/{action}", data={"view": "page", **data})
        assert response.status_code == 303, _text(response)[:2000]
        session.refresh(lead)
        assert lead.status == status
    # A sale is reported once made: a date after today is refused, today's is taken.
    later = (utcnow() + timedelta(days=30)).date().isoformat()
    refused = client.post(f"/leads/{lead.id}/won",
                          data={"view": "page", "amount": "47000", "date": later})
    assert refused.status_code == 422
    assert "Enter the day the sale was made (today or before)." in _text(refused)
    session.refresh(lead)
    assert lead.status == "quoted" and lead.won_amount is None
    won = client.post(f"/leads/{lead.id}/won", data={
        "view": "page", "amount": "47000", "date": utcnow().date().isoformat()})
    assert won.status_code == 303
    session.refresh(lead)
    assert lead.status == "won"
    assert str(lead.quote_amount) == "48500.00" and str(lead.won_amount) == "47000.00"
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "$47,000.00" in page and "$48,500.00" in page
    assert "<dd>Visit</dd>" in page  # the contact channel, on the timeline
    assert "Won: well done" in page
    events = [e.kind for e in session.scalars(
        select(LeadEvent).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.seq))]
    assert events[-4:] == ["contacted", "appointment", "quoted", "won"]
    # Closed: the partner can no longer move it (back to the lead, saying so).
    refused = client.post(f"/leads/{lead.id}/quote", data={"amount": "1"})
    assert refused.status_code == 303
    assert "cannot move to quoted" in _text(client.get(refused.headers["Location"]))
    assert lead.status == "won"


def test_appointment_without_a_date_is_refused_with_the_field(
        client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user)
    response = client.post(f"/leads/{lead.id}/appointment", data={"view": "page"})
    assert response.status_code == 422
    assert "Enter the date." in _text(response)
    session.refresh(lead)
    assert lead.status == "accepted"


def test_lost_to_a_competitor_picked_from_the_list_or_typed(
        client, session, dealer, dealer_user, make_lead):
    session.add(Competitor(name="Green Machines"))
    session.commit()
    picked = _accepted(session, make_lead, dealer, dealer_user)
    typed = _accepted(session, make_lead, dealer, dealer_user)

    missing = client.post(f"/leads/{picked.id}/lost", data={"reason": "competitor"})
    assert missing.status_code == 422
    assert "Pick the competitor or type its name." in _text(missing)

    assert client.post(f"/leads/{picked.id}/lost", data={
        "reason": "competitor", "competitor": "Green Machines"}).status_code == 303
    assert client.post(f"/leads/{typed.id}/lost", data={
        "reason": "competitor", "competitor_other": "Red Iron Ltd"}).status_code == 303
    session.refresh(picked)
    session.refresh(typed)
    assert picked.status == "lost" and picked.lost_competitor.name == "Green Machines"
    assert typed.lost_competitor_id is None and typed.lost_competitor_other == "Red Iron Ltd"
    assert re.search(r"Bought from</dt><dd>Red Iron Ltd",
                     _text(client.get(f"/leads/{typed.id}")))


def test_the_outcome_has_its_own_panel_in_words_and_its_note_is_with_the_notes(
        client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user)
    assert client.post(f"/leads/{lead.id}/quote", data={"amount": "18,400"}).status_code == 303
    assert client.post(f"/leads/{lead.id}/lost", data={
        "reason": "no_budget", "note": "Bank said no until spring"}).status_code == 303
    page = _text(client.get(f"/leads/{lead.id}"))
    outcome = re.search(r'<section class="card outcome".*?</section>', page, re.S).group(0)
    assert "Lost" in outcome and "No budget" in outcome and "$18,400.00" in outcome
    assert "no_budget" not in page  # no internal codes anywhere on the page
    rank = re.search(r'aria-labelledby="rank-title".*?</section>', page, re.S).group(0)
    assert "$18,400.00" not in rank and "No budget" not in rank
    notes = re.search(r'aria-labelledby="notes-title".*?</section>', page, re.S).group(0)
    assert "Bank said no until spring" in notes and "with &ldquo;Lost&rdquo;" in notes


def test_phone_numbers_are_shown_as_people_of_their_country_write_them(
        client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user, phone="515.555.0142",
                     phone_normalized="+15155550142")
    page = _text(client.get(f"/leads/{lead.id}"))
    assert '<a href="tel:+15155550142">(515) 555-0142</a>' in page


def test_the_inquiry_answers_are_in_words(client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user,
                     answers={"timeline": "3_months", "budget": "none",
                              "role": "decision_maker", "tractor_size": "40_hp"})
    page = _text(client.get(f"/leads/{lead.id}"))
    inquiry = re.search(r'aria-labelledby="inquiry-title".*?</section>', page, re.S).group(0)
    for words in ("Within 3 months", "No budget yet", "Decides on the purchase", "40 hp"):
        assert words in inquiry
    assert "3_months" not in inquiry and "decision_maker" not in inquiry


def test_the_forward_picker_offers_the_dealers_that_can_take_the_lead_nearest_first(
        client, session, auth, make_partner, make_lead):
    distributor = make_partner("DIST", kind="distributor", territories=["zip:504*"],
                               latitude=43.15, longitude=-93.20)
    near = make_partner("NEAR", name="Mason City Implement", parent_id=distributor.id,
                        city="Mason City", region="US-IA", latitude=43.15, longitude=-93.20,
                        capacity=10, open_leads=3, territories=["zip:99999"])
    far = make_partner("FAR", name="Ames Tractor", parent_id=distributor.id, city="Ames",
                       region="US-IA", latitude=42.03, longitude=-93.62, capacity=None,
                       territories=["zip:99998"])
    make_partner("SHUT", name="Closed Farm Supply", parent_id=distributor.id, active=False,
                 paused_reason="vacation", territories=["zip:99997"])
    make_partner("MOW", name="Mower World", parent_id=distributor.id, product_lines=["MWR"],
                 territories=["zip:99996"])
    make_partner("FULL", name="Busy Dealer", parent_id=distributor.id, capacity=1,
                 open_leads=1, territories=["zip:99995"])
    lead = _offered(session, make_lead, distributor, postal_code="50401",
                    latitude=43.15, longitude=-93.20)
    session.commit()
    auth.login("partner", partner=distributor)
    page = _text(client.get(f"/leads/{lead.id}"))
    # The deadline says what the distributor may do, and what happens if it does not.
    assert "Accept or forward within:" in page
    assert ("If you neither accept it nor forward it to one of your dealers by then, the "
            "portal offers it to another partner (or hands it to the channel manager) and it "
            "leaves your list.") in page
    picker = re.search(r'<select[^>]*name="partner".*?</select>', page, re.S).group(0)
    options = re.findall(r'<option value="(\w*)">([^<]*)</option>', picker)
    assert [code for code, _ in options] == ["", "NEAR", "FAR"]  # nearest first
    assert options[1][1] == ("Mason City Implement (NEAR) · Mason City, IA · 0 km · TRC · "
                             "3/10 open")
    from routing import Point, distance_km

    km = distance_km(Point(lead.latitude, lead.longitude), Point(42.03, -93.62))
    assert options[2][1] == f"Ames Tractor (FAR) · Ames, IA · {km:,.0f} km · TRC · 0 open"
    assert 100 < km < 140
    line = lead.product_line.name.lower()
    assert (f"Not offered: Busy Dealer (is full: 1 open of 1); Mower World (does not sell {line}); "
            "Closed Farm Supply (is paused: vacation).") in page
    # The lifecycle refuses them too, whatever the form is sent.
    refused = client.post(f"/leads/{lead.id}/forward", data={"partner": "MOW"})
    assert refused.status_code == 422 and f"Pick a dealer that sells {line}." in _text(refused)
    moved = client.post(f"/leads/{lead.id}/forward", data={"partner": "FAR"})
    assert moved.status_code == 303
    session.refresh(lead)
    assert lead.assigned_partner_id == far.id and near.open_leads == 3


def test_no_interest_and_a_note(client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user)
    assert client.post(f"/leads/{lead.id}/note",
                       data={"text": "Call back after harvest"}).status_code == 303
    empty = client.post(f"/leads/{lead.id}/note", data={"text": "  "})
    assert empty.status_code == 422 and "Write the note." in _text(empty)
    assert client.post(f"/leads/{lead.id}/no_interest", data={}).status_code == 303
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "Call back after harvest" in page
    session.refresh(lead)
    assert lead.status == "no_interest"


def test_reopen_is_for_managers_only(client, session, dealer, dealer_user, make_lead, auth):
    lead = _accepted(session, make_lead, dealer, dealer_user)
    lifecycle.close(session, lead, "no_interest", Actor.of(dealer_user))
    session.commit()
    assert "Re-open" not in _text(client.get(f"/leads/{lead.id}"))
    assert client.post(f"/leads/{lead.id}/reopen", data={"reason": "x"}).status_code == 404
    session.refresh(lead)
    assert lead.status == "no_interest"

    auth.logout()
    auth.login("manager")
    assert client.post(f"/leads/{lead.id}/reopen", data={}).status_code == 422
    response = client.post(f"/leads/{lead.id}/reopen",
                           data={"reason": "prospect called back"})
    assert response.status_code == 303
    session.refresh(lead)
    assert lead.status == "accepted"


# --- actions by htmx -------------------------------------------------------------------------


def test_accept_from_the_inbox_card_by_htmx_swaps_the_card(
        client, session, dealer, dealer_user, make_lead):
    lead = _offered(session, make_lead, dealer)
    inbox = _text(client.get("/leads/"))
    assert f'hx-post="/leads/{lead.id}/accept"' in inbox
    assert 'hx-target="closest .lead-card"' in inbox

    response = client.post(f"/leads/{lead.id}/accept", data={"view": "card"}, headers=HTMX)
    assert response.status_code == 200
    body = _text(response)
    assert "<html" not in body and body.lstrip().startswith("<article")
    assert f"Accepted {lead.name}: the lead is yours" in body and "Accepted</span>" in body
    assert "HX-Request" in response.headers["Vary"]
    session.refresh(lead)
    assert lead.status == "accepted"


def test_htmx_action_on_the_lead_page_returns_the_panel_and_errors_in_place(
        client, session, dealer, dealer_user, make_lead):
    lead = _accepted(session, make_lead, dealer, dealer_user)
    bad = client.post(f"/leads/{lead.id}/quote", data={"amount": "lots"}, headers=HTMX)
    assert bad.status_code == 422  # swapped in all the same (base.html responseHandling)
    body = _text(bad)
    assert "<html" not in body and 'class="lead-detail"' in body
    assert "Enter an amount such as 1500.00" in body and "<details class=\"fold\" open>" in body
    session.refresh(lead)
    assert lead.status == "accepted" and lead.quote_amount is None

    good = client.post(f"/leads/{lead.id}/contact", data={"channel": "phone"}, headers=HTMX)
    assert good.status_code == 200
    assert "Contact recorded." in _text(good) and "<html" not in _text(good)
    session.refresh(lead)
    assert lead.status == "contacted"


def test_an_action_url_opened_again_shows_the_lead(client, session, dealer, dealer_user,
                                                   make_lead):
    """A refused plain POST leaves /leads/<id>/<action> in the address bar; reloading it
    goes to the lead page rather than a 405."""
    lead = _offered(session, make_lead, dealer, answers={"timeline": "now"})
    response = client.get(f"/leads/{lead.id}/quote")
    assert response.status_code == 303 and response.headers["Location"] == f"/leads/{lead.id}"
    page = _text(client.get(response.headers["Location"]))
    assert "<dt>Buying timeline</dt><dd>Right away</dd>" in page


def test_htmx_decline_replaces_the_card_with_a_notice(
        client, session, dealer, dealer_user, make_lead):
    lead = _offered(session, make_lead, dealer)
    response = client.post(f"/leads/{lead.id}/decline",
                           data={"view": "card", "reason": "no_capacity"}, headers=HTMX)
    assert response.status_code == 200
    body = _text(response)
    # Nobody else fits here: the notice says where it went instead.
    assert (f"Declined {lead.name}: no other partner fits, so the manufacturer's team takes "
            "it from here.") in body.replace("&#39;", "'")
    assert "<html" not in body
    assert 'id="lead-total"' not in body  # no list named (no HX-Current-URL): no total
    # The tab counts follow out of band: no new offers left.
    assert 'id="lead-tabs" aria-label="Lead tabs" hx-swap-oob="true"' in body
    assert re.search(r'New offers <span class="count" aria-label="0 leads">0</span>', body)
    session.refresh(lead)
    assert lead.status == "unassigned"  # nobody else fits


# --- distributors ----------------------------------------------------------------------------


@pytest.fixture
def distributor_setup(make_partner, auth):
    distributor = make_partner("DIST", kind="distributor", territories=["zip:50401"])
    dealer_a = make_partner("DA", parent_id=distributor.id, territories=["zip:50401"])
    return distributor, dealer_a, auth.login("partner", partner=distributor)


def test_distributor_forwards_to_its_dealer_sees_it_and_pulls_it_back(
        client, session, distributor_setup, make_lead, make_user):
    distributor, dealer_a, dist_user = distributor_setup
    lead = _offered(session, make_lead, distributor)
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "Forward to a dealer" in page and "DA" in page

    response = client.post(f"/leads/{lead.id}/forward", data={"partner": "DA"})
    assert response.status_code == 303
    session.refresh(lead)
    assert lead.assigned_partner_id == dealer_a.id and lead.status == "offered"
    offer = lifecycle.current_offer(session, lead)
    assert offer.method == "forward" and offer.expires_at is not None

    dealers_tab = _text(client.get("/leads/?tab=dealers"))
    assert lead.name in dealers_tab and dealer_a.name in dealers_tab
    # The dealer's time to accept shows on the distributor's list too.
    assert "Accept within:" in dealers_tab
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "Pull back from" in page
    # The timeline says where it went: to the dealer, by the distributor's user.
    forwarded = page.split('class="event event-forwarded"')[1].split("</li>")[0]
    assert f"&middot; to {dealer_a.name} (DA)" in forwarded

    assert client.post(f"/leads/{lead.id}/pull_back", data={}).status_code == 422
    response = client.post(f"/leads/{lead.id}/pull_back",
                           data={"reason": "dealer on holiday"})
    assert response.status_code == 303
    session.refresh(lead)
    # Back with the distributor as an offer it decides on, not accepted behind its back.
    assert lead.assigned_partner_id == distributor.id and lead.status == "offered"
    assert lead.accepted_at is None
    assert not session.scalars(select(LeadEvent.kind).where(
        LeadEvent.lead_id == lead.id, LeadEvent.kind == "accepted")).all()
    withdrawn = session.scalars(select(Offer).where(Offer.lead_id == lead.id,
                                                    Offer.partner_id == dealer_a.id)).one()
    assert withdrawn.response == "withdrawn"
    session.refresh(dealer_a)
    assert dealer_a.open_leads == 0
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "the lead is with you again, to forward to another dealer or to accept" in page
    assert "Accept or forward within:" in page and "Forward to a dealer" in page


def test_dealer_accepts_a_forwarded_lead_with_the_same_flow(
        client, session, distributor_setup, make_lead, make_user, auth):
    distributor, dealer_a, dist_user = distributor_setup
    lead = _offered(session, make_lead, distributor)
    lifecycle.forward(session, lead, dealer_a, Actor.of(dist_user), reason="closest dealer")
    session.commit()
    auth.logout()
    auth.login("partner", partner=dealer_a)
    inbox = _text(client.get("/leads/?tab=new"))
    assert lead.name in inbox and "Accept within:" in inbox
    # Why the dealer has it: its distributor passed it on (not the distributor's routing).
    page = _text(client.get(f"/leads/{lead.id}"))
    assert (f"Why it came to you: {distributor.name} passed it on to you (closest dealer)."
            in page)
    assert client.post(f"/leads/{lead.id}/accept", data={}).status_code == 303
    session.refresh(lead)
    assert lead.status == "accepted" and lead.assigned_partner_id == dealer_a.id
    assert "passed it on to you" in _text(client.get(f"/leads/{lead.id}"))


def test_an_auto_forwarded_lead_shows_the_dealers_own_routing_reason(
        client, session, make_partner, make_lead, auth):
    distributor = make_partner("AUTO", kind="distributor", forwarding="auto",
                               territories=["region:US-IA"])
    own = make_partner("OWNDLR", parent_id=distributor.id, territories=["zip:50401"])
    lead = make_lead(postal_code="50401")
    _route(session, lead)
    assert lead.assigned_partner_id == own.id
    auth.login("partner", partner=own)
    session.commit()
    page = _text(client.get(f"/leads/{lead.id}"))
    reason = f"Why it came to you: {distributor.name} passed it on to you"
    assert reason in page
    # The reason the engine chose this dealer follows (not the distributor's).
    shown = page.split(reason)[1].split("</p>")[0]
    assert shown.startswith(" (automatic forwarding): Offered to OWNDLR")
    assert "exact postal code" in shown


# --- compliance gate -------------------------------------------------------------------------


def test_compliance_gate_stops_offers_and_the_partner_sees_why(
        client, session, dealer, dealer_user, make_lead, make_partner, app):
    backup = make_partner("BACKUP", territories=["zip:504*"])
    for _ in range(3):
        lead = _accepted(session, make_lead, dealer, dealer_user)
        _make_overdue(session, lead)
    app.config["COMPLIANCE_GATE_MAX_OVERDUE"] = 2

    lead = make_lead(postal_code="50401")
    result = _route(session, lead)
    assert result.partner is backup
    reasons = {v["code"]: v["reasons"] for v in lead.routing["considered"]}
    assert "compliance gate: 3 overdue outcomes (limit 2)" in reasons["D1"]

    page = _text(client.get("/leads/"))
    assert "New offers are stopped" in page
    assert "compliance gate: 3 overdue outcomes (limit 2)" in page
    assert "compliance gate" in _text(client.get("/"))

    # Reporting one outcome brings the partner under the limit again.
    app.config["COMPLIANCE_GATE_MAX_OVERDUE"] = 3
    again = make_lead(postal_code="50401")
    assert _route(session, again).partner.code == "D1"
    assert "New offers are stopped" not in _text(client.get("/leads/"))


def test_gate_is_off_by_default(session, dealer, dealer_user, make_lead):
    for _ in range(3):
        _make_overdue(session, _accepted(session, make_lead, dealer, dealer_user))
    lead = make_lead(postal_code="50401")
    assert _route(session, lead).partner.code == "D1"


# --- partner settings ------------------------------------------------------------------------


def test_partner_admin_invites_a_colleague_who_gets_an_email(
        client, session, dealer, auth, outbox):
    auth.login("partner", partner=dealer, partner_admin=True)
    page = _text(client.get("/leads/settings"))
    assert "Invite a colleague" in page
    response = client.post("/leads/settings/invite",
                           data={"email": "New.Colleague@Dealer.test", "name": "Nia"})
    assert response.status_code == 303
    user = session.scalars(select(User).where(User.email == "new.colleague@dealer.test")).one()
    assert user.partner_id == dealer.id and user.role == "partner" and not user.partner_admin
    assert any(m["To"] == "new.colleague@dealer.test" for m in outbox)
    assert "Invited" in _text(client.get("/leads/settings"))

    again = client.post("/leads/settings/invite", data={"email": "new.colleague@dealer.test"})
    assert again.status_code == 422 and "already has an account" in _text(again)


def test_only_partner_admins_change_settings(
        client, session, dealer, dealer_user):
    assert "Invite a colleague" not in _text(client.get("/leads/settings"))
    assert client.post("/leads/settings/capacity", data={"capacity": "5"}).status_code == 403
    assert client.post("/leads/settings/invite",
                       data={"email": "x@dealer.test"}).status_code == 403
    assert "Email alerts and digests" in _text(client.get("/leads/settings"))


def test_capacity_and_vacation_pause(client, session, dealer, auth, make_lead):
    auth.login("partner", partner=dealer, partner_admin=True)
    assert client.post("/leads/settings/capacity", data={"capacity": "-1"}).status_code == 422
    assert client.post("/leads/settings/capacity", data={"capacity": "12"}).status_code == 303
    session.refresh(dealer)
    assert dealer.capacity == 12

    back = (date.today() + timedelta(days=60)).isoformat()  # a vacation ends ahead of today
    response = client.post("/leads/settings/vacation",
                           data={"until": back, "reason": "harvest"})
    assert response.status_code == 303
    session.refresh(dealer)
    assert not dealer.active and dealer.paused_reason == f"vacation until {back}: harvest"
    lead = make_lead(postal_code="50401")
    assert _route(session, lead).partner is None
    assert "Paused" in _text(client.get("/leads/"))
    # The dashboard says so too: that it is paused, why and until when.
    dashboard = _text(client.get("/"))
    assert "Paused: you get no new offers" in dashboard
    assert f"vacation until {back}: harvest" in dashboard

    assert client.post("/leads/settings/resume", data={}).status_code == 303
    session.refresh(dealer)
    assert dealer.active and dealer.paused_reason == ""
    assert "Paused" not in _text(client.get("/"))


def test_dashboard_links_the_tabs(client, session, dealer, dealer_user, make_lead):
    _offered(session, make_lead, dealer)
    page = _text(client.get("/"))
    assert 'href="/leads/?tab=new"' in page
    assert re.search(r'<span class="num">1</span><span class="label">New offers', page)



def test_htmx_accept_updates_the_tab_counts_out_of_band(auth, client, session, make_partner,
                                                        make_lead):
    """After a one-tap accept the card moves on, and the tab counts follow without a reload."""
    from portal.dispatch.services import route_lead

    dealer = make_partner("OOB", territories=["zip:50401"])
    first, second = make_lead(postal_code="50401"), make_lead(postal_code="50401")
    route_lead(session, first)
    route_lead(session, second)
    auth.login("partner", partner=dealer)
    session.commit()
    response = client.post(f"/leads/{first.id}/accept",
                           data={"view": "card", "next": "/leads/?tab=new"},
                           headers={"HX-Request": "true",
                                    "HX-Current-URL": "http://localhost/leads/?tab=new"})
    page = response.get_data(as_text=True)
    assert response.status_code == 200
    assert 'id="lead-tabs"' in page and 'hx-swap-oob="true"' in page
    assert 'aria-label="1 leads">1</span>' in page  # one new offer left
    # The list's total under the cards follows too (it said 2 before the accept).
    assert '<span id="lead-total" hx-swap-oob="true">1</span>' in page


def test_htmx_accept_updates_a_filtered_lists_total(auth, client, session, make_partner,
                                                     make_lead):
    """The total under a filtered list counts what the filters still find."""
    from portal.dispatch.services import route_lead

    dealer = make_partner("OOBF", territories=["zip:50401"])
    first = make_lead(postal_code="50401", last_name="Quillfeather")
    others = [make_lead(postal_code="50401") for _ in range(2)]
    for lead in (first, *others):
        route_lead(session, lead)
    auth.login("partner", partner=dealer)
    session.commit()
    listed = client.get("/leads/?tab=new&q=Quillfeather").get_data(as_text=True)
    assert '<span id="lead-total">1</span> in all' in listed
    response = client.post(
        f"/leads/{first.id}/accept", data={"view": "card"},
        headers={"HX-Request": "true",
                 "HX-Current-URL": "http://localhost/leads/?tab=new&q=Quillfeather"})
    page = response.get_data(as_text=True)
    assert '<span id="lead-total" hx-swap-oob="true">0</span>' in page
    assert 'aria-label="2 leads">2</span>' in page  # the tab itself still holds two


def test_a_nul_in_the_list_url_never_costs_the_action(client, session, dealer, dealer_user,
                                                      make_lead):
    """The counts sent along are extra news: a page URL the database cannot search
    (PostgreSQL refuses NUL in text) leaves the accept done and the counts right."""
    lead = _offered(session, make_lead, dealer)
    response = client.post(f"/leads/{lead.id}/accept", data={"view": "card"}, headers={
        **HTMX, "HX-Current-URL": "http://localhost/leads/?tab=new&q=a%00b"})
    assert response.status_code == 200
    assert '<span id="lead-total" hx-swap-oob="true">0</span>' in _text(response)
    session.refresh(lead)
    assert lead.status == "accepted"
    # Typed into the address bar, the same text is refused as bad input.
    refused = client.get("/leads/?tab=new&q=a%00b")
    assert refused.status_code == 400
    assert "Text may not contain NUL characters." in _text(refused)


def test_an_action_on_a_stale_card_says_what_happened_and_shows_the_lead_as_it_is(
        client, session, dealer, dealer_user, make_lead):
    """Two tabs open on the inbox: accepted in one, then declined in the other."""
    lead = _offered(session, make_lead, dealer)
    assert client.post(f"/leads/{lead.id}/accept", data={"view": "page"}).status_code == 303
    late = client.post(f"/leads/{lead.id}/decline", headers=HTMX,
                       data={"view": "card", "reason": "no_capacity", "next": "/leads/"})
    assert late.status_code == 409  # swapped in (base.html responseHandling): the card says it
    card = _text(late)
    assert ("Not done: only an offered lead can be declined. The lead changed since this "
            "page was loaded: it is accepted now.") in card
    assert "flash-error" in card
    assert f"/leads/{lead.id}/decline" not in card  # no decline form on an accepted lead
    assert 'hx-swap-oob' in card  # the tab counts follow
    # Without JavaScript: back to the lead page (a reload would not resend the action),
    # the same words, no form left open.
    refused = client.post(f"/leads/{lead.id}/decline",
                          data={"view": "page", "reason": "no_capacity"})
    assert refused.status_code == 303 and refused.headers["Location"] == f"/leads/{lead.id}"
    page = client.get(refused.headers["Location"])
    assert "it is accepted now." in _text(page) and '<details class="fold" open>' not in _text(page)
    session.refresh(lead)
    assert lead.status == "accepted"


def test_an_inbox_search_says_which_other_tabs_hold_matches(
        client, session, dealer, dealer_user, make_lead):
    """Searching on the new offers for a prospect already being worked points there."""
    worked = _accepted(session, make_lead, dealer, dealer_user, last_name="Vandersloot")
    _offered(session, make_lead, dealer, last_name="Unrelated")
    session.commit()
    page = _text(client.get("/leads/", query_string={"tab": "new", "q": "vanders"}))
    assert "No new offers right now." in page
    hint = "Other tabs with leads matching &ldquo;vanders&rdquo;:"
    assert hint in page
    assert '<a href="/leads/?tab=contact&amp;q=vanders">To contact (1)</a>' in page
    there = _text(client.get("/leads/?tab=contact&q=vanders"))
    assert worked.name in there and "Other tabs with leads matching" not in there
    # No words, no hint (filters alone narrow only the tab they are on).
    assert "Other tabs with leads matching" not in _text(client.get("/leads/?tab=new&rank=hot"))
    # An overdue lead is on To contact as well as on Overdue: never named twice.
    _make_overdue(session, worked)
    session.commit()
    assert "Other tabs with leads matching" not in _text(
        client.get("/leads/?tab=contact&q=vanders"))
    assert "Other tabs with leads matching" not in _text(
        client.get("/leads/?tab=overdue&q=vanders"))
    from_new = _text(client.get("/leads/?tab=new&q=vanders"))
    assert "To contact (1)" in from_new and "Overdue (1)" not in from_new
    # Accepting a match from the searched list moves it to To contact: the hint follows.
    offer = _offered(session, make_lead, dealer, last_name="Vandersloot")
    session.commit()
    accepted = _text(client.post(
        f"/leads/{offer.id}/accept", data={"view": "card"},
        headers={**HTMX, "HX-Current-URL": "http://portal.test/leads/?tab=new&q=vanders"}))
    assert re.search(r'<p id="lead-matches" class="matches-elsewhere" hx-swap-oob="true">'
                     r'Other tabs with leads matching &ldquo;vanders&rdquo;:\s*<a [^>]*>'
                     r'To contact \(2\)</a>', accepted), accepted[-800:]


def test_leads_to_contact_show_when_the_first_contact_is_due(
        app, client, session, dealer, dealer_user, make_lead):
    """Accepted, not yet contacted: the card counts down to CONTACT_SLA_HOURS after the
    offer, then says the first contact is late; once contacted the clock is gone."""
    app.config["CONTACT_SLA_HOURS"] = 48
    fresh = _accepted(session, make_lead, dealer, dealer_user, last_name="Fresh")
    slow = _accepted(session, make_lead, dealer, dealer_user, last_name="Slow")
    slow.offered_at = utcnow() - timedelta(hours=50)
    session.commit()
    page = _text(client.get("/leads/?tab=contact"))

    def card_of(lead):
        start = page.index(lead.name)
        return page[start:page.index("</article>", start)]

    fresh_card, slow_card = card_of(fresh), card_of(slow)
    assert "Make first contact within: 47 h" in fresh_card
    assert "First contact is late" in slow_card and "is-late" in slow_card
    assert "First contact is late" in _text(client.get(f"/leads/{slow.id}"))
    response = client.post(f"/leads/{fresh.id}/contact", data={"view": "page", "channel": "phone"})
    assert response.status_code == 303
    assert fresh.name not in _text(client.get("/leads/?tab=contact"))
    assert "Make first contact" not in _text(client.get(f"/leads/{fresh.id}"))


def test_an_htmx_action_on_a_lead_no_longer_held_is_a_404_card_that_tells_nothing_more(
        client, session, dealer, dealer_user, make_lead, make_partner):
    """Declined in another tab (it went on to another dealer), then accepted here: the card
    says it moved on; a lead that never was this dealer's answers exactly the same."""
    make_partner("D2", territories=["zip:504*"])
    lead = _offered(session, make_lead, dealer)
    lifecycle.decline(session, lead, Actor.of(dealer_user), reason="no_capacity")
    routing_service.route_lead(session, lead)
    session.commit()
    assert lead.assigned_partner_id != dealer.id

    def accept(lead_id):
        return client.post(f"/leads/{lead_id}/accept", data={"view": "card"},
                           headers={**HTMX, "HX-Current-URL": "http://portal.test/leads/"})

    moved, unknown = accept(lead.id), accept(uuid.uuid4())
    assert moved.status_code == unknown.status_code == 404
    assert "This lead is no longer in your list: it moved on since the page was loaded." in (
        _text(moved))
    assert _text(moved) == _text(unknown)
    assert "<html" not in _text(moved)
    # Without htmx: the portal's 404 page, as for any lead not yours.
    plain = client.post(f"/leads/{lead.id}/accept", data={"view": "card"})
    assert plain.status_code == 404 and "<html" in _text(plain)
    session.refresh(lead)
    assert lead.status == "offered" and lead.assigned_partner_id != dealer.id


def test_the_timeline_is_in_the_order_things_happened(client, session, make_lead, dealer,
                                                      dealer_user):
    """An event written after another about an earlier moment (a pack sent while history
    was loaded, an action synced from offline) takes its place by its time."""
    from datetime import timedelta

    lead = _accepted(session, make_lead, dealer, dealer_user)
    now = utcnow()
    lifecycle.record_event(session, lead, "note", Actor.of(dealer_user), now=now,
                           data={"text": "Written second, happened last"})
    lifecycle.record_event(session, lead, "note", Actor.of(dealer_user),
                           now=now - timedelta(minutes=5),
                           data={"text": "Written last, happened first"})
    session.commit()
    page = client.get(f"/leads/{lead.id}").get_data(as_text=True)
    timeline = page[page.index('id="lead-timeline"'):]
    # newest first
    assert (timeline.index("Written second, happened last")
            < timeline.index("Written last, happened first"))
