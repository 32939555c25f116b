"""Sign-ins and API tokens: each is a row that can be ended on its own; flush, never commit.

The cookies (Flask's session and Flask-Login's remember token) and a bearer token carry a
random secret; the database keeps only its SHA-256. A secret is 256 random bits, so a fast
hash is enough: nobody can guess their way back from it, and every request checks it with
one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import bindparam, delete, or_, select, update
from sqlalchemy.orm import Session, joinedload

from portal.core.errors import InvalidInput, NotFound
from portal.core.models import ApiToken, SignIn, User, utcnow

#: what every API token starts with: secret scanners (and people) recognise it
TOKEN_PREFIX = "clp_"
#: how many of a token's characters its owner is shown to tell tokens apart
SHOWN_CHARACTERS = 12
#: last_used_at is written at most this often per token (a write off the request, DESIGN §3)
LAST_USED_GRANULARITY = timedelta(minutes=5)


def secret_hash(secret: str) -> str:
    """The stored form of a sign-in or token secret."""
    return hashlib.sha256(secret.encode()).hexdigest()


def sign_in_max_age() -> timedelta:
    """No sign-in outlives this, remembered or not (the remember cookie's own life)."""
    return timedelta(days=current_app.config["REMEMBER_COOKIE_DURATION_DAYS"])


# --- sign-ins (browser sessions) ----------------------------------------------------------

def start_sign_in(session: Session, user: User, now: datetime | None = None) -> User:
    """Record a new sign-in for ``user``; its secret goes into the cookies via get_id."""
    secret = secrets.token_urlsafe(32)
    session.add(SignIn(user_id=user.id, secret_hash=secret_hash(secret),
                       created_at=now or utcnow()))
    session.flush()
    user.sign_in_secret = secret
    return user


#: the session's user and its partner (every page shows it), if the sign-in its cookie
#: names is still open; built once, as this runs on every request
_SIGNED_IN_USER = (
    select(User).options(joinedload(User.partner))
    .join(SignIn, SignIn.user_id == User.id)
    .where(User.id == bindparam("user_id"), SignIn.secret_hash == bindparam("secret_hash"),
           SignIn.ended_at.is_(None), SignIn.created_at >= bindparam("since"))
)


def signed_in_user(session: Session, cookie_id: str, now: datetime | None = None
                   ) -> User | None:
    """The user a session or remember cookie names, if that sign-in is still open.

    Ended at sign-out, by a new password or "sign out everywhere" (the version), by
    deactivation, or by age: None then, and Flask-Login treats the visitor as anonymous.
    """
    try:
        raw_id, raw_version, secret = cookie_id.split(":", 2)
        user_id = int(raw_id)
    except ValueError:
        return None  # an older cookie without a sign-in secret: sign in again
    if not secret:
        return None
    since = (now or utcnow()) - sign_in_max_age()
    user = session.scalars(_SIGNED_IN_USER, {"user_id": user_id,
                                             "secret_hash": secret_hash(secret),
                                             "since": since}).first()
    if user is None or not user.active or str(user.session_version) != raw_version:
        return None
    user.sign_in_secret = secret
    return user


def end_sign_in(session: Session, user: User, now: datetime | None = None) -> None:
    """Sign-out: this sign-in's cookies, wherever they were copied, stop working."""
    if not user.sign_in_secret:
        return
    session.execute(update(SignIn)
                    .where(SignIn.secret_hash == secret_hash(user.sign_in_secret),
                           SignIn.user_id == user.id, SignIn.ended_at.is_(None))
                    .values(ended_at=now or utcnow()))
    user.sign_in_secret = None


def end_every_sign_in(session: Session, user: User, now: datetime | None = None) -> None:
    """Sign ``user`` out everywhere: every browser sign-in and every API token ends."""
    now = now or utcnow()
    user.session_version += 1  # also voids API tokens and password links made before
    session.execute(update(SignIn).where(SignIn.user_id == user.id, SignIn.ended_at.is_(None))
                    .values(ended_at=now))
    session.execute(update(ApiToken).where(ApiToken.user_id == user.id,
                                           ApiToken.revoked_at.is_(None))
                    .values(revoked_at=now))
    session.flush()


def forget_old_sign_ins(session: Session, now: datetime | None = None) -> int:
    """Delete sign-ins that ended, or that are older than any sign-in may live."""
    now = now or utcnow()
    result = session.execute(delete(SignIn).where(or_(
        SignIn.ended_at.is_not(None), SignIn.created_at < now - sign_in_max_age())))
    return result.rowcount or 0  # type: ignore[attr-defined, no-any-return]


# --- API tokens ------------------------------------------------------------------------------

def issue_api_token(session: Session, user: User, label: str = "",
                    now: datetime | None = None) -> str:
    """Make a bearer token for ``user``; the secret is returned this once and never kept."""
    now = now or utcnow()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    days = current_app.config["API_TOKEN_MAX_AGE_DAYS"]
    session.add(ApiToken(user_id=user.id, secret_hash=secret_hash(token),
                         prefix=token[:SHOWN_CHARACTERS], label=" ".join(label.split())[:80],
                         user_version=user.session_version, created_at=now,
                         expires_at=now + timedelta(days=days)))
    session.flush()
    return token


def api_token_for(session: Session, token: str, now: datetime | None = None
                  ) -> ApiToken | None:
    """The live token row a bearer secret names, with its user; None if it is not live."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    now = now or utcnow()
    row = session.scalars(select(ApiToken).options(joinedload(ApiToken.user))
                          .where(ApiToken.secret_hash == secret_hash(token))).first()
    if (row is None or row.revoked_at is not None or row.expires_at <= now
            or not row.user.active or row.user.session_version != row.user_version):
        return None
    return row


def needs_last_used(row: ApiToken, now: datetime) -> bool:
    """Whether this use should be written down (at most every LAST_USED_GRANULARITY)."""
    return row.last_used_at is None or now - row.last_used_at >= LAST_USED_GRANULARITY


def record_api_token_use(session: Session, token_id: int, at: datetime) -> None:
    """Note when a token was last used (only ever forward in time)."""
    session.execute(update(ApiToken).where(
        ApiToken.id == token_id,
        or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < at))
        .values(last_used_at=at))


def api_tokens_of(session: Session, user: User, now: datetime | None = None
                  ) -> list[ApiToken]:
    """The user's tokens that still work, newest first (ended ones are not worth listing)."""
    now = now or utcnow()
    return list(session.scalars(
        select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None),
                               ApiToken.expires_at > now,
                               ApiToken.user_version == user.session_version)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def revoke_api_token(session: Session, user: User, token_id: int,
                     now: datetime | None = None) -> ApiToken:
    """End one of ``user``'s own tokens at once; another's is not found (no existence leak)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound("No such token.")
    if row.revoked_at is not None:
        raise InvalidInput("This token was already revoked.")
    row.revoked_at = now or utcnow()
    session.flush()
    return row
