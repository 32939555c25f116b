"""Outgoing email: SMTP when ``MAIL_SERVER`` is set, else files in ``instance/mail-sink/``."""

from __future__ import annotations

import email.policy
import re
import smtplib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import Any

from flask import current_app, g
from sqlalchemy.orm import Session

from portal.core.jobs import PENDING, SENDING, queue_nudge, stale_claims
from portal.core.models import utcnow
from portal.extensions import db

_POLICY = email.policy.default.clone(max_line_length=998)


def _clean_header(value: str) -> str:
    # Names end up in headers: a CR or LF there would let input add headers of its own.
    return " ".join(value.replace("\r", " ").replace("\n", " ").split())


def build_message(
    to: str,
    subject: str,
    text: str,
    html: str | None = None,
    attachments: tuple[tuple[str, bytes, str], ...] = (),
    headers: dict[str, str] | None = None,
) -> EmailMessage:
    """An email with a text body, optional HTML alternative, attachments and headers."""
    # Long headers are folded at 998, not 78: a List-Unsubscribe URL has no space to fold
    # at, and a 78-column policy would turn it into an encoded word clients cannot use.
    message = EmailMessage(policy=_POLICY)
    message["From"] = current_app.config["MAIL_DEFAULT_SENDER"]
    message["To"] = _clean_header(to)
    message["Subject"] = _clean_header(subject)
    message["Message-ID"] = make_msgid(domain="portal.localhost")
    message["Date"] = formatdate(usegmt=True)
    for name, value in (headers or {}).items():
        message[name] = _clean_header(value)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for filename, payload, mime in attachments:
        maintype, subtype = mime.split("/", 1)
        message.add_attachment(payload, maintype=maintype, subtype=subtype, filename=filename)
    return message


_CONNECTION = "portal.core.mail.connection"


def _connect() -> smtplib.SMTP:
    config = current_app.config
    # A short timeout (each connect, read and write): a server that accepts and never
    # answers costs one try a few seconds, not a worker thread for half a minute while
    # the sweeper queues behind it. The retry schedule does the waiting.
    smtp = smtplib.SMTP(config["MAIL_SERVER"], config["MAIL_PORT"],
                        timeout=float(config.get("MAIL_TIMEOUT", 5.0)))
    try:
        if config.get("MAIL_USE_TLS"):
            smtp.starttls()
        if config.get("MAIL_USERNAME"):
            smtp.login(config["MAIL_USERNAME"], config.get("MAIL_PASSWORD") or "")
    except BaseException:
        smtp.close()
        raise
    return smtp


