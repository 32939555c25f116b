"""Nurture jobs: the sweep that enrols and plans, the nudge that sends one email.

Each stage is its own short transaction on purpose: plans and claims commit before SMTP,
so no lock is held while the mail server answers (on SQLite, the one write lock), and a
commit that fails after a send cannot send it again: the claim was committed first.
"""

from __future__ import annotations

from datetime import datetime

from portal.core.jobs import job, periodic
from portal.core.mail import MailOutbox, send_claimed, send_each
from portal.core.models import NurtureSend, utcnow
from portal.extensions import db
from portal.nurture import services

#: nurture steps, as the one outbox step sends them
NURTURE_SENDS = MailOutbox(
    what="nurture email", kind="nurture", model=NurtureSend, job="send_nurture_email",
    claim=services.claim_send, message=services.send_message,
    failed=services.record_failure, sent=services.record_sent)


def process_send(send_id: int, *, now: datetime | None = None) -> str:
    """Claim, send and record one nurture email: sent, skipped, retry or failed."""
    return send_claimed(NURTURE_SENDS, send_id, now=now)


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Send again what a dead worker left mid-send, enrol waiting leads, plan the due steps (their
    nudges go at commit), then send whatever is still pending and due."""
    session = db.session
    now = now or utcnow()
    outcomes = {"interrupted": services.requeue_stale_sends(session, now)}
    outcomes["enrolled"] = services.enrol_waiting(session, now=now)
    outcomes["planned"] = len(services.plan_due(session, now=now))
    session.commit()
    return send_each(NURTURE_SENDS, services.due_sends(session, now), outcomes, now=now)


@job()
def send_nurture_email(send_id: int) -> str:
    """The nudge after the sweep commits its plan: send that one email now."""
    return process_send(send_id)


@periodic(minute="*")
def nurture_sweep() -> dict[str, int]:
    """Every minute: enrol new nurture leads, send the steps that are due."""
    return sweep()
