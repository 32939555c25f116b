"""Nurture tracks: enrolment, timed emails sent once, hand-raise, unsubscribe, clicks."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from portal.core.jobs import enqueue
from portal.core.models import (
    Lead,
    LeadEvent,
    NurtureEnrollment,
    NurtureSend,
    NurtureStep,
    NurtureTrack,
    utcnow,
)
from portal.nurture import jobs as njobs
from portal.nurture.services import make_token
from tests.conftest import PASSWORD

RESEARCHING = {
    "first_name": "Robin", "last_name": "Hayes", "email": "robin@hayesfarm.com",
    "phone": "(641) 555-0199", "postal_code": "50401", "country": "US", "product_line": "TRC",
    "answers": {"timeline": "researching", "budget": "planned", "role": "decision_maker"},
}


def text_of(message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


def link(message, label: str) -> str:
    """The path of the link after ``label`` in the email's text."""
    match = re.search(rf"{re.escape(label)}[^\n]*?(https?://\S+)", text_of(message))
    assert match, text_of(message)
    return urlsplit(match.group(1)).path


def csrf_from(page: str) -> str:
    match = re.search(r'"X-CSRFToken": "([^"]+)"', page)  # every page carries it for htmx
    assert match, page
    return match.group(1)


def press(client, path: str) -> object:
    """Open the page and press its button, as a prospect's browser would (with CSRF)."""
    page = client.get(path)
    assert page.status_code == 200
    return client.post(path, data={"csrf_token": csrf_from(page.get_data(as_text=True))})


@pytest.fixture
def track(session, make_product_line):
    """The TRC track: a welcome email at once, a brochure a week later."""
    line = make_product_line("TRC")
    item = NurtureTrack(name="TRC buyers' guide", product_line=line, active=True)
    session.add(item)
    session.flush()
    session.add_all([
        NurtureStep(track_id=item.id, position=1, delay_days=0, subject="Choosing a tractor",
                    body="Three things to weigh when you choose a tractor."),
        NurtureStep(track_id=item.id, position=2, delay_days=7, subject="The TRC brochure",
                    body="Specifications and prices.", link_url="https://cdn.example.com/trc.pdf",
                    link_label="Download the TRC brochure"),
    ])
    session.flush()
    return item


@pytest.fixture
def nurtured(client, session, make_user, make_partner, track):
    """A researching inquiry captured through the API: it lands in nurture."""
    make_partner("D-IA", name="Hayes Implement", territories=["zip:504*"], phone="641-555-0100",
                 city="Mason City")
    user = make_user("manager")
    token = client.post("/api/v1/tokens", json={"email": user.email,
                                                "password": PASSWORD}).json["token"]
    body = client.post("/api/v1/leads", json=RESEARCHING,
                       headers={"Authorization": f"Bearer {token}"}).json
    assert body["status"] == "nurture"
    lead = session.scalars(select(Lead).where(Lead.email == "robin@hayesfarm.com")).one()
    session.commit()
    return lead


def sweep(session) -> None:
    """Run the periodic job for real (its own session and commit, as in the worker)."""
    # The test's session commits around it: requests roll back what it has not committed,
    # and the job's work must not sit inside such an open savepoint.
    session.commit()
    enqueue("nurture_sweep")
    session.commit()


def sends(session, status: str = "sent") -> int:
    return session.scalar(select(func.count()).select_from(NurtureSend)
                          .where(NurtureSend.status == status)) or 0


def run_sweep(session, now=None) -> tuple[int, int]:
    """The sweep, in the test's session: (leads enrolled, emails the mail server took)."""
    before = sends(session)
    outcomes = njobs.sweep(now=now)
    return outcomes["enrolled"], sends(session) - before


def test_the_job_enrols_and_sends_each_step_once(app, session, nurtured, track, outbox):
    sweep(session)
    sweep(session)  # the job running again sends nothing twice
    assert [m["Subject"] for m in outbox] == ["Choosing a tractor"]
    message = outbox[0]
    assert message["To"] == "robin@hayesfarm.com"
    assert "Three things to weigh" in text_of(message)
    assert "/n/" in link(message, "A dealer near you will call")
    assert message["List-Unsubscribe"].strip().startswith("<http://portal.test/n/")
    session.expire_all()
    enrollment = session.scalars(select(NurtureEnrollment)).one()
    assert enrollment.lead_id == nurtured.id and enrollment.status == "active"
    assert enrollment.next_step == 2
    assert "nurture_enrolled" in [e.kind for e in nurtured.events]

    later = utcnow() + timedelta(days=8)
    assert run_sweep(session, now=later) == (0, 1)
    assert run_sweep(session, now=later + timedelta(days=30)) == (0, 0)
    assert [m["Subject"] for m in outbox] == ["Choosing a tractor", "The TRC brochure"]
    assert "Download the TRC brochure" in text_of(outbox[1])
    assert enrollment.status == "finished" and sends(session) == 2