def _hang_up(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


@contextmanager
def one_connection() -> Iterator[None]:
    """Within it, emails share one SMTP connection, opened for the first and closed at
    the end: a sweep's hundreds of emails pay for one handshake, not one each. A refused
    address keeps the connection; any other error drops it and the next email dials
    again."""
    if _CONNECTION in g:
        yield  # an outer block owns the connection
        return
    setattr(g, _CONNECTION, None)
    try:
        yield
    finally:
        smtp = g.pop(_CONNECTION, None)
        if smtp is not None:
            _hang_up(smtp)


def deliver(message: EmailMessage) -> None:
    """Send through the configured SMTP server, or write to the local sink in development."""
    config = current_app.config
    if not config.get("MAIL_SERVER"):
        sink = Path(config["MAIL_SINK_DIR"])
        sink.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        (sink / f"{stamp}.eml").write_bytes(bytes(message))
        current_app.logger.info("mail to %s written to %s", message["To"], sink)
        return
    if _CONNECTION not in g:
        smtp = _connect()
        try:
            smtp.send_message(message)
        finally:
            _hang_up(smtp)
        return
    smtp = g.get(_CONNECTION) or _connect()
    setattr(g, _CONNECTION, smtp)
    try:
        smtp.send_message(message)
    except smtplib.SMTPRecipientsRefused:
        raise  # the server said no to the address and reset the transaction: still usable
    except BaseException:
        setattr(g, _CONNECTION, None)
        smtp.close()
        raise


@dataclass(frozen=True)
class SunkMessage:
    """One email the development sink holds."""

    name: str  #: its file's name
    to: str
    subject: str
    date: str
    text: str
    html: str


def _read_sunk(path: Path) -> SunkMessage:
    parsed = message_from_bytes(path.read_bytes(), policy=email.policy.default)
    parts = {"text/plain": "", "text/html": ""}
    for part in parsed.walk():
        kind = part.get_content_type()
        if kind in parts and not parts[kind] and part.get_content_disposition() is None:
            parts[kind] = str(part.get_content())
    return SunkMessage(path.name, str(parsed["To"] or ""), str(parsed["Subject"] or ""),
                       str(parsed["Date"] or ""), parts["text/plain"], parts["text/html"])


def sink_messages(limit: int = 30) -> list[SunkMessage] | None:
    """The newest emails in the development sink; None when mail goes to a server."""
    config = current_app.config
    if config.get("MAIL_SERVER"):
        return None
    sink = Path(config["MAIL_SINK_DIR"])
    files = sorted(sink.glob("*.eml"), reverse=True)[:limit] if sink.is_dir() else []
    return [_read_sunk(path) for path in files]


def sunk_message(name: str) -> SunkMessage | None:
    """One email of the development sink by its file name (nothing outside the folder)."""
    config = current_app.config
    if config.get("MAIL_SERVER") or not re.fullmatch(r"[0-9T]+\.eml", name):
        return None
    path = Path(config["MAIL_SINK_DIR"]) / name
    return _read_sunk(path) if path.is_file() else None


def public_url(endpoint: str, **values: Any) -> str:
    """An absolute link for an email: built without a request, on ``PORTAL_BASE_URL``."""
    adapter = current_app.url_map.bind("portal", script_name="/")
    base = str(current_app.config["PORTAL_BASE_URL"]).rstrip("/")
    return base + adapter.build(endpoint, values)


# --- one delivery policy for every email (DESIGN §3) -----------------------------------------
# Every email is a row first (a notification, a password link, a nurture step, a literature
# pack); a nudge after commit sends it, a sweeper catches what a lost nudge or a crash
# left, and they all retry, give up and recover the same way, by the settings here.


def retry_wait(attempts: int) -> timedelta:
    """The wait after the ``attempts``-th failed try: MAIL_RETRY_SECONDS (1 min), doubling,
    at most MAIL_RETRY_MAX_SECONDS (1 h)."""
    config = current_app.config
    base = float(config.get("MAIL_RETRY_SECONDS", 60))
    ceiling = float(config.get("MAIL_RETRY_MAX_SECONDS", 3600))
    return timedelta(seconds=min(base * 2 ** min(max(attempts - 1, 0), 30), ceiling))


def gives_up(attempts: int) -> bool:
    """After ``attempts`` failed tries, has the email waited MAIL_GIVE_UP_HOURS (36 h) of
    retries? Counted from the schedule, not the row's age: a row a manager sent again
    gets the whole time again."""
    limit = timedelta(hours=float(current_app.config.get("MAIL_GIVE_UP_HOURS", 36)))
    waited = timedelta()
    for n in range(1, attempts):
        if waited >= limit:
            break
        waited += retry_wait(n)
    return waited >= limit


def is_permanent(error: Exception) -> bool:
    """The mail server refused for good (a 5xx: no such mailbox, message refused): trying
    again would only be refused again. A refused login is not: it is the portal's own
    setting, and once an admin fixes it the waiting emails should go."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bounced(error)
    if isinstance(error, smtplib.SMTPAuthenticationError):
        return False
    if isinstance(error, smtplib.SMTPResponseException):
        return error.smtp_code >= 500
    return False


def stale_after() -> timedelta:
    """A claim older than this belongs to a worker that died (MAIL_SENDING_TIMEOUT_SECONDS:
    well past the longest render and SMTP exchange)."""
    return timedelta(seconds=float(current_app.config.get("MAIL_SENDING_TIMEOUT_SECONDS", 600)))


def requeue_stale(session: Session, model: type[Any], now: datetime, *conditions: Any) -> int:
    """Rows a dead worker left ``sending`` go back to pending, due now: sent again by
    themselves, not failed for a person to find.

    At least once, not exactly once: a crash between the mail server's 250 and the commit
    that records it sends the email twice. Every row's Message-ID is stable
    (``stable_message_id``), so the copies are recognisable as one email, and mail systems
    that dedupe on it show one.
    """
    result = session.execute(
        stale_claims(model, now, stale_after(), *conditions)
        .values(status=PENDING, claimed_at=None, next_attempt_at=now,
                last_error="The worker stopped while sending this; sending it again."),
        execution_options={"synchronize_session": False})
    return result.rowcount or 0  # type: ignore[attr-defined, no-any-return]


def record_failed_try(session: Session, model: type[Any], row_id: Any, message: str,
                      now: datetime, *, permanent: bool = False) -> str:
    """After a failed try, by the one policy: pending again after ``retry_wait`` ("retry"),
    or "failed" with the reason once ``gives_up`` or at once when ``permanent``."""
    row = session.get(model, row_id, populate_existing=True)
    if row is None or row.status != SENDING:
        return "skipped"  # no longer this worker's claim
    row.claimed_at = None
    if permanent:
        row.status, row.last_error = "failed", message[:2000]
    elif gives_up(row.attempts):
        row.status = "failed"
        row.last_error = f"Gave up after {row.attempts} tries. Last error: {message}"[:2000]
    else:
        row.status, row.last_error = PENDING, message[:2000]
        row.next_attempt_at = now + retry_wait(row.attempts)
    session.flush()
    return "failed" if row.status == "failed" else "retry"


def stable_message_id(kind: str, row_id: Any) -> str:
    """One Message-ID per row, the same at every try: a copy sent twice (see
    ``requeue_stale``) is recognisably the same email."""
    return f"<{kind}-{row_id}@portal.localhost>"


def bounced(error: Exception) -> bool:
    """The mail server refused the address for good (a 5xx for every recipient): trying
    again would only be refused again."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(
            code >= 500 for code, _ in error.recipients.values())
    return False


