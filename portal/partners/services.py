"""Partner services: validate, create, update, pause and list distributors and dealers.

The page, the CSV import and the command line all go through :func:`save_partner`, so a
partner is checked by the same rules whichever way it arrives. Services flush, never
commit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session, selectinload

from portal.core.checks import text_problem
from portal.core.errors import InvalidInput
from portal.core.models import (
    Forwarding,
    Partner,
    PartnerKind,
    ProductLine,
    Territory,
    User,
    utcnow,
)
from portal.core.models.codes import by_code, code_is
from portal.core.pagination import Page, paginate
from portal.dispatch.geo import is_us_zip
from routing.geo import CentroidTable
from routing.territory import (
    RuleError,
    TerritoryRule,
    normalise_postal_code,
    parse_rule,
    problem_for_country,
)

#: the partners CSV columns (DESIGN §6), also the field names of the partner form
COLUMNS = (
    "code", "name", "kind", "parent", "email", "phone", "address", "city", "region",
    "postal_code", "country", "latitude", "longitude", "product_lines", "capacity",
    "territories", "forwarding",
)
CODE_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9_-]{0,31}")
_REGION_PATTERN = re.compile(r"([A-Z]{2})-([A-Z0-9]{1,3})")
_RULE_SEPARATORS = re.compile(r"[;\r\n]+")
MAX_CAPACITY = 1_000_000
MAX_TERRITORIES = 500
#: US states, DC and the inhabited territories (ISO 3166-2:US); other countries' regions
#: are checked for shape only, as no subdivision list ships with the portal.
US_REGIONS = frozenset(
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV "
    "NH NJ NM NY NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC AS GU MP PR UM VI"
    .split()
)
#: ISO 3166-1 alpha-2 codes: phonenumbers' region list covers every country with a
#: numbering plan, which is every country a partner can be in.
COUNTRIES = frozenset(phonenumbers.SUPPORTED_REGIONS)
_LENGTHS = {"name": 160, "phone": 40, "address": 200, "city": 100, "postal_code": 20}


@dataclass
class PartnerInput:
    """A partner as typed in the form or a CSV row: text, not yet checked."""

    code: str = ""
    name: str = ""
    kind: str = ""
    parent: str = ""
    email: str = ""
    phone: str = ""
    address: str = ""
    city: str = ""
    region: str = ""
    postal_code: str = ""
    country: str = ""
    latitude: str = ""
    longitude: str = ""
    product_lines: list[str] = field(default_factory=list)
    capacity: str = ""
    territories: str = ""  #: rules separated by ';' or line breaks
    forwarding: str = ""


@dataclass
class CleanPartner:
    """A checked partner, ready to be written."""

    code: str
    name: str
    kind: str
    parent: Partner | None
    email: str
    phone: str
    address: str
    city: str
    region: str
    postal_code: str
    country: str
    latitude: float | None
    longitude: float | None
    location_from_centroid: bool
    product_lines: list[ProductLine]
    capacity: int | None
    territories: list[TerritoryRule]
    forwarding: str


class Lookups:
    """How validation finds partners and product lines by code; the CSV import caches."""

    #: may a partner be given a retired product line? The form offers active lines only;
    #: a CSV row names its lines explicitly (and an export lists retired ones it holds).
    allow_retired_lines = False

    def __init__(self, session: Session) -> None:
        self.session = session

    def partner(self, code: str) -> Partner | None:
        """The partner with ``code``, or None."""
        return by_code(self.session, Partner, code)

    def product_line(self, code: str) -> ProductLine | None:
        """The product line with ``code``, or None."""
        return by_code(self.session, ProductLine, code)


def split_rules(text: str) -> list[str]:
    """The non-empty rules of a territories cell or textarea (';' or one per line)."""
    return [part.strip() for part in _RULE_SEPARATORS.split(text) if part.strip()]


def partner_values(partner: Any, parent_code: str | None = None, *,
                   product_lines: Sequence[str] | None = None,
                   territories: Sequence[str] | None = None) -> dict[str, str]:
    """The partner as CSV cells (also the edit form's starting values).

    ``partner`` is a Partner, or any row with the same column names (the export reads plain
    rows); for such a row pass ``parent_code``, ``product_lines`` and ``territories``.
    """
    if parent_code is None:
        parent_code = partner.parent.code if partner.parent is not None else ""
    if product_lines is None:
        product_lines = [line.code for line in partner.product_lines]
    if territories is None:
        territories = [t.rule for t in partner.territories]
    # A centroid location is written as empty so that a re-import derives it again.
    own_location = partner.latitude is not None and not partner.location_from_centroid
    return {
        "code": partner.code,
        "name": partner.name,
        "kind": partner.kind,
        "parent": parent_code,
        "email": partner.email,
        "phone": partner.phone,
        "address": partner.address,
        "city": partner.city,
        "region": partner.region,
        "postal_code": partner.postal_code,
        "country": partner.country,
        "latitude": repr(partner.latitude) if own_location else "",
        "longitude": repr(partner.longitude) if own_location else "",
        "product_lines": ";".join(product_lines),
        "capacity": "" if partner.capacity is None else str(partner.capacity),
        "territories": ";".join(territories),
        "forwarding": partner.forwarding if partner.kind == PartnerKind.DISTRIBUTOR else "",
    }


def clean_partner(session: Session, data: PartnerInput, *, partner: Partner | None = None,
                  lookups: Lookups | None = None) -> CleanPartner:
    """Check every field of ``data``; InvalidInput names each bad field with what to do."""
    lookups = lookups or Lookups(session)
    errors: dict[str, str] = {}
    # The one text rule (checks.text_problem): a field that is not text is reported and
    # checked no further, so no lookup ever carries a NUL to the database.
    for name, value in vars(data).items():
        texts = value if isinstance(value, list) else [value]
        if problem := next(filter(None, map(text_problem, texts)), None):
            errors[name] = problem
    if errors:
        data = replace(data, **{name: [] if name == "product_lines" else ""
                                for name in errors})

    code = data.code.strip().upper()
    if not code:
        errors["code"] = "Enter a code (letters, digits, - or _), e.g. D-1001."
    elif not CODE_PATTERN.fullmatch(code):
        errors["code"] = ("A code is 1–32 letters, digits, - or _, starting with a letter or "
                          "digit.")
    elif partner is None or code != partner.code:
        if lookups.partner(code) not in (None, partner):  # itself, when only the case changed
            errors["code"] = f"Code {code} is already used by another partner."

    name = " ".join(data.name.split())
    if not name:
        errors["name"] = "Enter the partner's name."
    for key, limit in _LENGTHS.items():
        value = name if key == "name" else getattr(data, key).strip()
        if len(value) > limit:
            errors[key] = f"At most {limit} characters, please."

    kind = data.kind.strip().lower()
    if kind not in {k.value for k in PartnerKind}:
        errors["kind"] = "Choose distributor or dealer."

    parent: Partner | None = None
    parent_code = data.parent.strip().upper()
    if parent_code:
        if kind == PartnerKind.DISTRIBUTOR:
            errors["parent"] = "A distributor cannot have a parent; leave it empty."
        elif parent_code == code:
            errors["parent"] = "A partner cannot be its own parent."
        else:
            parent = lookups.partner(parent_code)
            if parent is None:
                errors["parent"] = f"No distributor has the code {parent_code}."
            elif not parent.is_distributor:
                errors["parent"] = f"{parent_code} is a dealer; a parent must be a distributor."
                parent = None
    if (partner is not None and partner.is_distributor and kind == PartnerKind.DEALER
            and "kind" not in errors):
        dealers = session.scalar(
            select(func.count(Partner.id)).where(Partner.parent_id == partner.id)
        )
        if dealers:
            errors["kind"] = (f"This distributor has {dealers} dealers; move them to another "
                              "distributor before making it a dealer.")

    email = data.email.strip()
    if email:
        try:
            # test_environment admits only the reserved .test domain, which demo and test
            # data use; refusing it would make their own export impossible to re-import.
            email = validate_email(email, check_deliverability=False,
                                   test_environment=True).normalized
        except EmailNotValidError as error:
            errors["email"] = f"Enter a valid email address ({error})."
        else:
            if len(email) > 254:
                errors["email"] = "At most 254 characters, please."

    phone = " ".join(data.phone.split())
    if phone and not any(ch.isdigit() for ch in phone):
        errors["phone"] = "Enter a phone number with digits, e.g. +1 641 555 0100."

    country = data.country.strip().upper() or "US"
    if country not in COUNTRIES:
        errors["country"] = "Enter a two-letter ISO country code, e.g. US or CA."

    region = data.region.strip().upper()
    if region:
        found = _REGION_PATTERN.fullmatch(region)
        if not found:
            errors["region"] = "Enter an ISO 3166-2 region code, e.g. US-IA."
        elif found.group(1) != country:
            errors["region"] = f"Region {region} is not in country {country}."
        elif country == "US" and found.group(2) not in US_REGIONS:
            errors["region"] = f"{region} is not a US state or territory."

    postal_code = " ".join(data.postal_code.split()).upper()
    if postal_code and country == "US":
        zip_code = normalise_postal_code("US", postal_code)
        if zip_code is None:
            errors["postal_code"] = "Enter a US ZIP code such as 50401 or 50401-1234."
        elif not is_us_zip(zip_code):
            errors["postal_code"] = f"{zip_code} is not a US ZIP code; check the digits."

    latitude = _coordinate(data.latitude, "latitude", 90.0, errors)
    longitude = _coordinate(data.longitude, "longitude", 180.0, errors)
    if "latitude" not in errors and "longitude" not in errors:
        if (latitude is None) != (longitude is None):
            missing = "longitude" if longitude is None else "latitude"
            errors[missing] = "Give both latitude and longitude, or neither."
    from_centroid = False
    if latitude is None and longitude is None and not (
        {"latitude", "longitude", "postal_code", "country"} & errors.keys()
    ) and postal_code:
        point = CentroidTable.us().get(country, postal_code)
        if point is not None:
            latitude, longitude, from_centroid = point.lat, point.lon, True

    lines: list[ProductLine] = []
    current = {line.id for line in partner.product_lines} if partner is not None else set()
    problems: list[str] = []
    for raw in data.product_lines:
        line_code = raw.strip().upper()
        if not line_code or any(line.code == line_code for line in lines):
            continue
        line = lookups.product_line(line_code)
        if line is None:
            problems.append(f"No product line has the code {line_code}.")
        elif not line.active and line.id not in current and not lookups.allow_retired_lines:
            problems.append(f"Product line {line_code} is retired; it cannot be added.")
        else:
            lines.append(line)
    if problems:
        errors["product_lines"] = " ".join(problems)

    capacity: int | None = None
    raw_capacity = data.capacity.strip()
    if raw_capacity:
        if not raw_capacity.isdigit() or not raw_capacity.isascii():
            errors["capacity"] = "Enter a whole number of leads (0 or more), or leave it empty."
        elif int(raw_capacity) > MAX_CAPACITY:
            errors["capacity"] = f"At most {MAX_CAPACITY:,} open leads."
        else:
            capacity = int(raw_capacity)

    rules: list[TerritoryRule] = []
    problems = []
    for text in split_rules(data.territories):
        try:
            rule = parse_rule(text)
        except RuleError as error:
            problems.append(f"{text!r}: {error}.")
            continue
        wrong_here = problem_for_country(rule, country)
        if wrong_here:
            problems.append(f"{text!r}: {wrong_here}.")
        elif len(rule.value) > 40:
            problems.append(f"{text!r}: a rule's value is at most 40 characters.")
        elif rule not in rules:  # a repeated rule adds nothing
            rules.append(rule)
    if len(rules) > MAX_TERRITORIES:
        problems.append(f"At most {MAX_TERRITORIES} rules per partner.")
    if not problems and latitude is None and any(r.kind == "radius" for r in rules):
        problems.append("A radius rule needs the partner's location: enter latitude and "
                        "longitude, or a postal code we know.")
    if problems:
        errors["territories"] = " ".join(problems)

    forwarding = data.forwarding.strip().lower()
    if not forwarding:
        forwarding = Forwarding.MANUAL.value
    elif forwarding not in {f.value for f in Forwarding}:
        errors["forwarding"] = "Choose manual or auto."
    elif forwarding == Forwarding.AUTO and kind == PartnerKind.DEALER:
        errors["forwarding"] = "Only distributors forward leads; leave it manual for a dealer."

    if errors:
        ordered = {key: errors[key] for key in COLUMNS if key in errors}
        raise InvalidInput("Please correct the fields marked below.", ordered)
    return CleanPartner(
        code=code, name=name, kind=kind, parent=parent, email=email, phone=phone,
        address=data.address.strip(), city=" ".join(data.city.split()), region=region,
        postal_code=postal_code, country=country, latitude=latitude, longitude=longitude,
        location_from_centroid=from_centroid, product_lines=lines, capacity=capacity,
        territories=rules, forwarding=forwarding,
    )


def _coordinate(raw: str, name: str, limit: float, errors: dict[str, str]) -> float | None:
    text = raw.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        example = 43.15 if limit == 90 else -93.2
        errors[name] = f"Enter the {name} in decimal degrees, e.g. {example}."
        return None
    if not math.isfinite(value) or not -limit <= value <= limit:
        errors[name] = f"The {name} must be between {-limit:g} and {limit:g}."
        return None
    return value


_SCALARS = (
    "code", "name", "kind", "email", "phone", "address", "city", "region", "postal_code",
    "country", "latitude", "longitude", "location_from_centroid", "capacity", "forwarding",
)


def save_partner(session: Session, data: PartnerInput, *, partner: Partner | None = None,
                 lookups: Lookups | None = None) -> tuple[Partner, bool]:
    """Create or update a partner; returns it and whether anything changed.

    Unchanged values are not re-assigned, so saving the same data twice writes nothing
    (and ``updated_at`` keeps its value).
    """
    clean = clean_partner(session, data, partner=partner, lookups=lookups)
    return apply_partner(session, clean, partner)


def apply_partner(session: Session, clean: CleanPartner,
                  partner: Partner | None = None) -> tuple[Partner, bool]:
    """Write checked values onto ``partner`` (or a new one); returns it and whether it changed."""
    changed = partner is None
    if partner is None:
        partner = Partner(code=clean.code, name=clean.name, kind=clean.kind)
        session.add(partner)
    for attr in _SCALARS:
        value = getattr(clean, attr)
        if changed or getattr(partner, attr) != value:
            setattr(partner, attr, value)
            changed = True
    parent_id = clean.parent.id if clean.parent is not None else None
    if partner.parent_id != parent_id or (changed and clean.parent is not None):
        partner.parent = clean.parent
        changed = True
    if {line.id for line in partner.product_lines} != {line.id for line in clean.product_lines}:
        partner.product_lines = clean.product_lines
        changed = True
    wanted = [(rule.kind, rule.value) for rule in clean.territories]
    if [(t.kind, t.value) for t in partner.territories] != wanted:
        partner.territories = [
            Territory(kind=kind, value=value, position=position)
            for position, (kind, value) in enumerate(wanted)
        ]
        changed = True
    if changed:
        # The routing snapshot is rebuilt when the newest updated_at moves.
        partner.updated_at = utcnow()
    session.flush()
    return partner, changed


def pause_partner(session: Session, partner: Partner, reason: str = "") -> None:
    """Pause a partner: it keeps its leads but gets no new offers until resumed."""
    partner.active = False
    partner.paused_reason = " ".join(reason.split())[:200]
    session.flush()


def resume_partner(session: Session, partner: Partner) -> None:
    """Resume a paused partner: routing may offer it leads again."""
    partner.active = True
    partner.paused_reason = ""
    session.flush()


def partner_by_code(session: Session, code: str) -> Partner | None:
    """The partner with ``code`` (any case), with its lines, territories and parent."""
    return session.scalars(
        select(Partner)
        .where(code_is(Partner.code, code))
        .options(selectinload(Partner.product_lines), selectinload(Partner.territories),
                 selectinload(Partner.parent))
    ).first()


@dataclass
class PartnerFilters:
    """What the partners list is narrowed to."""

    q: str = ""
    kind: str = ""  #: distributor, dealer or empty
    status: str = ""  #: active, paused or empty
    distributor: str = ""  #: a distributor's code: its dealers


def partner_matches(q: str) -> ColumnElement[bool]:
    """Partners whose code, name, town or ZIP holds ``q`` (any case): one search for the
    partners list and the pickers."""
    return or_(*(column.icontains(q, autoescape=True)
                 for column in (Partner.code, Partner.name, Partner.city, Partner.postal_code)))


def _filtered(filters: PartnerFilters, distributor_id: int | None) -> Select[Any]:
    query = select(Partner)
    q = filters.q.strip()
    if q:
        query = query.where(partner_matches(q))
    if filters.kind in {k.value for k in PartnerKind}:
        query = query.where(Partner.kind == filters.kind)
    if filters.status == "active":
        query = query.where(Partner.active.is_(True))
    elif filters.status == "paused":
        query = query.where(Partner.active.is_(False))
    if filters.distributor:
        query = query.where(Partner.parent_id == distributor_id)
    return query


def list_partners(session: Session, filters: PartnerFilters, *, page: int = 1,
                  per_page: int = 25) -> Page:
    """One page of partners matching ``filters``, ordered by code, in a fixed few queries."""
    distributor_id = None
    if filters.distributor:
        distributor_id = session.scalar(
            select(Partner.id).where(code_is(Partner.code, filters.distributor))
        )
    query = (_filtered(filters, distributor_id).order_by(Partner.code)
             .options(selectinload(Partner.product_lines), selectinload(Partner.parent)))
    return paginate(session, query, page, per_page)


def distributors(session: Session, limit: int = 2000) -> list[tuple[str, str]]:
    """(code, name) of distributors, for pickers."""
    rows = session.execute(
        select(Partner.code, Partner.name)
        .where(Partner.kind == PartnerKind.DISTRIBUTOR)
        .order_by(Partner.code)
        .limit(limit)
    )
    return [(code, name) for code, name in rows]


def partner_users(session: Session, partner: Partner, limit: int = 200) -> list[User]:
    """The people who sign in for ``partner``."""
    return list(session.scalars(
        select(User).where(User.partner_id == partner.id).order_by(User.email).limit(limit)
    ))


def partner_dealers(session: Session, partner: Partner,
                    limit: int = 50) -> tuple[list[Partner], int]:
    """The first dealers of a distributor and how many it has in all."""
    total = session.scalar(
        select(func.count(Partner.id)).where(Partner.parent_id == partner.id)
    ) or 0
    dealers = list(session.scalars(
        select(Partner).where(Partner.parent_id == partner.id).order_by(Partner.code).limit(limit)
    ))
    return dealers, total


def product_line_choices(session: Session,
                         keep: Iterable[ProductLine] = ()) -> list[tuple[str, str]]:
    """Active product lines as (code, label), plus any retired ones in ``keep``."""
    lines = {line.code: line for line in session.scalars(
        select(ProductLine).where(ProductLine.active.is_(True))
    )}
    for line in keep:
        lines.setdefault(line.code, line)
    return [(code, f"{code} — {lines[code].name}") for code in sorted(lines)]