def test_a_step_claimed_by_a_concurrent_sweep_is_not_sent_again(session, nurtured, track,
                                                                 outbox):
    now = utcnow()
    from portal.nurture.services import enrol

    enrollment = enrol(session, nurtured, now=now)
    first = track.steps[0]
    # Another sweep already claimed (and sent) step 1 but this one read the old state.
    session.add(NurtureSend(enrollment_id=enrollment.id, step_id=first.id, status="sent",
                            sent_at=now))
    session.flush()
    assert run_sweep(session, now=now) == (0, 0)
    assert outbox == []
    assert sends(session) == 1


def test_talk_to_a_dealer_now_makes_the_lead_hot_and_routes_it(client, app, session, nurtured,
                                                               outbox):
    app.config["WTF_CSRF_ENABLED"] = True
    sweep(session)
    path = link(outbox[0], "A dealer near you will call")
    page = client.get(path).get_data(as_text=True)
    assert "would you like a" in page and "Yes, have a dealer contact me" in page
    session.expire_all()
    assert nurtured.status == "nurture"  # opening the link (a mail scanner) changes nothing

    response = press(client, path)
    assert response.status_code == 303
    session.expire_all()
    assert nurtured.status == "offered" and nurtured.rank == "hot"
    assert nurtured.assigned_partner.code == "D-IA"
    assert nurtured.engagements == 1
    assert nurtured.qualification_reason == "asked to talk to a dealer now"
    thanks = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Hayes Implement" in thanks and "in Mason City" in thanks
    assert "(641) 555-0100" in thanks  # as people there write it

    press(client, path)  # a second press changes nothing
    session.expire_all()
    assert nurtured.engagements == 1
    enrollment = session.scalars(select(NurtureEnrollment)).one()
    assert enrollment.status == "hand_raised"
    assert run_sweep(session, now=utcnow() + timedelta(days=30)) == (0, 0)
    assert len(outbox) == 1


def test_unsubscribe_stops_the_track(client, app, session, nurtured, outbox):
    app.config["WTF_CSRF_ENABLED"] = True
    sweep(session)
    path = link(outbox[0], "Unsubscribe")
    assert "Stop the emails" in client.get(path).get_data(as_text=True)
    response = press(client, path)
    assert response.status_code == 303
    assert "You are unsubscribed" in client.get(path).get_data(as_text=True)
    assert run_sweep(session, now=utcnow() + timedelta(days=30)) == (0, 0)
    assert len(outbox) == 1
    session.expire_all()
    assert nurtured.status == "nurture"
    assert session.scalars(select(LeadEvent.kind).where(
        LeadEvent.lead_id == nurtured.id).order_by(LeadEvent.seq.desc())).first() \
        == "nurture_unsubscribed"


def test_unsubscribe_without_the_csrf_token_is_refused(client, app, session, nurtured):
    app.config["WTF_CSRF_ENABLED"] = True
    sweep(session)
    enrollment = session.scalars(select(NurtureEnrollment)).one()
    response = client.post(f"/n/{make_token('unsubscribe', enrollment.id)}/unsubscribe")
    assert response.status_code == 400
    session.expire_all()
    assert enrollment.status == "active"


def test_a_content_click_counts_once_and_opens_the_content(client, app, session, nurtured,
                                                           outbox):
    app.config["WTF_CSRF_ENABLED"] = True
    sweep(session)
    run_sweep(session, now=utcnow() + timedelta(days=8))
    session.commit()
    path = link(outbox[1], "Download the TRC brochure")
    assert "Specifications and prices." in client.get(path).get_data(as_text=True)
    response = press(client, path)
    assert response.status_code == 303
    assert response.headers["Location"] == "https://cdn.example.com/trc.pdf"
    press(client, path)
    session.expire_all()
    assert nurtured.engagements == 1
    rescored = session.scalars(select(LeadEvent).where(
        LeadEvent.lead_id == nurtured.id, LeadEvent.kind == "rescored")).one()
    assert rescored.data["reason"] == "read nurture email: The TRC brochure"


