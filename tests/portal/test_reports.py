"""The channel reports' figures against scenarios with known answers (DESIGN §7): offers,
accepts, contacts and outcomes at fixed times, on both databases."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Competitor
from portal.reports import metrics

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY, HOUR = timedelta(days=1), timedelta(hours=1)
PERIOD = metrics.Scope(since=T0, until=T0 + 30 * DAY)


@pytest.fixture
def world(app, session, make_partner, make_user, make_lead):
    """Four dealers, a distributor with one dealer, a manager; eight leads with a known
    history each (see the comments)."""
    app.config["OUTCOME_DUE_DAYS"] = 10  # so the period holds offers past due
    session.add(Competitor(name="Deere"))
    a = make_partner("A", name="Alpha Dealer")
    b = make_partner("B", name="Bravo Dealer")
    e = make_partner("E", name="Echo Dealer")
    d = make_partner("D", name="Delta Distributor", kind="distributor")
    c = make_partner("C", name="Charlie Dealer", parent_id=d.id)
    users = {p.code: make_user("partner", partner=p) for p in (a, b, e, d, c)}
    manager = make_user("manager")
    session.commit()

    def act(code: str) -> Actor:
        return Actor.of(users[code])

    def offered(partner: Any, at: datetime) -> Any:
        lead = make_lead(postal_code="50401")
        lifecycle.offer(session, lead, partner, Actor.system(), now=at)
        return lead

    # L1: A accepts at +2 h, contacts at +10 h, wins 1,000 on day 5.
    l1 = offered(a, T0 + DAY)
    lifecycle.accept(session, l1, act("A"), now=T0 + DAY + 2 * HOUR)
    lifecycle.advance(session, l1, "contacted", act("A"), now=T0 + DAY + 10 * HOUR)
    lifecycle.close(session, l1, "won", act("A"), data={"amount": "1000"}, now=T0 + 6 * DAY)
    # L2: A accepts at +30 h, contacts late (+60 h), loses to Deere.
    l2 = offered(a, T0 + 2 * DAY)
    lifecycle.accept(session, l2, act("A"), now=T0 + 2 * DAY + 30 * HOUR)
    lifecycle.advance(session, l2, "contacted", act("A"), now=T0 + 2 * DAY + 60 * HOUR)
    lifecycle.close(session, l2, "lost", act("A"),
                    data={"reason": "competitor", "competitor": "deere"}, now=T0 + 8 * DAY)
    # L3: offered to three partners in turn: A declines, B lets it expire, E works it.
    l3 = offered(a, T0 + 3 * DAY)
    lifecycle.decline(session, l3, act("A"), reason="out_of_area", now=T0 + 3 * DAY + HOUR)
    lifecycle.offer(session, l3, b, Actor.system(), now=T0 + 3 * DAY + HOUR)
    lifecycle.expire(session, l3, now=T0 + 4 * DAY + 2 * HOUR)
    lifecycle.offer(session, l3, e, Actor.system(), now=T0 + 4 * DAY + 2 * HOUR)
    lifecycle.accept(session, l3, act("E"), now=T0 + 4 * DAY + 5 * HOUR)
    lifecycle.advance(session, l3, "contacted", act("E"), now=T0 + 5 * DAY)
    lifecycle.close(session, l3, "no_interest", act("E"), now=T0 + 7 * DAY)
    # L4: offered to A, never answered (untouched).
    offered(a, T0 + 4 * DAY)
    # L5: offered to the distributor D, forwarded to its dealer C, who wins 500.
    l5 = offered(d, T0 + 5 * DAY)
    lifecycle.forward(session, l5, c, act("D"), now=T0 + 5 * DAY + HOUR)
    lifecycle.accept(session, l5, act("C"), now=T0 + 5 * DAY + 2 * HOUR)
    lifecycle.advance(session, l5, "contacted", act("C"), now=T0 + 5 * DAY + 3 * HOUR)
    lifecycle.close(session, l5, "won", act("C"), data={"amount": "500"}, now=T0 + 7 * DAY)
    # L6: A accepts, contacts, wins; a manager re-opens it: open again, and overdue.
    l6 = offered(a, T0 + 6 * DAY)
    lifecycle.accept(session, l6, act("A"), now=T0 + 6 * DAY + HOUR)
    lifecycle.advance(session, l6, "contacted", act("A"), now=T0 + 6 * DAY + 2 * HOUR)
    lifecycle.close(session, l6, "won", act("A"), data={"amount": "700"}, now=T0 + 9 * DAY)
    lifecycle.reopen(session, l6, Actor.of(manager), reason="sale fell through",
                     now=T0 + 10 * DAY)
    # L7: offered before the period: not counted.
    l7 = offered(a, T0 - DAY)
    lifecycle.accept(session, l7, act("A"), now=T0 - DAY + HOUR)
    # L8: offered near the period's end: accepted, not yet due an outcome.
    l8 = offered(a, T0 + 29 * DAY)
    lifecycle.accept(session, l8, act("A"), now=T0 + 29 * DAY + HOUR)
    session.commit()
    return {"A": a, "B": b, "C": c, "D": d, "E": e}


def test_each_partner_is_counted_over_its_own_offers(session, world):
    got = metrics.figures_by(session, PERIOD)
    a = got[world["A"].id]
    assert (a.offered, a.accepted, a.declined, a.expired) == (6, 4, 1, 0)
    assert a.acceptance_rate == pytest.approx(4 / 6)
    assert a.declined_by == {"Out of our area": 1}
    assert a.median_hours_to_accept == 1.5  # 1, 1, 2, 30 hours
    assert (a.followed_up, a.on_time) == (3, 2)  # L2's contact came after 48 h
    assert a.follow_up_rate == 0.5 and a.on_time_follow_up_rate == pytest.approx(2 / 6)
    # Past due (offered more than 10 days before the end): L1, L2 closed, L6 re-opened.
    assert (a.overdue, a.accepted_past_due) == (1, 3)
    assert a.outcome_compliance == pytest.approx(2 / 3)
    assert (a.won, a.lost, a.no_interest, a.win_rate) == (1, 1, 0, 0.5)
    assert a.lost_to == {"Deere": 1} and a.revenue_won == Decimal("1000")
    assert a.untouched == 2  # the declined L3 and the unanswered L4

    b = got[world["B"].id]
    assert (b.offered, b.expired, b.accepted, b.untouched) == (1, 1, 0, 1)
    assert b.acceptance_rate == 0 and b.win_rate is None and b.median_hours_to_accept is None
    e = got[world["E"].id]
    assert (e.offered, e.accepted, e.followed_up, e.no_interest, e.untouched) == (1, 1, 1, 1, 0)
    assert e.median_hours_to_accept == 3.0 and e.win_rate is None


def test_a_forwarded_lead_counts_for_the_dealer_and_rolls_up_to_its_distributor(
        session, world):
    rows = {row.partner.code: row for row in metrics.league(
        session, PERIOD, world.values())}
    c, d = rows["C"], rows["D"]
    assert (c.own.offered, c.own.accepted, c.own.on_time, c.own.won) == (1, 1, 1, 1)
    assert c.own.median_hours_to_accept == 1.0 and c.rolled is None
    assert d.own.offered == 0 and d.own.acceptance_rate is None  # passed on, not its own
    assert d.dealers == 1
    assert (d.rolled.offered, d.rolled.won, d.rolled.revenue_won) == (1, 1, Decimal("500"))
    assert d.shown is d.rolled and c.shown is c.own
    # The total is the sum of the partners' own figures, the median read over all offers.
    _, total = metrics.league_and_total(session, PERIOD, world.values())
    assert total == metrics.channel(session, PERIOD)
    assert total.median_hours_to_accept == 1.5  # 1, 1, 1, 2, 3, 30 hours


def test_no_offers_means_no_rates_and_filters_narrow_the_offers(session, world):
    empty = metrics.Scope(since=T0 + 40 * DAY, until=T0 + 50 * DAY)
    quiet = metrics.channel(session, empty)
    assert quiet.offered == 0
    assert (quiet.acceptance_rate, quiet.follow_up_rate, quiet.win_rate,
            quiet.outcome_compliance, quiet.median_hours_to_accept) == (None,) * 5
    everyone = metrics.channel(session, PERIOD)
    assert (everyone.offered, everyone.won, everyone.revenue_won) == (9, 2, Decimal("1500"))
    only_a = metrics.channel(session, metrics.Scope(
        since=T0, until=T0 + 30 * DAY, partner_ids=frozenset({world["A"].id})))
    assert only_a.offered == 6
    # The report's end decides: a month cut short before L1's win counts no win.
    early = metrics.Scope(since=T0, until=T0 + 5 * DAY)
    a = metrics.figures_by(session, early)[world["A"].id]
    assert (a.offered, a.won, a.accepted, a.followed_up) == (4, 0, 2, 2)


NOVEMBER = {"period": "custom", "since": "2026-11-01", "until": "2026-11-30"}


def _row(page: str, name: str) -> str:
    """One row of the league table, tags stripped, as the page reads."""
    import re

    start = page.index(f">{name}</a>") + 1
    row = page[start:page.index("</tr>", start)]
    return " ".join(re.sub(r"<[^>]+>", " ", row).split())


def test_the_league_table_shows_each_partner_and_sorts_and_drills_down(
        session, client, auth, world):
    auth.login("manager")
    page = client.get("/reports/partners", query_string=NOVEMBER).get_data(as_text=True)
    assert "1 Nov 2026 – 30 Nov 2026" in page
    # offered, accepted, declined, expired, accept rate, median, follow-up, on time,
    # overdue, untouched, won, lost, win rate, revenue
    assert _row(page, "Alpha Dealer") == (
        "Alpha Dealer A 6 4 1 0 67% 1.5 h 50% 33% 1 2 1 1 50% $1,000")
    assert _row(page, "Delta Distributor").startswith(
        "Delta Distributor D · distributor + 1 dealer 1 1 0 0 100% 1.0 h 100% 100% 0 0 1 0")
    assert _row(page, "Bravo Dealer") == "Bravo Dealer B 1 0 0 1 0% — 0% 0% 0 1 0 0 — $0"

    by_overdue = client.get("/reports/partners", query_string={
        **NOVEMBER, "sort": "overdue", "dir": "desc"}).get_data(as_text=True)
    assert by_overdue.index(">Alpha Dealer<") < by_overdue.index(">Bravo Dealer<")
    assert 'aria-sort="descending"' in by_overdue

    drill = client.get("/reports/leads", query_string={
        **NOVEMBER, "figure": "untouched", "partner": "A"}).get_data(as_text=True)
    assert "2 offers." in drill and drill.count("/leads/") >= 2
    assert client.get("/reports/leads", query_string={
        **NOVEMBER, "figure": "nonsense"}).status_code == 404


def test_the_csv_has_every_figure_and_cannot_run_a_formula(session, client, auth, world):
    world["B"].name = "=HYPERLINK(\"http://evil.test\")"
    session.commit()
    auth.login("manager")
    response = client.get("/reports/partners.csv", query_string=NOVEMBER)
    assert response.mimetype == "text/csv"
    text = response.get_data(as_text=True).lstrip("\ufeff")
    lines = {line.split(",")[0]: line for line in text.splitlines()[1:]}
    assert lines["A"].startswith("A,Alpha Dealer,dealer,,0,6,4,1,0,66.7,1.5,50.0,33.3,1,2,1,1,")
    assert "Out of our area: 1" in lines["A"] and "Deere: 1" in lines["A"]
    assert "'=HYPERLINK" in lines["B"]


def test_a_distributor_sees_its_dealers_and_a_dealer_only_its_scorecard(
        session, client, auth, world, make_user):
    auth.login("partner", partner=world["D"])
    page = client.get("/reports/partners", query_string=NOVEMBER).get_data(as_text=True)
    assert ">Delta Distributor<" in page and ">Charlie Dealer<" in page
    assert "Alpha Dealer" not in page
    assert client.get("/reports/partners/A").status_code == 404
    assert client.get("/reports/leads", query_string={
        **NOVEMBER, "figure": "offered", "partner": "A"}).status_code == 404
    assert client.get("/reports/partners/C", query_string=NOVEMBER).status_code == 200
    auth.logout()

    auth.login("partner", partner=world["A"])
    own = client.get("/reports/partners", query_string=NOVEMBER).get_data(as_text=True)
    assert "Alpha Dealer" in own and "scorecard" in own and "Bravo Dealer" not in own
    assert client.get("/reports/partners/B").status_code == 404


def test_the_scorecard_sets_a_partner_against_the_channel_median(
        session, client, auth, world):
    auth.login("manager")
    page = client.get("/reports/partners/A", query_string=NOVEMBER).get_data(as_text=True)
    # Follow-up rates of the partners with offers: A 50%, B 0%, C 100%, E 100% → 75%.
    row = page[page.index(">Follow-up<"):]
    row = row[:row.index("</tr>")]
    assert "50%" in row and "75%" in row
    assert "<svg" in page and "weekly follow-up, acceptance and win rates" in page
    assert "Lost to Deere" in page and "Declined: Out of our area" in page


def _bearer(client: Any, user: Any) -> dict[str, str]:
    from tests.conftest import PASSWORD

    response = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    return {"Authorization": f"Bearer {response.json['token']}"}


def test_the_reports_api_answers_each_metric_by_its_name(
        session, client, world, make_user):
    manager = make_user("manager")
    answer = client.get("/api/v1/reports/partners?since=2026-11-01&until=2026-11-30",
                        headers=_bearer(client, manager))
    assert answer.status_code == 200
    partners = {p["code"]: p for p in answer.json["partners"]}
    assert set(partners) == {"A", "B", "C", "D", "E"}
    a = partners["A"]
    assert (a["offered"], a["accepted"], a["declined"], a["expired"]) == (6, 4, 1, 0)
    assert a["declined_by_reason"] == {"Out of our area": 1}
    assert a["acceptance_rate"] == pytest.approx(4 / 6)
    assert a["median_hours_to_accept"] == 1.5
    assert (a["followed_up"], a["follow_up_rate"]) == (3, 0.5)
    assert a["on_time_follow_up_rate"] == pytest.approx(2 / 6)
    assert (a["overdue"], a["outcome_compliance"]) == (1, pytest.approx(2 / 3))
    assert (a["won"], a["lost"], a["no_interest"], a["win_rate"]) == (1, 1, 0, 0.5)
    assert a["lost_to"] == {"Deere": 1} and a["revenue_won"] == "1000.00"
    assert a["untouched"] == 2
    assert partners["B"]["win_rate"] is None  # no outcome: undefined, not 0
    d = partners["D"]
    assert d["offered"] == 0 and d["rolled_up"]["offered"] == 1
    assert partners["C"]["distributor"] == "D"

    dealer_user = make_user("partner", partner=world["C"])
    mine = client.get("/api/v1/reports/partners?since=2026-11-01&until=2026-11-30",
                      headers=_bearer(client, dealer_user)).json
    assert [p["code"] for p in mine["partners"]] == ["C"]
    distributor_user = make_user("partner", partner=world["D"])
    theirs = client.get("/api/v1/reports/partners?since=2026-11-01&until=2026-11-30",
                        headers=_bearer(client, distributor_user)).json
    assert [p["code"] for p in theirs["partners"]] == ["C", "D"]

    bad = client.get("/api/v1/reports/partners?since=2026-13-01&until=2026-11-30",
                     headers=_bearer(client, manager))
    assert bad.status_code == 422 and bad.json["error"] == "invalid_input"
    assert client.get("/api/v1/reports/partners").status_code == 401


def test_partners_offered_nothing_show_only_when_asked_and_pages_hold_100(
        session, client, auth, world, make_partner, monkeypatch):
    from portal.reports import views

    make_partner("Z", name="Zulu Idle Dealer")
    auth.login("manager")
    page = client.get("/reports/partners", query_string=NOVEMBER).get_data(as_text=True)
    assert "Zulu Idle Dealer" not in page and "5 in all" in page
    everyone = client.get("/reports/partners", query_string={**NOVEMBER, "show": "all"})
    assert "Zulu Idle Dealer" in everyone.get_data(as_text=True)
    monkeypatch.setattr(views, "PER_PAGE", 2)
    second = client.get("/reports/partners", query_string={
        **NOVEMBER, "sort": "offered", "dir": "desc", "page": "2"}).get_data(as_text=True)
    assert "Page 2 of 3" in second
    assert ">Alpha Dealer<" not in second  # the most offers: on page 1


def test_the_weekly_trend_puts_each_offer_in_its_week(session, world):
    only_a = metrics.Scope(since=T0, until=T0 + 30 * DAY,
                           partner_ids=frozenset({world["A"].id}))
    weeks = metrics.weekly(session, only_a)
    assert len(weeks) == 12 and weeks[0][0] == T0 + 30 * DAY - 12 * 7 * DAY
    offered = [f.offered for _, f in weeks]
    # Weeks from 7 Oct: L7 (31 Oct) and L1 (2 Nov) in the 8th; L2 (3 Nov, on the week's
    # first second), L3, L4, L6 in the 9th; L8 (30 Nov) in the 12th.
    assert offered == [0, 0, 0, 0, 0, 0, 0, 2, 4, 0, 0, 1]
    eighth = weeks[7][1]
    assert (eighth.accepted, eighth.won, eighth.follow_up_rate) == (2, 1, 0.5)


def test_an_offer_keeps_the_lead_as_it_was_offered(session, make_partner, make_lead,
                                                   make_product_line):
    from portal.core.models import Campaign, Lead, Offer

    partner = make_partner("PL", territories=["zip:50401"])
    campaign = Campaign(code="SPRING", name="Spring")
    session.add(campaign)
    session.flush()
    # Set through the relationships and not flushed (the demo builds its history so).
    lead = Lead(id=uuid.uuid4(), first_name="Pat", email="p@example.com", postal_code="50401",
                region="US-IA", product_line=make_product_line("TRC"), campaign=campaign,
                status="qualified", rank="hot")
    session.add(lead)
    with session.no_autoflush:
        lifecycle.offer(session, lead, partner, Actor.system(), now=T0)
    session.commit()
    offer = session.scalars(select(Offer).where(Offer.lead_id == lead.id)).one()
    assert offer.product_line_id == lead.product_line_id is not None
    assert offer.campaign_id == campaign.id and offer.region == "US-IA" and offer.rank == "hot"
