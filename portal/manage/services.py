"""Services behind the admin pages and commands; they flush, never commit."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, TypeVar

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.auth.services import normalise_email, password_problem
from portal.core.errors import InvalidInput
from portal.core.models import Campaign, Competitor, Partner, ProductLine, Role, Source, User
from portal.core.models.codes import by_code

T = TypeVar("T")

#: product-line codes travel in CSV files and API calls: short, upper case, no spaces
PRODUCT_LINE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")
#: campaign and source codes are typed into forms and URLs by marketing tools
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
#: Numeric(12, 2): the largest amount the money columns hold
MAX_MONEY = Decimal("9999999999.99")
CHANNELS: dict[str, str] = {
    "web": "Web",
    "trade_show": "Trade show",
    "email": "Email",
    "call_centre": "Call centre",
    "print": "Print",
    "partner": "Partner",
    "purchased_list": "Purchased list",
    "other": "Other",
}
ROLE_LABELS: dict[str, str] = {
    Role.ADMIN: "Administrator",
    Role.MANAGER: "Channel manager",
    Role.PARTNER: "Partner user",
}


class ManageError(InvalidInput):
    """Bad input to an admin service; ``fields`` maps form fields to messages."""


# --- lists -------------------------------------------------------------------------------


def _refuse_taken(session: Session, column: Any, value: str, current: Any, *,
                  message: str, field: str, field_message: str) -> None:
    """Refuse ``value`` when another row already has it in ``column`` (ignoring case)."""
    model = column.class_
    clash = select(model.id).where(func.lower(column) == value.lower())
    if current is not None:
        clash = clash.where(model.id != current.id)
    if session.scalar(clash) is not None:
        raise ManageError(message, {field: field_message})


def _flush_unique(session: Session, message: str, fields: dict[str, str]) -> None:
    # The checks before this catch the usual duplicate; a savepoint turns the rare race
    # with a concurrent request into the same clear message instead of a 500.
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:
        raise ManageError(message, fields) from None


def _name(value: str, label: str, limit: int, field: str = "name") -> str:
    value = " ".join((value or "").split())
    if not value:
        raise ManageError(f"{label} is required.", {field: f"Enter the {label.lower()}."})
    if len(value) > limit:
        raise ManageError(f"{label} is too long.", {field: f"Use at most {limit} characters."})
    return value


def _money(value: Decimal | str | int | None, field: str) -> Decimal:
    try:
        amount = Decimal(str(value if value not in (None, "") else "0"))
    except InvalidOperation:
        raise ManageError("Enter an amount.", {field: "Enter an amount such as 1500.00."}) \
            from None
    if not amount.is_finite() or amount < 0:
        raise ManageError("Amounts cannot be negative.", {field: "Enter 0 or more."})
    if amount > MAX_MONEY:
        raise ManageError("That amount is too large.", {field: "Enter a smaller amount."})
    if amount != amount.quantize(Decimal("0.01")):
        raise ManageError("Use at most two decimals.", {field: "Use at most two decimals."})
    return amount.quantize(Decimal("0.01"))


# --- users -------------------------------------------------------------------------------


def _partner_for(session: Session, role: str, partner_code: str | None) -> Partner | None:
    partner_code = (partner_code or "").strip()
    if role == Role.PARTNER:
        if not partner_code:
            raise ManageError("A partner user needs a partner.", {"partner": "Pick the partner."})
        partner = by_code(session, Partner, partner_code)
        if partner is None:
            raise ManageError(f"No partner with code {partner_code!r}.",
                              {"partner": "Unknown partner code."})
        return partner
    if partner_code:
        raise ManageError("Only partner users belong to a partner.",
                          {"partner": "Leave empty for admins and managers."})
    return None


def create_user(session: Session, *, email: str, name: str, role: str,
                partner_code: str | None = None, password: str | None = None,
                partner_admin: bool = False) -> User:
    """Create a user; without a password it waits for its invitation link."""
    email = normalise_email(email)
    if not EMAIL.match(email) or len(email) > 254:
        raise ManageError("Enter a valid email address.", {"email": "Enter a valid email."})
    if role not in {r.value for r in Role}:
        raise ManageError(f"Unknown role {role!r}.", {"role": "Pick a role."})
    if session.scalars(select(User).where(User.email == email)).first() is not None:
        raise ManageError(f"{email} already has an account.",
                          {"email": "This email already has an account."})
    partner = _partner_for(session, role, partner_code)
    user = User(email=email, name=" ".join((name or "").split())[:120], role=role,
                partner=partner, partner_admin=partner_admin and partner is not None)
    if password:
        problem = password_problem(password, email)
        if problem:
            raise ManageError(problem, {"password": problem})
        user.set_password(password)
    session.add(user)
    _flush_unique(session, f"{email} already has an account.",
                  {"email": "This email already has an account."})
    return user


def update_user(session: Session, user: User, *, acting: User, name: str, role: str,
                partner_code: str | None, partner_admin: bool) -> User:
    """Change a user's name, role and partner; admins cannot demote themselves."""
    if role not in {r.value for r in Role}:
        raise ManageError(f"Unknown role {role!r}.", {"role": "Pick a role."})
    if user.id == acting.id and role != user.role:
        # Otherwise the last admin could lock everyone out of this page.
        raise ManageError("You cannot change your own role.",
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
        raise ManageError("Reactivate the account before sending it a link.")
    end_sessions(user)
    session.flush()
    # Someone who never chose a password gets a fresh invitation, not a reset.
    return "invite" if user.password_hash is None else "reset"


def set_user_active(session: Session, user: User, *, acting: User, active: bool) -> User:
    """Deactivate (signing the user out everywhere at once) or reactivate an account."""
    if not active and user.id == acting.id:
        raise ManageError("You cannot deactivate your own account.")
    if user.active != active:
        user.active = active
        if not active:
            end_sessions(user)
    session.flush()
    return user


# --- product lines -----------------------------------------------------------------------


def save_product_line(session: Session, line: ProductLine | None, *, code: str, name: str,
                      description: str = "", active: bool = True) -> ProductLine:
    """Create (``line`` None) or change a product line; codes are unique, upper case."""
    code = (code or "").strip().upper()
    if not PRODUCT_LINE_CODE.match(code):
        raise ManageError("That code is not valid.", {
            "code": "Use 1–32 capital letters, digits, - or _, starting with a letter or digit."
        })
    name = _name(name, "Name", 120)
    message = f"Product line {code} already exists."
    _refuse_taken(session, ProductLine.code, code, line, message=message, field="code",
                  field_message="Another product line has this code.")
    if line is None:
        line = ProductLine(code=code, name=name)
        session.add(line)
    line.code, line.name = code, name
    line.description = (description or "").strip()
    line.active = active
    _flush_unique(session, message, {"code": "Another product line has this code."})
    return line


# --- competitors -------------------------------------------------------------------------


def save_competitor(session: Session, competitor: Competitor | None, *, name: str,
                    active: bool | None = None) -> Competitor:
    """Add (``competitor`` None) or rename a competitor; names are unique ignoring case."""
    name = _name(name, "Name", 120)
    message = f"{name} is already on the list."
    _refuse_taken(session, Competitor.name, name, competitor, message=message, field="name",
                  field_message="Another competitor has this name.")
    if competitor is None:
        competitor = Competitor(name=name, active=True)
        session.add(competitor)
    competitor.name = name
    if active is not None:
        competitor.active = active
    _flush_unique(session, message, {"name": "Another competitor has this name."})
    return competitor


def set_competitor_active(session: Session, competitor: Competitor, active: bool) -> Competitor:
    """Show or hide a competitor in the lost-to list; past outcomes keep pointing at it."""
    competitor.active = active
    session.flush()
    return competitor


# --- campaigns and sources ---------------------------------------------------------------


def _code(value: str) -> str:
    value = (value or "").strip()
    if not CODE.match(value):
        raise ManageError("That code is not valid.", {
            "code": "Use 1–32 letters, digits, '.', '-' or '_', starting with a letter or digit."
        })
    return value


def save_campaign(session: Session, campaign: Campaign | None, *, code: str, name: str,
                  channel: str, cost: Decimal | str | int | None, starts_on: date | None,
                  ends_on: date | None, active: bool = True) -> Campaign:
    """Create (``campaign`` None) or change a campaign; codes are unique ignoring case."""
    code = _code(code)
    name = _name(name, "Name", 160)
    if channel not in CHANNELS:
        raise ManageError(f"Unknown channel {channel!r}.", {"channel": "Pick a channel."})
    amount = _money(cost, "cost")
    if starts_on and ends_on and ends_on < starts_on:
        raise ManageError("The campaign ends before it starts.",
                          {"ends_on": "Pick a day on or after the start."})
    message = f"Campaign {code} already exists."
    _refuse_taken(session, Campaign.code, code, campaign, message=message, field="code",
                  field_message="Another campaign has this code.")
    if campaign is None:
        campaign = Campaign(code=code, name=name)
        session.add(campaign)
    campaign.code, campaign.name, campaign.channel = code, name, channel
    campaign.cost, campaign.starts_on, campaign.ends_on = amount, starts_on, ends_on
    campaign.active = active
    _flush_unique(session, message, {"code": "Another campaign has this code."})
    return campaign


def save_source(session: Session, source: Source | None, *, code: str, name: str,
                cost_per_lead: Decimal | str | int | None, active: bool = True) -> Source:
    """Create (``source`` None) or change a lead source; codes are unique ignoring case."""
    code = _code(code)
    name = _name(name, "Name", 120)
    amount = _money(cost_per_lead, "cost_per_lead")
    message = f"Source {code} already exists."
    _refuse_taken(session, Source.code, code, source, message=message, field="code",
                  field_message="Another source has this code.")
    if source is None:
        source = Source(code=code, name=name)
        session.add(source)
    source.code, source.name, source.cost_per_lead, source.active = code, name, amount, active
    _flush_unique(session, message, {"code": "Another source has this code."})
    return source
