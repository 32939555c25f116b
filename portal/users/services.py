"""Accounts: create, edit, (de)activate users and send them a password link; flush, never
commit."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.auth.services import normalise_email, password_problem, request_password_link
from portal.core.assignment import release_all
from portal.core.checks import EMAIL, flush_unique
from portal.core.errors import InvalidInput
from portal.core.lifecycle import Actor
from portal.core.models import Partner, PartnerInvitation, Role, User, utcnow
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
    if user.role == Role.PARTNER and (role != Role.PARTNER or partner is None
                                      or partner.id != user.partner_id):
        # Their leads stay with the firm they leave, as anyone's to take.
        release_all(session, user, actor=Actor.of(acting),
                    why=f"{user.name or user.email} left the firm")
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
            # A deactivated user's leads go back to their firm, each said on its timeline,
            # rather than sitting with someone who no longer signs in (nor gets alerts).
            release_all(session, user, actor=Actor.of(acting),
                        why=f"{user.name or user.email}'s account was deactivated")
    session.flush()
    return user


def invite_colleague(session: Session, partner: Partner, *, email: str, name: str,
                     partner_admin: bool, invited_by: User) -> str:
    """A partner administrator invites a colleague; returns the address invited.

    The answer is the same whether or not the address has an account elsewhere (another
    partner's user, staff): such an account is left as it is, its holder gets a notice
    instead of an invitation, and the inviter sees the invitation listed like any other
    not yet accepted. Only an address already listed for this partner is refused, which
    the inviter can see anyway.
    """
    email = normalise_email(email)
    if not EMAIL.match(email) or len(email) > 254:
        raise InvalidInput("Enter a valid email address.", {"email": "Enter a valid email."})
    existing = session.scalars(select(User).where(User.email == email)).first()
    invited = session.scalars(select(PartnerInvitation).where(
        PartnerInvitation.partner_id == partner.id, PartnerInvitation.email == email)).first()
    if (existing is not None and existing.partner_id == partner.id) or invited is not None:
        raise InvalidInput(f"{email} already has an account with you.",
                           {"email": "This email already has an account with you."})
    if existing is None:
        user = create_user(session, email=email, name=name, role=Role.PARTNER,
                           partner_code=partner.code, partner_admin=partner_admin)
        request_password_link(session, user, "invite")
        return email
    session.add(PartnerInvitation(partner_id=partner.id, email=email,
                                  name=" ".join((name or "").split())[:120],
                                  partner_admin=partner_admin, invited_by_id=invited_by.id,
                                  invited_at=utcnow()))
    session.flush()
    if existing.active:
        request_password_link(session, existing, "exists")
    return email


def pending_invitations(session: Session, partner: Partner, limit: int = 200
                        ) -> list[PartnerInvitation]:
    """Invitations of ``partner`` to addresses with an account elsewhere (never accepted)."""
    return list(session.scalars(
        select(PartnerInvitation).where(PartnerInvitation.partner_id == partner.id)
        .order_by(PartnerInvitation.email).limit(limit)))
