"""Anything sent after a write (DESIGN §3): nudges after commit only, claims committed
before SMTP, sweepers for what a lost nudge left. Real SMTP, both databases."""

# The nurture fixtures are imported from its tests and named as parameters:
# ruff: noqa: F811

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import func, select

from portal.auth import jobs as auth_jobs
from portal.auth.services import request_password_link
from portal.core.jobs import pending_nudges
from portal.core.models import NurtureEnrollment, NurtureSend, PasswordLink, User, utcnow
from portal.extensions import db
from portal.nurture import jobs as njobs
from portal.nurture import services as nurture
from tests.portal.test_nurture import nurtured, text_of, track  # noqa: F401 - fixtures

NEW_PASSWORD = "a brand new passphrase"


def links(session: Any, status: str | None = None) -> int:
    query = select(func.count()).select_from(PasswordLink)
    if status:
        query = query.where(PasswordLink.status == status)
    return session.scalar(query) or 0


def link_path(message: Any) -> str:
    match = re.search(r"http://portal\.test(/auth/(?:reset|invite)/\S+)", text_of(message))
    assert match, message
    return match.group(1)


# --- the mechanism ---------------------------------------------------------------------


def test_a_nudge_is_queued_only_when_the_transaction_commits(session, make_user, outbox):
    user = make_user("manager")
    request_password_link(session, user, "reset")
    assert pending_nudges(session) and outbox == []  # written, flushed, not committed
    session.commit()
    assert pending_nudges(session) == []
    assert len(outbox) == 1 and outbox[0]["To"] == user.email
    assert links(session, "sent") == 1


def test_a_rolled_back_transaction_sends_nothing(session, make_user, outbox):
    session.commit()
    user = make_user("manager")
    request_password_link(session, user, "reset")
    session.rollback()
    session.commit()
    assert outbox == [] and pending_nudges(session) == []
    assert links(session) == 0


def test_a_rolled_back_savepoint_drops_only_its_own_nudges(session, make_user, outbox):
    kept, dropped = make_user("manager"), make_user("manager")
    request_password_link(session, kept, "reset")
    try:
        with session.begin_nested():
            request_password_link(session, dropped, "reset")
            with session.begin_nested():  # released into the one that rolls back
                request_password_link(session, dropped, "invite")
            raise RuntimeError("the rest of this step failed")
    except RuntimeError:
        pass
    assert len(pending_nudges(session)) == 1
    session.commit()
    assert [m["To"] for m in outbox] == [kept.email]


def test_a_password_link_asked_for_on_the_page_is_sent_once_after_commit(
        app, client, session, make_user, outbox):
    app.config["WTF_CSRF_ENABLED"] = False  # the app fixture restores the config
    user = make_user("partner", email="dana@dealer.test")
    response = client.post("/auth/forgot", data={"email": "Dana@Dealer.test"})
    assert response.status_code == 303
    assert len(outbox) == 1 and outbox[0]["To"] == "dana@dealer.test"
    assert links(session, "sent") == 1 and links(session) == 1
    path = link_path(outbox[0])
    assert client.post(path, data={"password": NEW_PASSWORD, "confirm": NEW_PASSWORD}
                       ).status_code == 303
    session.expire_all()
    assert session.get(User, user.id).check_password(NEW_PASSWORD)
    assert auth_jobs.sweep() == {"released": 0}  # nothing left for the sweeper
    assert len(outbox) == 1


def test_the_sweeper_sends_a_password_link_whose_nudge_was_lost(session, make_user, outbox):
    user = make_user("manager")
    request_password_link(session, user, "invite")
    session.info.pop("portal.core.jobs.after_commit")  # the queue never heard of it
    session.commit()
    assert outbox == [] and links(session, "pending") == 1
    assert auth_jobs.sweep()["sent"] == 1
    assert auth_jobs.sweep() == {"released": 0}
    assert len(outbox) == 1 and "/auth/invite/" in link_path(outbox[0])


def test_a_link_voided_before_it_was_sent_is_not_sent(session, make_user, outbox):
    user = make_user("manager")
    request_password_link(session, user, "reset")
    session.info.pop("portal.core.jobs.after_commit")
    user.session_version += 1  # the password changed meanwhile
    session.commit()
    assert auth_jobs.sweep()["skipped"] == 1
    assert outbox == [] and links(session, "skipped") == 1


def test_a_mail_server_outage_retries_the_link_later(app, session, make_user, outbox):
    user = make_user("manager")
    app.config["MAIL_PORT"] = 1  # nothing listens there (the app fixture restores it)
    request_password_link(session, user, "reset")
    session.commit()
    row = session.scalars(select(PasswordLink)).one()
    session.refresh(row)
    assert (row.status, row.attempts) == ("pending", 1) and "Mail server" in row.last_error
    assert row.next_attempt_at > utcnow() and outbox == []


