"""The channel overview and speed to lead against a scenario with known answers: leads
captured, offered, accepted, contacted and closed at fixed times through the lifecycle, on
both databases. Each test reads the page (or the CSV) as a manager or a partner would."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Campaign, Competitor, Lead

T0 = datetime(2026, 11, 1, tzinfo=UTC)
DAY, HOUR, MINUTE, SECOND = (timedelta(days=1), timedelta(hours=1), timedelta(minutes=1),
                             timedelta(seconds=1))
NOVEMBER = {"period": "custom", "since": "2026-11-01", "until": "2026-11-30"}
SYSTEM = Actor.system("test")


@pytest.fixture
def world(app, session, make_partner, make_user, make_product_line):
    """Dealers A and B, distributor D with its dealer C, a manager; twelve leads, each
    captured at a fixed time with a known history (see the comments). In November:

    ======  =========  ===========  ============  ==============  =========================
    lead    captured   first offer  accepted      first contact   outcome
    ======  =========  ===========  ============  ==============  =========================
    L1      1 Nov      A +30 s      +10 min       +30 min         won $1,000
    L2      2 Nov      A +5 min     +1 h          +2 h            lost to Deere
    L3      3 Nov      A +20 s      (declined)    B +6 h          B: lost on price
    L4      4 Nov      B +10 s      never         never           —
    L5      8 Nov      D +40 s      C +2 h        C +30 h         C: won $500 (forwarded)
    L6      9 Nov      nurture, never offered
    L7      10 Nov     disqualified
    L8      15 Nov     qualified, no partner fits (unassigned)
    L9      16 Nov     A +50 s      +1 h          (won at +3 d)   won $200, no contact logged
    L10     31 Oct     B on 1 Nov   +35 min       +1 h            — (captured before Nov)
    L11     17 Nov     A's own walk-in: accepted at capture, contacted +2 h
    L12     22 Nov     B +15 s      +20 min       +45 min         lost to Deere (MN lead)
    ======  =========  ===========  ============  ==============  =========================
    """
    app.config["OUTCOME_DUE_DAYS"] = 10  # so the month holds offers past due
    session.add(Competitor(name="Deere"))
    spring = Campaign(code="SPRING", name="Spring show")
    session.add(spring)
    make_product_line("TRC")
    a = make_partner("A", name="Alpha Dealer")
    b = make_partner("B", name="Bravo Dealer")
    d = make_partner("D", name="Delta Distributor", kind="distributor")
    c = make_partner("C", name="Charlie Dealer", parent_id=d.id)
    users = {p.code: make_user("partner", partner=p) for p in (a, b, c, d)}
    make_user("manager")
    session.flush()

    def act(code: str) -> Actor:
        return Actor.of(users[code])

    def captured(name: str, at: datetime, status: str = "qualified", *, rank: str = "hot",
                 **fields: Any) -> Lead:
        values: dict[str, Any] = dict(first_name="Pat", last_name=name,
                                      email=f"{name.lower()}@example.com", postal_code="50401",
                                      country="US", region="US-IA", city="Mason City")
        values.update(fields)
        lead = Lead(**values)
        lead.product_line = make_product_line("TRC")
        lifecycle.capture(session, lead, SYSTEM, now=at)
        lifecycle.qualify(session, lead, status, reason="test", score=80, rank=rank,
                          actor=SYSTEM, now=at)
        return lead

    def offer(lead: Lead, partner: Any, at: datetime) -> None:
        lifecycle.offer(session, lead, partner, SYSTEM, now=at)

    t = T0 + 9 * HOUR  # each lead arrives at 09:00 on its day
    l1 = captured("One", t, campaign=spring)
    offer(l1, a, t + 30 * SECOND)
    lifecycle.accept(session, l1, act("A"), now=t + 10 * MINUTE)
    lifecycle.advance(session, l1, "contacted", act("A"), now=t + 30 * MINUTE)
    lifecycle.close(session, l1, "won", act("A"), data={"amount": "1000"}, now=t + 3 * DAY)

    t = T0 + DAY + 9 * HOUR
    l2 = captured("Two", t, campaign=spring)
    offer(l2, a, t + 5 * MINUTE)
    lifecycle.accept(session, l2, act("A"), now=t + HOUR)
    lifecycle.advance(session, l2, "contacted", act("A"), now=t + 2 * HOUR)
    lifecycle.close(session, l2, "lost", act("A"),
                    data={"reason": "competitor", "competitor": "deere"}, now=t + 5 * DAY)

    t = T0 + 2 * DAY + 9 * HOUR
    l3 = captured("Three", t, rank="warm")
    offer(l3, a, t + 20 * SECOND)
    lifecycle.decline(session, l3, act("A"), reason="out_of_area", now=t + HOUR)
    offer(l3, b, t + HOUR)
    lifecycle.accept(session, l3, act("B"), now=t + 2 * HOUR)
    lifecycle.advance(session, l3, "contacted", act("B"), now=t + 6 * HOUR)
    lifecycle.close(session, l3, "lost", act("B"), data={"reason": "price"}, now=t + 4 * DAY)

    t = T0 + 3 * DAY + 9 * HOUR
    l4 = captured("Four", t)
    offer(l4, b, t + 10 * SECOND)

    t = T0 + 7 * DAY + 9 * HOUR
    l5 = captured("Five", t)
    offer(l5, d, t + 40 * SECOND)
    lifecycle.forward(session, l5, c, act("D"), now=t + HOUR)
    lifecycle.accept(session, l5, act("C"), now=t + 2 * HOUR)
    lifecycle.advance(session, l5, "contacted", act("C"), now=t + 30 * HOUR)
    lifecycle.close(session, l5, "won", act("C"), data={"amount": "500"}, now=t + 3 * DAY)

    captured("Six", T0 + 8 * DAY + 9 * HOUR, "nurture", rank=None)
    captured("Seven", T0 + 9 * DAY + 9 * HOUR, "disqualified", rank=None)
    l8 = captured("Eight", T0 + 14 * DAY + 9 * HOUR)
    lifecycle.mark_unassigned(session, l8, SYSTEM, explanation=None, reason="no partner fits",
                              now=T0 + 14 * DAY + 9 * HOUR)

    t = T0 + 15 * DAY + 9 * HOUR
    l9 = captured("Nine", t)
    offer(l9, a, t + 50 * SECOND)
    lifecycle.accept(session, l9, act("A"), now=t + HOUR)
    lifecycle.close(session, l9, "won", act("A"), data={"amount": "200"}, now=t + 3 * DAY)

    l10 = captured("Ten", T0 - DAY + 9 * HOUR)
    offer(l10, b, T0 + 10 * HOUR)
    lifecycle.accept(session, l10, act("B"), now=T0 + 10 * HOUR + 35 * MINUTE)
    lifecycle.advance(session, l10, "contacted", act("B"), now=T0 + 11 * HOUR)

    t = T0 + 16 * DAY + 9 * HOUR
    l11 = captured("Eleven", t, owner_partner_id=a.id)
    lifecycle.offer(session, l11, a, act("A"), method="self", force=True, now=t)
    lifecycle.accept(session, l11, act("A"), now=t)
    lifecycle.advance(session, l11, "contacted", act("A"), now=t + 2 * HOUR)

    t = T0 + 21 * DAY + 9 * HOUR
    l12 = captured("Twelve", t, region="US-MN", postal_code="55901")
    offer(l12, b, t + 15 * SECOND)
    lifecycle.accept(session, l12, act("B"), now=t + 20 * MINUTE)
    lifecycle.advance(session, l12, "contacted", act("B"), now=t + 45 * MINUTE)
    lifecycle.close(session, l12, "lost", act("B"),
                    data={"reason": "competitor", "competitor": "Deere"}, now=t + 2 * DAY)
    session.commit()
    return {"A": a, "B": b, "C": c, "D": d, "users": users}


def text(html: str) -> str:
    """The page as a person reads it: tags gone, spaces collapsed."""
    html = re.sub(r"<(script|style|title)[^>]*>.*?</\1>", " ", html, flags=re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&amp;", "&").split())


def tile(page: str, name: str) -> str:
    """One figure's tile on the overview, as read."""
    start = page.index(f'id="fig-{name}"')
    return text(page[start:page.index("</li>", start)].split(">", 1)[1])


