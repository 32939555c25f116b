"""Sign-in, throttling, invitations and password resets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.core import jobs, mail, passwords
from portal.core.jobs import claim_row, due_ids, enqueue_after_commit
from portal.core.mail import build_message, public_url
from portal.core.models import LoginAttempt, PasswordLink, User, utcnow

#: one hash per method, computed once, checked against when the account does not exist,
#: so an unknown email costs the same time as a wrong password
_DUMMY_HASHES: dict[str, str] = {}
MIN_PASSWORD_LENGTH = 10
INVITE_MAX_AGE = timedelta(days=7)
RESET_MAX_AGE = timedelta(hours=2)


class SignInRefused(Exception):
    """Wrong email or password (one message for both), or too many tries."""

    def __init__(self, message: str, *, throttled: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.throttled = throttled


@dataclass(frozen=True)
class Throttle:
    window: timedelta
    per_account: int
    per_address: int


def _throttle() -> Throttle:
    config = current_app.config
    return Throttle(
        window=timedelta(minutes=config["LOGIN_WINDOW_MINUTES"]),
        per_account=config["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
        per_address=config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
    )


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding space."""
    return (email or "").strip().lower()


def _failures(session: Session, column: object, value: str, since: datetime) -> int:
    return session.scalar(
        select(func.count()).select_from(LoginAttempt).where(
            column == value, LoginAttempt.success.is_(False), LoginAttempt.at >= since
        )
    ) or 0


