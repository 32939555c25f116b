"""Sign-in, throttling, invitations and password resets."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from portal.core.models import LoginAttempt, User, utcnow

#: one hash computed once, checked against when the account does not exist, so an
#: unknown email costs the same time as a wrong password
_DUMMY_HASH: str | None = None
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
    global _DUMMY_HASH
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
        if _DUMMY_HASH is None:
            # Same method as real hashes, so an unknown email costs the same time.
            method = current_app.config.get("PASSWORD_HASH_METHOD", "scrypt")
            _DUMMY_HASH = generate_password_hash("not a real password", method=method)
        from werkzeug.security import check_password_hash

        check_password_hash(_DUMMY_HASH, password)
        ok = False
    else:
        ok = user.check_password(password) and user.active
    session.add(LoginAttempt(email=email[:254], address=address[:64], success=ok, at=now))
    if not ok or user is None:
        raise SignInRefused("Wrong email or password.")
    user.last_login_at = now
    return user


def _serializer(salt: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=salt)


def password_token(user: User, purpose: str) -> str:
    """A signed link token for ``purpose`` (invite or reset); it dies when the password changes."""
    return _serializer(purpose).dumps({"u": user.id, "v": user.session_version})


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
