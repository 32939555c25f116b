"""Follow-up tasks, their reminders, appointment times and no-answer attempts: on the lead
page (plain POST and htmx), in "Tasks due today", the API and the minute's sweep; real
SMTP, both databases."""

from __future__ import annotations

import re
import zoneinfo
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from html import unescape
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import (
    LeadEvent,
    MailPreference,
    Notification,
    Offer,
    Task,
    utcnow,
)
from portal.core.tasks import next_task_for
from portal.dispatch import services as routing_service
from portal.leads import tasks as task_service
from portal.notify import jobs as notify_jobs
from tests.conftest import PASSWORD

HTMX = {"HX-Request": "true"}
NEW_YORK = zoneinfo.ZoneInfo("America/New_York")


def _text(response: Any) -> str:
    return response.get_data(as_text=True)


def _plain(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def _subject(message: Any) -> str:
    return str(make_header(decode_header(message["Subject"]))).replace("\r\n", "")


def _body(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


@pytest.fixture
def dealer(make_partner):
    return make_partner("D1", name="Prairie Tractors", territories=["zip:50401"])


@pytest.fixture
def seller(auth, dealer, session):
    """The dealer's salesperson, signed in, living in New York time."""
    user = auth.login("partner", partner=dealer)
    session.add(MailPreference(user_id=user.id, time_zone="America/New_York"))
    session.commit()
    return user


def _accepted(session, make_lead, user, **fields):
    lead = make_lead(postal_code="50401", city="Mason City", **fields)
    routing_service.route_lead(session, lead)
    lifecycle.accept(session, lead, Actor.of(user))
    session.commit()
    return lead


def _tomorrow_ny() -> str:
    return (utcnow().astimezone(NEW_YORK).date() + timedelta(days=1)).isoformat()


def _events(session, lead, kind):
    return list(session.scalars(select(LeadEvent).where(
        LeadEvent.lead_id == lead.id, LeadEvent.kind == kind).order_by(LeadEvent.seq)))


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _add(client, lead, headers=None, **form):
    data = {"kind": "call_back", "due_date": _tomorrow_ny(), "due_time": "10:30",
            "note": "Ask about the loader"} | form
    return client.post(f"/leads/{lead.id}/tasks", data=data, headers=headers or {})


# --- the lead page ----------------------------------------------------------------------------


def test_a_dealer_adds_a_task_without_javascript_and_sees_it_in_their_time(
        client, session, make_lead, seller):
    lead = _accepted(session, make_lead, seller)
    version = lead.version
    response = _add(client, lead)
    assert response.status_code == 303
    assert response.headers["Location"].endswith(f"/leads/{lead.id}#tasks-title")
    (task,) = session.scalars(select(Task))
    day = datetime.fromisoformat(_tomorrow_ny()).date()
    # 10:30 in New York is stored as the UTC moment it is.
    assert task.due_at == datetime(day.year, day.month, day.day, 10, 30,
                                   tzinfo=NEW_YORK).astimezone(UTC)
    page = _plain(_text(client.get(response.headers["Location"])))
    shown = f"{day:%a} {day.day} {day:%b}, 10:30"
    assert f"Task added: Call back, due {shown}." in page
    assert f"Call back · due {shown}" in page and "Ask about the loader" in page
    assert "Follow-up task added" in page  # the timeline
    assert "No notes yet." in page  # the task's note stays with the task
    session.refresh(lead)
    assert lead.status == "accepted" and lead.version == version + 1  # not a state change
    assert [e.data["title"] for e in _events(session, lead, "task_added")] == ["Call back"]


def test_htmx_ticks_off_undoes_and_deletes_a_task_in_place(client, session, make_lead, seller):
    lead = _accepted(session, make_lead, seller)
    added = _add(client, lead, headers=HTMX, kind="visit")
    assert added.status_code == 200
    html = _text(added)
    assert html.lstrip().startswith('<section class="card lead-tasks"')  # the card alone
    assert "Task added: Visit" in html
    # The timeline comes along out of band, with the new event on top.
    timeline = html[html.index('<section id="lead-timeline"'):]
    assert 'hx-swap-oob="true"' in timeline.split(">")[0]
    assert re.findall(r'<li class="event event-(\w+)"', timeline)[0] == "task_added"
    assert "Follow-up task added" in timeline
    task = session.scalars(select(Task)).one()
    done = client.post(f"/leads/{lead.id}/tasks/{task.id}/done", data={"done": "1"},
                       headers=HTMX)
    assert "Done: Visit." in _text(done) and "Undo" in _text(done)
    session.refresh(task)
    assert task.done_at is not None and task.done_by_id == seller.id
    again = client.post(f"/leads/{lead.id}/tasks/{task.id}/done", data={"done": "0"},
                        headers=HTMX)
    assert "Open again: Visit." in _text(again)
    session.refresh(task)
    assert task.done_at is None
    gone = client.post(f"/leads/{lead.id}/tasks/{task.id}/delete", headers=HTMX)
    assert "Task deleted." in _text(gone) and "No follow-up tasks yet." in _text(gone)
    assert session.scalar(select(func.count()).select_from(Task)) == 0
    kinds = [e.kind for e in session.scalars(select(LeadEvent).where(
        LeadEvent.lead_id == lead.id, LeadEvent.kind.startswith("task_")))]
    assert kinds == ["task_added", "task_done", "task_reopened", "task_deleted"]


@pytest.mark.parametrize("form, field, says", [
    ({"due_date": ""}, "due_date", "Enter the day."),
    ({"due_time": "25:00"}, "due_time", "Enter a time as HH:MM"),
    ({"due_date": "2001-01-01"}, "due_date", "Enter a date from"),
    ({"kind": "dance"}, "kind", "Not a valid choice"),
])
def test_bad_task_input_is_refused_at_its_field_and_writes_nothing(
        client, session, make_lead, seller, form, field, says):
    lead = _accepted(session, make_lead, seller)
    events = session.scalar(select(func.count()).select_from(LeadEvent))
    for headers in ({}, HTMX):
        response = _add(client, lead, headers=headers, **form)
        assert response.status_code == 422
        html = _text(response)
        assert f'id="{field}-error"' in html and says in html
    assert session.scalar(select(func.count()).select_from(Task)) == 0
    assert session.scalar(select(func.count()).select_from(LeadEvent)) == events


def _with_a_dealer(session, make_partner, make_user, make_lead):
    """A distributor's lead forwarded to its dealer, whose salesperson accepted it: the
    distributor, the dealer, their users, a manager and the lead."""
    distributor = make_partner("DX", kind="distributor", territories=["zip:50401"])
    dealer = make_partner("DD", parent_id=distributor.id)
    boss = make_user("partner", partner=distributor)
    seller = make_user("partner", partner=dealer)
    manager = make_user("manager")
    lead = make_lead(postal_code="50401")
    routing_service.route_lead(session, lead)
    lifecycle.forward(session, lead, dealer, Actor.of(boss))
    lifecycle.accept(session, lead, Actor.of(seller))
    return distributor, dealer, boss, seller, manager, lead


def test_only_the_firm_holding_the_lead_and_staff_see_or_change_its_tasks(
        app, client, session, make_partner, make_user, make_lead):
    distributor, dealer, boss, seller, manager, lead = _with_a_dealer(
        session, make_partner, make_user, make_lead)
    task_service.add_task(session, lead, seller, kind="call_back", day=_tomorrow_ny(),
                          clock="10:00")
    session.commit()
    app.config["WTF_CSRF_ENABLED"] = False

    def sign_in(user):
        client.post("/auth/logout")
        assert client.post("/auth/login", data={"email": user.email,
                                                "password": PASSWORD}).status_code == 303

    sign_in(boss)  # the distributor sees its dealer's lead, not the dealer's tasks
    page = _text(client.get(f"/leads/{lead.id}"))
    assert "Follow-up tasks" not in page
    assert _add(client, lead).status_code == 404
    task = session.scalars(select(Task)).one()
    assert client.post(f"/leads/{lead.id}/tasks/{task.id}/done").status_code == 404
    sign_in(manager)
    assert "Follow-up tasks" in _text(client.get(f"/leads/{lead.id}"))
    assert _add(client, lead, kind="send_quote").status_code == 303
    assert session.scalar(select(func.count()).select_from(Task)) == 2


# --- when the lead leaves the firm ----------------------------------------------------------------


@pytest.mark.parametrize("leaves", ["won", "reassign", "pull_back"])
def test_open_tasks_close_when_the_lead_leaves_the_firm(
        session, make_partner, make_user, make_lead, outbox, leaves):
    distributor, dealer, boss, seller, manager, lead = _with_a_dealer(
        session, make_partner, make_user, make_lead)
    other = make_partner("DO")
    now = utcnow()
    open_one = task_service.add_task(session, lead, seller, kind="call_back",
                                     day=now.date().isoformat(), clock="00:00",
                                     time_zone="UTC", now=now)
    done_one = task_service.add_task(session, lead, seller, kind="visit",
                                     day=now.date().isoformat(), clock="00:00",
                                     time_zone="UTC", now=now)
    task_service.set_done(session, lead, seller, done_one.id, True)
    session.commit()
    if leaves == "won":
        lifecycle.close(session, lead, "won", Actor.of(seller), data={"amount": "100"})
        why = "the lead was closed as won"
    elif leaves == "reassign":
        lifecycle.reassign(session, lead, other, Actor.of(manager), reason="closer")
        why = "the lead was taken back"
    else:
        from portal.leads.services import pull_back

        pull_back(session, lead, boss, reason="mine again")
        why = "the lead was taken back"
    session.commit()
    session.refresh(open_one)
    session.refresh(done_one)
    assert open_one.cancelled_at is not None and open_one.cancel_reason == why
    assert done_one.cancelled_at is None and done_one.done_at is not None  # done stays done
    page, _ = task_service.due_tasks(session, seller)
    assert page.total == 0
    outbox.clear()
    notify_jobs.sweep(now=utcnow() + timedelta(minutes=1))
    assert [m for m in outbox if m["To"] == seller.email] == []  # no reminder either


# --- tasks due today ----------------------------------------------------------------------------


def test_tasks_due_today_lists_overdue_first_with_the_lead_and_counts_on_the_dashboard(
        client, session, make_lead, make_user, dealer, seller, make_product_line):
    make_product_line("TRC").name = "Compact tractors"
    colleague = make_user("partner", partner=dealer)
    now = utcnow()
    local = now.astimezone(NEW_YORK)
    ann = _accepted(session, make_lead, seller, first_name="Ann", last_name="Early")
    bob = _accepted(session, make_lead, seller, first_name="Bob", last_name="Later")
    cy = _accepted(session, make_lead, seller, first_name="Cy", last_name="Tomorrow")

    def task(lead, user, at, kind="call_back"):
        return task_service.add_task(session, lead, user, kind=kind,
                                     day=at.date().isoformat(), clock=at.strftime("%H:%M"),
                                     time_zone="America/New_York", now=now)

    task(bob, seller, local.replace(hour=23, minute=59), kind="send_quote")  # later today
    task(ann, seller, local - timedelta(hours=2, minutes=1))  # overdue
    task(cy, seller, local + timedelta(days=1, minutes=1), kind="visit")  # tomorrow
    task(bob, colleague, local - timedelta(minutes=5), kind="other")  # a colleague's
    session.commit()
    page = _plain(_text(client.get("/leads/tasks")))
    assert "1 overdue" in page
    assert page.index("Ann Early") < page.index("Bob Later")
    assert "Cy Tomorrow" not in page and "Other" not in page  # tomorrow's, a colleague's
    assert "Compact tractors · 50401 Mason City" in page
    html = _text(client.get("/leads/tasks"))
    assert f'href="/leads/{ann.id}"' in html
    firm = _plain(_text(client.get("/leads/tasks?scope=firm")))
    assert "Other" in firm and "Cy Tomorrow" not in firm
    dashboard = _plain(_text(client.get("/")))
    assert "2 To do today (1 overdue)" in dashboard
    assert 'href="/leads/tasks"' in _text(client.get("/"))  # the nav link too


def test_next_task_for_gives_each_leads_earliest_open_task(session, make_lead, make_user,
                                                         dealer):
    user = make_user("partner", partner=dealer)
    first = _accepted(session, make_lead, user)
    second = _accepted(session, make_lead, user)
    nothing = _accepted(session, make_lead, user)
    now = utcnow()

    def add(lead, days, kind="call_back"):
        return task_service.add_task(session, lead, user, kind=kind, time_zone="UTC",
                                     day=(now + timedelta(days=days)).date().isoformat(),
                                     clock="12:00", now=now)

    later, soonest = add(first, 3), add(first, 1, "visit")
    done = add(second, 1)
    task_service.set_done(session, second, user, done.id, True)
    wanted = add(second, 2, "send_quote")
    found = next_task_for(session, [first.id, second.id, nothing.id])
    assert found == {first.id: soonest, second.id: wanted}
    assert later.id != soonest.id


# --- reminders ----------------------------------------------------------------------------------


def test_a_due_task_reminds_its_owner_once_by_email(session, make_lead, seller, make_user,
                                                    dealer, outbox):
    colleague = make_user("partner", partner=dealer)
    lead = _accepted(session, make_lead, seller, first_name="Ann", last_name="Early")
    now = utcnow()
    due = now + timedelta(minutes=30)
    here = due.astimezone(NEW_YORK)
    task = task_service.add_task(session, lead, seller, kind="call_back",
                                 day=here.date().isoformat(), clock=here.strftime("%H:%M"),
                                 note="Bring the brochure", now=now)
    session.commit()
    outbox.clear()
    notify_jobs.sweep(now=due - timedelta(minutes=2))
    assert outbox == []  # not due yet
    notify_jobs.sweep(now=due + timedelta(minutes=1))
    (message,) = outbox
    assert message["To"] == seller.email  # the owner, not the colleague
    assert colleague.email not in {m["To"] for m in outbox}
    shown = f"{here:%a} {here.day} {here:%b}, {here:%H:%M}"
    assert _subject(message) == f"Task due: Call back · Ann Early (due {shown})"
    body = _body(message)
    assert f"Call back: due {shown}." in body and "Your note: Bring the brochure" in body
    assert f"http://portal.test/leads/{lead.id}" in body
    notify_jobs.sweep(now=due + timedelta(minutes=2))
    notify_jobs.sweep(now=due + timedelta(hours=3))
    assert len(outbox) == 1  # exactly once
    session.refresh(task)
    assert task.reminded_at is not None
    assert session.scalar(select(func.count()).select_from(Notification)
                          .where(Notification.kind == "task_reminder")) == 1


def test_no_reminder_for_alerts_off_a_done_task_or_one_deleted_before_it_went(
        app, session, make_lead, seller, make_user, dealer, outbox, smtp_server):
    quiet = make_user("partner", partner=dealer)
    session.add(MailPreference(user_id=quiet.id, alerts="off"))
    lead = _accepted(session, make_lead, seller)
    now = utcnow()
    today = now.date().isoformat()

    def add(user):
        return task_service.add_task(session, lead, user, kind="call_back", day=today,
                                     clock="00:00", time_zone="UTC", now=now)

    add(quiet)
    done = add(seller)
    task_service.set_done(session, lead, seller, done.id, True)
    deleted = add(seller)
    session.commit()
    app.config["MAIL_PORT"] = _free_port()  # down: the reminder is written, not yet sent
    notify_jobs.sweep(now=now + timedelta(minutes=1))
    assert session.scalar(select(func.count()).select_from(Notification)
                          .where(Notification.kind == "task_reminder")) == 1  # `deleted`'s
    task_service.delete_task(session, lead, seller, deleted.id)
    session.commit()
    app.config["MAIL_PORT"] = smtp_server.port
    outbox.clear()
    notify_jobs.sweep(now=now + timedelta(hours=1))
    assert outbox == []
    row = session.scalars(select(Notification).where(
        Notification.kind == "task_reminder")).one()
    assert row.status == "skipped" and row.last_error == "The task was deleted."


# --- the API --------------------------------------------------------------------------------------


def _token(client, user):
    answer = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    return {"Authorization": f"Bearer {answer.get_json()['token']}"}


def test_the_api_adds_lists_ticks_off_and_deletes_tasks(client, session, make_lead, seller,
                                                        make_partner, make_user):
    lead = _accepted(session, make_lead, seller)
    headers = _token(client, seller)
    url = f"/api/v1/leads/{lead.id}/tasks"
    made = client.post(url, json={"kind": "visit", "due_date": "2026-12-08",
                                  "due_time": "10:30", "time_zone": "America/Chicago",
                                  "note": "Farm visit"}, headers=headers)
    assert made.status_code == 201, made.get_json()
    task = made.get_json()
    assert task["due_at"] == "2026-12-08T16:30:00+00:00" and task["time_zone"] == (
        "America/Chicago") and task["done"] is False and task["owner"] == seller.email
    assert client.get(url, headers=headers).get_json()["tasks"] == [task]
    done = client.patch(f"{url}/{task['id']}", json={"done": True}, headers=headers)
    assert done.status_code == 200 and done.get_json()["done"] is True
    events = client.get(f"/api/v1/leads/{lead.id}", headers=headers).get_json()["events"]
    assert [e["kind"] for e in events][-2:] == ["task_added", "task_done"]
    assert client.delete(f"{url}/{task['id']}", headers=headers).status_code == 204
    assert client.get(url, headers=headers).get_json()["tasks"] == []
    # Bad input: 422 at the field, nothing written.
    for body, field in (({"due_date": "tomorrow"}, "due_date"),
                        ({"due_date": "2026-12-08", "due_time": "7pm"}, "due_time"),
                        ({"due_date": "2026-12-08", "kind": "nap"}, "kind"),
                        ({"due_date": "2026-12-08", "time_zone": "Mars/Base"}, "time_zone")):
        refused = client.post(url, json=body, headers=headers)
        assert refused.status_code == 422 and field in refused.get_json()["fields"], body
    assert client.patch(f"{url}/1", json={"done": "yes"}, headers=headers).status_code == 422
    assert session.scalar(select(func.count()).select_from(Task)) == 0
    # Another dealer: 404, as for a lead that is not there.
    stranger = make_user("partner", partner=make_partner("D9"))
    assert client.get(url, headers=_token(client, stranger)).status_code == 404
    # A closed lead takes no new task: 409 with its state.
    lifecycle.close(session, lead, "no_interest", Actor.of(seller))
    session.commit()
    closed = client.post(url, json={"due_date": "2026-12-08"}, headers=headers)
    assert closed.status_code == 409 and closed.get_json()["status"] == "no_interest"


# --- appointments with a time ------------------------------------------------------------------


def test_an_appointment_has_a_time_in_the_users_zone_and_old_ones_stay_readable(
        client, session, make_lead, seller):
    lead = _accepted(session, make_lead, seller)
    old = _accepted(session, make_lead, seller)
    lifecycle.advance(session, old, "appointment", Actor.of(seller), data={"date": "2026-12-08"})
    session.commit()
    response = client.post(f"/leads/{lead.id}/appointment",
                           data={"date": "2026-12-08", "time": "10:30"})
    assert response.status_code == 303
    (event,) = _events(session, lead, "appointment")
    assert event.data == {"date": "2026-12-08", "time": "10:30",
                          "time_zone": "America/New_York", "at": "2026-12-08T15:30:00+00:00"}
    assert "When Tue 8 Dec, 10:30" in _plain(_text(client.get(f"/leads/{lead.id}")))
    assert "When Tue 8 Dec" in _plain(_text(client.get(f"/leads/{old.id}")))
    # The API names its zone, or takes the caller's; a bad time is refused, nothing written.
    headers = _token(client, seller)
    answer = client.post(f"/api/v1/leads/{lead.id}/actions", headers=headers, json={
        "action": "appointment", "date": "2026-12-09", "time": "9:05",
        "time_zone": "America/Chicago"})
    assert answer.status_code == 200
    assert answer.get_json()["events"][-1]["data"]["at"] == "2026-12-09T15:05:00+00:00"
    for bad in ({"time": "10:75"}, {"time": "noon"}, {"time_zone": "Nowhere/Town"}):
        refused = client.post(f"/api/v1/leads/{lead.id}/actions", headers=headers,
                              json={"action": "appointment", "date": "2026-12-10", **bad})
        assert refused.status_code == 422, bad
    assert len(_events(session, lead, "appointment")) == 2
    page = client.post(f"/leads/{lead.id}/appointment", data={"date": "2026-12-10",
                                                               "time": "25:00"})
    assert page.status_code == 422 and "Enter a time as HH:MM" in _text(page)


# --- contact attempts ---------------------------------------------------------------------------


def test_a_no_answer_attempt_counts_as_follow_up_and_each_try_is_on_the_timeline(
        client, session, make_lead, seller, outbox):
    lead = _accepted(session, make_lead, seller)
    offer = session.scalars(select(Offer).where(Offer.lead_id == lead.id)).one()
    assert offer.contacted_at is None
    assert "Make first contact within" in _plain(_text(client.get(f"/leads/{lead.id}")))
    assert "Make first contact within" in _plain(_text(client.get("/leads/?tab=contact")))
    first = client.post(f"/leads/{lead.id}/attempt", data={"channel": "phone"})
    assert first.status_code == 303
    headers = _token(client, seller)
    second = client.post(f"/api/v1/leads/{lead.id}/actions", headers=headers,
                         json={"action": "attempt", "channel": "email", "note": "no reply"})
    assert second.status_code == 200 and second.get_json()["status"] == "accepted"
    session.refresh(lead)
    session.refresh(offer)
    assert lead.status == "accepted"  # the stage stays
    assert offer.contacted_at is not None and lead.first_contact_at == offer.contacted_at
    page = _plain(_text(client.get(f"/leads/{lead.id}")))
    assert page.count("Tried to reach them") == 2
    assert "Result Called, no answer" in page and "Result Emailed, no reply" in page
    assert "with “No answer”" in page  # its note in the Notes card
    assert "First contact is late" not in page and "Make first contact" not in page
    # Still to reach (the To contact tab keeps it), with no first-contact clock.
    contact_tab = _plain(_text(client.get("/leads/?tab=contact")))
    assert lead.name in contact_tab and "Make first contact" not in contact_tab
    # No first-contact reminder or escalation: the partner followed the lead up.
    outbox.clear()
    notify_jobs.sweep(now=lead.offered_at + timedelta(hours=49))
    assert outbox == []
    bad = client.post(f"/api/v1/leads/{lead.id}/actions", headers=headers,
                      json={"action": "attempt", "channel": "pigeon"})
    assert bad.status_code == 422 and "channel" in bad.get_json()["fields"]


# --- with assignment within the firm and the partner's list ----------------------------------


def test_a_task_on_an_assigned_lead_is_the_assignees_to_do_and_reminder(
        client, session, make_lead, seller, make_user, dealer, outbox):
    """The firm's admin sets a task on a lead assigned to a salesperson: the salesperson
    lists it under Tasks due today and gets its reminder, not the admin who typed it."""
    from portal.core import assignment

    boss = make_user("partner", partner=dealer, partner_admin=True)
    lead = _accepted(session, make_lead, seller, first_name="Gus", last_name="Assigned")
    assignment.assign(session, lead, seller, Actor.of(boss))
    now = utcnow()
    due = now + timedelta(minutes=10)
    here = due.astimezone(NEW_YORK)
    task_service.add_task(session, lead, boss, kind="visit", day=here.date().isoformat(),
                          clock=here.strftime("%H:%M"), note="Demo on the farm",
                          time_zone="America/New_York", now=now)
    session.commit()
    page = _plain(_text(client.get("/leads/tasks")))  # the seller is signed in
    assert "Gus Assigned" in page and "Demo on the farm" in page
    # The lead page says whose it is, and who set it.
    lead_page = _plain(_text(client.get(f"/leads/{lead.id}")))
    assert (f"For {seller.name} (the lead is assigned to them) · set by {boss.name}"
            in lead_page)
    outbox.clear()
    notify_jobs.sweep(now=due + timedelta(minutes=1))
    assert [m["To"] for m in outbox] == [seller.email]


def test_the_list_shows_each_leads_next_step_a_task_or_an_appointment_to_come(
        client, session, make_lead, seller):
    today = utcnow().date()
    later = _accepted(session, make_lead, seller, first_name="Tess", last_name="Later")
    soon = _accepted(session, make_lead, seller, first_name="Abe", last_name="Soon")
    for lead, days in ((later, 5), (soon, 2)):  # appointments in 5 and in 2 days
        lifecycle.advance(session, lead, "appointment", Actor.of(seller),
                          data={"date": (today + timedelta(days=days)).isoformat()})
    for lead in (later, soon):  # a call back in 3 days on each, late in the seller's evening
        task_service.add_task(session, lead, seller, kind="call_back",
                              day=(today + timedelta(days=3)).isoformat(), clock="23:30",
                              time_zone="America/New_York")  # 03:30 or 04:30 UTC, a day on
    session.commit()
    page = _plain(_text(client.get("/leads/?tab=open")))

    def step_of(name: str) -> str:
        card = page[page.index(name):]
        return re.search(r"(Call back|Appointment) (\d{4}-\d\d-\d\d)", card).group(0)

    assert step_of("Tess Later") == f"Call back {today + timedelta(days=3)}"  # the seller's day
    assert step_of("Abe Soon") == f"Appointment {today + timedelta(days=2)}"
