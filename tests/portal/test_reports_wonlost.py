"""The won / lost analysis and campaign and source ROI against scenarios with known answers:
outcomes, competitors, states, product lines, costs and leads at fixed times, on both
databases; every figure on the pages and in the CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Campaign, Competitor, Source
from portal.reports import metrics, roi, wonlost

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
OCT = datetime(2026, 10, 1, tzinfo=UTC)
OCTOBER = {"period": "custom", "since": "2026-10-01", "until": "2026-10-31"}
OCT_SCOPE = metrics.Scope(since=OCT, until=OCT + 31 * DAY)
EVIL = "=cmd|' /C calc'!A0"


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).replace("&#39;", "'").split())


def _section(page: str, title_id: str) -> str:
    start = page.index(f'id="{title_id}"')
    return page[start:page.index("</section>", start)]


def _rows(html: str) -> list[str]:
    """Each table row of ``html`` as the page reads, tags stripped."""
    return [_text(row) for row in re.findall(r"<tr>(.*?)</tr>", html, re.S)]


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200 and response.mimetype == "text/csv"
    return list(csv.reader(io.StringIO(response.get_data(as_text=True).lstrip("\ufeff"))))


# --- won / lost ----------------------------------------------------------------------------


@pytest.fixture
def outcomes_world(session, make_partner, make_user, make_lead, make_product_line):
    """Fifteen offers with known outcomes in October 2026 (and two outside it):

    ====  =====  ====  ====================  ========  ==========
    lead  state  line  outcome               reported  week
    ====  =====  ====  ====================  ========  ==========
    1     IA     TRC   lost to Deere         Oct 5     1
    2     IA     TRC   lost to Deere         Oct 12    2
    3     IA     MWR   lost to Kubota        Oct 13    2
    4     NE     TRC   lost to Kubota        Oct 20    3
    5     NE     MWR   lost to "=cmd…"       Oct 21    3
    6     NE     MWR   lost: price           Oct 22    4
    7     IA     TRC   won 1,000             Oct 6     1
    8     NE     MWR   won 2,500             Oct 23    4
    9     IA     TRC   no interest           Oct 8     —
    10    IA     TRC   lost: timing          Nov 3     after the report's end
    11    IA     TRC   lost to Deere         Oct 3     offered in September
    12    IA     MWR   lost to "kubota"      Oct 14    2  (via distributor D, dealer C)
    13    IA     TRC   lost to Smith Tract…  Oct 26    4
    14    NE     TRC   lost to smith tract…  Oct 27    4
    15    —      MWR   won 400               Oct 29    5
    ====  =====  ====  ====================  ========  ==========
    """
    make_product_line("TRC", name="Tractors")
    make_product_line("MWR", name="Mowers")
    session.add_all([Competitor(name="Deere"), Competitor(name="Kubota")])
    a = make_partner("A", name="Alpha Dealer")
    b = make_partner("B", name="Bravo Dealer", region="US-NE")
    d = make_partner("D", name="Delta Distributor", kind="distributor")
    c = make_partner("C", name="Charlie Dealer", parent_id=d.id, product_lines=["TRC", "MWR"])
    users = {p.code: make_user("partner", partner=p) for p in (a, b, c, d)}
    session.flush()

    def worked(partner: Any, region: str, line: str, day: int, outcome: str, closed: datetime,
               **data: Any) -> Any:
        at = OCT + (day - 1) * DAY
        lead = make_lead(region=region, product_line=line, created_at=at - HOUR)
        lifecycle.offer(session, lead, partner, Actor.system(), now=at)
        holder = partner
        if partner.kind == "distributor":
            holder = c
            lifecycle.forward(session, lead, c, Actor.of(users["D"]), now=at + HOUR)
        lifecycle.accept(session, lead, Actor.of(users[holder.code]), now=at + 2 * HOUR)
        lifecycle.close(session, lead, outcome, Actor.of(users[holder.code]), data=data,
                        now=closed)
        return lead

    def on(day: int) -> datetime:
        return OCT + (day - 1) * DAY + 12 * HOUR

    def rival(name: str) -> dict[str, str]:
        return {"reason": "competitor", "competitor": name}

    worked(a, "US-IA", "TRC", 1, "lost", on(5), **rival("Deere"))
    worked(a, "US-IA", "TRC", 8, "lost", on(12), **rival("deere"))
    worked(a, "US-IA", "MWR", 9, "lost", on(13), **rival("Kubota"))
    worked(b, "US-NE", "TRC", 15, "lost", on(20), **rival("Kubota"))
    worked(b, "US-NE", "MWR", 15, "lost", on(21), **rival(EVIL))
    worked(b, "US-NE", "MWR", 16, "lost", on(22), reason="price")
    worked(a, "US-IA", "TRC", 2, "won", on(6), amount="1000")
    worked(b, "US-NE", "MWR", 20, "won", on(23), amount="2500")
    worked(a, "US-IA", "TRC", 3, "no_interest", on(8))
    worked(a, "US-IA", "TRC", 25, "lost", OCT + 33 * DAY, reason="timing")
    worked(a, "US-IA", "TRC", -2, "lost", on(3), **rival("Deere"))
    worked(d, "US-IA", "MWR", 10, "lost", on(14), **rival("kubota"))
    worked(a, "US-IA", "TRC", 20, "lost", on(26), **rival("Smith Tractors"))
    worked(b, "US-NE", "TRC", 21, "lost", on(27), **rival("smith tractors"))
    worked(a, "", "MWR", 22, "won", on(29), amount="400")
    session.commit()
    return {"A": a, "B": b, "C": c, "D": d}


NOW = datetime(2026, 12, 3, tzinfo=UTC)  # after the period: its end is the report's end


def test_outcomes_reasons_and_competitors_have_the_known_counts(session, outcomes_world):
    got = wonlost.outcomes(session, OCT_SCOPE, now=NOW)
    assert (got.won, got.lost, got.no_interest, got.lost_to_rival) == (3, 9, 1, 8)
    assert got.revenue_won == Decimal("3900")
    assert got.win_rate == pytest.approx(3 / 12) and got.rival_share == pytest.approx(8 / 9)

    reasons = {r.reason: (r.lost, r.share) for r in wonlost.lost_reasons(session, OCT_SCOPE,
                                                                         now=NOW)}
    assert reasons == {"competitor": (8, pytest.approx(8 / 9)), "price": (1, pytest.approx(1 / 9)),
                       "timing": (0, 0), "no_budget": (0, 0), "no_response": (0, 0),
                       "other": (0, 0)}

    rivals = wonlost.rivals(session, OCT_SCOPE, now=NOW)
    assert [(r.rival.name.lower(), r.lost, r.share) for r in rivals] == [
        ("kubota", 3, 3 / 8), ("deere", 2, 2 / 8), ("smith tractors", 2, 2 / 8),
        (EVIL.lower(), 1, 1 / 8)]
    assert rivals[0].rival.key.startswith("id:") and rivals[2].rival.key == "other:smith tractors"


def test_cross_tables_say_which_competitors_win_where(session, outcomes_world):
    states = wonlost.cross(session, OCT_SCOPE, "region", now=NOW)
    assert [r.name.lower() for r in states.columns] == [
        "kubota", "deere", "smith tractors", EVIL.lower()]
    assert not states.has_others
    kubota, deere, smith, evil = states.columns
    table = {r.label: (r.won, r.lost, r.lost_to_rival, r.to(kubota), r.to(deere), r.to(smith),
                       r.to(evil)) for r in states.rows}
    assert table == {"US-IA": (1, 5, 5, 2, 2, 1, 0), "US-NE": (1, 4, 3, 1, 0, 1, 1),
                     "No state": (1, 0, 0, 0, 0, 0, 0)}
    assert [r.label for r in states.rows] == ["US-IA", "US-NE", "No state"]
    iowa = states.rows[0]
    assert iowa.share(deere) == pytest.approx(0.4) and iowa.win_rate == pytest.approx(1 / 6)

    lines = wonlost.cross(session, OCT_SCOPE, "product_line", now=NOW)
    table = {r.label: (r.won, r.lost, r.lost_to_rival, *(r.to(x) for x in lines.columns))
             for r in lines.rows}
    assert table == {"Tractors": (1, 5, 5, 1, 2, 2, 0), "Mowers": (2, 4, 3, 2, 0, 0, 1)}

    top_two = wonlost.cross(session, OCT_SCOPE, "region", now=NOW, top=2)
    assert top_two.has_others and [r.name for r in top_two.columns] == ["Kubota", "Deere"]
    assert [r.others(top_two.columns) for r in top_two.rows] == [1, 2, 0]


def test_over_time_goes_week_by_week_by_the_day_the_outcome_was_reported(
        session, outcomes_world):
    weeks = wonlost.over_time(session, OCT_SCOPE, now=NOW)
    assert [(b.label, b.won, b.lost_to_rival, b.lost_other) for b in weeks] == [
        ("01 Oct", 1, 1, 0), ("08 Oct", 0, 3, 0), ("15 Oct", 0, 2, 0), ("22 Oct", 1, 2, 1),
        ("29 Oct", 1, 0, 0)]
    assert weeks[-1].before == OCT + 31 * DAY
    year = metrics.Scope(since=datetime(2026, 1, 1, tzinfo=UTC),
                         until=datetime(2027, 1, 1, tzinfo=UTC))
    months = wonlost.over_time(session, year, now=NOW)  # only months begun by now
    assert [b.label for b in months][-3:] == ["Oct 2026", "Nov 2026", "Dec 2026"]
    assert (months[9].won, months[9].lost_to_rival, months[9].lost_other) == (3, 9, 1)
    assert (months[10].lost_other, months[8].lost_to_rival) == (1, 0)  # Nov 3; not Oct 3's


def test_the_page_shows_every_figure_and_links_each_count_to_its_leads(
        session, client, auth, outcomes_world):
    auth.login("manager")
    page = client.get("/reports/won-lost", query_string=OCTOBER).get_data(as_text=True)
    assert "by 01 Nov 2026 00:00 UTC" in page
    glance = _text(_section(page, "glance-title"))
    assert ("Won 3 · revenue $3,900.00 Lost 9 · win rate 25% "
            "Lost to a competitor 8 · 89% of the losses No interest 1") in glance
    assert _rows(_section(page, "reasons-title")) == [
        "Reason Lost Share", "Lost to a competitor 8 89%", "Price 1 11%",
        "Timing 0 0%", "No budget 0 0%", "No response 0 0%", "Other 0 0%", "All losses 9 100%"]
    rivals = _rows(_section(page, "rivals-title"))
    assert rivals[1:3] == ["Kubota 3 38%", "Deere 2 25%"]
    assert rivals[3].lower() == "smith tractors · typed 2 25%"
    assert rivals[4] == f"{EVIL} · typed 1 12%"
    assert EVIL not in page  # escaped (its quote)
    states = _rows(_section(page, "states-title"))
    assert states[0].startswith("State Won Lost Win rate Lost to competitors Kubota Deere")
    assert states[1].lower() == "us-ia 1 5 17% 5 2 (40%) 2 (40%) 1 (20%) 0"
    assert states[2].lower() == "us-ne 1 4 20% 3 1 (33%) 0 1 (33%) 1 (33%)"
    assert states[3] == "No state 1 0 100% 0 0 0 0 0"
    lines = _rows(_section(page, "lines-title"))
    assert lines[1].lower() == "tractors 1 5 17% 5 1 (20%) 2 (40%) 2 (40%) 0"
    assert lines[2].lower() == "mowers 2 4 33% 3 2 (67%) 0 0 1 (33%)"
    weeks = _rows(_section(page, "time-title"))
    assert weeks == ["Week from Won Lost to a competitor Lost, other reasons",
                     "01 Oct 1 1 0", "08 Oct 0 3 0", "15 Oct 0 2 0", "22 Oct 1 2 1",
                     "29 Oct 1 0 0"]
    assert page.count("<svg") == 3 and "Wins and losses week by week" in page

    # Every count opens its offers: follow each link and count what it lists.
    links = re.findall(r'<a href="(/reports/leads\?[^"]+)">([\d,]+)</a>', page)
    assert len(links) > 30
    for href, shown in links:
        drill = client.get(html.unescape(href))
        assert drill.status_code == 200, href
        text = drill.get_data(as_text=True)
        assert f"<p>{shown} offer" in text, (href, shown)
        assert "&larr; Won and lost" in text


def test_drilling_down_names_what_it_narrows_to(session, client, auth, outcomes_world):
    auth.login("manager")
    kubota = session.scalars(select(Competitor).where(Competitor.name == "Kubota")).one()
    iowa = client.get("/reports/leads", query_string={
        **OCTOBER, "figure": "lost", "competitor": f"id:{kubota.id}", "region": "IA",
        "via": "won_lost"}).get_data(as_text=True)
    assert "Lost to Kubota" in iowa and "<p>2 offers." in iowa
    assert 'name="competitor" value="id:' in iowa  # kept when the filters change
    others = client.get("/reports/leads", query_string=[
        *OCTOBER.items(), ("figure", "lost"), ("region", "NE"), ("reason", "competitor"),
        ("except", f"id:{kubota.id}"), ("except", "other:smith tractors")])
    assert "<p>1 offer." in others.get_data(as_text=True)  # only the typed =cmd
    nowhere = client.get("/reports/leads", query_string={
        **OCTOBER, "figure": "won", "unset": "region"}).get_data(as_text=True)
    assert "with no state" in nowhere and "<p>1 offer." in nowhere
    otherwise = client.get("/reports/leads", query_string={
        **OCTOBER, "figure": "lost", "reason_not": "competitor"}).get_data(as_text=True)
    assert "Lost for another reason than a competitor" in otherwise
    assert "<p>1 offer." in otherwise  # the price; the timing came after the report's end
    for bad in ({"reason": "bored"}, {"reason_not": "bored"}, {"competitor": "id:999999"},
                {"competitor": "x"},
                {"closed_from": "yesterday"}, {"unset": "partner"}):
        assert client.get("/reports/leads", query_string={
            **OCTOBER, "figure": "lost", **bad}).status_code == 404


def test_the_others_column_appears_past_the_top_competitors(
        session, client, auth, outcomes_world, monkeypatch):
    monkeypatch.setattr(wonlost, "TOP_RIVALS", 2)
    auth.login("manager")
    page = client.get("/reports/won-lost", query_string=OCTOBER).get_data(as_text=True)
    states = _rows(_section(page, "states-title"))
    assert states[0].endswith("Kubota Deere Other competitors")
    assert states[2] == "US-NE 1 4 20% 3 1 (33%) 0 2 (67%)"
    href = re.findall(r'href="(/reports/leads\?[^"]*except[^"]*)">2</a>', page)[0]
    drill = client.get(html.unescape(href)).get_data(as_text=True)
    assert "<p>2 offers." in drill


def test_every_won_lost_table_exports_and_cannot_run_a_formula(
        session, client, auth, outcomes_world):
    auth.login("manager")

    def table(name: str) -> list[list[str]]:
        return _csv(client.get("/reports/won-lost",
                               query_string={**OCTOBER, "format": "csv", "table": name}))

    assert table("reasons") == [
        ["reason", "label", "lost", "share_of_lost"],
        ["competitor", "Lost to a competitor", "8", "88.9"], ["price", "Price", "1", "11.1"],
        ["timing", "Timing", "0", "0.0"], ["no_budget", "No budget", "0", "0.0"],
        ["no_response", "No response", "0", "0.0"], ["other", "Other", "0", "0.0"]]
    rivals = table("competitors")
    assert rivals[0] == ["competitor", "on_the_list", "lost_to_it",
                         "share_of_losses_to_competitors"]
    assert rivals[1:3] == [["Kubota", "yes", "3", "37.5"], ["Deere", "yes", "2", "25.0"]]
    assert [c.lower() for c in rivals[3]] == ["smith tractors", "no", "2", "25.0"]
    assert rivals[4] == ["'" + EVIL, "no", "1", "12.5"]  # quoted: a spreadsheet shows text
    states = table("states")
    assert [h.lower() for h in states[0]] == [
        "state", "won", "lost", "win_rate", "lost_to_competitors", "lost_to kubota",
        "lost_to deere", "lost_to smith tractors", f"lost_to {EVIL.lower()}"]
    assert states[1:] == [["US-IA", "1", "5", "16.7", "5", "2", "2", "1", "0"],
                          ["US-NE", "1", "4", "20.0", "3", "1", "0", "1", "1"],
                          ["No state", "1", "0", "100.0", "0", "0", "0", "0", "0"]]
    lines = table("product_lines")
    assert lines[1:] == [["Tractors", "1", "5", "16.7", "5", "1", "2", "2", "0"],
                         ["Mowers", "2", "4", "33.3", "3", "2", "0", "0", "1"]]
    assert table("over_time") == [
        ["from", "to", "won", "lost_to_competitor", "lost_other_reasons"],
        ["2026-10-01", "2026-10-07", "1", "1", "0"], ["2026-10-08", "2026-10-14", "0", "3", "0"],
        ["2026-10-15", "2026-10-21", "0", "2", "0"], ["2026-10-22", "2026-10-28", "1", "2", "1"],
        ["2026-10-29", "2026-10-31", "1", "0", "0"]]
    assert client.get("/reports/won-lost", query_string={
        **OCTOBER, "format": "csv", "table": "nonsense"}).status_code == 404


def test_filters_narrow_the_won_lost_figures(session, client, auth, outcomes_world):
    auth.login("manager")
    nebraska = client.get("/reports/won-lost", query_string={**OCTOBER, "region": "NE"}
                          ).get_data(as_text=True)
    assert "Won 1 · revenue $2,500.00 Lost 4 · win rate 20%" in _text(
        _section(nebraska, "glance-title"))
    assert [r.split(" ")[0] for r in _rows(_section(nebraska, "states-title"))[1:]] == ["US-NE"]
    mowers = client.get("/reports/won-lost", query_string={**OCTOBER, "product_line": "MWR"})
    assert "Won 2 · revenue $2,900.00 Lost 4" in _text(
        _section(mowers.get_data(as_text=True), "glance-title"))
    # The distributor and its dealer: the one lead C lost to Kubota, counted once.
    family = client.get("/reports/won-lost", query_string={**OCTOBER, "distributor": "D"})
    text = family.get_data(as_text=True)
    assert "Won 0 · revenue $0.00 Lost 1 · win rate 0%" in _text(_section(text, "glance-title"))
    assert _rows(_section(text, "rivals-title"))[1:] == ["Kubota 1 100%"]


def test_an_empty_period_shows_dashes_not_errors(session, client, auth, outcomes_world):
    auth.login("manager")
    june = {"period": "custom", "since": "2026-06-01", "until": "2026-06-30"}
    response = client.get("/reports/won-lost", query_string=june)
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert ("Won 0 · revenue $0.00 Lost 0 · win rate — Lost to a competitor 0 · — of the losses"
            in _text(_section(page, "glance-title")))
    assert "Price 0 — " in " ".join(_rows(_section(page, "reasons-title"))) + " "
    assert "All losses 0 —" in _rows(_section(page, "reasons-title"))
    assert "No leads lost to a competitor in this period." in page
    assert "No wins or losses reported in this period." in page
    assert page.count("No data in this period") == 3
    assert _csv(client.get("/reports/won-lost", query_string={
        **june, "format": "csv", "table": "states"})) == [
        ["state", "won", "lost", "win_rate", "lost_to_competitors"]]


# --- campaign and source ROI ---------------------------------------------------------------

SEP = datetime(2026, 9, 1, tzinfo=UTC)
SEPTEMBER = {"period": "custom", "since": "2026-09-01", "until": "2026-09-30"}
SEP_SCOPE = metrics.Scope(since=SEP, until=SEP + 30 * DAY)


@pytest.fixture
def campaigns_world(session, make_partner, make_user, make_lead):
    """Three campaigns with costs, two sources, nine leads captured at fixed times:

    - Spring Show (1,000, 1–30 Sep): S1 web hot, contacted in 2 h, won 3,000; S2 web warm,
      contacted in 6 h, lost; S3 trade show, nurture; S4 trade show, disqualified.
    - Fall Mailing (600, 15 Aug – 15 Oct, beyond the period): F1 web hot, contacted in 1 h,
      won 500; F2 no source, hot, offered and never contacted.
    - Idle Ads (300, 10–20 Sep): no leads. Old Campaign (500, Jan): not in the period.
    - N1 no campaign, web, warm, contacted in 10 h.
    - Outside the period: X1 Spring, 31 Aug 23:00; X2 Fall, 1 Oct 00:00.
    """
    spring = Campaign(code="SPRING", name="Spring Show", cost=Decimal("1000"),
                      starts_on=date(2026, 9, 1), ends_on=date(2026, 9, 30))
    fall = Campaign(code="FALL", name="Fall Mailing", cost=Decimal("600"),
                    starts_on=date(2026, 8, 15), ends_on=date(2026, 10, 15))
    idle = Campaign(code="IDLE", name="Idle Ads", cost=Decimal("300"),
                    starts_on=date(2026, 9, 10), ends_on=date(2026, 9, 20))
    old = Campaign(code="OLD", name="Old Campaign", cost=Decimal("500"),
                   starts_on=date(2026, 1, 1), ends_on=date(2026, 2, 1))
    web = Source(code="WEB", name="Web form", cost_per_lead=Decimal("10"))
    show = Source(code="SHOW", name="Trade show", cost_per_lead=Decimal("0"))
    session.add_all([spring, fall, idle, old, web, show])
    a = make_partner("R", name="Romeo Dealer")
    user = make_user("partner", partner=a)
    session.flush()

    def lead(campaign: Any, source: Any, at: datetime, *, region: str = "US-IA",
             status: str = "qualified", rank: str = "hot", contact_after: float | None = None,
             outcome: str | None = None, offer: bool = False, **data: Any) -> Any:
        made = make_lead(status=status, rank=rank, created_at=at, region=region,
                         campaign=campaign, source=source)
        if contact_after is not None or outcome or offer:
            lifecycle.offer(session, made, a, Actor.system(), now=at + 0.25 * HOUR)
        if contact_after is not None:
            lifecycle.accept(session, made, Actor.of(user), now=at + 0.5 * HOUR)
            lifecycle.advance(session, made, "contacted", Actor.of(user),
                              now=at + contact_after * HOUR)
        if outcome:
            lifecycle.close(session, made, outcome, Actor.of(user), data=data,
                            now=at + 5 * DAY)
        return made

    lead(spring, web, SEP + 2 * DAY, contact_after=2, outcome="won", amount="3000")
    lead(spring, web, SEP + 3 * DAY, rank="warm", contact_after=6, outcome="lost",
         reason="price")
    lead(spring, show, SEP + 4 * DAY, region="US-NE", status="nurture", rank="cold")
    lead(spring, show, SEP + 5 * DAY, region="US-NE", status="disqualified", rank="cold")
    lead(fall, web, SEP + 6 * DAY, contact_after=1, outcome="won", amount="500")
    lead(fall, None, SEP + 7 * DAY, region="US-NE", offer=True)
    lead(None, web, SEP + 8 * DAY, region="US-NE", rank="warm", contact_after=10)
    lead(spring, web, SEP - HOUR, contact_after=1, outcome="won", amount="9999")
    lead(fall, web, SEP + 30 * DAY, contact_after=1, outcome="won", amount="9999")
    session.commit()
    return {"spring": spring, "fall": fall, "idle": idle, "web": web}


def test_each_campaign_and_source_has_its_known_figures(session, campaigns_world):
    rows, none, total = roi.campaigns(session, SEP_SCOPE)
    got = {r.code: r for r in rows}
    assert list(got) == ["FALL", "IDLE", "SPRING"]  # by name; Old Campaign did not run
    spring, fall, idle = got["SPRING"], got["FALL"], got["IDLE"]
    assert (spring.leads, spring.qualified, spring.hot, spring.contacted, spring.won) == (
        4, 2, 1, 2, 1)
    assert (spring.qualified_share, spring.hot_share) == (0.5, 0.25)
    assert (spring.cost, spring.cost_per_lead, spring.cost_per_qualified) == (
        Decimal("1000"), Decimal("250.00"), Decimal("500.00"))
    assert spring.revenue == Decimal("3000") and spring.roi == 2.0
    assert spring.median_hours_to_contact == 4.0 and not spring.beyond
    assert (fall.leads, fall.qualified, fall.hot, fall.won, fall.cost) == (
        2, 2, 2, 1, Decimal("600"))
    assert fall.beyond and fall.roi == pytest.approx(-100 / 600)
    assert fall.median_hours_to_contact == 1.0
    assert (idle.leads, idle.cost, idle.cost_per_lead, idle.qualified_share, idle.roi) == (
        0, Decimal("300"), None, None, -1.0)
    assert (none.name, none.leads, none.cost, none.roi, none.median_hours_to_contact) == (
        "No campaign", 1, None, None, 10.0)
    assert (total.leads, total.qualified, total.hot, total.won, total.revenue, total.cost) == (
        6, 4, 3, 2, Decimal("3500"), Decimal("1900"))
    assert total.cost_per_lead == Decimal("316.67") and total.cost_per_qualified == Decimal(
        "475.00")
    assert total.roi == pytest.approx(1600 / 1900) and total.median_hours_to_contact == 2.0

    rows, none, total = roi.sources(session, SEP_SCOPE)
    got = {r.code: r for r in rows}
    web, show = got["WEB"], got["SHOW"]
    assert (web.leads, web.qualified, web.hot, web.won, web.revenue, web.cost) == (
        4, 4, 2, 2, Decimal("3500"), Decimal("40.00"))
    assert web.cost_per_lead == Decimal("10.00") and web.roi == pytest.approx(86.5)
    assert web.median_hours_to_contact == 4.0  # 1, 2, 6, 10 hours
    assert (show.leads, show.qualified, show.cost, show.cost_per_lead, show.roi) == (
        2, 0, None, None, None)
    assert (none.name, none.leads, none.hot, none.contacted) == ("No source", 1, 1, 0)
    assert (total.leads, total.cost, total.roi) == (6, Decimal("40.00"), pytest.approx(86.5))


def test_a_filter_shares_a_campaigns_cost_out_by_its_leads(session, campaigns_world):
    from dataclasses import replace

    iowa = replace(SEP_SCOPE, region="US-IA")
    rows, none, total = roi.campaigns(session, iowa)
    got = {r.code: r for r in rows}
    assert list(got) == ["FALL", "SPRING"] and none is None  # no Idle Ads: no leads here
    assert (got["SPRING"].leads, got["SPRING"].cost, got["SPRING"].shared) == (
        2, Decimal("500.00"), True)
    assert (got["FALL"].leads, got["FALL"].cost, got["FALL"].cost_per_lead) == (
        1, Decimal("300.00"), Decimal("300.00"))
    assert total.cost == Decimal("800.00")
    rows, _, _ = roi.sources(session, iowa)
    assert [(r.code, r.leads, r.cost) for r in rows] == [("WEB", 3, Decimal("30.00"))]
    # A campaign filter leaves the campaign's own leads whole: its whole cost.
    fall_only = replace(SEP_SCOPE, campaign_id=campaigns_world["fall"].id)
    rows, none, total = roi.campaigns(session, fall_only)
    assert [(r.code, r.cost, r.shared) for r in rows] == [("FALL", Decimal("600"), False)]
    assert none is None and total.leads == 2


def test_the_campaigns_page_shows_every_figure_and_sorts(session, client, auth,
                                                         campaigns_world):
    auth.login("manager")
    page = client.get("/reports/campaigns", query_string=SEPTEMBER).get_data(as_text=True)
    campaigns = _rows(_section(page, "campaigns-title"))
    assert campaigns[0] == (
        "Campaign Leads Qualified Qualified % Hot Hot % Cost Per lead "
        "Per qualified lead Won Revenue ROI Contacted To first contact")
    assert campaigns[1:] == [
        "Fall Mailing FALL · 2026-08-15 – 2026-10-15 · runs beyond the period: whole cost "
        "2 2 100% 2 100% $600.00 $300.00 $300.00 1 $500.00 -17% 1 1.0 h",
        "Idle Ads IDLE · 2026-09-10 – 2026-09-20 0 0 — 0 — $300.00 — — 0 $0.00 -100% 0 —",
        "Spring Show SPRING · 2026-09-01 – 2026-09-30 "
        "4 2 50% 1 25% $1,000.00 $250.00 $500.00 1 $3,000.00 200% 2 4.0 h",
        "No campaign 1 1 100% 0 0% — — — 0 $0.00 — 1 10.0 h",
        "All campaigns 6 4 67% 3 50% $1,900.00 $316.67 $475.00 2 $3,500.00 84% 3 2.0 h"]
    sources = _rows(_section(page, "sources-title"))
    assert sources[1:] == [
        "Trade show SHOW 2 0 0% 0 0% — — — 0 $0.00 — 0 —",
        "Web form WEB 4 4 100% 2 50% $40.00 $10.00 $10.00 2 $3,500.00 8650% 4 4.0 h",
        "No source 1 1 100% 1 100% — — — 0 $0.00 — 0 —",
        "All sources 6 4 67% 2 33% $40.00 $6.67 $10.00 2 $3,500.00 8650% 4 4.0 h"]
    assert "the whole of it even when the campaign runs beyond the period" in page

    by_roi = client.get("/reports/campaigns", query_string={
        **SEPTEMBER, "sort": "roi", "dir": "desc"}).get_data(as_text=True)
    names = [r.split(" ")[0] for r in _rows(_section(by_roi, "campaigns-title"))[1:4]]
    assert names == ["Spring", "Fall", "Idle"] and 'aria-sort="descending"' in by_roi
    by_cpl = client.get("/reports/campaigns", query_string={
        **SEPTEMBER, "sort": "cost_per_lead", "dir": "asc"}).get_data(as_text=True)
    names = [r.split(" ")[0] for r in _rows(_section(by_cpl, "campaigns-title"))[1:4]]
    assert names == ["Spring", "Fall", "Idle"]  # no cost per lead: last


def test_each_roi_count_opens_the_leads_behind_it(session, client, auth, campaigns_world):
    auth.login("manager")
    page = client.get("/reports/campaigns", query_string=SEPTEMBER).get_data(as_text=True)
    links = re.findall(r'<a href="(/reports/campaigns/leads\?[^"]+)">([\d,]+)</a>', page)
    assert len(links) > 20
    for href, shown in links:
        drill = client.get(html.unescape(href))
        assert drill.status_code == 200, href
        assert f"<p>{shown} lead" in drill.get_data(as_text=True), (href, shown)
    won = client.get("/reports/campaigns/leads", query_string={
        **SEPTEMBER, "by": "campaign", "code": "SPRING", "figure": "won"}).get_data(as_text=True)
    assert "Won · Spring Show" in won and "$3,000.00" in won and "9,999" not in won
    for bad in ({"figure": "nonsense"}, {"by": "partner"}, {"code": "NOPE"}):
        assert client.get("/reports/campaigns/leads", query_string={
            **SEPTEMBER, **bad}).status_code == 404


def test_the_roi_csv_has_every_figure_and_cannot_run_a_formula(
        session, client, auth, campaigns_world):
    campaigns_world["spring"].name = "=HYPERLINK(\"http://evil.test\")"
    session.commit()
    auth.login("manager")
    rows = _csv(client.get("/reports/campaigns", query_string={
        **SEPTEMBER, "format": "csv", "table": "campaigns"}))
    assert rows[0] == ["code", "name", "starts_on", "ends_on", "cost_counted", "leads",
                       "qualified", "qualified_share", "hot", "hot_share", "cost",
                       "cost_per_lead", "cost_per_qualified", "won", "revenue", "roi",
                       "contacted", "median_hours_to_contact"]
    got = {r[0]: r for r in rows[1:]}
    assert got["SPRING"] == ["SPRING", "'=HYPERLINK(\"http://evil.test\")", "2026-09-01",
                             "2026-09-30", "whole", "4", "2", "50.0", "1", "25.0", "1000.00",
                             "250.00", "500.00", "1", "3000.00", "200.0", "2", "4.0"]
    assert got["FALL"][4:] == ["whole, runs beyond the period", "2", "2", "100.0", "2",
                               "100.0", "600.00", "300.00", "300.00", "1", "500.00", "-16.7",
                               "1", "1.0"]
    assert got["IDLE"][5:] == ["0", "0", "", "0", "", "300.00", "", "", "0", "0", "-100.0",
                               "0", ""]
    assert rows[-2][1:2] + rows[-2][5:] == ["No campaign", "1", "1", "100.0", "0", "0.0", "",
                                            "", "", "0", "0", "", "1", "10.0"]
    assert rows[-1][1] == "All campaigns" and rows[-1][10:16] == [
        "1900.00", "316.67", "475.00", "2", "3500.00", "84.2"]
    sources = _csv(client.get("/reports/campaigns", query_string={
        **SEPTEMBER, "format": "csv", "table": "sources"}))
    web = next(r for r in sources if r[0] == "WEB")
    assert web[4:] == ["cost per lead × leads", "4", "4", "100.0", "2", "50.0", "40.00",
                       "10.00", "10.00", "2", "3500.00", "8650.0", "4", "4.0"]
    assert client.get("/reports/campaigns", query_string={
        **SEPTEMBER, "format": "csv", "table": "partners"}).status_code == 404


def test_roi_filters_and_an_empty_period(session, client, auth, campaigns_world):
    auth.login("manager")
    iowa = client.get("/reports/campaigns", query_string={**SEPTEMBER, "region": "IA"}
                      ).get_data(as_text=True)
    assert "each campaign's cost is shared out by its leads" in iowa
    rows = _rows(_section(iowa, "campaigns-title"))
    assert rows[1].startswith("Fall Mailing FALL · 2026-08-15 – 2026-10-15 · cost shared by "
                              "leads 1 1 100% 1 100% $300.00 $300.00")
    assert rows[2].startswith("Spring Show SPRING · 2026-09-01 – 2026-09-30 · cost shared "
                              "by leads 2 2 100% 1 50% $500.00 $250.00")
    warm = client.get("/reports/campaigns", query_string={**SEPTEMBER, "rank": "warm"})
    assert "No source 1" not in warm.get_data(as_text=True)

    june = {"period": "custom", "since": "2026-06-01", "until": "2026-06-30"}
    empty = client.get("/reports/campaigns", query_string=june)
    assert empty.status_code == 200
    text = empty.get_data(as_text=True)
    assert _rows(_section(text, "campaigns-title"))[1:] == [
        "No campaign has leads in this period.",
        "All campaigns 0 0 — 0 — — — — 0 $0.00 — 0 —"]
    assert _rows(_section(text, "sources-title"))[-1] == (
        "All sources 0 0 — 0 — — — — 0 $0.00 — 0 —")


# --- who may see them ----------------------------------------------------------------------


def test_partners_get_404_and_the_tabs_show_for_staff(
        session, client, auth, make_partner, outcomes_world):
    auth.login("partner", partner=outcomes_world["D"])
    for url in ("/reports/won-lost", "/reports/campaigns", "/reports/campaigns/leads",
                "/reports/won-lost?format=csv&table=reasons",
                "/reports/campaigns?format=csv&table=campaigns"):
        assert client.get(url).status_code == 404, url
    partners = client.get("/reports/partners").get_data(as_text=True)
    assert "Won / lost" not in partners and "Campaigns and sources" not in partners
    auth.logout()
    assert client.get("/reports/won-lost").status_code in (302, 303)  # sign in first
    auth.login("manager")
    partners = client.get("/reports/partners").get_data(as_text=True)
    assert ">Won / lost<" in partners and ">Campaigns and sources<" in partners


def test_the_pages_ask_the_same_queries_however_many_leads(
        session, client, auth, outcomes_world, campaigns_world, count_queries):
    auth.login("manager")
    june = {"period": "custom", "since": "2026-06-01", "until": "2026-06-30"}
    for url, busy in (("/reports/won-lost", OCTOBER), ("/reports/campaigns", SEPTEMBER)):
        with count_queries() as full:
            assert client.get(url, query_string=busy).status_code == 200
        with count_queries() as empty:
            assert client.get(url, query_string=june).status_code == 200
        assert full.count == empty.count <= 25, (url, full.statements)
