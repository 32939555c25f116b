"""The won / lost analysis against scenarios with known answers: outcomes, competitors,
states and product lines at fixed times, on both databases; every figure on the page and
in the CSV."""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Competitor
from portal.reports import metrics, wonlost

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
    c = make_partner("C", name="Charlie Dealer", parent_id=d.id)
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


# --- who may see them ----------------------------------------------------------------------


def test_partners_get_404_and_the_tab_shows_for_staff(session, client, auth, outcomes_world):
    auth.login("partner", partner=outcomes_world["D"])
    for url in ("/reports/won-lost", "/reports/won-lost?format=csv&table=reasons"):
        assert client.get(url).status_code == 404, url
    assert "Won / lost" not in client.get("/reports/partners").get_data(as_text=True)
    auth.logout()
    assert client.get("/reports/won-lost").status_code in (302, 303)  # sign in first
    auth.login("manager")
    assert ">Won / lost<" in client.get("/reports/partners").get_data(as_text=True)
