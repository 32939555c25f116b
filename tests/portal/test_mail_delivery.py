"""Every email is a row first and goes by one delivery policy (DESIGN §3): retried for
hours through an outage, a short SMTP timeout, a crash mid-send sent again with the same
Message-ID, and one page where staff see what waits and send every failure again.
Real SMTP (aiosmtpd), a closed port, a server that never answers; both databases."""

# The fulfilment fixtures are imported from its tests and named as parameters:
# ruff: noqa: F811

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.auth import jobs as auth_jobs
from portal.auth.services import request_password_link
from portal.core.models import Fulfilment, PasswordLink, utcnow
from portal.fulfilment import jobs as fjobs
from portal.fulfilment import services as fulfilment
from tests.portal.test_fulfilment import (  # noqa: F401 - fixtures
    add_literature,
    closed_port,
    dealer,
    literature_dir,
)


def pack_for(session: Any, make_lead: Any, add_literature: Any) -> Fulfilment:
    add_literature("TRC", "Tractor Overview")
    lead = make_lead(wants_literature=True)
    row = fulfilment.request_pack(session, lead)
    session.info.pop("portal.core.jobs.after_commit")  # only the sweeper sends it
    session.commit()
    return row


def link_for(session: Any, make_user: Any) -> PasswordLink:
    user = make_user("manager")
    request_password_link(session, user, "invite")
    session.info.pop("portal.core.jobs.after_commit")
    session.commit()
    return session.scalars(select(PasswordLink)).one()


KINDS = {
    "pack": (Fulfilment, fjobs.sweep),
    "password link": (PasswordLink, auth_jobs.sweep),
}


@pytest.fixture
def row_of(session, make_lead, make_user, add_literature) -> Any:
    def make(kind: str) -> Any:
        if kind == "pack":
            return pack_for(session, make_lead, add_literature)
        return link_for(session, make_user)
    return make


def refreshed(session: Any, row: Any) -> Any:
    session.expire_all()
    return session.get(type(row), row.id)


# --- a long outage ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_an_email_waits_through_a_day_long_outage_then_goes_by_itself(
        app, session, row_of, outbox, kind):
    model, sweep = KINDS[kind]
    good_port = app.config["MAIL_PORT"]
    app.config["MAIL_PORT"] = closed_port()
    row = row_of(kind)
    start = utcnow()
    clock = start
    waits = []
    # A day of outage, each try when it falls due: never failed, never more than an hour
    # between tries, starting at a minute.
    while clock - start < timedelta(hours=24):
        sweep(now=clock)
        row = refreshed(session, row)
        assert row.status == "pending", (row.attempts, row.last_error)
        assert "Mail server" in row.last_error
        waits.append(row.next_attempt_at - clock)
        clock = row.next_attempt_at
    assert timedelta(seconds=59) <= waits[0] <= timedelta(seconds=61)
    assert max(waits) <= timedelta(hours=1, seconds=1) and waits[-1] >= timedelta(minutes=59)
    assert outbox == []

    app.config["MAIL_PORT"] = good_port  # the mail server is back
    sweep(now=clock)
    assert refreshed(session, row).status == "sent"
    assert len(outbox) == 1


@pytest.mark.parametrize("kind", list(KINDS))
def test_after_the_give_up_time_it_fails_with_the_reason(app, session, row_of, outbox, kind):
    model, sweep = KINDS[kind]
    app.config.update(MAIL_PORT=closed_port(), MAIL_GIVE_UP_HOURS=3)
    row = row_of(kind)
    clock = utcnow()
    for _ in range(100):
        sweep(now=clock)
        row = refreshed(session, row)
        if row.status != "pending":
            break
        clock = row.next_attempt_at
    assert row.status == "failed"
    assert row.last_error.startswith(f"Gave up after {row.attempts} tries")
    assert "Mail server" in row.last_error
    # Waits of 1, 2, 4, 8, 16, 32 min, then hourly: 3 h of waiting after the 9th try.
    assert row.attempts == 9


def test_a_permanent_refusal_fails_at_once(app, session, make_lead, add_literature, outbox):
    add_literature("TRC", "Tractor Overview")
    lead = make_lead(wants_literature=True, email="nobody@bounce.test")
    row = fulfilment.request_pack(session, lead)
    session.commit()
    row = refreshed(session, row)
    assert (row.status, row.attempts) == ("failed", 1)
    assert "550" in row.last_error and outbox == []


# --- a mail server that never answers --------------------------------------------------------




def test_a_server_that_never_answers_times_out_in_the_configured_seconds_and_retries(
        app, session, make_user, mute_server, outbox):
    app.config.update(MAIL_PORT=mute_server, MAIL_TIMEOUT=1.0)
    row = link_for(session, make_user)
    started = time.monotonic()
    assert auth_jobs.process_password_link(row.id) == "retry"
    took = time.monotonic() - started
    assert 0.9 <= took < 3, took
    row = refreshed(session, row)
    assert row.status == "pending" and "timed out" in row.last_error.lower()


