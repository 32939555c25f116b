"""Services behind the admin pages and commands; they flush, never commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.services import normalise_email, password_problem
from portal.models import Partner, Role, User


class ManageError(Exception):
    """Bad input to an admin service; ``fields`` maps form fields to messages."""

    def __init__(self, message: str, fields: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}


def create_user(session: Session, *, email: str, name: str, role: str,
                partner_code: str | None = None, password: str | None = None,
                partner_admin: bool = False) -> User:
    """Create a user; without a password it waits for its invitation link."""
    email = normalise_email(email)
    if "@" not in email or len(email) > 254:
        raise ManageError("Enter a valid email address.", {"email": "Enter a valid email."})
    if role not in {r.value for r in Role}:
        raise ManageError(f"Unknown role {role!r}.", {"role": "Pick a role."})
    if session.scalars(select(User).where(User.email == email)).first() is not None:
        raise ManageError(f"{email} already has an account.", {"email": "Already in use."})
    partner = None
    if role == Role.PARTNER:
        if not partner_code:
            raise ManageError("A partner user needs a partner.", {"partner": "Pick the partner."})
        partner = session.scalars(select(Partner).where(Partner.code == partner_code)).first()
        if partner is None:
            raise ManageError(f"No partner with code {partner_code!r}.",
                              {"partner": "Unknown partner."})
    elif partner_code:
        raise ManageError("Only partner users belong to a partner.",
                          {"partner": "Leave empty for admins and managers."})
    user = User(email=email, name=name.strip()[:120], role=role, partner=partner,
                partner_admin=partner_admin and partner is not None)
    if password is not None:
        problem = password_problem(password, email)
        if problem:
            raise ManageError(problem, {"password": problem})
        user.set_password(password)
    session.add(user)
    session.flush()
    return user
