"""The notifications as the one outbox step sends them: claim, write, record."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from email.message import EmailMessage

from flask import g
from sqlalchemy.orm import Session

from portal.core.mail import MailOutbox, one_connection, send_each
from portal.core.models import Notification, NotificationKind, User, utcnow
from portal.extensions import db
from portal.notify import alerts, digests, prospect, reminders, services

_SHARED = "portal.notify.figures"


@contextmanager
def shared_figures() -> Iterator[None]:
    """Within it, digests share one partner's (and the channel's) figures between users."""
    g.setdefault(_SHARED, {})
    try:
        yield
    finally:
        g.pop(_SHARED, None)


def message(session: Session, row_id: int, now: datetime) -> EmailMessage | None:
    """The claimed notification's email as it reads now; None (and the row marked
    skipped, with why) when it has nothing left to say or nobody to say it to."""
    row = session.get(Notification, row_id, populate_existing=True)
    assert row is not None
    if row.user_id is None:  # a note to a lead's prospect
        note = prospect.moved_email(session, row)
        if isinstance(note, str):
            services.skip(session, row, note)
            return None
        return note
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        services.skip(session, row, "The user is no longer active.")
        return None
    bounced = services.bounced_lately(session, user, row.id, now)
    if bounced:
        services.skip(session, row, bounced)
        return None
    if row.kind == NotificationKind.DIGEST:
        digest = digests.digest_email(session, user, digests.period_of(row), now,
                                       cache=g.get(_SHARED))
        if isinstance(digest, str):
            services.skip(session, row, digest)
            return None
        return digests.digest_message(digest)
    if row.kind == NotificationKind.COMPLIANCE_REMINDER:
        alert = reminders.reminder_email(session, row, user, now)
    else:
        alert = alerts.alert_email(session, row, user, now)
    if isinstance(alert, str):
        services.skip(session, row, alert)
        return None
    return alerts.alert_message(alert)


#: alerts and digests, as the one outbox step sends them
NOTIFICATIONS = MailOutbox(
    what="notification", kind="notification", model=Notification, job="send_notification",
    claim=services.claim, message=message,
    failed=services.record_failure, sent=services.record_sent)


#: digests sent between two looks for alerts that came in meanwhile
DIGEST_BATCH = 50


def send_digests(now: datetime | None = None, *, frequency: str | None = None,
                 by_hand: bool = False) -> dict[str, int]:
    """Plan the digests due now (once per user and period), then send every pending one,
    500 at a time over one SMTP connection; one partner's figures are read once for all
    its users. The clock moves on through a long run (``now`` is where it starts), so
    the last claims of a 10,000-digest run are stamped when they are made."""
    session = db.session
    now = now or utcnow()
    started = utcnow()

    def clock() -> datetime:
        return now + (utcnow() - started)

    # A run killed midway left its last claim "sending": hand it back first (once the
    # claim is stale, so a run still going elsewhere keeps its own), and this run sends it.
    interrupted = services.requeue_stale(session, now)
    outcomes = {"planned": digests.plan(session, now, frequency=frequency, by_hand=by_hand),
                "interrupted": interrupted}
    session.commit()
    with shared_figures(), one_connection():
        # Each row leaves "pending and due" once tried (sent, skipped, failed, or a retry
        # due later), so this ends; it stops early when the mail server is down. Alerts
        # are not its to send: their nudges and the minute's sweep do.
        while ids := services.due(session, clock(), DIGEST_BATCH, digests=True):
            # Alerts first: an offer's alert written during the run goes out within a
            # batch, not after 10,000 digests (the worker's other thread may be busy).
            alerts_due = services.due(session, clock(), 500, digests=False)
            if alerts_due:
                send_each(NOTIFICATIONS, alerts_due, outcomes, now=clock())
            send_each(NOTIFICATIONS, ids, outcomes, now=clock())
            if outcomes.get("stopped"):
                break
    return outcomes