def test_the_default_smtp_timeout_is_a_few_seconds(app):
    assert app.config["MAIL_TIMEOUT"] <= 10


# --- a crash mid-send ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_send_a_dead_worker_left_goes_again_by_itself_with_the_same_message_id(
        app, session, row_of, outbox, kind):
    model, sweep = KINDS[kind]
    row = row_of(kind)
    claim = fulfilment.claim if kind == "pack" else auth_jobs.services.claim_password_link
    assert claim(session, row.id, utcnow())
    session.commit()  # the worker died here, before the mail server answered
    sweep()  # within the sending time limit: still the (dead) worker's
    assert refreshed(session, row).status == "sending"
    later = utcnow() + timedelta(seconds=app.config["MAIL_SENDING_TIMEOUT_SECONDS"] + 1)
    outcome = sweep(now=later)
    assert outcome["sent"] == 1, outcome
    row = refreshed(session, row)
    assert row.status == "sent"
    assert len(outbox) == 1, [(m["To"], m["Subject"], m["Message-ID"]) for m in outbox]
    first_id = outbox[0]["Message-ID"]
    assert first_id and str(row.id) in first_id

    # Had the first copy reached the server before the crash, the second is the same email.
    row = refreshed(session, row)
    row.status, row.claimed_at = "sending", later - timedelta(hours=1)
    session.commit()
    sweep(now=later)
    assert len(outbox) == 2 and outbox[1]["Message-ID"] == first_id


# --- the outgoing-mail page ------------------------------------------------------------------


def test_staff_see_every_kind_of_mail_that_waits_and_why(
        app, session, client, auth, make_user, make_lead, add_literature, outbox):
    app.config["MAIL_PORT"] = closed_port()
    pack = pack_for(session, make_lead, add_literature)
    link = link_for(session, make_user)
    fjobs.sweep()
    auth_jobs.sweep()
    queued = fulfilment.request_pack(session, make_lead(wants_literature=True))
    session.info.pop("portal.core.jobs.after_commit")
    session.commit()

    auth.login("admin")
    home = client.get("/", follow_redirects=True).get_data(as_text=True)
    assert 'href="/manage/mail"' in home  # in the admin nav
    page = client.get("/manage/mail").get_data(as_text=True)
    assert "Literature pack" in page and "Invitation" in page
    assert "queued" in page and "retrying" in page and "next try" in page
    assert "Mail server: ConnectionRefusedError" in page
    assert f"#{pack.id}" in page and f"#{link.id}" in page and f"#{queued.id}" in page


def test_staff_send_every_failed_email_of_every_kind_again(
        app, session, client, auth, make_user, make_lead, add_literature, outbox):
    good_port = app.config["MAIL_PORT"]
    app.config.update(MAIL_PORT=closed_port(), MAIL_GIVE_UP_HOURS=0)
    pack = pack_for(session, make_lead, add_literature)
    link = link_for(session, make_user)
    fjobs.sweep()
    auth_jobs.sweep()
    assert refreshed(session, pack).status == "failed"
    assert refreshed(session, link).status == "failed"

    app.config["MAIL_PORT"] = good_port
    auth.login("manager")
    page = client.get("/manage/mail").get_data(as_text=True)
    assert "Send every failed email again" in page and "Gave up after 1 tries" in page
    response = client.post("/manage/mail/retry", data={}, follow_redirects=True)
    assert "2 failed emails will be sent again" in response.get_data(as_text=True)
    assert refreshed(session, pack).status == "sent"
    assert refreshed(session, link).status == "sent"
    assert len(outbox) == 2


def test_partners_cannot_see_or_retry_the_outgoing_mail(client, auth, make_partner):
    auth.login("partner", partner=make_partner())
    assert client.get("/manage/mail").status_code in (403, 404)
    assert client.post("/manage/mail/retry", data={}).status_code in (403, 404)


def test_staff_send_one_failed_email_again(app, session, client, auth, make_user, outbox):
    good_port = app.config["MAIL_PORT"]
    app.config.update(MAIL_PORT=closed_port(), MAIL_GIVE_UP_HOURS=0)
    link = link_for(session, make_user)
    auth_jobs.sweep()
    assert refreshed(session, link).status == "failed"
    app.config["MAIL_PORT"] = good_port
    auth.login("admin")
    page = client.get("/manage/mail").get_data(as_text=True)
    assert f"/manage/mail/password-link/{link.id}/retry" in page
    response = client.post(f"/manage/mail/password-link/{link.id}/retry", data={})
    assert response.status_code == 303
    assert refreshed(session, link).status == "sent" and len(outbox) == 1
    again = client.post(f"/manage/mail/password-link/{link.id}/retry", data={},
                        follow_redirects=True)
    assert "Only a failed email can be sent again" in again.get_data(as_text=True)
    assert client.post(f"/manage/mail/nothing/{link.id}/retry", data={}).status_code == 400
