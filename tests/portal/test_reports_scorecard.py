"""The scorecard PDF, the compliance figures on the partners pages, and the compliance list
with its reminder email, against a scenario with known answers, on both databases.

The scenario's times are fixed distances before the moment the test runs: the partners
pages show "the last 90 days" and the compliance list shows "now", so the figures are the
same whatever day it is.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select

from portal.core import lifecycle, rollups
from portal.core.lifecycle import Actor
from portal.core.models import Competitor, Lead, utcnow
from portal.reports import metrics

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
LAST_90 = {"period": "90d"}


@pytest.fixture
def channel(app, session, make_partner, make_user, make_product_line):
    """Five partners and their offers, each at a known distance before now:

    ========  ==========================================================================
    A         a1 offered 70 d ago, accepted +1 h, contacted +5 h, still open (overdue);
    (Alpha)   a2 offered 69 d ago, accepted +2 h, contacted +60 h (late), won $2,000;
              a3 offered 30 d ago, accepted +1 h, contacted +3 h, lost to Deere;
              a4 offered 6 h ago, unanswered (untouched);
              a5 offered 110 d ago (before the 90 days), accepted, never worked (overdue).
    B         b1 offered 20 d ago, declined (out of area);
    (Bravo)   b2 offered 60 d ago, accepted +30 h, never contacted (overdue).
    D         d1 offered to D 50 d ago, forwarded to its dealer C +1 h, accepted +2 h,
    (Delta)   contacted +3 h, won $500.
    C         c2 offered 10 h ago, unanswered (untouched).
    Q         nothing.
    ========  ==========================================================================
    """
    now = utcnow().replace(microsecond=0)
    session.add(Competitor(name="Deere"))
    make_product_line("TRC", name="Tractors")
    a = make_partner("A", name="Alpha Dealer")
    b = make_partner("B", name="Bravo Dealer")
    d = make_partner("D", name="Delta Distributor", kind="distributor")
    c = make_partner("C", name="Charlie Dealer", parent_id=d.id)
    q = make_partner("Q", name="Quiet Dealer")
    people = (("A", a, "ann@alpha.test", "Ann Alpha"), ("A2", a, "sam@alpha.test", "Sam Sales"),
              ("B", b, "bob@bravo.test", "Bob Bravo"), ("C", c, "cat@charlie.test", "Cat Charlie"),
              ("D", d, "dan@delta.test", "Dan Delta"))
    users = {}
    for key, partner, email, name in people:
        users[key] = make_user("partner", partner=partner, email=email)
        users[key].name = name
    manager = make_user("manager", email="mia@maker.test")
    manager.name = "Mia Manager"
    session.commit()

    def act(code: str) -> Actor:
        return Actor.of(users[code])

    def offered(partner: Any, ago: timedelta, **fields: Any) -> Lead:
        at = now - ago
        lead = Lead(first_name="Pat", last_name=f"Prospect {partner.code}{int(ago / HOUR)}",
                    email=f"pat.{partner.code.lower()}{int(ago / HOUR)}@example.com",
                    postal_code="50401", city="Mason City", region="US-IA", country="US",
                    **fields)
        lead.product_line = make_product_line("TRC")
        lifecycle.capture(session, lead, Actor.system("test"), now=at - HOUR)
        lifecycle.qualify(session, lead, "qualified", reason="test", score=80, rank="hot",
                          actor=Actor.system("test"), now=at - HOUR)
        lifecycle.offer(session, lead, partner, Actor.system(), now=at)
        return lead

    a1 = offered(a, 70 * DAY)
    lifecycle.accept(session, a1, act("A"), now=now - 70 * DAY + HOUR)
    lifecycle.advance(session, a1, "contacted", act("A"), now=now - 70 * DAY + 5 * HOUR)
    a2 = offered(a, 69 * DAY)
    lifecycle.accept(session, a2, act("A"), now=now - 69 * DAY + 2 * HOUR)
    lifecycle.advance(session, a2, "contacted", act("A"), now=now - 69 * DAY + 60 * HOUR)
    lifecycle.close(session, a2, "won", act("A"), data={"amount": "2000"}, now=now - 60 * DAY)
    a3 = offered(a, 30 * DAY)
    lifecycle.accept(session, a3, act("A"), now=now - 30 * DAY + HOUR)
    lifecycle.advance(session, a3, "contacted", act("A"), now=now - 30 * DAY + 3 * HOUR)
    lifecycle.close(session, a3, "lost", act("A"),
                    data={"reason": "competitor", "competitor": "deere"}, now=now - 25 * DAY)
    offered(a, 6 * HOUR)
    a5 = offered(a, 110 * DAY)
    lifecycle.accept(session, a5, act("A"), now=now - 110 * DAY + HOUR)

    b1 = offered(b, 20 * DAY)
    lifecycle.decline(session, b1, act("B"), reason="out_of_area", now=now - 20 * DAY + HOUR)
    b2 = offered(b, 60 * DAY)
    lifecycle.accept(session, b2, act("B"), now=now - 60 * DAY + 30 * HOUR)

    d1 = offered(d, 50 * DAY)
    lifecycle.forward(session, d1, c, act("D"), now=now - 50 * DAY + HOUR)
    lifecycle.accept(session, d1, act("C"), now=now - 50 * DAY + 2 * HOUR)
    lifecycle.advance(session, d1, "contacted", act("C"), now=now - 50 * DAY + 3 * HOUR)
    lifecycle.close(session, d1, "won", act("C"), data={"amount": "500"}, now=now - 45 * DAY)
    offered(c, 10 * HOUR)
    session.commit()
    return {"now": now, "A": a, "B": b, "C": c, "D": d, "Q": q, "users": users,
            "manager": manager}


# --- the known answers themselves --------------------------------------------------------


def test_the_last_90_days_of_each_partner_in_one_query(session, channel, count_queries):
    partners = [channel[code] for code in "ABCDQ"]
    with count_queries() as counter:
        got = metrics.counts_for(session, metrics.last_days(90), partners)
    assert counter.count == 1
    a, b, c, d, q = (got[p.id] for p in partners)
    assert (a.offered, a.accepted, a.followed_up, a.on_time) == (4, 3, 3, 2)  # not a5
    assert (a.follow_up_rate, a.on_time_follow_up_rate) == (0.75, 0.5)
    assert (a.overdue, a.accepted_past_due, a.outcome_compliance) == (1, 2, 0.5)
    assert (a.won, a.lost, a.win_rate, a.untouched) == (1, 1, 0.5, 1)
    assert (b.offered, b.follow_up_rate, b.overdue, b.outcome_compliance) == (2, 0, 1, 0)
    assert b.win_rate is None and b.untouched == 1  # the declined b1
    assert (c.offered, c.follow_up_rate, c.on_time_follow_up_rate) == (2, 0.5, 0.5)
    assert (c.outcome_compliance, c.win_rate) == (1, 1)
    # The distributor passed d1 on: it counts for C, and D shows C's figures rolled up.
    assert (d.offered, d.followed_up, d.won, d.outcome_compliance) == (2, 1, 1, 1)
    assert q.offered == 0 and q.follow_up_rate is None and q.win_rate is None
    # The same as the league table's "Last 90 days" finds for each.
    league = {row.partner.code: row.shown for row in metrics.league(
        session, metrics.last_days(90), partners)}
    for code, figures in zip("ABCDQ", (a, b, c, d, q), strict=True):
        assert league[code].as_json() | {"median_hours_to_accept": None, "lost_to": {},
                                         "declined_by_reason": {}} == \
            figures.as_json() | {"median_hours_to_accept": None}


# --- the scorecard PDF -------------------------------------------------------------------


def pdf_text(data: bytes) -> list[str]:
    """The PDF's text as pdftotext lays it out, one line per row, spaces squeezed."""
    assert data.startswith(b"%PDF-")
    binary = shutil.which("pdftotext")
    assert binary, "pdftotext (poppler-utils) is needed to read the PDF back"
    done = subprocess.run([binary, "-layout", "-enc", "UTF-8", "-", "-"], input=data,
                          capture_output=True, check=True)
    return [" ".join(line.split()) for line in done.stdout.decode().splitlines()
            if line.strip()]


