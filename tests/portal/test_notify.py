"""Partners are told at once: alerts for offers, forwards, reassignments and pull-backs;
reminders and escalations from the clocks; daily and weekly digests. Real SMTP (aiosmtpd),
both databases; each email's content is checked against the data it reports."""

from __future__ import annotations

import re
import socket
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import (
    Competitor,
    Lead,
    MailPreference,
    Notification,
    Offer,
    utcnow,
)
from portal.dispatch import services as routing_service
from portal.notify import digests
from portal.notify import jobs as notify_jobs
from portal.notify import outbox as notify_outbox
from portal.notify import services as notify


def text_of(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no text part")


def subject(message: Any) -> str:
    """The Subject header decoded and unfolded, as a mail client shows it."""
    return str(make_header(decode_header(message["Subject"]))).replace("\r\n", "")


def html_of(message: Any) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/html":
            return part.get_payload(decode=True).decode()
    raise AssertionError("no HTML part")


def to(outbox: list[Any], user: Any) -> list[Any]:
    return [m for m in outbox if m["To"] == user.email]


def rows(session: Any, **where: Any) -> list[Notification]:
    query = select(Notification).order_by(Notification.id)
    for name, value in where.items():
        query = query.where(getattr(Notification, name) == value)
    return list(session.scalars(query))


def route(session: Any, lead: Any) -> Any:
    result = routing_service.route_lead(session, lead)
    session.commit()  # the alert goes once the routing's transaction commits
    return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def dealer(make_partner):
    return make_partner("D1", name="Prairie Tractors", territories=["zip:50401"])


@pytest.fixture
def people(make_user, dealer):
    """The dealer's administrator and a salesperson, both with alerts on by default."""
    admin = make_user("partner", partner=dealer, partner_admin=True, email="boss@d1.test")
    sales = make_user("partner", partner=dealer, email="sales@d1.test")
    return admin, sales


def offered(session, make_lead, **fields):
    lead = make_lead(postal_code=fields.pop("postal_code", "50401"), **fields)
    route(session, lead)
    return lead


# --- alerts with their event --------------------------------------------------------------


def test_a_new_offer_alerts_the_partners_users_with_what_was_asked_and_one_link(
        session, client, make_lead, dealer, people, outbox, app):
    admin, sales = people
    lead = offered(session, make_lead, city="Mason City", company="Hill Farms",
                   comments="Need a 90 hp tractor before spring", phone="+15155550100",
                   answers={"timeline": "3_months", "budget": "approved"})
    assert lead.assigned_partner_id == dealer.id

    assert len(to(outbox, admin)) == 1 and len(to(outbox, sales)) == 1
    message = to(outbox, sales)[0]
    title = subject(message)
    assert title.startswith("New lead offered: Hot · TRC line · Mason City, IA 50401")
    assert re.search(r"\((23 h \d\d min|24 h 00 min) to accept\)", title)
    text = text_of(message)
    assert "Need a 90 hp tractor before spring" in text and "Budget: approved" in text
    assert "Timeline: 3 months" in text and "Company: Hill Farms" in text
    # The prospect's contact details wait behind the sign-in.
    assert lead.email not in text and "5550100" not in text
    assert lead.email not in html_of(message)
    assert message["List-Unsubscribe"].startswith("<http://portal.test/email/unsubscribe/")
    link = re.search(r"Open the lead: (\S+)", text).group(1)
    assert urlsplit(link).path == f"/leads/{lead.id}"

    # The link: sign in first, then straight to the lead.
    app.config["WTF_CSRF_ENABLED"] = False
    response = client.get(urlsplit(link).path)
    assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    login = client.post(response.headers["Location"],
                        data={"email": sales.email, "password": "correct horse battery"})
    assert login.status_code == 303 and login.headers["Location"].endswith(f"/leads/{lead.id}")
    assert rows(session, status="sent") and not rows(session, status="pending")


def test_a_rolled_back_offer_alerts_nobody(session, make_lead, dealer, people, outbox):
    session.commit()
    lead = make_lead(postal_code="50401")
    routing_service.route_lead(session, lead)
    assert rows(session, kind="offer")  # written with the event …
    session.rollback()
    session.commit()
    assert outbox == [] and rows(session) == []  # … and gone with it


def test_choices_decide_who_gets_alerts_and_escalations(
        session, make_lead, dealer, people, make_user, outbox):
    admin, sales = people
    quiet = make_user("partner", partner=dealer, email="quiet@d1.test")
    notify.save_choices(session, quiet, alerts="off", frequency="", hour="", time_zone="")
    notify.save_choices(session, admin, alerts="digest", frequency="", hour="", time_zone="")
    offered(session, make_lead)
    assert to(outbox, sales) and not to(outbox, admin) and not to(outbox, quiet)

    # The firm's default reaches everyone who has not chosen; one's own choice wins.
    notify.save_firm_defaults(session, dealer, alerts="off", frequency="daily", time_zone="")
    notify.save_choices(session, quiet, alerts="every", frequency="", hour="", time_zone="")
    session.commit()
    outbox.clear()
    offered(session, make_lead)
    assert to(outbox, quiet) and not to(outbox, sales) and not to(outbox, admin)

    # "Escalations only" still hears of an expired offer.
    outbox.clear()
    later = utcnow() + timedelta(hours=25)
    routing_service.expire_overdue_offers(session, now=later)
    session.commit()
    assert [subject(m).split(":")[0] for m in to(outbox, admin)] == [
        "Offer expired unanswered"] * 2
    assert not to(outbox, sales)


def test_forward_alerts_the_dealer_and_pull_back_tells_it_the_lead_is_gone(
        session, make_partner, make_user, make_lead, outbox):
    distributor = make_partner("DIST", name="Big Distributor", kind="distributor",
                               territories=["zip:50401"])
    dealer = make_partner("DA", name="Dealer A", parent_id=distributor.id)
    boss = make_user("partner", partner=distributor, partner_admin=True)
    seller = make_user("partner", partner=dealer)
    lead = offered(session, make_lead)
    assert [subject(m).split(":")[0] for m in to(outbox, boss)] == ["New lead offered"]

    outbox.clear()
    lifecycle.forward(session, lead, dealer, Actor.of(boss), reason="closest to the farm")
    session.commit()
    assert not to(outbox, boss)  # nobody is told what they did themselves
    (message,) = to(outbox, seller)
    assert subject(message).startswith("Lead forwarded to you: Hot · TRC line")
    assert "For Dealer A" in text_of(message)

    outbox.clear()
    from portal.leads.services import pull_back

    pull_back(session, lead, boss, reason="dealer on holiday")
    session.commit()
    assert not to(outbox, boss)
    (message,) = to(outbox, seller)
    text = text_of(message)
    assert subject(message).startswith("Lead taken back: Hot · TRC line")
    assert "dealer on holiday" in text and f"/leads/{lead.id}" not in text
    assert "Open your inbox: http://portal.test/leads/" in text


def test_a_repeat_inquiry_tells_the_partner_holding_the_lead(
        session, make_lead, dealer, people, outbox):
    from portal.capture.services import capture_inquiry

    admin, sales = people
    lead = offered(session, make_lead, email="pat@farmexample.com", rank="warm", score=60,
                   email_normalized="pat@farmexample.com")
    lifecycle.accept(session, lead, Actor.of(sales))
    session.commit()
    outbox.clear()
    result = capture_inquiry(session, {
        "first_name": "Pat", "last_name": "Again", "email": "PAT@farmexample.com",
        "postal_code": "50401", "product_line": "TRC", "comments": "Ready to buy this week",
        "answers": {"timeline": "now", "budget": "approved"}}, Actor.system("web-form"))
    session.commit()
    assert result.lead.id == lead.id and not result.created
    (message,) = to(outbox, sales)
    assert subject(message).startswith(f"Prospect asked again: {lead.rank.capitalize()} · TRC")
    text = text_of(message)
    assert "Ready to buy this week" in text and f"/leads/{lead.id}" in text
    assert "pat@farmexample.com" not in text.lower()

    # Closed: a repeat is news for the channel manager's queue, not for the dealer.
    lifecycle.advance(session, lead, "contacted", Actor.of(sales), data={"channel": "phone"})
    lifecycle.close(session, lead, "no_interest", Actor.of(sales), data={})
    session.commit()
    outbox.clear()
    capture_inquiry(session, {"first_name": "Pat", "email": "pat@farmexample.com",
                              "postal_code": "50401", "comments": "again"},
                    Actor.system("web-form"))
    session.commit()
    assert not to(outbox, sales)


def test_a_managers_reassignment_tells_both_partners_with_the_reason(
        session, make_partner, make_user, make_lead, dealer, people, outbox):
    admin, sales = people
    other = make_partner("D2", name="Other Dealer")
    other_user = make_user("partner", partner=other)
    manager = make_user("manager")
    lead = offered(session, make_lead)
    outbox.clear()
    lifecycle.reassign(session, lead, other, Actor.of(manager), reason="customer asked for D2")
    session.commit()
    (gone,) = to(outbox, sales)
    assert subject(gone).startswith("Lead taken back") and "customer asked for D2" in text_of(gone)
    (new,) = to(outbox, other_user)
    assert subject(new).startswith("Lead assigned to you")
    assert "Assigned by the channel manager: customer asked for D2" in text_of(new)


def test_an_alert_for_a_lead_that_moved_on_before_it_went_is_not_sent(
        session, app, make_lead, dealer, people, outbox, smtp_server):
    admin, sales = people
    app.config["MAIL_PORT"] = free_port()  # the mail server is down
    lead = offered(session, make_lead)
    waiting = rows(session, kind="offer")
    assert len(waiting) == 2 and {r.status for r in waiting} == {"pending"}
    assert all(r.attempts == 1 and "Mail server" in r.last_error for r in waiting)
    lifecycle.accept(session, lead, Actor.of(sales))
    session.commit()

    app.config["MAIL_PORT"] = smtp_server.port
    notify_jobs.sweep(now=utcnow() + timedelta(minutes=5))
    assert outbox == []
    assert {r.status for r in rows(session, kind="offer")} == {"skipped"}
    assert rows(session, kind="offer")[0].last_error == "The offer was answered already."


# --- delivery: retries, bounces, crashes ------------------------------------------------------


def test_smtp_errors_retry_with_a_doubling_wait_and_show_to_staff(
        session, app, client, auth, make_lead, dealer, people, outbox, smtp_server):
    admin, sales = people
    app.config["MAIL_PORT"] = free_port()
    offered(session, make_lead)
    row = rows(session, user_id=sales.id)[0]
    first_wait = row.next_attempt_at - utcnow()
    assert timedelta(seconds=50) < first_wait <= timedelta(seconds=60)
    tried_at = row.next_attempt_at
    notify_jobs.sweep(now=tried_at)  # still down: the wait doubles
    session.refresh(row)
    assert row.attempts == 2 and row.status == "pending"
    assert timedelta(seconds=110) < row.next_attempt_at - tried_at <= timedelta(seconds=121)

    auth.login("admin")
    page = client.get("/manage/mail").get_data(as_text=True)
    assert sales.email in page and "Mail server" in page and "retrying" in page

    app.config["MAIL_PORT"] = smtp_server.port
    notify_jobs.sweep(now=row.next_attempt_at)
    notify_jobs.sweep(now=row.next_attempt_at + timedelta(minutes=10))
    assert len(to(outbox, sales)) == 1 and len(to(outbox, admin)) == 1  # once each


def test_a_bouncing_address_fails_at_once_and_can_be_sent_again_by_staff(
        session, client, auth, make_user, make_lead, dealer, outbox):
    gone = make_user("partner", partner=dealer, email="left.the.firm@bounce.test")
    offered(session, make_lead)
    (row,) = rows(session, user_id=gone.id)
    assert row.status == "failed" and row.attempts == 1
    assert "Address refused (bounced)" in row.last_error and "550" in row.last_error
    notify_jobs.sweep(now=utcnow() + timedelta(hours=1))
    session.refresh(row)
    assert row.status == "failed" and row.attempts == 1  # no retry of a bounce

    auth.login("admin")
    page = client.get("/manage/mail").get_data(as_text=True)
    assert "left.the.firm@bounce.test" in page and "Send again" in page
    response = client.post(f"/manage/mail/{row.id}/retry", data={})
    assert response.status_code == 303
    session.refresh(row)
    assert row.status == "failed" and row.attempts == 1  # bounced again, recorded again

    # The next alert does not knock on the dead address again for a week …
    offered(session, make_lead)
    (skipped,) = rows(session, user_id=gone.id, kind="offer")[1:]
    assert skipped.status == "skipped" and "bounced an email on" in skipped.last_error
    # … unless the address was put right.
    gone.email = "back.again@d1.test"
    session.commit()
    offered(session, make_lead)
    assert rows(session, user_id=gone.id, kind="offer")[-1].status == "sent"
    assert to(outbox, gone)


def test_staff_send_every_failed_email_again_once_the_mail_server_is_back(
        session, app, client, auth, make_lead, dealer, people, outbox, smtp_server):
    admin, sales = people
    app.config.update(MAIL_PORT=free_port(), MAIL_GIVE_UP_HOURS=0)  # fail at the first try
    offered(session, make_lead)
    assert {r.status for r in rows(session, kind="offer")} == {"failed"}
    app.config["MAIL_PORT"] = smtp_server.port
    auth.login("manager")
    assert "Send every failed email again" in client.get("/manage/mail").get_data(as_text=True)
    response = client.post("/manage/mail/retry", data={}, follow_redirects=True)
    assert "2 failed emails will be sent again" in response.get_data(as_text=True)
    notify_jobs.sweep()
    assert len(to(outbox, sales)) == 1 and len(to(outbox, admin)) == 1
    assert {r.status for r in rows(session, kind="offer")} == {"sent"}


def test_a_crash_mid_send_goes_again_with_its_message_id_and_a_lost_nudge_is_swept_up(
        session, make_lead, dealer, people, outbox):
    admin, sales = people
    lead = make_lead(postal_code="50401")
    routing_service.route_lead(session, lead)
    ids = [r.id for r in rows(session, kind="offer")]
    # As if the commit's nudges were lost (the queue was down): nothing went yet.
    from portal.core.jobs import _NUDGES

    session.info.pop(_NUDGES, None)
    session.commit()
    assert outbox == []
    # One worker claimed the first and died while talking to the mail server.
    session.query(Notification).filter(Notification.id == ids[0]).update(
        {"status": "sending", "claimed_at": utcnow() - timedelta(hours=1), "attempts": 1})
    session.commit()
    outcome = notify_jobs.sweep()
    assert outcome["interrupted"] == 1 and outcome["sent"] == 2
    notify_jobs.sweep()
    # Each once here; the interrupted one went again (at least once: had its first copy
    # reached the server, this one carries the same Message-ID).
    assert len(outbox) == 2
    assert {m["Message-ID"] for m in outbox} == {
        f"<notification-{i}@portal.localhost>" for i in ids}
    statuses = {r.id: r.status for r in rows(session, kind="offer")}
    assert statuses == {ids[0]: "sent", ids[1]: "sent"}


# --- reminders and escalations from the clocks -----------------------------------------------


def test_half_the_acceptance_time_used_reminds_once(session, make_lead, dealer, people, outbox):
    admin, sales = people
    lead = offered(session, make_lead)
    outbox.clear()
    notify_jobs.sweep()
    assert outbox == []  # not half-way yet
    halfway = utcnow() + timedelta(hours=12, minutes=1)
    notify_jobs.sweep(now=halfway)
    (message,) = to(outbox, sales)
    assert subject(message).startswith("Reminder: offer waiting: Hot · TRC line")
    assert re.search(r"\(11 h \d\d min to accept\)", subject(message))
    notify_jobs.sweep(now=halfway + timedelta(minutes=1))
    assert len(to(outbox, sales)) == 1
    assert len(rows(session, kind="accept_reminder", lead_id=lead.id)) == 2


def test_first_contact_reminder_then_escalation_to_admins_and_the_distributor(
        session, make_partner, make_user, make_lead, outbox):
    distributor = make_partner("DIST", kind="distributor", territories=["zip:50401"])
    dealer = make_partner("DA", name="Dealer A", parent_id=distributor.id)
    dist_admin = make_user("partner", partner=distributor, partner_admin=True)
    dist_user = make_user("partner", partner=distributor)
    admin = make_user("partner", partner=dealer, partner_admin=True)
    seller = make_user("partner", partner=dealer)

    def forwarded():
        lead = offered(session, make_lead)
        lifecycle.forward(session, lead, dealer, Actor.of(dist_admin))
        return lead

    lead = forwarded()
    lifecycle.accept(session, lead, Actor.of(seller))
    session.commit()
    outbox.clear()

    soon = lead.offered_at + timedelta(hours=44, minutes=30)
    notify_jobs.sweep(now=soon)
    assert {m["To"] for m in outbox} == {admin.email, seller.email}
    assert all(subject(m).startswith("Reminder: first contact due") for m in outbox)
    # 3 h 30 min before the SLA (the sweep's clock moves on while it sends).
    assert re.search(r"First contact due in 3 h (30|29) min\.", text_of(outbox[0]))
    outbox.clear()
    notify_jobs.sweep(now=soon + timedelta(minutes=30))
    assert outbox == []

    late = lead.offered_at + timedelta(hours=49)
    notify_jobs.sweep(now=late)
    assert {m["To"] for m in outbox} == {admin.email, dist_admin.email}
    assert dist_user.email not in {m["To"] for m in outbox}
    message = to(outbox, dist_admin)[0]
    assert subject(message).startswith("First contact is late: Hot · TRC line")
    # The distributor sees its dealers' leads: the link goes to the lead.
    assert f"http://portal.test/leads/{lead.id}" in text_of(message)
    outbox.clear()
    notify_jobs.sweep(now=late + timedelta(hours=1))
    assert outbox == []

    # A contact made in time: nothing more.
    other = forwarded()
    lifecycle.accept(session, other, Actor.of(seller))
    lifecycle.advance(session, other, "contacted", Actor.of(seller), data={"channel": "phone"})
    session.commit()
    outbox.clear()
    notify_jobs.sweep(now=other.offered_at + timedelta(hours=49))
    assert outbox == []


def test_an_escalation_nobody_administers_reaches_the_firm_or_else_the_managers(
        session, make_partner, make_user, make_lead, outbox):
    manager = make_user("manager")
    lone = make_partner("LONE", name="Lone Dealer", territories=["zip:50401"])
    seller = make_user("partner", partner=lone)  # no partner administrator
    lead = offered(session, make_lead)
    lifecycle.accept(session, lead, Actor.of(seller))
    session.commit()
    outbox.clear()
    notify_jobs.sweep(now=lead.offered_at + timedelta(hours=49))
    (message,) = outbox
    assert message["To"] == seller.email
    assert subject(message).startswith("First contact is late: Hot · TRC line")
    assert re.search(r"\(1 h 0\d min late\)$", subject(message))

    lone.active = False
    empty = make_partner("EMPTY", name="Empty Dealer", territories=["zip:50401"])
    other = offered(session, make_lead)
    assert other.assigned_partner_id == empty.id
    outbox.clear()
    routing_service.expire_overdue_offers(session, now=utcnow() + timedelta(hours=25))
    session.commit()
    (message,) = to(outbox, manager)
    assert subject(message).startswith("Offer expired unanswered")
    assert "Empty Dealer did not accept this offer in time" in text_of(message)


def test_a_reminder_for_a_lead_closed_before_it_went_is_not_sent(
        session, app, make_lead, dealer, people, outbox, smtp_server):
    admin, sales = people
    lead = offered(session, make_lead)
    lifecycle.accept(session, lead, Actor.of(sales))
    session.commit()
    app.config["MAIL_PORT"] = free_port()  # down while the reminder is written
    notify_jobs.sweep(now=lead.offered_at + timedelta(hours=45))
    (row, *_) = rows(session, kind="contact_reminder")
    assert row.status == "pending" and row.attempts == 1
    lifecycle.close(session, lead, "no_interest", Actor.of(sales), data={})
    session.commit()
    app.config["MAIL_PORT"] = smtp_server.port
    outbox.clear()
    notify_jobs.sweep(now=lead.offered_at + timedelta(hours=46))
    assert outbox == []
    assert {r.last_error for r in rows(session, kind="contact_reminder")} == {
        "The lead is no longer waiting for a first contact."}


def test_the_clock_scan_costs_the_same_few_statements_for_2_or_12_leads(
        session, make_lead, dealer, people):
    from sqlalchemy import event

    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        costs = []
        for number in (2, 12):
            for _ in range(number):
                offered(session, make_lead)
            statements.clear()
            found = notify_jobs.alerts.scan(session, utcnow() + timedelta(hours=12, minutes=1))
            assert found["accept_reminders"] == 2 * number  # admin and sales, each lead
            session.commit()
            costs.append(len(statements))
            lifecycle_leads = list(session.scalars(select(Notification.lead_id).distinct()))
            for lead_id in lifecycle_leads:  # answer them: the next round starts clean
                lead = session.get(Lead, lead_id)
                if lead is not None and lead.status == "offered":
                    lifecycle.accept(session, lead, Actor.of(people[1]))
            session.commit()
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert costs[0] == costs[1], costs


def test_the_compliance_gate_tells_the_managers_once_per_spell(
        session, app, make_lead, make_user, dealer, people, outbox):
    admin, sales = people
    manager = make_user("manager")
    app.config["COMPLIANCE_GATE_MAX_OVERDUE"] = 1
    late = []
    for _ in range(2):
        lead = offered(session, make_lead)
        lifecycle.accept(session, lead, Actor.of(sales))
        lead.accepted_at = utcnow() - timedelta(days=50)
        late.append(lead)
    session.commit()
    outbox.clear()
    notify_jobs.sweep()
    assert outbox == []  # the minute's sweep leaves the gate to its own job
    notify_jobs.gate_check()
    (message,) = to(outbox, manager)
    assert subject(message) == "Partner held back by the compliance gate: Prairie Tractors"
    assert "2 overdue outcomes (limit 1)" in text_of(message)
    assert "http://portal.test/leads/partners/D1" in text_of(message)
    assert " ·  · " not in text_of(message)  # no empty rank and place line
    notify_jobs.gate_check()
    assert len(to(outbox, manager)) == 1

    lifecycle.close(session, late[0], "won", Actor.of(sales), data={"amount": "1000"})
    session.commit()
    notify_jobs.gate_check()
    session.refresh(dealer)
    assert dealer.gated_at is None  # lifted: the next spell is told again

    lead = offered(session, make_lead)
    lifecycle.accept(session, lead, Actor.of(sales))
    lead.accepted_at = utcnow() - timedelta(days=50)
    session.commit()
    notify_jobs.gate_check(now=utcnow() + timedelta(minutes=10))
    assert len(to(outbox, manager)) == 2
    assert "2 overdue outcomes (limit 1)" in text_of(to(outbox, manager)[-1])


# --- digests ------------------------------------------------------------------------------


def _work(session, make_lead, dealer, user):
    """Two offers waiting, one late first contact, one overdue outcome, one won and one
    lost to Deere today."""
    for _ in range(2):
        offered(session, make_lead)
    late = offered(session, make_lead, city="Clear Lake")
    lifecycle.accept(session, late, Actor.of(user))
    late.offered_at = utcnow() - timedelta(hours=60)
    overdue = offered(session, make_lead, city="Garner")
    lifecycle.accept(session, overdue, Actor.of(user))
    overdue.accepted_at = utcnow() - timedelta(days=50)
    won = offered(session, make_lead)
    lifecycle.accept(session, won, Actor.of(user))
    lifecycle.close(session, won, "won", Actor.of(user), data={"amount": "125000"})
    lost = offered(session, make_lead)
    session.add(Competitor(name="Deere"))
    session.flush()
    lifecycle.accept(session, lost, Actor.of(user))
    lifecycle.close(session, lost, "lost", Actor.of(user),
                    data={"reason": "competitor", "competitor": "Deere"})
    session.commit()


def test_the_partner_digest_reports_the_data_and_goes_once(
        session, runner, make_lead, dealer, people, outbox, make_partner, make_user):
    admin, sales = people
    idle = make_partner("IDLE", name="Idle Dealer")
    idle_user = make_user("partner", partner=idle)
    _work(session, make_lead, dealer, sales)
    outbox.clear()

    result = runner.invoke(args=["digests", "send", "--period", "daily"])
    assert result.exit_code == 0, result.output
    assert "3 planned, 2 sent, 1 with nothing to say, 0 to retry, 0 failed" in result.output
    (message,) = to(outbox, sales)
    assert not to(outbox, idle_user)  # nothing to say: no email
    assert subject(message) == ("Prairie Tractors daily digest: 2 offers waiting, "
                                  "1 overdue, 1 to contact")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = text_of(message)
    assert "OFFERS WAITING FOR YOU: 2" in text and "left to accept" in text
    assert "FIRST CONTACT LATE: 1" in text and "Clear Lake" in text
    assert "OUTCOMES OVERDUE: 1" in text and "Garner" in text
    assert "1 won ($125,000.00), 1 lost, 0 no interest" in text
    assert "lost to Deere: 1" in text
    html = html_of(message)
    assert "Offers waiting for you: 2" in html and "$125,000.00" in html
    assert "<table" in html and 'style="' in html  # inline styles, tables

    again = runner.invoke(args=["digests", "send", "--period", "daily"])
    assert again.exit_code == 0 and len(to(outbox, sales)) == 1  # never twice a period
    assert len(rows(session, kind="digest", user_id=sales.id)) == 1


def test_each_user_gets_it_at_their_hour_in_their_time_zone(
        session, make_lead, dealer, people, outbox, make_user):
    admin, sales = people
    tokyo = make_user("partner", partner=dealer, email="tokyo@d1.test")
    notify.save_choices(session, tokyo, alerts="off", frequency="daily", hour="7",
                        time_zone="Asia/Tokyo")
    notify.save_choices(session, admin, alerts="off", frequency="weekly", hour="7",
                        time_zone="")
    notify.save_choices(session, sales, alerts="off", frequency="daily", hour="9",
                        time_zone="America/Los_Angeles")
    chosen_on(session, datetime(2026, 11, 1, tzinfo=UTC), tokyo, admin, sales)
    offered(session, make_lead)
    outbox.clear()

    # 22:30 UTC on Tuesday 1 December: 07:30 Wednesday in Tokyo, 14:30 Tuesday in LA.
    tuesday = datetime(2026, 12, 1, 22, 30, tzinfo=UTC)
    notify_outbox.send_digests(tuesday)
    # The weekly one was due from Monday 07:00 (Chicago, the portal's zone): a week
    # chosen mid-week still gets its digest.
    assert {m["To"] for m in outbox} == {tokyo.email, sales.email, admin.email}
    periods = {r.user_id: r.period for r in rows(session, kind="digest")}
    assert periods == {tokyo.id: "2026-12-02", sales.id: "2026-12-01", admin.id: "2026-W49"}
    # 16:59 UTC: 08:59 in LA on Wednesday, not yet its 09:00; Tokyo had today's.
    notify_outbox.send_digests(datetime(2026, 12, 2, 16, 59, tzinfo=UTC))
    assert len(outbox) == 3
    notify_outbox.send_digests(datetime(2026, 12, 2, 17, 0, tzinfo=UTC))
    assert len(to(outbox, sales)) == 2 and len(to(outbox, tokyo)) == 1
    # The next week's: Monday 7 December at 07:00 in Chicago = 13:00 UTC.
    notify_outbox.send_digests(datetime(2026, 12, 7, 12, 59, tzinfo=UTC))
    assert len(to(outbox, admin)) == 1
    notify_outbox.send_digests(datetime(2026, 12, 7, 13, 0, tzinfo=UTC))
    assert len(to(outbox, admin)) == 2
    assert "weekly digest" in subject(to(outbox, admin)[-1])
    assert rows(session, user_id=admin.id, kind="digest")[-1].period == "2026-W50"


def chosen_on(session: Any, when: datetime, *users: Any) -> None:
    """As if these users (and their choices) had been there since ``when``: a digest
    whose hour passed before a user chose it is not made up."""
    for user in users:
        user.created_at = when
        pref = session.get(MailPreference, user.id)
        if pref is not None:
            pref.updated_at = when
    session.commit()


def test_a_missed_hour_is_made_up_after_midnight_but_not_for_a_later_choice(
        session, make_lead, dealer, people, outbox):
    admin, sales = people
    notify.save_choices(session, sales, alerts="off", frequency="daily", hour="22",
                        time_zone="America/Chicago")
    notify.save_choices(session, admin, alerts="off", frequency="daily", hour="22",
                        time_zone="America/Chicago")
    chosen_on(session, datetime(2026, 11, 1, tzinfo=UTC), sales)
    # The admin chose 22:00 at 23:00 on 1 December (05:00 UTC on the 2nd).
    chosen_on(session, datetime(2026, 12, 2, 5, 0, tzinfo=UTC), admin)
    offered(session, make_lead)
    outbox.clear()
    # Nothing ran from 22:00 Chicago (04:00 UTC) to midnight; the next run is at 01:30.
    notify_outbox.send_digests(datetime(2026, 12, 2, 7, 30, tzinfo=UTC))
    (row,) = rows(session, kind="digest")
    assert (row.user_id, row.period) == (sales.id, "2026-12-01")  # late, not lost
    assert len(to(outbox, sales)) == 1 and not to(outbox, admin)
    # That evening's is the next; the admin's first is then too.
    notify_outbox.send_digests(datetime(2026, 12, 3, 4, 0, tzinfo=UTC))
    assert len(to(outbox, sales)) == 2 and len(to(outbox, admin)) == 1
    assert rows(session, kind="digest", user_id=admin.id)[0].period == "2026-12-02"


def test_a_digest_window_runs_hour_to_hour_across_a_change_of_clocks(
        session, make_lead, dealer, people, outbox):
    admin, sales = people
    notify.save_choices(session, sales, alerts="off", frequency="daily", hour="7",
                        time_zone="America/Chicago")
    chosen_on(session, datetime(2027, 3, 1, tzinfo=UTC), sales)
    offered(session, make_lead)
    # Clocks went forward at 02:00 on Sunday 14 March 2027: 07:00 CDT is 12:00 UTC.
    digests.plan(session, datetime(2027, 3, 14, 12, 0, tzinfo=UTC), frequency="daily")
    (row,) = rows(session, kind="digest", user_id=sales.id)
    period = digests.period_of(row)
    assert period.key == "2027-03-14"
    assert period.since == datetime(2027, 3, 13, 13, 0, tzinfo=UTC)  # 07:00 CST
    assert period.until == datetime(2027, 3, 14, 12, 0, tzinfo=UTC)  # 07:00 CDT
    assert digests.plan(session, datetime(2027, 3, 14, 11, 59, tzinfo=UTC)) == 0


def test_a_new_time_zone_sends_no_second_digest_the_same_day(
        session, make_lead, dealer, people, outbox):
    admin, sales = people
    notify.save_choices(session, sales, alerts="off", frequency="daily", hour="7",
                        time_zone="America/Chicago")
    chosen_on(session, datetime(2026, 11, 1, tzinfo=UTC), sales)
    offered(session, make_lead)
    outbox.clear()
    notify_outbox.send_digests(datetime(2026, 12, 2, 13, 0, tzinfo=UTC))  # 07:00 in Chicago
    assert len(to(outbox, sales)) == 1
    notify.save_choices(session, sales, alerts="off", frequency="daily", hour="7",
                        time_zone="Asia/Tokyo")
    chosen_on(session, datetime(2026, 12, 2, 14, 0, tzinfo=UTC), sales)
    # 07:00 on 3 December in Tokyo, nine hours after Chicago's: not a second one.
    notify_outbox.send_digests(datetime(2026, 12, 2, 22, 0, tzinfo=UTC))
    assert len(to(outbox, sales)) == 1
    notify_outbox.send_digests(datetime(2026, 12, 3, 22, 0, tzinfo=UTC))
    assert len(to(outbox, sales)) == 2
    assert [r.period for r in rows(session, kind="digest", user_id=sales.id)] == [
        "2026-12-02", "2026-12-04"]


def test_a_digest_run_sends_over_one_smtp_connection(
        session, make_lead, make_partner, make_user, outbox):
    for number in range(4):
        firm = make_partner(f"P{number}", territories=["zip:50401"])
        make_user("partner", partner=firm)
    for _ in range(4):
        offered(session, make_lead)
    outbox.clear()
    outcome = notify_outbox.send_digests(frequency="daily", by_hand=True)
    assert outcome["sent"] == len(outbox) >= 2
    assert len({m.smtp_peer for m in outbox}) == 1


def test_a_distributor_digest_covers_its_dealers_compliance(
        session, runner, make_partner, make_user, make_lead, outbox):
    distributor = make_partner("DIST", name="Big Distributor", kind="distributor",
                               territories=["zip:50401"])
    good = make_partner("GOOD", name="Good Dealer", parent_id=distributor.id)
    bad = make_partner("BAD", name="Bad Dealer", parent_id=distributor.id)
    boss = make_user("partner", partner=distributor)
    seller = make_user("partner", partner=bad)
    for _ in range(3):
        lead = offered(session, make_lead)
        lifecycle.forward(session, lead, bad, Actor.of(boss))
        lifecycle.accept(session, lead, Actor.of(seller))
        lead.accepted_at = utcnow() - timedelta(days=60)
    session.commit()
    outbox.clear()
    runner.invoke(args=["digests", "send", "--period", "daily"])
    (message,) = to(outbox, boss)
    text = text_of(message)
    dealers = text.split("YOUR DEALERS")[1]
    assert dealers.index("Bad Dealer (BAD): 0 / 0 / 3 / 0 / 0") < dealers.index("Good Dealer")
    assert "Bad Dealer</td>" in html_of(message)
    assert good.code in text


def test_the_managers_weekly_digest_compares_the_week_and_names_the_worst(
        session, runner, make_lead, make_user, dealer, people, outbox):
    admin, sales = people
    manager = make_user("manager", email="cm@portal.test")

    def offered_days_ago(days: int, *, contact: bool = False) -> Any:
        lead = offered(session, make_lead)
        if contact:
            lifecycle.accept(session, lead, Actor.of(sales))
            lifecycle.advance(session, lead, "contacted", Actor.of(sales),
                              data={"channel": "phone"})
        when = utcnow() - timedelta(days=days)
        for offer in session.scalars(select(Offer).where(Offer.lead_id == lead.id)):
            offer.offered_at = when
        lead.offered_at = when
        session.commit()
        return lead

    offered_days_ago(10, contact=True)  # the week before: one offer, followed up
    for _ in range(2):
        offered_days_ago(3)
    offered_days_ago(3, contact=True)
    offered(session, make_lead)  # today's: its contact time has not run out
    unassigned = make_lead(postal_code="99999")
    route(session, unassigned)
    session.commit()
    outbox.clear()
    runner.invoke(args=["digests", "send", "--period", "weekly"])
    (message,) = to(outbox, manager)
    assert subject(message) == ("Channel weekly digest: 4 offers, 0 won, "
                                  "1 lead unassigned")
    text = text_of(message)
    assert "Offers: 4 (1)" in text and "Followed up: 25% (100%)" in text
    assert "Prairie Tractors (D1): 1 of 3 followed up (33%)" in text
    assert "1 unassigned leads" in text
    assert not to(outbox, sales)  # partners chose no weekly digest


def test_a_long_list_is_summarised_and_linked(session, runner, make_lead, dealer, people,
                                              outbox, monkeypatch):
    admin, sales = people
    monkeypatch.setattr(digests, "LIST_MAX", 3)
    for _ in range(5):
        offered(session, make_lead)
    outbox.clear()
    runner.invoke(args=["digests", "send", "--period", "daily"])
    text = text_of(to(outbox, sales)[0])
    listed = text.split("OFFERS WAITING FOR YOU: 5")[1].split("FIRST CONTACT")[0]
    assert listed.count("http://portal.test/leads/") == 4  # three leads and the inbox
    assert "… and 2 more: http://portal.test/leads/" in listed


def test_names_with_line_breaks_or_html_stay_text(session, runner, make_partner, make_user,
                                                  make_lead, outbox):
    partner = make_partner("EVIL", name="Acme\r\nBcc: victim@example.com <b>Bold</b>",
                           territories=["zip:50401"])
    user = make_user("partner", partner=partner)
    user.name = "<script>x</script>"
    offered(session, make_lead, city="<i>Ames</i>")
    runner.invoke(args=["digests", "send", "--period", "daily"])
    for message in to(outbox, user):
        assert message["Bcc"] is None and "\n" not in subject(message)
        html = html_of(message)
        assert "<b>Bold</b>" not in html and "<i>Ames</i>" not in html
        assert "&lt;i&gt;Ames&lt;/i&gt;" in html
    assert len(to(outbox, user)) == 2  # the offer and the digest


def test_paused_or_deactivated(session, runner, make_lead, dealer, people, outbox):
    admin, sales = people
    offered(session, make_lead)
    dealer.active, dealer.paused_reason = False, "vacation until Monday"
    sales.active = False
    session.commit()
    outbox.clear()
    runner.invoke(args=["digests", "send", "--period", "daily"])
    assert not to(outbox, sales)
    (message,) = to(outbox, admin)
    assert "Your firm is paused: vacation until Monday." in text_of(message)


# --- choices, unsubscribe, preview --------------------------------------------------------


def test_one_click_unsubscribe_stops_the_digest(session, app, client, runner, make_lead,
                                                dealer, people, outbox):
    admin, sales = people
    offered(session, make_lead)
    runner.invoke(args=["digests", "send", "--period", "daily"])
    message = to(outbox, sales)[-1]
    url = message["List-Unsubscribe"].strip("<>")
    path = urlsplit(url).path
    app.config["WTF_CSRF_ENABLED"] = True
    assert "Stop digest emails" in client.get(path).get_data(as_text=True)
    # A mail client's one-click POST carries no CSRF token and no cookie.
    response = client.post(path, data={"List-Unsubscribe": "One-Click"})
    assert response.status_code == 200 and "no more digest emails" in response.get_data(
        as_text=True)
    assert session.get(MailPreference, sales.id).frequency == "off"
    assert client.get(path[:-3] + "xyz").status_code == 404

    outbox.clear()
    notify_outbox.send_digests(utcnow() + timedelta(days=1), frequency="daily", by_hand=True)
    assert to(outbox, admin) and not to(outbox, sales)  # tomorrow's: not for sales


def test_preferences_page_saves_choices_and_refuses_bad_ones(
        session, client, auth, dealer, make_user):
    user = auth.login("partner", partner=dealer)
    page = client.get("/account/email").get_data(as_text=True)
    assert "My firm&#39;s default (Every offer, reminder and escalation)" in page
    assert "Defaults for" not in page  # not a partner administrator
    bad = client.post("/account/email", data={"alerts": "every", "time_zone": "Mars/Olympus"})
    assert bad.status_code == 422 and "Not a valid choice" in bad.get_data(as_text=True)
    ok = client.post("/account/email", data={"alerts": "digest", "frequency": "weekly",
                                              "hour": "6", "time_zone": "Europe/Berlin"})
    assert ok.status_code == 303
    choice = notify.choices(session, user)
    assert (choice.alerts, choice.frequency, choice.hour, choice.time_zone) == (
        "digest", "weekly", 6, "Europe/Berlin")
    assert client.post("/account/email/firm", data={"alerts": "off"}).status_code == 403


def test_a_partner_admin_sets_the_firms_defaults_and_previews_colleagues_digests(
        session, client, auth, make_lead, dealer, make_partner, make_user):
    colleague = make_user("partner", partner=dealer)
    stranger = make_user("partner", partner=make_partner("D9"))
    auth.login("partner", partner=dealer, partner_admin=True)
    response = client.post("/account/email/firm", data={
        "alerts": "digest", "frequency": "weekly", "time_zone": "America/Denver"})
    assert response.status_code == 303
    session.refresh(dealer)
    assert (dealer.alert_default, dealer.digest_default, dealer.time_zone) == (
        "digest", "weekly", "America/Denver")
    assert notify.choices(session, colleague).frequency == "weekly"

    offered(session, make_lead)
    page = client.get(f"/account/email/preview?user={colleague.id}&period=daily")
    body = page.get_data(as_text=True)
    assert page.status_code == 200 and "Prairie Tractors daily digest: 1 offer waiting" in body
    frame = client.get(f"/account/email/preview/body?user={colleague.id}&period=daily")
    assert "Offers waiting for you: 1" in frame.get_data(as_text=True)
    # Framed by the portal's own page only (every other response: frame-ancestors 'none').
    assert "frame-ancestors 'self'" in frame.headers["Content-Security-Policy"]
    assert frame.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert client.get(f"/account/email/preview?user={stranger.id}").status_code == 404


def test_staff_preview_any_users_digest(session, client, auth, make_lead, dealer, people):
    admin, sales = people
    offered(session, make_lead)
    auth.login("manager")
    body = client.get(f"/account/email/preview?user={sales.id}&period=weekly").get_data(
        as_text=True)
    assert "Prairie Tractors weekly digest: 1 offer waiting" in body
    # Not a link that would turn off someone else's digest.
    token = notify.unsubscribe_token(sales, "digest")
    frame = client.get(f"/account/email/preview/body?user={sales.id}&period=weekly")
    assert token not in body and token not in frame.get_data(as_text=True)
    for odd in ("\u00b2", "99999999999999999999", "-1", "1.5"):
        assert client.get(f"/account/email/preview?user={odd}").status_code == 404
    mine = client.get("/account/email/preview").get_data(as_text=True)
    assert "Channel weekly digest: 1 offer" in mine


def test_a_repeated_plan_writes_each_digest_once(session, make_lead, dealer, people):
    offered(session, make_lead)
    now = utcnow()
    first = digests.plan(session, now, frequency="daily", by_hand=True)
    again = digests.plan(session, now, frequency="daily", by_hand=True)
    assert first == 2 and again == 0
    assert session.scalar(select(func.count()).select_from(Notification)
                          .where(Notification.kind == "digest")) == 2



def test_without_a_mail_server_staff_read_the_development_sink(
        session, app, client, auth, make_lead, dealer, people, tmp_path):
    admin, sales = people
    app.config.update(MAIL_SERVER=None, MAIL_SINK_DIR=str(tmp_path / "sink"))
    lead = offered(session, make_lead, comments="Sink me a quote")
    auth.login("manager")
    page = client.get("/manage/mail").get_data(as_text=True)
    assert "Development mail sink" in page and sales.email in page
    names = re.findall(r'/manage/mail/sink/([0-9T]+\.eml)', page)
    assert len(names) == 2  # the admin's and the seller's alert
    shown = client.get(f"/manage/mail/sink/{names[0]}").get_data(as_text=True)
    assert "New lead offered" in shown and "Sink me a quote" in shown
    assert f"/leads/{lead.id}" in shown
    # Nothing but the sink's own files.
    assert client.get("/manage/mail/sink/..%2Fportal.db").status_code == 404
    assert client.get("/manage/mail/sink/19990101T000000000000.eml").status_code == 404
    client.post("/auth/logout", data={})
    auth.login("partner", partner=dealer)
    assert client.get(f"/manage/mail/sink/{names[0]}").status_code in (403, 404)


def test_a_digest_run_still_going_makes_the_next_one_pass_and_sweeps_leave_digests(
        session, app, make_lead, dealer, people, outbox):
    from portal.core.jobs import jobs

    offered(session, make_lead)
    outbox.clear()
    digests.plan(session, utcnow(), frequency="daily", by_hand=True)
    session.commit()
    notify_jobs.sweep()
    assert outbox == []  # the minute's sweep sends alerts, not the digests
    assert {r.status for r in rows(session, kind="digest")} == {"pending"}
    queue = jobs()
    with queue.huey.lock_task("digest_run"):  # a run still going
        queue.enqueue("digest_run")
    assert outbox == []
    queue.enqueue("digest_run")
    assert len(outbox) == 2  # the admin's and the seller's, once the lock is free


def test_a_digest_run_sends_alerts_that_come_in_before_its_next_batch(
        session, make_lead, dealer, people, outbox, monkeypatch):
    monkeypatch.setattr(notify_outbox, "DIGEST_BATCH", 1)
    offered(session, make_lead)
    outbox.clear()
    digests.plan(session, utcnow(), frequency="daily", by_hand=True)
    # An offer whose nudge was lost (the queue was down): only a sweep or a run finds it.
    lead = make_lead(postal_code="50401")
    routing_service.route_lead(session, lead)
    from portal.core.jobs import _NUDGES

    session.info.pop(_NUDGES, None)
    session.commit()
    assert outbox == []
    notify_outbox.send_digests(frequency="daily", by_hand=True)
    kinds = ["digest" if "digest" in subject(m) else "alert" for m in outbox]
    assert kinds == ["alert", "alert", "digest", "digest"]
