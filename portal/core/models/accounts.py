"""People who sign in, and the record of sign-in attempts used for throttling."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import TYPE_CHECKING

from flask_login import UserMixin
from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.core import passwords
from portal.core.models.base import Base, utcnow

if TYPE_CHECKING:
    from portal.core.models.partners import Partner


class Role(enum.StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    PARTNER = "partner"


class User(UserMixin, Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)  #: stored lower-cased
    name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str | None] = mapped_column(String(256))  #: None until invite used
    role: Mapped[str] = mapped_column(String(16))
    partner_id: Mapped[int | None] = mapped_column(ForeignKey("partners.id"), index=True)
    #: a partner user who may manage the partner's own users and settings
    partner_admin: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    #: bumped on password change / deactivation: invalidates sessions and API tokens
    session_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[datetime | None]

    partner: Mapped[Partner | None] = relationship(back_populates="users")

    #: the secret of the sign-in this object was loaded for (never stored: its hash is,
    #: in SignIn); set by portal.auth.sessions, read by get_id
    sign_in_secret = None  # type: str | None

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        # What the session and the remember cookie carry: the version ends every sign-in
        # at a password change; the sign-in's own secret ends this one at its sign-out.
        return f"{self.id}:{self.session_version}:{self.sign_in_secret or ''}"

    def set_password(self, password: str) -> None:
        """Hash and store ``password`` (Argon2id: :mod:`portal.core.passwords`)."""
        self.password_hash = passwords.hash_password(password)

    def check_password(self, password: str) -> bool:
        """True when ``password`` matches the stored hash."""
        return passwords.verify(self.password_hash, password)

    @property
    def is_staff(self) -> bool:
        """Admins and channel managers see every partner's data."""
        return self.role in (Role.ADMIN, Role.MANAGER)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class LoginAttempt(Base):
    """One sign-in attempt: failures throttle an (account, address) pair with growing
    waits, an address over all accounts, and an account from addresses it never used."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
        Index("ix_login_attempts_email_address_at", "email", "address", "at"),
        Index("ix_login_attempts_at", "at"),  # the sweeper's
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class SignIn(Base):
    """One sign-in on one device: its session and remember cookies live while this does.

    Only a hash of the secret is kept, so a copy of this table signs nobody in.
    """

    __tablename__ = "sign_ins"
    __table_args__ = (Index("ix_sign_ins_user_id", "user_id"),
                      Index("ix_sign_ins_created_at", "created_at"))

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: SHA-256 of the secret the cookies carry (hex)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: set at sign-out; the row is deleted by the sweeper later
    ended_at: Mapped[datetime | None]


class ApiToken(Base):
    """A bearer token for the JSON API; only its hash is kept (the secret is shown once)."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index("ix_api_tokens_user_id", "user_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: SHA-256 of the whole token (hex): the token is random, so no slow hash is needed
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    #: the token's first characters, shown so its owner can tell tokens apart
    prefix: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(80), default="")
    #: the owner's session_version when it was made: a new password ends it
    user_version: Mapped[int]
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime]
    #: updated at most every few minutes, off the request (portal.api.auth)
    last_used_at: Mapped[datetime | None]
    revoked_at: Mapped[datetime | None]

    user: Mapped[User] = relationship()


class PartnerInvitation(Base):
    """A partner administrator's invitation to an address that has an account elsewhere.

    Nothing about the account changes and its holder gets a notice instead; the inviting
    partner sees the invitation listed like any other not yet accepted, so the portal never
    tells one partner who else has an account.
    """

    __tablename__ = "partner_invitations"
    __table_args__ = (Index("uq_partner_invitations_partner_id_email", "partner_id", "email",
                            unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    partner_id: Mapped[int] = mapped_column(ForeignKey("partners.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(254))  #: stored lower-cased
    name: Mapped[str] = mapped_column(String(120), default="")
    partner_admin: Mapped[bool] = mapped_column(default=False)
    invited_by_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"))
    invited_at: Mapped[datetime] = mapped_column(default=utcnow)


class PasswordLink(Base):
    """One invitation or reset email to send: the truth the job and its sweeper work from.

    The token is not stored: the job signs it when it sends, for the user's password
    version noted here, so a copy of this table opens no account.
    """

    __tablename__ = "password_links"
    __table_args__ = (Index("ix_password_links_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    #: invite, reset, or exists (a notice: someone tried to invite this account's address)
    purpose: Mapped[str] = mapped_column(String(8))
    #: the user's session_version when it was asked for: a changed password voids it
    user_version: Mapped[int]
    #: pending → sending → sent; or failed (gave up), skipped (void before it was sent)
    status: Mapped[str] = mapped_column(String(10), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(default=utcnow)
    claimed_at: Mapped[datetime | None]
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    sent_at: Mapped[datetime | None]
    last_error: Mapped[str] = mapped_column(String(2000), default="")

    user: Mapped[User] = relationship()