def test_forged_or_crossed_tokens_are_404(client, session, nurtured, track):
    sweep(session)
    enrollment = session.scalars(select(NurtureEnrollment)).one()
    assert client.get("/n/not-a-token/talk").status_code == 404
    # A token signed for unsubscribing does not hand-raise, and vice versa.
    assert client.get(f"/n/{make_token('unsubscribe', enrollment.id)}/talk").status_code == 404
    assert client.get(f"/n/{make_token('talk', enrollment.id)}/talk").status_code == 200
    first = track.steps[0]  # no content link on step 1
    assert client.get(f"/n/{make_token('click', enrollment.id, first.id)}/click"
                      ).status_code == 404


def test_a_lead_that_left_nurture_gets_no_more_emails(session, nurtured, outbox):
    from portal.core import lifecycle

    run_sweep(session)
    lifecycle.disqualify(session, nurtured, lifecycle.Actor.system("test"), reason="spam")
    assert run_sweep(session, now=utcnow() + timedelta(days=30)) == (0, 0)
    assert len(outbox) == 1
    assert session.scalars(select(NurtureEnrollment)).one().status == "finished"


def test_managers_build_tracks_and_see_their_results(client, auth, session, make_product_line,
                                                     nurtured, track):
    auth.login("manager")
    make_product_line("CMB", name="Combines")
    session.commit()
    form = client.get("/manage/nurture/new").get_data(as_text=True)
    assert "Any product line (fallback)" in form and "CMB · Combines" in form
    response = client.post("/manage/nurture/new", data={"name": "Combine season",
                                                        "product_line": "", "active": "y"})
    assert response.status_code == 303
    new_track = session.scalars(select(NurtureTrack).where(
        NurtureTrack.name == "Combine season")).one()
    assert new_track.product_line_id is None and new_track.active
    step_path = f"/manage/nurture/{new_track.id}/steps/new"
    assert 'value="1"' in client.get(step_path).get_data(as_text=True)
    response = client.post(step_path, data={
        "position": "1", "delay_days": "2", "subject": "Harvest ready?", "body": "Hello",
        "link_url": "javascript:alert(1)"})
    assert response.status_code == 422
    assert "Give a full web address starting with https://." in response.get_data(as_text=True)
    response = client.post(step_path, data={"position": "1", "delay_days": "2",
                                            "subject": "Harvest ready?", "body": "Hello"})
    assert response.status_code == 303
    response = client.post(step_path, data={"position": "1", "delay_days": "2",
                                            "subject": "Again", "body": "Hello"})
    assert response.status_code == 422
    assert "Step 1 exists already" in response.get_data(as_text=True)

    sweep(session)
    nurtured_path = make_token("talk", session.scalars(select(NurtureEnrollment.id)).one())
    client.post(f"/n/{nurtured_path}/talk", data={})
    listing = client.get("/manage/nurture/").get_data(as_text=True)
    row = re.search(r"TRC buyers&#39; guide</a></td>(.*?)</tr>", listing, re.S).group(1)
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row)
    # product line, emails, enrolled, active, hand-raised, converted, unsubscribed
    assert cells[:7] == ["TRC", "2", "1", "0", "1", "0", "0"]
    detail = client.get(f"/manage/nurture/{track.id}").get_data(as_text=True)
    assert "Choosing a tractor" in detail and "7 days after the previous email" in detail


def test_partners_cannot_manage_tracks(client, auth, make_partner):
    auth.login("partner", partner=make_partner())
    assert client.get("/manage/nurture/").status_code == 403
    assert client.post("/manage/nurture/new", data={"name": "x"}).status_code == 403


def test_a_paused_track_waits_and_a_fallback_track_takes_other_lines(session, make_lead, track,
                                                                     outbox):
    combine = make_lead(status="nurture", product_line="CMB", email="c@farm.com")
    tractor = make_lead(status="nurture", product_line="TRC", email="t@farm.com")
    assert run_sweep(session) == (1, 1)  # no track fits CMB: it waits, unenrolled
    assert [m["To"] for m in outbox] == ["t@farm.com"]

    fallback = NurtureTrack(name="Stay in touch", active=True)
    session.add(fallback)
    session.flush()
    session.add(NurtureStep(track_id=fallback.id, position=1, delay_days=0,
                            subject="Still thinking about it?", body="We are here."))
    track.active = False
    session.flush()
    week = utcnow() + timedelta(days=8)
    assert run_sweep(session, now=week) == (1, 1)  # only the fallback track sends
    assert [m["To"] for m in outbox] == ["t@farm.com", "c@farm.com"]
    enrolled = {e.lead_id: e.track_id for e in session.scalars(select(NurtureEnrollment))}
    assert enrolled == {combine.id: fallback.id, tractor.id: track.id}

    track.active = True  # resumed: the step that waited goes out
    assert run_sweep(session, now=week) == (0, 1)
    assert outbox[-1]["Subject"] == "The TRC brochure"
