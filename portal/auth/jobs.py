"""Invitation and reset emails: the nudge after commit, and the sweeper behind it.

Each stage is its own short transaction on purpose: the claim commits before SMTP, so no
lock is held while the mail server answers and a second worker sees the claim.
"""

from __future__ import annotations

from datetime import datetime

from portal.auth import services, sessions
from portal.core.jobs import job, periodic
from portal.core.mail import MailOutbox, send_claimed, send_each
from portal.core.models import PasswordLink, utcnow
from portal.extensions import db

#: invitation and reset emails, as the one outbox step sends them
PASSWORD_LINKS = MailOutbox(
    what="password link", kind="password-link", model=PasswordLink, job="send_password_link",
    claim=services.claim_password_link,
    message=services.password_link_message, failed=services.record_password_link_failure,
    sent=services.record_password_link_sent)


def process_password_link(link_id: int, *, now: datetime | None = None) -> str:
    """Claim, send and record one link email: sent, skipped, retry or failed."""
    return send_claimed(PASSWORD_LINKS, link_id, now=now)


def sweep(now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Send again links a dead worker left claimed, then every pending one that is due."""
    session = db.session
    now = now or utcnow()
    outcomes = {"released": services.release_stale_password_links(session, now)}
    session.commit()
    return send_each(PASSWORD_LINKS, services.due_password_links(session, now, limit),
                     outcomes, now=now)


@job()
def send_password_link(link_id: int) -> str:
    """The nudge after the request commits: send that one link email now."""
    return process_password_link(link_id)


@periodic(minute="*")
def password_link_sweep() -> None:
    """Every minute: send link emails whose nudge was lost or whose retry is due."""
    sweep()


@job()
def note_api_token_use(token_id: int, at: str) -> None:
    """Write down when an API token was last used (queued after the response, see
    portal.api.auth: the request itself may have been a read-only one)."""
    sessions.record_api_token_use(db.session, token_id, datetime.fromisoformat(at))


@periodic(minute="17")
def sign_in_sweep() -> None:
    """Hourly: forget sign-ins that ended or outlived any cookie, and sign-in attempts the
    throttle no longer reads (both tables stay small)."""
    sessions.forget_old_sign_ins(db.session)
    services.forget_old_attempts(db.session)
