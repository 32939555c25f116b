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

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.active

    def get_id(self) -> str:
        # The version makes a stolen session cookie useless after a password change.
        return f"{self.id}:{self.session_version}"

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
    """One sign-in attempt; failures in a window throttle an account and an address."""

    __tablename__ = "login_attempts"
    __table_args__ = (
        Index("ix_login_attempts_email_at", "email", "at"),
        Index("ix_login_attempts_address_at", "address", "at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    address: Mapped[str] = mapped_column(String(64))
    success: Mapped[bool]
    at: Mapped[datetime] = mapped_column(default=utcnow)


class PasswordLink(Base):
    """One invitation or reset email to send: the truth the job and its sweeper work from.

    The token is not stored: the job signs it when it sends, for the user's password
    version noted here, so a copy of this table opens no account.
    """

    __tablename__ = "password_links"
    __table_args__ = (Index("ix_password_links_status_next", "status", "next_attempt_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(String(8))  #: invite or reset
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