def test_the_scorecard_pdf_has_the_pages_figures_against_the_channel_median(
        client, auth, channel):
    auth.login("manager")
    page = client.get("/reports/partners/A", query_string=LAST_90).get_data(as_text=True)
    assert 'href="/reports/partners/A.pdf?period=90d"' in page and "Download PDF" in page

    response = client.get("/reports/partners/A.pdf", query_string=LAST_90)
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Content-Disposition"].startswith(
        'attachment; filename="scorecard-A-')
    lines = pdf_text(response.data)
    assert "Alpha Dealer A" in lines
    assert any(line.startswith("Partner scorecard · Last 90 days") for line in lines)
    # Figure, Alpha's value, the channel's median partner (A, B and C have offers;
    # D's own were passed on): follow-up 75 / 0 / 50 %, on time 50 / 0 / 50 %,
    # compliance 50 / 0 / 100 %, win rate 50 / — / 100 %, accept 75 / 50 / 50 %.
    def row(figure: str) -> str:
        found = [line for line in lines if line.startswith(figure + " ")]
        assert found, figure
        return found[0]

    assert row("Offered").startswith("Offered 4 —")
    assert row("Accept rate").startswith("Accept rate 75% 50%")
    assert row("Median to accept").startswith("Median to accept 1.0 h 1.0 h")
    assert row("Follow-up").startswith("Follow-up 75% 50%")
    assert row("On time").startswith("On time 50% 50%")
    assert row("Overdue").startswith("Overdue 1 —")
    assert row("Outcome compliance").startswith("Outcome compliance 50% 50%")
    assert row("Untouched").startswith("Untouched 1 —")
    assert row("Won").startswith("Won 1 —") and row("Lost").startswith("Lost 1 —")
    assert row("Win rate").startswith("Win rate 50% 75%")
    assert row("Revenue").startswith("Revenue $2,000 —")
    assert "Lost to Deere 1" in lines
    # The trend: the chart (its legend) and its numbers, one row a week, twelve weeks.
    assert "Follow-up rate Acceptance rate Win rate" in lines
    weeks = [line for line in lines if re.match(r"\d\d [A-Z][a-z]{2} \d{4} \d+ ", line)]
    assert len(weeks) == 12
    assert sum(int(line.split()[3]) for line in weeks) == 4  # a1..a4, offered in 12 weeks


