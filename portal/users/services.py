"""Accounts: create, edit, (de)activate users and send them a password link; flush, never
commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.services import normalise_email, password_problem
from portal.core.checks import EMAIL, flush_unique
from portal.core.errors import InvalidInput
from portal.core.models import Partner, Role, User
from portal.core.models.codes import by_code

ROLE_LABELS: dict[str, str] = {
    Role.ADMIN: "Administrator",
    Role.MANAGER: "Channel manager",
    Role.PARTNER: "Partner user",
}


def _partner_for(session: Session, role: str, partner_code: str | None) -> Partner | None:
    partner_code = (partner_code or "").strip()
    if role == Role.PARTNER:
        if not partner_code:
            raise InvalidInput("A partner user needs a partner.", {"partner": "Pick the partner."})
        partner = by_code(session, Partner, partner_code)
        if partner is None:
            raise InvalidInput(f"No partner with code {partner_code!r}.",
                              {"partner": "Unknown partner code."})
        return partner
    if partner_code:
        raise InvalidInput("Only partner users belong to a partner.",
                          {"partner": "Leave empty for admins and managers."})
    return None


def create_user(session: Session, *, email: str, name: str, role: str,
                partner_code: str | None = None, password: str | None = None,
                partner_admin: bool = False) -> User:
    """Create a user; without a password it waits for its invitation link."""
    email = normalise_email(email)
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidInput("Enter a valid email address.", {"email": "Enter a valid email."})
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"Unknown role {role!r}.", {"role": "Pick a role."})
    if session.scalars(select(User).where(User.email == email)).first() is not None:
        raise InvalidInput(f"{email} already has an account.",
                          {"email": "This email already has an account."})
    partner = _partner_for(session, role, partner_code)
    user = User(email=email, name=" ".join((name or "").split())[:120], role=role,
                partner=partner, partner_admin=partner_admin and partner is not None)
    if password:
        problem = password_problem(password, email)
        if problem:
            raise InvalidInput(problem, {"password": problem})
        user.set_password(password)
    session.add(user)
    flush_unique(session, f"{email} already has an account.",
                  {"email": "This email already has an account."})
    return user


def update_user(session: Session, user: User, *, acting: User, name: str, role: str,
                partner_code: str | None, partner_admin: bool) -> User:
    """Change a user's name, role and partner; admins cannot demote themselves."""
    if role not in {r.value for r in Role}:
        raise InvalidInput(f"Unknown role {role!r}.", {"role": "Pick a role."})
    if user.id == acting.id and role != user.role:
        # Otherwise the last admin could lock everyone out of this page.
        raise InvalidInput("You cannot change your own role.",
                          {"role": "Ask another administrator to change your role."})
    partner = _partner_for(session, role, partner_code)
    user.name = " ".join((name or "").split())[:120]
    user.role = role
    user.partner = partner
    user.partner_admin = partner_admin and partner is not None
    session.flush()
    return user


def end_sessions(user: User) -> None:
    """Sign ``user`` out everywhere: sessions, API tokens and earlier links stop working."""
    user.session_version += 1


def prepare_password_link(session: Session, user: User) -> str:
    """End the user's sessions before a reset; returns the link purpose (invite or reset)."""
    if not user.active:
        raise InvalidInput("Reactivate the account before sending it a link.")
    end_sessions(user)
    session.flush()
    # Someone who never chose a password gets a fresh invitation, not a reset.
    return "invite" if user.password_hash is None else "reset"


def set_user_active(session: Session, user: User, *, acting: User, active: bool) -> User:
    """Deactivate (signing the user out everywhere at once) or reactivate an account."""
    if not active and user.id == acting.id:
        raise InvalidInput("You cannot deactivate your own account.")
    if user.active != active:
        user.active = active
        if not active:
            end_sessions(user)
    session.flush()
    return user
