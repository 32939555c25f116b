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

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Competitor, Lead, utcnow

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