def test_the_scorecard_pdf_on_a4_and_for_a_distributor_with_its_dealers(
        client, auth, channel):
    from pypdf import PdfReader

    auth.login("manager")
    letter = PdfReader(io.BytesIO(client.get("/reports/partners/D.pdf").data))
    assert [round(float(v)) for v in letter.pages[0].mediabox[2:]] == [612, 792]
    a4 = client.get("/reports/partners/D.pdf", query_string={"paper": "a4", **LAST_90})
    reader = PdfReader(io.BytesIO(a4.data))
    assert [round(float(v)) for v in reader.pages[0].mediabox[2:]] == [595, 842]
    lines = pdf_text(a4.data)
    assert "Distributor: its own offers and its dealers' offers." in lines
    assert any(line.startswith("Offered 2 ") for line in lines)
    assert any(line.startswith("Revenue $500 ") for line in lines)
    assert any(line.startswith("Win rate 100% 75%") for line in lines)


def test_the_scorecard_pdf_follows_the_scorecards_access_rules(
        client, auth, channel, make_user):
    users = channel["users"]
    auth.login_as(users["D"])  # a distributor: itself and its dealers
    assert client.get("/reports/partners/D.pdf").status_code == 200
    assert client.get("/reports/partners/C.pdf").status_code == 200
    assert client.get("/reports/partners/A.pdf").status_code == 404
    auth.logout()
    auth.login_as(users["C"])  # a dealer: only itself, not its distributor
    assert client.get("/reports/partners/C.pdf").status_code == 200
    assert client.get("/reports/partners/D.pdf").status_code == 404
    auth.logout()
    auth.login_as(users["B"])
    assert client.get("/reports/partners/A.pdf").status_code == 404
    assert client.get("/reports/partners/NOPE.pdf").status_code == 404
    auth.logout()
    assert client.get("/reports/partners/A.pdf").status_code == 302  # sign in first


