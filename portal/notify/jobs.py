"""Notification jobs: the nudge that sends one alert, the sweep behind it, the digests.

Each stage is its own short transaction on purpose: rows are written with their event,
claims commit before SMTP, so no lock is held while the mail server answers, and a
commit that fails after a send cannot send it again.
"""

from __future__ import annotations

from datetime import datetime

from portal.core.jobs import job, periodic
from portal.core.mail import send_claimed, send_each
from portal.core.models import utcnow
from portal.extensions import db
from portal.notify import alerts, outbox, services, task_reminders
from portal.notify.outbox import NOTIFICATIONS


def process(row_id: int, *, now: datetime | None = None) -> str:
    """Claim, send and record one notification: sent, skipped, retry or failed."""
    return send_claimed(NOTIFICATIONS, row_id, now=now)


def sweep(now: datetime | None = None, limit: int = 500) -> dict[str, int]:
    """Settle rows a dead worker left, write the reminders and escalations the clocks
    call for (and those of follow-up tasks that fell due), then send whatever is pending
    and due (a lost nudge, a retry)."""
    session = db.session
    now = now or utcnow()
    outcomes = {"interrupted": services.requeue_stale(session, now)}
    outcomes.update(alerts.scan(session, now, gate=False))
    outcomes["task_reminders"] = task_reminders.due_reminders(session, now)
    session.commit()
    # Alerts only: digests are the digest run's, so a run of 10,000 keeps this thread's
    # hands free for the next offer's alert.
    return send_each(NOTIFICATIONS, services.due(session, now, limit, digests=False),
                     outcomes, now=now)


@job()
def send_notification(row_id: int) -> str:
    """The nudge after the event's transaction commits: send that one alert now."""
    return process(row_id)


@periodic(minute="*")
def notify_sweep() -> dict[str, int]:
    """Every minute: reminders and escalations, and any alert still waiting."""
    return sweep()


def gate_check(now: datetime | None = None) -> dict[str, int]:
    """Tell the channel managers of partners the compliance gate has just begun to hold
    back, and send it."""
    session = db.session
    now = now or utcnow()
    outcomes = {"gate": alerts.gate_changes(session, now)}
    session.commit()
    return send_each(NOTIFICATIONS, services.due(session, now, 500, digests=False), outcomes,
                     now=now)


@periodic(minute="*/10")
def gate_sweep() -> dict[str, int]:
    """Every ten minutes (a grouped count of overdue outcomes: not worth every minute)."""
    return gate_check()


@periodic(minute="*/5", exclusive=True)
def digest_run() -> dict[str, int]:
    """Every five minutes: the digests whose hour has come in their users' zones (one run
    at a time: a run still sending when the next is due lets it pass)."""
    return outbox.send_digests()
