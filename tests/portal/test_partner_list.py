"""The partner's list: what the next step needs on each card, sorting, the CSV export."""

from __future__ import annotations

import csv
import io
import re
from datetime import date, timedelta

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from tests.portal import test_workspace
from tests.portal.test_workspace import HTMX, _accepted, _offered, _text

# the workspace's fixtures: its dealer (D1, ZIP 50401) and a signed-in user of it
dealer = test_workspace.dealer
dealer_user = test_workspace.dealer_user


def _names(html: str) -> list[str]:
    """The prospects' names in the list, top to bottom."""
    return re.findall(r'<h3 id="lead-[^"]+-name"><a href="[^"]+">([^<]+)</a>', html)


def _working(session, make_lead, partner, user, **fields):
    """An accepted, contacted lead with an appointment and a quote as given."""
    appointment = fields.pop("appointment", None)
    quote = fields.pop("quote", None)
    lead = _accepted(session, make_lead, partner, user, **fields)
    actor = Actor.of(user)
    lifecycle.advance(session, lead, "contacted", actor, data={"channel": "phone"})
    if appointment:
        lifecycle.advance(session, lead, "appointment", actor,
                          data={"date": appointment.isoformat()})
    if quote:
        lifecycle.advance(session, lead, "quoted", actor, data={"amount": quote})
    session.commit()
    return lead


def test_cards_show_what_the_next_step_needs(client, session, dealer, dealer_user,
                                             make_lead, make_product_line):
    make_product_line("TRC").name = "Compact tractors"
    soon = date.today() + timedelta(days=3)
    _working(session, make_lead, dealer, dealer_user, first_name="Ann", last_name="Ames",
             city="Clear Lake", appointment=soon, quote="18500",
             comments="We need a tractor with a loader   before spring, " + "x " * 100)
    html = _text(client.get("/leads/?tab=open"))
    assert "Compact tractors" in html
    assert "We need a tractor with a loader before spring," in html  # one line
    assert "x " * 90 not in html  # an excerpt, not the whole message
    assert "Clear Lake" in html
    assert f"Appointment {soon.isoformat()}" in html
    assert "Quoted $18,500.00" in html
    assert "Last activity" in html


def test_sorting_by_each_column_with_links_that_keep_filters_and_pages(
        client, session, dealer, dealer_user, make_lead, app):
    today = date.today()
    _working(session, make_lead, dealer, dealer_user, first_name="Ann", last_name="A",
             city="Zearing", appointment=today + timedelta(days=9), quote="300")
    _working(session, make_lead, dealer, dealer_user, first_name="Bob", last_name="B",
             city="Ames", quote="100")
    _working(session, make_lead, dealer, dealer_user, first_name="Cy", last_name="C",
             city="Mason City", appointment=today + timedelta(days=2), quote="200")

    def names(url):
        response = client.get(url)
        assert response.status_code == 200
        return _names(_text(response))

    assert names("/leads/?tab=open&sort=town") == ["Bob B", "Cy C", "Ann A"]
    assert names("/leads/?tab=open&sort=-town") == ["Ann A", "Cy C", "Bob B"]
    assert names("/leads/?tab=open&sort=quote") == ["Bob B", "Cy C", "Ann A"]
    assert names("/leads/?tab=open&sort=-quote") == ["Ann A", "Cy C", "Bob B"]
    # leads without an appointment come last whichever way
    assert names("/leads/?tab=open&sort=next") == ["Cy C", "Ann A", "Bob B"]
    assert names("/leads/?tab=open&sort=-next") == ["Ann A", "Cy C", "Bob B"]
    assert names("/leads/?tab=open&sort=activity")[-1] == "Cy C"  # the last one worked
    # an unknown order is dropped: the tab's usual order, no error
    assert sorted(names("/leads/?tab=open&sort=evil")) == ["Ann A", "Bob B", "Cy C"]

    html = _text(client.get("/leads/?tab=open&q=a&sort=town"))
    # the sort link toggles and keeps the search; the filter form keeps the sort
    assert 'href="/leads/?tab=open&amp;q=a&amp;sort=-town"' in html
    assert 'id="inbox-sort" value="town"' in html
    assert 'href="/leads/export.csv?tab=open&amp;q=a&amp;sort=town"' in html

    app.config["PAGE_SIZE"] = 2
    first = _text(client.get("/leads/?tab=open&sort=-quote"))
    assert _names(first) == ["Ann A", "Cy C"]
    assert 'href="/leads/?tab=open&amp;sort=-quote&amp;page=2"' in first
    assert names("/leads/?tab=open&sort=-quote&page=2") == ["Bob B"]


