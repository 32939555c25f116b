"""Nurture jobs: the sweep that enrols and plans, the nudge that sends one email.

Each stage is its own short transaction on purpose: plans and claims commit before SMTP,
so no lock is held while the mail server answers (on SQLite, the one write lock), and a
commit that fails after a send cannot send it again: the claim was committed first.
"""

from __future__ import annotations

import smtplib
from datetime import datetime

from flask import current_app

from portal.core.jobs import job, periodic
from portal.core.mail import deliver
from portal.core.models import utcnow
from portal.extensions import db
from portal.nurture import services


def process_send(send_id: int, *, now: datetime | None = None) -> str:
    """Claim, send and record one nurture email: sent, skipped, retry or failed."""
    session = db.session
    now = now or utcnow()
    if not services.claim_send(session, send_id, now):
        session.rollback()
        return "skipped"  # sent already, someone else is on it, or not due yet
    session.commit()
    message = services.send_message(session, send_id, now)
    session.commit()  # end the transaction before talking to the mail server
    if message is None:
        return "skipped"
    try:
        deliver(message)
    except (smtplib.SMTPException, OSError) as error:
        current_app.logger.warning("nurture email %s not sent: %s", send_id, error)
        outcome = services.record_failure(
            session, send_id, f"Mail server: {type(error).__name__}: {error}", utcnow())
        session.commit()
        return outcome
    services.record_sent(session, send_id, utcnow())
    session.commit()
    return "sent"


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Settle sends a dead worker left, enrol waiting leads, plan the due steps (their
    nudges go at commit), then send whatever is still pending and due."""
    session = db.session
    now = now or utcnow()
    outcomes = {"interrupted": services.fail_stale_sends(session, now)}
    outcomes["enrolled"] = services.enrol_waiting(session, now=now)
    outcomes["planned"] = len(services.plan_due(session, now=now))
    session.commit()
    for send_id in services.due_sends(session, now):
        session.commit()
        outcome = process_send(send_id, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    session.commit()
    return outcomes


@job()
def send_nurture_email(send_id: int) -> str:
    """The nudge after the sweep commits its plan: send that one email now."""
    return process_send(send_id)


@periodic(minute="*")
def nurture_sweep() -> dict[str, int]:
    """Every minute: enrol new nurture leads, send the steps that are due."""
    return sweep()