# --- the partners list and the partner page ----------------------------------------------


def _cells(page: str, code: str, last: int = 5) -> list[str]:
    """The last ``last`` cells of the partners list's row for ``code``, as they read."""
    start = page.index(f">{code}</a></td>")
    row = page[start:page.index("</tr>", start)]
    cells = [" ".join(re.sub(r"<[^>]+>", " ", cell).split())
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.DOTALL)]
    return cells[-last:]


def test_the_partners_list_shows_each_partners_last_90_days(client, auth, channel):
    auth.login("manager")
    page = client.get("/manage/partners").get_data(as_text=True)
    # follow-up, on time, overdue, outcome compliance, win rate
    assert _cells(page, "A") == ["75%", "50%", "1", "50%", "50%"]
    assert _cells(page, "B") == ["0%", "0%", "1", "0%", "—"]
    assert _cells(page, "C") == ["50%", "50%", "0", "100%", "100%"]
    assert _cells(page, "D") == ["50%", "50%", "0", "100%", "100%"]  # with its dealer
    assert _cells(page, "Q") == ["—"] * 5
    # Each figure opens the report behind it: the scorecard, the overdue leads, the
    # league table sorted by the column.
    assert 'href="/reports/partners/A?period=90d"' in page
    assert "/reports/leads?figure=overdue&amp;partner=A&amp;rolled=0&amp;period=90d" in page
    assert "/reports/partners?period=90d&amp;sort=follow_up_rate&amp;dir=desc" in page
    drill = client.get("/reports/leads", query_string={
        "figure": "overdue", "partner": "A", **LAST_90}).get_data(as_text=True)
    assert "1 offer." in drill


def test_the_partners_list_asks_once_for_the_whole_page(
        session, client, auth, channel, make_partner, make_lead, count_queries):
    auth.login("manager")
    with count_queries() as few:
        assert client.get("/manage/partners").status_code == 200
    for n in range(6):  # six more partners on the page, each with an offer
        lifecycle.offer(session, make_lead(), make_partner(f"X{n}", name=f"Extra {n}"),
                        Actor.system())
    session.commit()
    with count_queries() as more:
        page = client.get("/manage/partners").get_data(as_text=True)
    assert _cells(page, "X5") == ["0%", "0%", "0", "—", "—"]
    assert more.count == few.count


def test_the_partner_page_shows_the_same_figures(client, auth, channel):
    auth.login("manager")
    page = client.get("/manage/partners/A").get_data(as_text=True)
    text = " ".join(re.sub(r"<[^>]+>", " ", page).split())
    assert ("Follow-up and compliance, last 90 days Offered 4 Follow-up 75% On time 50% "
            "Overdue 1 Outcome compliance 50% Win rate 50%") in text
    distributor = " ".join(re.sub(r"<[^>]+>", " ", client.get(
        "/manage/partners/D").get_data(as_text=True)).split())
    assert "Offered 2 (with its dealers') Follow-up 50%" in distributor
    quiet = client.get("/manage/partners/Q").get_data(as_text=True)
    assert "No offers in the last 90 days." in quiet


# --- the compliance list and its reminder ------------------------------------------------


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def _compliance_rows(page: str) -> dict[str, str]:
    """Each row of the compliance list, tags stripped, by its partner's code."""
    body = page[page.index("<tbody>"):page.index("</tbody>")]
    rows = {}
    for row in body.split("<tr>")[1:]:
        code = re.search(r'<span class="muted">([A-Z0-9]+)', row)
        assert code
        rows[code.group(1)] = _text(row)
    return rows