def section(page: str, heading_id: str, until: str = "</section>") -> str:
    start = page.index(f'id="{heading_id}"')
    return page[start:page.index(until, start)]


def rows(table_html: str) -> list[str]:
    """Each body and footer row of a table, as read."""
    return [text(row) for row in re.findall(r"<tr>(.*?)</tr>", table_html, flags=re.S)
            if "<th scope=\"col\"" not in row]


def csv_rows(response: Any) -> list[dict[str, str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


# --- the overview --------------------------------------------------------------------------


def test_a_manager_lands_on_the_overview_and_a_partner_keeps_its_dashboard(
        client, auth, world):
    auth.login("manager")
    home = client.get("/")
    assert home.status_code == 302 and home.headers["Location"] == "/reports/"
    page = client.get("/reports/")
    assert page.status_code == 200
    assert "Channel overview" in text(page.get_data(as_text=True))
    auth.logout()
    auth.login_as(world["users"]["A"])
    dashboard = client.get("/")
    assert dashboard.status_code == 200 and "Your firm's leads" in dashboard.get_data(as_text=True)


def test_the_three_questions_and_the_capture_figures(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/", query_string=NOVEMBER).get_data(as_text=True)
    assert "1 Nov 2026 – 30 Nov 2026" in page
    assert tile(page, "sold") == "3 Sold"  # L1, L5, L9
    assert tile(page, "bought_from_competitor") == "2 Bought from a competitor"  # L2, L12
    assert tile(page, "never_touched") == "1 Never touched"  # L4
    assert tile(page, "captured") == "11 Leads captured"  # not L10 (October)
    assert tile(page, "qualified_share") == "82% Qualified 9 of 11"  # not L6, L7
    # First offers by rule within 60 s: L1, L3, L4, L5, L9, L12 of those plus L2 (5 min);
    # L11 was A's own walk-in, not routed.
    assert tile(page, "routed_within_1_minute") == "86% Routed within 1 minute 6 of 7"
    assert tile(page, "median_capture_to_offer") == "30 s Median capture → offer"
    # 30 min, 45 min, 2 h, 6 h, 30 h, 3 d (L9's win without a logged contact): 4 h.
    assert tile(page, "median_capture_to_first_contact") == (
        "4.0 h Median capture → first contact")


def test_the_partners_work_counts_the_offers_of_the_period(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/", query_string=NOVEMBER).get_data(as_text=True)
    # Offers in November, each once, D's forwarded one left to C: A ×5 (L1, L2, L3, L9,
    # L11), B ×4 (L3, L4, L10, L12), C ×1 (L5).
    assert tile(page, "offered") == "10 Offers made"
    # Offer → accept: 0 (L11), 9.5 min, 19.75 min, 35 min, 55 min, 59 min, 1 h, 1 h.
    assert tile(page, "median_offer_to_accept") == "45 min Median offer → accept"
    # Followed up: all but A's declined L3 and B's untouched L4.
    assert tile(page, "follow_up_rate") == "80% Follow-up rate 8 of 10"
    # Due an outcome (offered before 21 Nov, accepted): L1, L2, L3 (B), L5, L9, L10,
    # L11; still open: L10 and L11.
    assert tile(page, "outcome_compliance") == "71% Outcome compliance 5 of 7"
    assert tile(page, "won") == "3 Won"
    assert tile(page, "win_rate") == "50% Win rate 3 of 6"
    assert tile(page, "revenue_won") == "$1,700 Revenue"


def test_the_funnel_and_the_weeks_show_their_numbers_beside_the_charts(
        client, auth, world):
    auth.login("manager")
    page = client.get("/reports/", query_string=NOVEMBER).get_data(as_text=True)
    funnel = section(page, "funnel-title")
    assert "<svg" in funnel and "The funnel" in funnel
    assert rows(funnel) == ["Captured 11 100%", "Qualified 9 82% 82%",
                            "Offered 8 73% 89%", "Accepted 7 64% 88%",
                            "Contacted 7 64% 100%", "Won 3 27% 43%"]
    weeks = section(page, "weeks-title")
    assert "<svg" in weeks and "Leads captured each week" in weeks
    # captured, qualified, offered, accepted, contacted, won, to a competitor, untouched
    assert rows(weeks) == ["01 Nov 2026 4 4 4 3 3 1 1 1",
                           "08 Nov 2026 3 1 1 1 1 1 0 0",
                           "15 Nov 2026 3 3 2 2 2 1 0 0",
                           "22 Nov 2026 1 1 1 1 1 0 1 0",
                           "29 Nov 2026 0 0 0 0 0 0 0 0"]


def test_speed_to_lead_on_the_overview(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/", query_string=NOVEMBER).get_data(as_text=True)
    speed = section(page, "speed-title")
    assert "<svg" in speed and "100% won" in speed
    # leads, share, won, lost, win rate, won ÷ leads; the walk-in L11 is left out.
    assert rows(speed) == ["Under 1 hour 2 29% 1 1 50% 50%",  # L1 won, L12 lost
                           "1 to 4 hours 1 14% 0 1 0% 0%",  # L2
                           "4 to 24 hours 1 14% 0 1 0% 0%",  # L3, first contacted by B
                           "1 to 2 days 1 14% 1 0 100% 100%",  # L5
                           "Over 2 days 1 14% 1 0 100% 100%",  # L9
                           "Never 1 14% 0 0 — 0%",  # L4
                           "All 7 100% 3 3 50% 43%"]


def test_each_count_opens_the_leads_behind_it(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/", query_string=NOVEMBER).get_data(as_text=True)

    def opened(name: str) -> str:
        href = re.search(r'id="fig-' + name + r'"><span class="num"><a href="([^"]+)"',
                         page).group(1)
        return text(client.get(href.replace("&amp;", "&")).get_data(as_text=True))

    sold = opened("sold")
    assert "3 leads." in sold
    assert all(f"Pat {n}" in sold for n in ("One", "Five", "Nine"))
    assert "Pat Two" not in sold
    bought = opened("bought_from_competitor")
    assert "2 leads." in bought and "Lost to Deere" in bought
    untouched = opened("never_touched")
    assert "1 lead." in untouched and "Pat Four" in untouched and "Offered" in untouched
    captured = opened("captured")
    assert "11 leads." in captured and "Pat Ten" not in captured
    # A rate's count opens its leads too.
    fast = re.search(r'id="fig-routed_within_1_minute".*?<a href="([^"]+)"', page,
                     flags=re.S).group(1)
    listed = text(client.get(fast.replace("&amp;", "&")).get_data(as_text=True))
    assert "6 leads." in listed and "Pat Two" not in listed and "Pat Eleven" not in listed
    # The offers' figures open the offers behind them.
    offers = re.search(r'id="fig-offered"><span class="num"><a href="([^"]+)"', page).group(1)
    assert offers.startswith("/reports/leads?figure=offered")
    assert "10 offers." in text(client.get(offers.replace("&amp;", "&")).get_data(as_text=True))
    assert client.get("/reports/overview/leads", query_string={
        **NOVEMBER, "figure": "nonsense"}).status_code == 404


def test_how_each_figure_is_computed_is_on_the_page(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/", query_string=NOVEMBER).get_data(as_text=True)
    start = page.index("How each figure is computed")
    how = text(page[start:page.index("</details>", start)])
    for said in ("Sold Leads captured in the period that a partner closed as won",
                 "Routed within 1 minute Leads whose first offer to a partner",
                 "Outcome compliance 1 − overdue ÷ accepted offers due an outcome "
                 "(offered more than 10 days",
                 "Funnel Each stage counts", "Time to first contact From the lead's capture"):
        assert said in how


def test_the_overview_in_csv(client, auth, world):
    auth.login("manager")

    def get(table: str) -> list[dict[str, str]]:
        return csv_rows(client.get(f"/reports/overview/{table}.csv", query_string=NOVEMBER))

    figures = {row["figure"]: row for row in get("figures")}
    assert {k: figures[k]["value"] for k in (
        "sold", "bought_from_competitor", "never_touched", "captured", "qualified_share",
        "routed_within_1_minute", "offered", "follow_up_rate", "outcome_compliance", "won",
        "win_rate", "revenue_won")} == {
        "sold": "3", "bought_from_competitor": "2", "never_touched": "1", "captured": "11",
        "qualified_share": "81.8", "routed_within_1_minute": "85.7", "offered": "10",
        "follow_up_rate": "80.0", "outcome_compliance": "71.4", "won": "3",
        "win_rate": "50.0", "revenue_won": "1700.00"}
    assert (figures["qualified_share"]["counted"], figures["qualified_share"]["out_of"]) == (
        "9", "11")
    assert float(figures["median_capture_to_offer"]["value"]) == pytest.approx(30 / 3600)
    assert float(figures["median_capture_to_first_contact"]["value"]) == pytest.approx(4)
    assert figures["median_capture_to_offer"]["unit"] == "hours"
    assert figures["sold"]["how"].startswith("Leads captured in the period")

    assert [(r["stage"], r["leads"], r["share_of_captured"]) for r in get("funnel")] == [
        ("captured", "11", "100.0"), ("qualified", "9", "81.8"), ("offered", "8", "72.7"),
        ("accepted", "7", "63.6"), ("contacted", "7", "63.6"), ("won", "3", "27.3")]
    weeks = get("weeks")
    assert [w["week_from"] for w in weeks] == [
        "2026-11-01", "2026-11-08", "2026-11-15", "2026-11-22", "2026-11-29"]
    assert weeks[0] == {"week_from": "2026-11-01", "captured": "4", "qualified": "4",
                        "offered": "4", "accepted": "3", "contacted": "3", "won": "1",
                        "lost_to_competitor": "1", "untouched": "1"}
    speed = {r["bucket"]: r for r in get("speed")}
    assert list(speed) == ["<1h", "1-4h", "4-24h", "1-2d", ">2d", "never"]
    assert (speed["<1h"]["leads"], speed["<1h"]["contact_rate"], speed["<1h"]["won"],
            speed["<1h"]["win_rate"]) == ("2", "28.6", "1", "50.0")
    assert (speed["never"]["leads"], speed["never"]["win_rate"]) == ("1", "")
    assert client.get("/reports/overview/nonsense.csv").status_code == 404


def test_an_empty_period_shows_dashes_not_errors(client, auth, world):
    auth.login("manager")
    response = client.get("/reports/", query_string={
        "period": "custom", "since": "2026-09-01", "until": "2026-09-30"})
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert tile(page, "captured") == "0 Leads captured"
    assert tile(page, "qualified_share") == "— Qualified 0 of 0"
    assert tile(page, "routed_within_1_minute") == "— Routed within 1 minute 0 of 0"
    assert tile(page, "median_capture_to_offer") == "— Median capture → offer"
    assert tile(page, "win_rate") == "— Win rate 0 of 0"
    assert tile(page, "outcome_compliance") == "— Outcome compliance 0 of 0"
    assert rows(section(page, "funnel-title"))[1] == "Qualified 0 — —"
    assert rows(section(page, "speed-title"))[-1] == "All 0 — 0 0 — —"
    assert 'href="/reports/overview/leads' not in page  # nothing to list behind a zero
    figures = csv_rows(client.get("/reports/overview/figures.csv", query_string={
        "period": "custom", "since": "2026-09-01", "until": "2026-09-30"}))
    assert {r["figure"]: r["value"] for r in figures}["win_rate"] == ""


def test_the_filters_narrow_the_leads(client, auth, world):
    auth.login("manager")

    def read(**filters: str) -> str:
        return client.get("/reports/", query_string={**NOVEMBER, **filters}).get_data(
            as_text=True)

    iowa = read(region="IA")
    assert tile(iowa, "captured") == "10 Leads captured"  # not L12, the Minnesota lead
    assert tile(iowa, "bought_from_competitor") == "1 Bought from a competitor"
    warm = read(rank="warm")
    assert tile(warm, "captured") == "1 Leads captured"  # L3
    assert tile(warm, "sold") == "0 Sold"
    spring = read(campaign="SPRING")
    assert tile(spring, "captured") == "2 Leads captured"  # L1, L2
    assert (tile(spring, "sold"), tile(spring, "bought_from_competitor")) == (
        "1 Sold", "1 Bought from a competitor")
    # A distributor: the leads offered to it or its dealers, and only their work on them.
    delta = read(distributor="D")
    assert tile(delta, "captured") == "1 Leads captured"  # L5
    assert tile(delta, "sold") == "1 Sold"
    assert tile(delta, "offered") == "1 Offers made"  # C's; D forwarded its own
    assert rows(section(delta, "funnel-title"))[-1] == "Won 1 100% 100%"
    listed = client.get("/reports/overview/leads", query_string={
        **NOVEMBER, "distributor": "D", "figure": "captured"}).get_data(as_text=True)
    assert "Pat Five" in listed and "Pat One" not in listed


def test_the_overview_asks_as_many_queries_for_a_busy_month_as_for_an_empty_one(
        client, auth, world, count_queries):
    auth.login("manager")
    september = {"period": "custom", "since": "2026-09-01", "until": "2026-09-30"}
    counts = {}
    for name, period in (("empty", september), ("busy", NOVEMBER)):
        with count_queries() as counter:
            assert client.get("/reports/", query_string=period).status_code == 200
        counts[name] = counter.count
    assert counts["busy"] == counts["empty"]
    listed = {}
    for figure in ("lost_to_competitor", "captured"):  # two leads, then eleven
        with count_queries() as counter:
            page = client.get("/reports/overview/leads",
                              query_string={**NOVEMBER, "figure": figure})
        assert "Lost to Deere" in page.get_data(as_text=True)
        listed[figure] = counter.count
    assert listed["captured"] == listed["lost_to_competitor"]


def test_partners_cannot_see_the_overview(client, auth, world):
    auth.login_as(world["users"]["A"])
    response = client.get("/reports/", query_string=NOVEMBER)
    assert response.status_code == 302
    assert response.headers["Location"] == "/reports/partners"
    for url in ("/reports/overview/leads", "/reports/overview/figures.csv",
                "/reports/speed/channel.csv"):
        assert client.get(url, query_string={**NOVEMBER, "figure": "won"}).status_code == 404
    tabs = client.get("/reports/speed", query_string=NOVEMBER).get_data(as_text=True)
    assert ">Overview<" not in tabs and ">Speed to lead<" in tabs


# --- speed to lead per partner -------------------------------------------------------------


def test_the_speed_page_shows_each_partner_over_its_own_offers(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/speed", query_string=NOVEMBER).get_data(as_text=True)
    assert "<svg" in page
    partners = section(page, "speed-partners-title")
    # offers, then per bucket: offers (share) and win rate; <1h, 1-4h, 4-24h, 1-2d, >2d, never
    assert rows(partners) == [
        # L1 (won, <1h), L2 (lost, 1-4h), L3 declined (never), L9 (won, >2d); not L11.
        "Alpha Dealer A 4 1 (25%) 100% 1 (25%) 0% 0 (0%) — 0 (0%) — 1 (25%) 100% "
        "1 (25%) —",
        # L3 (lost, 4-24h from the lead's capture), L4 (never), L10 (1-2d: captured the
        # day before), L12 (lost, <1h).
        "Bravo Dealer B 4 1 (25%) 0% 0 (0%) — 1 (25%) 0% 1 (25%) — 0 (0%) — 1 (25%) —",
        "Charlie Dealer C 1 0 (0%) — 0 (0%) — 0 (0%) — 1 (100%) 100% 0 (0%) — 0 (0%) —",
        "Delta Distributor D · with its dealers 1 0 (0%) — 0 (0%) — 0 (0%) — "
        "1 (100%) 100% 0 (0%) — 0 (0%) —",
        "All offers 9 2 (22%) 50% 1 (11%) 0% 1 (11%) 0% 2 (22%) 100% 1 (11%) 100% "
        "2 (22%) —"]
    channel = section(page, "speed-all-title")
    assert "All 7 100% 3 3 50% 43%" in rows(channel)

    partners_csv = csv_rows(client.get("/reports/speed/partners.csv", query_string=NOVEMBER))
    alpha = {r["bucket"]: r for r in partners_csv if r["partner"] == "A"}
    assert (alpha["<1h"]["leads"], alpha["<1h"]["contact_rate"], alpha["<1h"]["won"],
            alpha["<1h"]["win_rate"]) == ("1", "25.0", "1", "100.0")
    assert alpha["never"]["leads"] == "1"
    everyone = {r["bucket"]: r for r in partners_csv if r["name"] == "All offers"}
    assert (everyone["1-2d"]["leads"], everyone["1-2d"]["won_per_lead"]) == ("2", "50.0")
    channel_csv = csv_rows(client.get("/reports/speed/channel.csv", query_string=NOVEMBER))
    assert [r["leads"] for r in channel_csv] == ["2", "1", "1", "1", "1", "1"]


def test_a_partner_sees_only_its_own_speed_and_a_distributor_its_dealers(
        session, client, auth, world):
    world["C"].name = '=HYPERLINK("http://evil.test")'
    session.commit()
    auth.login_as(world["users"]["A"])
    page = client.get("/reports/speed", query_string=NOVEMBER).get_data(as_text=True)
    assert "Your offers" in page and "The channel's leads" not in page
    assert "Alpha Dealer" in page and "Bravo Dealer" not in page
    assert rows(section(page, "speed-all-title"))[-1] == "All 4 100% 2 1 67% 50%"
    own_csv = csv_rows(client.get("/reports/speed/partners.csv", query_string=NOVEMBER))
    assert {r["partner"] for r in own_csv} == {"A", ""}
    assert client.get("/reports/speed/partners.csv", query_string={
        **NOVEMBER, "partner": "B"}).status_code == 404
    auth.logout()

    auth.login_as(world["users"]["D"])
    page = client.get("/reports/speed", query_string=NOVEMBER).get_data(as_text=True)
    assert "Delta Distributor" in page and "Alpha Dealer" not in page
    names = {r["partner"]: r["name"] for r in csv_rows(client.get(
        "/reports/speed/partners.csv", query_string=NOVEMBER))}
    assert set(names) == {"C", "D", ""}
    assert names["C"].startswith("'=HYPERLINK")  # a spreadsheet shows it, never runs it


def test_the_scorecard_shows_the_partners_speed_to_lead(client, auth, world):
    auth.login("manager")
    page = client.get("/reports/partners/A", query_string=NOVEMBER).get_data(as_text=True)
    speed = section(page, "scorecard-speed-title")
    assert rows(speed)[0] == "Under 1 hour 1 25% 1 0 100% 100%"
    assert rows(speed)[-1] == "All 4 100% 2 1 67% 50%"
    assert "/reports/speed/partners.csv?" in speed and "partner=A" in speed
    one = csv_rows(client.get("/reports/speed/partners.csv", query_string={
        **NOVEMBER, "partner": "A"}))
    assert {r["partner"] for r in one} == {"A"} and len(one) == 6
