"""Sign-in, throttling, invitations and password resets."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session

from portal.core import jobs, mail, passwords
from portal.core.jobs import claim_row, due_ids, enqueue_after_commit
from portal.core.mail import build_message, public_url
from portal.core.models import (
    LoginAttempt,
    Partner,
    PartnerInvitation,
    PasswordLink,
    User,
    utcnow,
)

#: one hash per method, computed once, checked against when the account does not exist,
#: so an unknown email costs the same time as a wrong password
_DUMMY_HASHES: dict[str, str] = {}
MIN_PASSWORD_LENGTH = 10
INVITE_MAX_AGE = timedelta(days=7)
RESET_MAX_AGE = timedelta(hours=2)


class SignInRefused(Exception):
    """Wrong email or password (one message for both), or too many tries: then
    ``retry_at`` says when the next try is let through."""

    def __init__(self, message: str, *, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_at = retry_at

    @property
    def throttled(self) -> bool:
        return self.retry_at is not None

    def retry_after(self, now: datetime | None = None) -> int:
        """Whole seconds until the next try is let through (for ``Retry-After``)."""
        if self.retry_at is None:
            return 0
        return max(1, math.ceil((self.retry_at - (now or utcnow())).total_seconds()))


@dataclass(frozen=True)
class Throttle:
    """How sign-in failures slow down the next tries (config ``LOGIN_*``)."""

    window: timedelta  #: failures older than this no longer count
    free_failures: int  #: per (account, address) before the waits begin
    first_delay: timedelta  #: the first wait; each further failure doubles it ...
    max_delay: timedelta  #: ... up to this
    per_address: int  #: failures from one address over all accounts
    per_account: int  #: failures on one account from addresses it was never used from
    known_for: timedelta  #: a successful sign-in makes its address "usual" this long


def _throttle() -> Throttle:
    config = current_app.config
    return Throttle(
        window=timedelta(minutes=config["LOGIN_WINDOW_MINUTES"]),
        free_failures=config["LOGIN_FREE_FAILURES"],
        first_delay=timedelta(seconds=config["LOGIN_FIRST_DELAY_SECONDS"]),
        max_delay=timedelta(seconds=config["LOGIN_MAX_DELAY_SECONDS"]),
        per_address=config["LOGIN_MAX_FAILURES_PER_ADDRESS"],
        per_account=config["LOGIN_MAX_FAILURES_PER_ACCOUNT"],
        known_for=timedelta(days=config["LOGIN_KNOWN_ADDRESS_DAYS"]),
    )


def normalise_email(email: str) -> str:
    """Emails compare case-insensitively and without surrounding space."""
    return (email or "").strip().lower()


def throttle_address(address: str) -> str:
    """The address as the throttle counts it: an IPv6 client by its /64, which one
    household or server is given whole, so rotating within it gains nothing."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:64]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _failures(session: Session, since: datetime, *where: Any) -> tuple[int, datetime | None,
                                                                      datetime | None]:
    """How many failures match, and the first and last of them."""
    count, first, last = session.execute(
        select(func.count(), func.min(LoginAttempt.at), func.max(LoginAttempt.at)).where(
            *where, LoginAttempt.success.is_(False), LoginAttempt.at >= since)
    ).one()
    return count or 0, first, last


def _retry_at(session: Session, email: str, address: str, now: datetime,
              limits: Throttle) -> datetime | None:
    """When this account may next be tried from this address; None: now.

    The pair (account, address) waits longer after each failure, so guessing one
    password is slow; an address trying many accounts, or an account tried from many
    addresses, is stopped for the window. Those two caps never apply where the account
    signed in successfully before, so nobody elsewhere can lock its owner out.
    """
    since = now - limits.window
    last_success = session.scalar(select(func.max(LoginAttempt.at)).where(
        LoginAttempt.email == email, LoginAttempt.address == address,
        LoginAttempt.success.is_(True), LoginAttempt.at >= now - limits.known_for))
    waits: list[datetime] = []
    pair_since = max(since, last_success) if last_success else since
    count, _first, last = _failures(session, pair_since, LoginAttempt.email == email,
                                    LoginAttempt.address == address)
    if count >= limits.free_failures and last is not None:
        doublings = min(count - limits.free_failures, 20)
        waits.append(last + min(limits.first_delay * 2 ** doublings, limits.max_delay))
    if last_success is None:
        for column, value, cap in ((LoginAttempt.address, address, limits.per_address),
                                   (LoginAttempt.email, email, limits.per_account)):
            count, first, _last = _failures(session, since, column == value)
            if count >= cap and first is not None:
                waits.append(first + limits.window)
    later = max(waits, default=None)
    return later if later is not None and later > now else None


def _wait_text(retry_at: datetime, now: datetime) -> str:
    seconds = max(1, math.ceil((retry_at - now).total_seconds()))
    if seconds < 90:
        return f"{seconds} seconds"
    return f"{math.ceil(seconds / 60)} minutes"


def authenticate(session: Session, email: str, password: str, address: str,
                 now: datetime | None = None) -> User:
    """Return the user for these credentials, recording the attempt; else ``SignInRefused``
    (with ``retry_at`` when this account may not be tried from this address yet)."""
    now = now or utcnow()
    email = normalise_email(email)
    address = throttle_address(address)
    retry_at = _retry_at(session, email, address, now, _throttle())
    if retry_at is not None:
        raise SignInRefused(
            f"Too many failed sign-ins. Try again in {_wait_text(retry_at, now)}; "
            "if you forgot your password, reset it with the link below.",
            retry_at=retry_at,
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
    session.add(LoginAttempt(email=email[:254], address=address, success=ok, at=now))
    if not ok or user is None:
        raise SignInRefused("Wrong email or password.")
    user.last_login_at = now
    return user


def forget_old_attempts(session: Session, now: datetime | None = None) -> int:
    """Delete attempts the throttle no longer reads (failures past the window, successes
    past the time they make an address usual)."""
    now = now or utcnow()
    limits = _throttle()
    result = session.execute(delete(LoginAttempt).where(or_(
        and_(LoginAttempt.success.is_(False), LoginAttempt.at < now - limits.window),
        LoginAttempt.at < now - limits.known_for)))
    return result.rowcount or 0  # type: ignore[attr-defined, no-any-return]


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
            "reset": "Reset your Channel Lead Portal password",
            "exists": "About an invitation to the Channel Lead Portal"}


def password_link(user: User, purpose: str, issued_at: datetime | None = None) -> str:
    """The absolute invite or reset link, built without a request (jobs have none)."""
    if purpose == "exists":  # a notice, not a link that sets a password: just sign in
        return public_url("auth.login")
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
    max_age = RESET_MAX_AGE if row.purpose == "reset" else INVITE_MAX_AGE
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
               "link": password_link(user, row.purpose, row.requested_at),
               "firms": _inviting_firms(session, user) if row.purpose == "exists" else []}
    text = render_template(f"emails/password_{row.purpose}.txt", **context)
    return build_message(user.email, SUBJECTS[row.purpose], text)


def _inviting_firms(session: Session, user: User) -> list[str]:
    """The partners that invited this account's address lately (for its holder's notice)."""
    return list(session.scalars(
        select(Partner.name).join(PartnerInvitation, PartnerInvitation.partner_id == Partner.id)
        .where(PartnerInvitation.email == user.email,
               PartnerInvitation.invited_at >= utcnow() - INVITE_MAX_AGE)
        .order_by(PartnerInvitation.invited_at.desc()).limit(3)))


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