def _part(message: Any, content_type: str) -> str:
    """One part of an email as received, decoded."""
    for part in message.walk():
        if part.get_content_type() == content_type:
            return str(part.get_payload(decode=True).decode()).replace("\r\n", "\n")
    raise AssertionError(f"no {content_type} part")


def test_the_compliance_list_shows_who_sits_on_leads_oldest_first(
        client, auth, channel, count_queries, make_partner, make_lead, session):
    auth.login("manager")
    with count_queries() as three:
        response = client.get("/reports/compliance")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert 'aria-current="page">Compliance</a>' in page  # its tab, now that it exists
    rows = _compliance_rows(page)
    assert list(rows) == ["A", "B", "C"]  # oldest first: 110 days, 60 days, 10 hours
    # overdue outcomes, oldest overdue, untouched, oldest untouched, last reminded
    assert "Alpha Dealer A — 2 110 days 1 6 h Never Remind" == rows["A"]
    assert "Bravo Dealer B — 1 60 days 0 — Never Remind" == rows["B"]
    assert "Charlie Dealer C Delta Distributor 0 — 1 10 h Never Remind" == rows["C"]
    assert 'href="/leads/search?partner=A&amp;overdue=y"' in page
    assert 'href="/leads/search?partner=A&amp;status=offered"' in page
    # A distributor's dealers only, when asked.
    only_d = _compliance_rows(client.get("/reports/compliance",
                                         query_string={"distributor": "D"}).get_data(as_text=True))
    assert list(only_d) == ["C"]
    # The page asks the same few queries however many partners it lists.
    for n in range(4):
        lifecycle.offer(session, make_lead(), make_partner(f"Y{n}", name=f"Slow {n}"),
                        Actor.system())
    session.commit()
    with count_queries() as seven:
        assert len(_compliance_rows(client.get("/reports/compliance").get_data(
            as_text=True))) == 7
    assert seven.count == three.count


def test_the_compliance_list_is_for_staff(client, auth, channel):
    auth.login_as(channel["users"]["D"])
    assert client.get("/reports/compliance").status_code == 403
    assert client.post("/reports/compliance/C/remind").status_code == 403
    assert "Compliance" not in client.get("/reports/partners").get_data(as_text=True)