def test_htmx_sort_swaps_the_list_and_tells_the_filter_form(client, session, dealer,
                                                            dealer_user, make_lead):
    _working(session, make_lead, dealer, dealer_user, first_name="Ann", city="Zearing")
    _working(session, make_lead, dealer, dealer_user, first_name="Bob", city="Ames")
    response = client.get("/leads/?tab=open&sort=town", headers=HTMX)
    html = _text(response)
    assert response.status_code == 200 and "<html" not in html
    assert html.lstrip().startswith('<div id="lead-list"')
    assert 'id="inbox-sort" value="town" hx-swap-oob="true"' in html
    assert "Accept within" not in html


def test_the_csv_export_is_the_list_as_filtered_and_sorted(
        client, session, dealer, dealer_user, make_lead, make_partner):
    _working(session, make_lead, dealer, dealer_user, first_name="=HYPERLINK(\"x\")",
             last_name="Evil", city="Ames", quote="100", phone="+1 515 555 0101",
             email="evil@example.com", address="1 Main St", comments="@SUM(A1)")
    _working(session, make_lead, dealer, dealer_user, first_name="Bob", last_name="B",
             city="Zearing", quote="900", email="bob@example.com")
    _offered(session, make_lead, dealer, first_name="Offered", last_name="Only",
             email="secret-offer@example.com", phone="+1 515 555 0199",
             address="9 Hidden Rd")
    other = make_partner("D9", territories=["zip:60601"], postal_code="60601")
    _offered(session, make_lead, other, first_name="Not", last_name="Yours",
             postal_code="60601", email="foreign@example.com")

    response = client.get("/leads/export.csv?tab=open&sort=-town")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(_text(response).lstrip("\ufeff"))))
    assert [row["town"] for row in rows] == ["Zearing", "Ames"]
    evil = rows[1]
    assert evil["name"].startswith("'=HYPERLINK")  # a spreadsheet shows it as text
    assert evil["message"] == "'@SUM(A1)"
    assert evil["quote_amount"] == "100.00"
    assert evil["email"] == "evil@example.com" and evil["address"] == "1 Main St"
    assert evil["product_line_name"] and evil["last_activity"]

    offered = list(csv.DictReader(io.StringIO(_text(
        client.get("/leads/export.csv?tab=new")).lstrip("\ufeff"))))
    assert [row["name"] for row in offered] == ["Offered Only"]
    # not accepted yet: its contact details are not in the export
    assert offered[0]["email"] == offered[0]["phone"] == offered[0]["address"] == ""
    body = _text(client.get("/leads/export.csv?tab=new&q=Yours"))
    assert "foreign@example.com" not in body and "Not Yours" not in body


def test_the_list_query_count_stays_flat_when_sorted(
        client, session, dealer, dealer_user, make_lead, count_queries, app):
    app.config["PAGE_SIZE"] = 50

    def make(n):
        for i in range(n):
            lead = _offered(session, make_lead, dealer, city=f"Town {i}",
                            comments="Call me")
            lifecycle.accept(session, lead, Actor.of(dealer_user))
            lifecycle.advance(session, lead, "appointment", Actor.of(dealer_user),
                              data={"date": date.today().isoformat()})
        session.commit()

    def statements(url):
        with count_queries() as counter:
            assert client.get(url).status_code == 200
        return counter.count

    def measure():
        return [statements(url) for url in ("/leads/?tab=open&sort=next",
                                            "/leads/?tab=open&sort=-product",
                                            "/leads/export.csv?tab=open&sort=town")]

    make(5)
    small = measure()
    make(40)
    assert measure() == small