@dataclass(frozen=True)
class MailOutbox:
    """One kind of email that is a row first (a password link, a nurture step): how its
    row is claimed, turned into a message and marked sent or failed, each by its area."""

    what: str  #: "password link", for the log
    kind: str  #: "password-link": its rows' Message-IDs and the outgoing-mail page
    model: type[Any]  #: the rows' model
    job: str  #: the nudge that sends one row (re-queued for the time of its retry)
    claim: Callable[[Session, int, datetime], bool]
    message: Callable[[Session, int, datetime], EmailMessage | None]
    #: (session, row id, why, now, for good): "retry", "failed" or "skipped"
    failed: Callable[[Session, int, str, datetime, bool], str]
    sent: Callable[[Session, int, datetime], None]


def _failed(outbox: MailOutbox, session: Session, row_id: int, why: str, now: datetime, *,
            permanent: bool = False) -> str:
    """Record a failed try in a transaction of its own; the outbox says retry or failed."""
    session.rollback()
    current_app.logger.warning("%s %s not sent: %s", outbox.what, row_id, why)
    outcome = outbox.failed(session, row_id, why, now, permanent)
    session.commit()
    return outcome


def send_claimed(outbox: MailOutbox, row_id: int, *, now: datetime | None = None) -> str:
    """Claim, send and record one email: "sent", "skipped", or what ``failed`` says
    (a retry, or failed for good). Each stage is its own short transaction: the claim
    commits before SMTP, so no lock is held while the mail server answers, and a commit
    that fails after the send cannot send it again."""
    session = db.session
    now = now or utcnow()
    if not outbox.claim(session, row_id, now):
        session.rollback()
        return "skipped"  # sent already, someone else is on it, or not due yet
    session.commit()
    try:
        message = outbox.message(session, row_id, now)
        session.commit()  # end the transaction before talking to the mail server
        if message is None:
            return "skipped"
        # The same Message-ID at every try: a copy sent twice is recognisably one email.
        del message["Message-ID"]
        message["Message-ID"] = stable_message_id(outbox.kind, row_id)
        deliver(message)
    except (smtplib.SMTPException, OSError) as error:
        if bounced(error):
            outcome = _failed(outbox, session, row_id, f"Address refused (bounced): {error}",
                              now, permanent=True)
        else:
            outcome = _failed(outbox, session, row_id,
                              f"Mail server: {type(error).__name__}: {error}", now,
                              permanent=is_permanent(error))
        return nudge_retry(outbox.job, outbox.model, row_id, outcome)
    except Exception as error:  # noqa: BLE001 - a bad row or template: recorded, not a loop
        current_app.logger.exception("%s %s could not be sent", outbox.what, row_id)
        outcome = _failed(outbox, session, row_id, f"{type(error).__name__}: {error}", now)
        return nudge_retry(outbox.job, outbox.model, row_id, outcome)
    outbox.sent(session, row_id, utcnow())
    session.commit()
    return "sent"


def nudge_retry(job_name: str, model: type[Any], row_id: Any, outcome: str) -> str:
    """After a "retry": queue the row's nudge for the time of its next try, so it goes
    then rather than at the next sweep (which still catches it if this nudge is lost)."""
    if outcome == "retry":
        row = db.session.get(model, row_id)
        due = row.next_attempt_at if row is not None and row.status == PENDING else None
        db.session.commit()  # no transaction open while the queue is written to
        if due is not None:
            queue_nudge(job_name, row_id, eta=due)
    return outcome


#: a sweep stops after this many emails in a row could not be sent (the mail server is
#: down): the rest wait, still due, for the next sweep instead of each taking a timeout
GIVE_UP_AFTER = 5


def send_each(outbox: MailOutbox, row_ids: list[int], outcomes: dict[str, int], *,
              now: datetime | None = None) -> dict[str, int]:
    """A sweeper's loop: send each due row in turn over one SMTP connection, counting the
    outcomes. ``now`` (a test's clock) moves on with the wall clock, so a claim made late
    in a long run is stamped when it is made, not when the run began."""
    started, failures = utcnow(), 0
    with one_connection():
        for row_id in row_ids:
            db.session.commit()  # each email is its own claim, send and record
            at = None if now is None else now + (utcnow() - started)
            outcome = send_claimed(outbox, row_id, now=at)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            failures = failures + 1 if outcome == "retry" else 0
            if failures >= GIVE_UP_AFTER:
                outcomes["stopped"] = outcomes.get("stopped", 0) + 1
                current_app.logger.warning(
                    "%s: %d tries in a row failed; the rest wait for the next sweep",
                    outbox.what, failures)
                break
    db.session.commit()
    return outcomes