def test_a_reminder_emails_the_partners_users_the_list_once_and_is_logged(
        session, client, auth, channel, outbox, make_user):
    from portal.core.models import ComplianceReminder, MailPreference, Notification

    quiet = make_user("partner", partner=channel["A"], email="quiet@alpha.test")
    session.add(MailPreference(user_id=quiet.id, alerts="off"))
    make_user("partner", partner=channel["A"], email="gone@alpha.test", active=False)
    session.commit()
    auth.login_as(channel["manager"])
    outbox.clear()

    response = client.post("/reports/compliance/A/remind")
    assert response.status_code == 303
    assert response.headers["Location"] == "/reports/compliance"
    assert sorted(m["To"] for m in outbox) == ["ann@alpha.test", "sam@alpha.test"]
    message = next(m for m in outbox if m["To"] == "ann@alpha.test")
    assert message["Subject"] == "Reminder: leads to bring up to date: 2 overdue, 1 waiting"
    text, html = _part(message, "text/plain"), _part(message, "text/html")
    assert "Mia Manager asks Alpha Dealer to bring these leads up to date." in text
    overdue_part = text[text.index("OUTCOME OVERDUE: 2"):text.index("WAITING FOR YOUR ANSWER")]
    # The oldest first (a5, then a1), each with its link; how late each is.
    items = re.findall(r"^- (.+)\n  (http\S+)$", overdue_part, re.MULTILINE)
    assert [line for line, _ in items] == [
        "Hot · Tractors · Mason City, IA 50401 — accepted 109 days ago, outcome 64 days overdue",
        "Hot · Tractors · Mason City, IA 50401 — accepted 69 days ago, outcome 24 days overdue"]
    assert all(re.fullmatch(r"http://portal\.test/leads/[0-9a-f-]{36}", link)
               for _, link in items)
    assert "WAITING FOR YOUR ANSWER: 1\n- Hot · Tractors · Mason City, IA 50401 — " \
           "offered 6 h ago, not yet accepted" in text
    assert "Open your overdue leads: http://portal.test/leads/?tab=overdue" in text
    assert 'href="http://portal.test/leads/?tab=overdue"' in html
    assert "Outcome overdue: 2" in html and html.count('<li style=') == 3

    page = client.get("/reports/compliance").get_data(as_text=True)
    assert "Reminder sent to 2 people at Alpha Dealer: 2 overdue outcomes, 1 untouched " \
           "lead." in _text(page)
    row = _compliance_rows(page)["A"]
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC by Mia Manager to 2 people: "
                     r"2 overdue, 1 untouched then", row), row

    # A double click: the second finds the first and sends nothing.
    again = client.post("/reports/compliance/A/remind")
    assert again.status_code == 303 and len(outbox) == 2
    assert "Alpha Dealer was reminded 1 min ago by Mia Manager; not sent again." in _text(
        client.get("/reports/compliance").get_data(as_text=True))
    reminders = session.scalars(sa_select(ComplianceReminder)).all()
    assert len(reminders) == 1 and reminders[0].recipients == 2
    assert reminders[0].by_user_id == channel["manager"].id
    sent = session.scalars(sa_select(Notification).where(
        Notification.kind == "compliance_reminder")).all()
    assert sorted(n.status for n in sent) == ["sent", "sent"]

    # A minute later, a new click is a new reminder.
    reminders[0].created_at -= timedelta(minutes=2)
    session.commit()
    assert client.post("/reports/compliance/A/remind").status_code == 303
    assert len(outbox) == 4
    assert len(session.scalars(sa_select(ComplianceReminder)).all()) == 2


def test_a_reminder_needs_the_csrf_token(app, session, client, auth, channel, outbox):
    from portal.core.models import ComplianceReminder
    from tests.portal.test_auth import csrf_token_from

    auth.login_as(channel["manager"])
    outbox.clear()
    app.config["WTF_CSRF_ENABLED"] = True
    refused = client.post("/reports/compliance/B/remind")
    assert refused.status_code == 400
    assert outbox == [] and session.scalars(sa_select(ComplianceReminder)).all() == []
    token = csrf_token_from(client.get("/reports/compliance").get_data(as_text=True))
    done = client.post("/reports/compliance/B/remind", data={"csrf_token": token})
    assert done.status_code == 303
    assert [m["To"] for m in outbox] == ["bob@bravo.test"]
    assert "Reminder: leads to bring up to date: 1 overdue" == outbox[0]["Subject"]


def test_no_reminder_when_there_is_nothing_to_say_or_nobody_to_tell(
        session, client, auth, channel, outbox):
    from portal.core.models import ComplianceReminder, MailPreference

    session.add(MailPreference(user_id=channel["users"]["C"].id, alerts="off"))
    session.commit()
    auth.login_as(channel["manager"])
    outbox.clear()
    page = client.get("/reports/compliance").get_data(as_text=True)
    assert "Nobody to email" in _compliance_rows(page)["C"]
    client.post("/reports/compliance/C/remind")
    assert "Nobody at Charlie Dealer takes alert emails" in _text(
        client.get("/reports/compliance").get_data(as_text=True))
    client.post("/reports/compliance/Q/remind")
    assert "Quiet Dealer has no overdue outcome and no untouched lead now" in _text(
        client.get("/reports/compliance").get_data(as_text=True))
    assert client.post("/reports/compliance/NOPE/remind").status_code == 404
    assert outbox == [] and session.scalars(sa_select(ComplianceReminder)).all() == []


# --- two clicks at the same moment -------------------------------------------------------