def authenticate(session: Session, email: str, password: str, address: str,
                 now: datetime | None = None) -> User:
    """Return the user for these credentials, recording the attempt; else ``SignInRefused``."""
    now = now or utcnow()
    email = normalise_email(email)
    limits = _throttle()
    since = now - limits.window
    minutes = int(limits.window.total_seconds() // 60)
    if (
        _failures(session, LoginAttempt.email, email, since) >= limits.per_account
        or _failures(session, LoginAttempt.address, address, since) >= limits.per_address
    ):
        raise SignInRefused(
            f"Too many failed sign-ins. Wait {minutes} minutes and try again, "
            "or ask your administrator to reset your password.",
            throttled=True,
        )
    user = session.scalars(select(User).where(User.email == email)).first()
    if user is None:
        method = passwords.method()  # as real hashes, so an unknown email costs the same
        if method not in _DUMMY_HASHES:
            _DUMMY_HASHES[method] = passwords.hash_password("not a real password")
        passwords.verify(_DUMMY_HASHES[method], password)
        ok = False
    else:
        ok = user.check_password(password) and user.active
        if ok and passwords.needs_rehash(user.password_hash or ""):
            user.set_password(password)  # an older method's hash, made anew at sign-in
    session.add(LoginAttempt(email=email[:254], address=address[:64], success=ok, at=now))
    if not ok or user is None:
        raise SignInRefused("Wrong email or password.")
    user.last_login_at = now
    return user


class _IssuedAt(TimestampSigner):
    # Signs with the time the link was asked for, not the time the job sends it: the
    # link an admin is shown and the one emailed are the same, and so is their life.
    def __init__(self, *args: Any, issued_at: datetime | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.issued_at = issued_at

    def get_timestamp(self) -> int:
        return int(self.issued_at.timestamp()) if self.issued_at else super().get_timestamp()


def _serializer(salt: str, issued_at: datetime | None = None) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt,
                                  signer=_IssuedAt, signer_kwargs={"issued_at": issued_at})


def password_token(user: User, purpose: str, issued_at: datetime | None = None) -> str:
    """A signed link token for ``purpose`` (invite or reset); it dies when the password changes."""
    return _serializer(purpose, issued_at).dumps({"u": user.id, "v": user.session_version})


def user_for_token(session: Session, token: str, purpose: str) -> User | None:
    """The user a valid, unexpired, unused token belongs to, else None."""
    max_age = INVITE_MAX_AGE if purpose == "invite" else RESET_MAX_AGE
    try:
        data = _serializer(purpose).loads(token, max_age=int(max_age.total_seconds()))
    except (SignatureExpired, BadSignature):
        return None
    user = session.get(User, data.get("u"))
    if user is None or user.session_version != data.get("v") or not user.active:
        return None
    return user


def password_problem(password: str, email: str = "") -> str | None:
    """Why ``password`` is not acceptable, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 200:
        return "Use at most 200 characters."
    if email and password.lower() == email.lower():
        return "Do not use your email address as the password."
    return None


def set_password(user: User, password: str) -> None:
    """Store a new password; other sessions, tokens and links of this user stop working."""
    problem = password_problem(password, user.email)
    if problem:
        raise ValueError(problem)
    user.set_password(password)
    user.session_version += 1


# --- invitation and reset emails (DESIGN §3: the row is the truth, the job a nudge) ------

SUBJECTS = {"invite": "You are invited to the Channel Lead Portal",
            "reset": "Reset your Channel Lead Portal password"}


def password_link(user: User, purpose: str, issued_at: datetime | None = None) -> str:
    """The absolute invite or reset link, built without a request (jobs have none)."""
    endpoint = "auth.accept_invite" if purpose == "invite" else "auth.reset_password"
    return public_url(endpoint, token=password_token(user, purpose, issued_at))


def request_password_link(session: Session, user: User, purpose: str, *,
                          now: datetime | None = None) -> str:
    """Write the email to send (sent once the caller commits); returns the link to show.

    Admins see the link at once (to pass on when mail is not set up); the job signs the
    same link when it sends (same user, password version and issue time).
    """
    if purpose not in SUBJECTS:
        raise ValueError(f"unknown password link purpose {purpose!r}")
    now = now or utcnow()
    session.flush()  # the user needs its id and current version
    row = PasswordLink(user_id=user.id, purpose=purpose, user_version=user.session_version,
                       requested_at=now, next_attempt_at=now)
    session.add(row)
    session.flush()
    enqueue_after_commit(session, "send_password_link", row.id)
    return password_link(user, purpose, now)


def claim_password_link(session: Session, link_id: int, now: datetime) -> bool:
    """Take a due, pending link email for sending; False if someone else has it or it's done."""
    return claim_row(session, PasswordLink, link_id, now)


def password_link_message(session: Session, link_id: int, now: datetime
                          ) -> EmailMessage | None:
    """The claimed email to send, or None when it went void (marked skipped, with why)."""
    row = session.get(PasswordLink, link_id, populate_existing=True)
    assert row is not None
    user = session.get(User, row.user_id)
    max_age = INVITE_MAX_AGE if row.purpose == "invite" else RESET_MAX_AGE
    why = ("the account is gone or deactivated" if user is None or not user.active
           else "the password changed since it was asked for"
           if user.session_version != row.user_version
           else "it waited longer than the link would live" if now - row.requested_at > max_age
           else "")
    if why or user is None:
        row.status, row.claimed_at, row.last_error = "skipped", None, f"Not sent: {why}."
        session.flush()
        return None
    context = {"name": user.name or user.email,
               "link": password_link(user, row.purpose, row.requested_at)}
    text = render_template(f"emails/password_{row.purpose}.txt", **context)
    return build_message(user.email, SUBJECTS[row.purpose], text)


def record_password_link_sent(session: Session, link_id: int, now: datetime) -> None:
    """The mail server took it."""
    jobs.record_sent(session, PasswordLink, link_id, now)


def record_password_link_failure(session: Session, link_id: int, message: str,
                                 now: datetime, permanent: bool = False) -> str:
    """After a failed try: pending again with a doubling wait for hours (the mail policy),
    failed with the reason when it gives up or the server refuses for good."""
    return mail.record_failed_try(session, PasswordLink, link_id, message, now,
                                  permanent=permanent)


def release_stale_password_links(session: Session, now: datetime) -> int:
    """Links claimed by a worker that died go back to pending (sent again, not lost): an
    invitation that never arrives leaves a person locked out with nobody told."""
    return mail.requeue_stale(session, PasswordLink, now)


def due_password_links(session: Session, now: datetime, limit: int = 200) -> list[int]:
    """Pending link emails whose time has come (a lost nudge, a retry)."""
    return due_ids(session, PasswordLink, now, limit)