# --- nurture: no SMTP inside a write transaction ------------------------------------------


@pytest.fixture
def open_savepoints_at_smtp(app, smtp_server) -> Any:
    """For each message the SMTP server receives: how many transactions of ours were
    open at that moment (in the tests every session's transaction is a SAVEPOINT on the
    test's connection, so open savepoints are exactly our open transactions)."""
    open_names: list[str] = []
    seen: list[int] = []

    def track_savepoints(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        words = statement.split()
        if len(words) >= 2 and words[0].upper() == "SAVEPOINT":
            open_names.append(words[1])
        elif len(words) >= 3 and words[0].upper() == "RELEASE":
            del open_names[open_names.index(words[-1]):]
        elif len(words) >= 4 and words[0].upper() == "ROLLBACK" and words[2].upper() == \
                "SAVEPOINT":
            # Still defined in SQL, but holding nothing and never used again by SQLAlchemy.
            del open_names[open_names.index(words[-1]):]

    handler = smtp_server.handler
    original = type(handler).handle_DATA

    async def handle_data(server: Any, session: Any, envelope: Any) -> str:
        seen.append(len(open_names))  # the sender waits for our answer meanwhile
        return await original(handler, server, session, envelope)

    engine = db.engine
    sa.event.listen(engine, "before_cursor_execute", track_savepoints)
    handler.handle_DATA = handle_data
    try:
        yield seen
    finally:
        del handler.handle_DATA
        sa.event.remove(engine, "before_cursor_execute", track_savepoints)


def test_nurture_emails_are_sent_with_no_transaction_open(
        session, nurtured, track, outbox, open_savepoints_at_smtp):
    session.commit()
    outcomes = njobs.sweep()
    assert (outcomes["enrolled"], outcomes["planned"]) == (1, 1)
    njobs.sweep(now=utcnow() + timedelta(days=8))
    assert [m["Subject"] for m in outbox] == ["Choosing a tractor", "The TRC brochure"]
    # Before: the SMTP conversation ran inside the sweep's transaction and a savepoint.
    assert open_savepoints_at_smtp == [0, 0]
    assert session.scalar(select(func.count()).select_from(NurtureSend)
                          .where(NurtureSend.status == "sent")) == 2


def test_a_claim_a_crash_left_goes_again_once_stale_with_the_same_message_id(
        session, nurtured, track, outbox):
    session.commit()
    now = utcnow()
    nurture.enrol_waiting(session, now=now)
    (send_id,) = nurture.plan_due(session, now=now)
    session.info.pop("portal.core.jobs.after_commit")
    session.commit()
    assert nurture.claim_send(session, send_id, now)
    session.commit()  # the worker died here, after the claim, before or after SMTP
    assert njobs.process_send(send_id) == "skipped"  # a retried nudge keeps off
    assert njobs.sweep(now=now)["interrupted"] == 0  # still within the time limit
    assert outbox == []
    # At least once: a stale claim goes again (had the first copy gone, the second has
    # the same Message-ID).
    outcome = njobs.sweep(now=now + timedelta(hours=1))
    assert outcome["interrupted"] == 1 and outcome["sent"] == 1
    assert session.get(NurtureSend, send_id, populate_existing=True).status == "sent"
    assert len(outbox) == 1 and outbox[0]["Message-ID"] == f"<nurture-{send_id}@portal.localhost>"


def test_the_nurture_sweeper_sends_what_a_lost_nudge_left(session, nurtured, track,
                                                           outbox):
    session.commit()
    now = utcnow()
    nurture.enrol_waiting(session, now=now)
    (send_id,) = nurture.plan_due(session, now=now)
    session.info.pop("portal.core.jobs.after_commit")
    session.commit()
    assert outbox == []
    assert njobs.sweep()["sent"] == 1
    assert [m["Subject"] for m in outbox] == ["Choosing a tractor"]
    assert njobs.sweep().get("sent", 0) == 0


def test_an_unsubscribe_between_plan_and_send_stops_the_email(session, nurtured, track,
                                                               outbox):
    session.commit()
    now = utcnow()
    nurture.enrol_waiting(session, now=now)
    (send_id,) = nurture.plan_due(session, now=now)
    session.info.pop("portal.core.jobs.after_commit")
    enrollment = session.scalars(select(NurtureEnrollment)).one()
    nurture.unsubscribe(session, enrollment)
    session.commit()
    assert njobs.sweep()["skipped"] == 1
    assert outbox == []
    assert session.get(NurtureSend, send_id, populate_existing=True).status == "skipped"