@pytest.fixture
def racing(migrated_app, smtp_server):
    """A second app on the run's database with no outer transaction (so requests truly
    overlap on PostgreSQL), and a partner with one untouched lead and one user, and a
    manager, all committed; removed afterwards."""
    import uuid

    from portal import create_app
    from portal.core.models import (
        ComplianceReminder,
        LoginAttempt,
        Notification,
        Partner,
        User,
    )
    from portal.extensions import db
    from tests.conftest import PASSWORD, base_config

    config = base_config(migrated_app.config["DATABASE_URL"])
    config.update(PROPAGATE_EXCEPTIONS=False, WTF_CSRF_ENABLED=False,
                  MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    app = create_app(config)
    tag = uuid.uuid4().hex[:8]
    with app.app_context():
        session = db.session
        partner = Partner(code=f"R{tag}".upper(), name=f"Race {tag}", kind="dealer",
                          postal_code="50401", country="US", region="US-IA")
        users = [User(email=f"{who}{tag}@race.test", name=who.title(), role=role,
                      partner=partner if role == "partner" else None)
                 for who, role in (("rita", "partner"), ("max", "manager"))]
        for user in users:
            user.set_password(PASSWORD)
        session.add_all([partner, *users])
        session.flush()
        lead = Lead(first_name="Ray", last_name=tag, email=f"ray{tag}@example.com",
                    postal_code="50401", country="US", region="US-IA")
        lifecycle.capture(session, lead, Actor.system("test"))
        lifecycle.qualify(session, lead, "qualified", reason="test", score=80, rank="hot",
                          actor=Actor.system("test"))
        lifecycle.offer(session, lead, partner, Actor.system())
        session.commit()
        ids = {"partner": partner.id, "code": partner.code, "lead": lead.id,
               "users": [u.id for u in users], "emails": [u.email for u in users]}
    try:
        yield app, ids
    finally:
        with app.app_context():
            session = db.session
            for model, column in ((Notification, Notification.partner_id),
                                  (ComplianceReminder, ComplianceReminder.partner_id)):
                session.execute(sa_delete(model).where(column == ids["partner"]))
            rollups.forget_leads(session.connection(), [ids["lead"]])  # counted, going
            session.execute(sa_delete(Lead).where(Lead.id == ids["lead"]))
            session.execute(sa_delete(Notification).where(
                Notification.user_id.in_(ids["users"])))
            session.execute(sa_delete(User).where(User.id.in_(ids["users"])))
            session.execute(sa_delete(LoginAttempt).where(
                LoginAttempt.email.in_(ids["emails"])))
            session.delete(session.get(Partner, ids["partner"]))
            session.commit()
            db.engine.dispose()


def test_clicks_at_the_same_moment_send_one_reminder(racing, outbox):
    import threading

    from portal.core.models import ComplianceReminder, Notification
    from portal.extensions import db
    from tests.conftest import PASSWORD

    app, ids = racing
    outbox.clear()  # (this test has no ``app`` fixture to clear it)
    clients = []
    for _ in range(6):  # six tabs, one manager
        client = app.test_client()
        signed_in = client.post("/auth/login", data={"email": ids["emails"][1],
                                                     "password": PASSWORD})
        assert signed_in.status_code == 303
        clients.append(client)
    start = threading.Barrier(len(clients))
    answers: list[int] = []

    def click(client: Any) -> None:
        start.wait()
        answers.append(client.post(f"/reports/compliance/{ids['code']}/remind").status_code)

    threads = [threading.Thread(target=click, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert answers == [303] * len(clients)
    with app.app_context():
        session = db.session
        reminders = session.scalars(sa_select(ComplianceReminder).where(
            ComplianceReminder.partner_id == ids["partner"])).all()
        rows = session.scalars(sa_select(Notification).where(
            Notification.partner_id == ids["partner"],
            Notification.kind == "compliance_reminder")).all()
        session.rollback()
    assert len(reminders) == 1 and len(rows) == 1
    assert [m["To"] for m in outbox if m["Subject"].startswith("Reminder: leads")] == [
        ids["emails"][0]]
