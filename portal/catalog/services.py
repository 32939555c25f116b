"""The manufacturer's catalog: product lines, competitors, campaigns and lead sources;
flush, never commit."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

from sqlalchemy import select, true
from sqlalchemy.orm import Session

from portal.core.checks import clean_money, clean_name, clean_text, flush_unique, refuse_taken
from portal.core.errors import InvalidInput
from portal.core.models import Campaign, Competitor, ProductLine, Source

#: product-line codes travel in CSV files and API calls: short, upper case, no spaces
PRODUCT_LINE_CODE = re.compile(r"^[A-Z0-9][A-Z0-9_-]{0,31}$")


#: other names a product line may have (the import matches them)
MAX_ALIASES = 20


#: campaign and source codes are typed into forms and URLs by marketing tools
CODE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$")


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


def clean_aliases(session: Session, raw: str, line: ProductLine | None) -> list[str]:
    """The other names of a product line, typed comma-separated: each one line of text,
    none that already names another line (an import could not tell them apart)."""
    aliases: list[str] = []
    for part in re.split(r"[,;\n]", raw or ""):
        alias = " ".join(clean_text(part, "aliases").split())
        if alias and alias.lower() not in (a.lower() for a in aliases):
            aliases.append(alias)
    if len(aliases) > MAX_ALIASES or any(len(alias) > 60 for alias in aliases):
        raise InvalidInput("Too many or too long other names.", {
            "aliases": f"At most {MAX_ALIASES} names of at most 60 characters each."})
    others = session.scalars(select(ProductLine).where(
        ProductLine.id != line.id if line is not None and line.id else true())).all()
    for other in others:
        taken = {word.lower() for word in (other.code, other.name, *other.aliases)}
        clash = next((alias for alias in aliases if alias.lower() in taken), None)
        if clash:
            raise InvalidInput("An other name is taken.", {
                "aliases": f"“{clash}” already names {other.name} ({other.code})."})
    return aliases


def save_product_line(session: Session, line: ProductLine | None, *, code: str, name: str,
                      description: str = "", active: bool = True,
                      aliases: str | None = None) -> ProductLine:
    """Create (``line`` None) or change a product line; codes are unique, upper case.
    ``aliases``: its other names, comma-separated (None keeps them)."""
    code = (code or "").strip().upper()
    if not PRODUCT_LINE_CODE.match(code):
        raise InvalidInput("That code is not valid.", {
            "code": "Use 1–32 capital letters, digits, - or _, starting with a letter or digit."
        })
    name = clean_name(name, "Name", 120)
    message = f"Product line {code} already exists."
    refuse_taken(session, ProductLine.code, code, line, message=message, field="code",
                  field_message="Another product line has this code.")
    if line is None:
        line = ProductLine(code=code, name=name)
        session.add(line)
    line.code, line.name = code, name
    line.description = (description or "").strip()
    line.active = active
    if aliases is not None:
        line.aliases = clean_aliases(session, aliases, line)
    flush_unique(session, message, {"code": "Another product line has this code."})
    return line


def save_competitor(session: Session, competitor: Competitor | None, *, name: str,
                    active: bool | None = None) -> Competitor:
    """Add (``competitor`` None) or rename a competitor; names are unique ignoring case."""
    name = clean_name(name, "Name", 120)
    message = f"{name} is already on the list."
    refuse_taken(session, Competitor.name, name, competitor, message=message, field="name",
                  field_message="Another competitor has this name.")
    if competitor is None:
        competitor = Competitor(name=name, active=True)
        session.add(competitor)
    competitor.name = name
    if active is not None:
        competitor.active = active
    flush_unique(session, message, {"name": "Another competitor has this name."})
    return competitor


def set_competitor_active(session: Session, competitor: Competitor, active: bool) -> Competitor:
    """Show or hide a competitor in the lost-to list; past outcomes keep pointing at it."""
    competitor.active = active
    session.flush()
    return competitor


def _code(value: str) -> str:
    value = (value or "").strip()
    if not CODE.match(value):
        raise InvalidInput("That code is not valid.", {
            "code": "Use 1–32 letters, digits, '.', '-' or '_', starting with a letter or digit."
        })
    return value


def save_campaign(session: Session, campaign: Campaign | None, *, code: str, name: str,
                  channel: str, cost: Decimal | str | int | None, starts_on: date | None,
                  ends_on: date | None, active: bool = True) -> Campaign:
    """Create (``campaign`` None) or change a campaign; codes are unique ignoring case."""
    code = _code(code)
    name = clean_name(name, "Name", 160)
    if channel not in CHANNELS:
        raise InvalidInput(f"Unknown channel {channel!r}.", {"channel": "Pick a channel."})
    amount = clean_money(cost, "cost")
    if starts_on and ends_on and ends_on < starts_on:
        raise InvalidInput("The campaign ends before it starts.",
                          {"ends_on": "Pick a day on or after the start."})
    message = f"Campaign {code} already exists."
    refuse_taken(session, Campaign.code, code, campaign, message=message, field="code",
                  field_message="Another campaign has this code.")
    if campaign is None:
        campaign = Campaign(code=code, name=name)
        session.add(campaign)
    campaign.code, campaign.name, campaign.channel = code, name, channel
    campaign.cost, campaign.starts_on, campaign.ends_on = amount, starts_on, ends_on
    campaign.active = active
    flush_unique(session, message, {"code": "Another campaign has this code."})
    return campaign


def save_source(session: Session, source: Source | None, *, code: str, name: str,
                cost_per_lead: Decimal | str | int | None, active: bool = True) -> Source:
    """Create (``source`` None) or change a lead source; codes are unique ignoring case."""
    code = _code(code)
    name = clean_name(name, "Name", 120)
    amount = clean_money(cost_per_lead, "cost_per_lead")
    message = f"Source {code} already exists."
    refuse_taken(session, Source.code, code, source, message=message, field="code",
                  field_message="Another source has this code.")
    if source is None:
        source = Source(code=code, name=name)
        session.add(source)
    source.code, source.name, source.cost_per_lead, source.active = code, name, amount, active
    flush_unique(session, message, {"code": "Another source has this code."})
    return source
