"""The routing what-if: which recent leads an edit of one partner would send elsewhere.

Nothing is written. The current snapshot (the cached index) is compared with a second index
in which only this partner's candidate differs; both decide every recent lead that the
partner's old or new version could touch, with the same live state (today's loads, the
edited capacity for this partner) and no exclusions, so the difference is the edit alone.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    Result,
    String,
    case,
    exists,
    false,
    func,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.orm import Session

from portal.core.errors import InvalidInput
from portal.core.models import Lead, LeadStatus, Offer, Partner, ProductLine, utcnow
from portal.dispatch import geocoding
from portal.dispatch.services import LazyLiveState, centroid, partner_index
from routing import (
    Candidate,
    CentroidTable,
    LeadFacts,
    LiveState,
    PartnerIndex,
    Point,
    RuleError,
    TerritoryRule,
    normalise_postal_code,
    parse_rules,
)
from routing.geo import Trig

WINDOW_DAYS = 90
#: each list shows at most this many leads; the counts cover all of them
LIST_CAP = 200
_STREAM_BATCH = 2000
#: above this many ZIPs in reach of radius rules the database filter is skipped
_MAX_ZIPS = 20_000


class WhatIfError(InvalidInput):
    """The edit cannot be previewed: ``message`` for the whole form (may be empty),
    ``fields`` maps form fields to what to fix."""


@dataclass(frozen=True)
class PartnerEdit:
    """The routing facts of a partner as edited in the form (not saved)."""

    territories: tuple[TerritoryRule, ...]
    product_lines: frozenset[str]
    capacity: int | None
    active: bool


@dataclass(frozen=True)
class Move:
    """One lead that the edit would send to a different partner (None: the managers' queue)."""

    lead_id: Any
    before: str | None
    after: str | None
    summary: str


@dataclass
class LeadRow:
    """What the result lists show of a lead."""

    id: Any
    name: str
    postal_code: str
    country: str
    product_line: str
    created_at: datetime
    status: str


@dataclass
class Preview:
    """The outcome of one what-if run."""

    partner_code: str
    since: datetime
    considered: int = 0  #: routed leads of the window the preview looked at
    left_out: int = 0  #: manual reassignments, forwards and self-sourced leads
    affected: int = 0  #: leads the old or new version of the partner matches at all
    gained: list[Move] = field(default_factory=list)
    gained_total: int = 0
    lost: list[Move] = field(default_factory=list)
    lost_total: int = 0
    #: changes between two other partners; the engine's rules make this 0, shown if not
    others_total: int = 0
    notes: list[str] = field(default_factory=list)
    leads: dict[Any, LeadRow] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.gained_total + self.lost_total + self.others_total


def current_edit(partner: Partner) -> PartnerEdit:
    """The partner's routing facts as saved."""
    return PartnerEdit(
        territories=tuple(TerritoryRule(t.kind, t.value) for t in partner.territories),
        product_lines=frozenset(line.code for line in partner.product_lines),
        capacity=partner.capacity, active=partner.active,
    )


def parse_edit(session: Session, *, territories: str, product_lines: list[str],
               capacity: str, active: bool) -> PartnerEdit:
    """Check the form's values; WhatIfError names each field to fix."""
    errors: dict[str, str] = {}
    rules: list[TerritoryRule] = []
    for number, line in enumerate(territories.splitlines(), start=1):
        try:
            rules.extend(parse_rules(line))
        except RuleError as error:
            errors["territories"] = f"Line {number}: {error}"
            break
    known = set(session.scalars(
        select(ProductLine.code).where(ProductLine.code.in_(product_lines))))
    unknown = sorted(set(product_lines) - known)
    if unknown:
        errors["product_lines"] = f"Unknown product line: {', '.join(unknown)}."
    limit: int | None = None
    if capacity.strip():
        try:
            limit = int(capacity.strip())
        except ValueError:
            limit = -1
        if limit < 0:
            errors["capacity"] = "Capacity is a whole number of open leads, 0 or more; " \
                                 "leave it empty for no limit."
    if errors:
        raise WhatIfError("", errors)  # the form's summary line says to look below
    return PartnerEdit(territories=tuple(dict.fromkeys(rules)),
                       product_lines=frozenset(product_lines), capacity=limit, active=active)


class _EditedLive(Mapping[int, LiveState]):
    """Today's live state, except this partner's edited capacity and active flag."""

    def __init__(self, base: Mapping[int, LiveState], partner_id: int, edit: PartnerEdit
                 ) -> None:
        self._base = base
        self._partner_id = partner_id
        self._edit = edit
        self._state: LiveState | None = None

    def __getitem__(self, partner_id: int) -> LiveState:
        if partner_id != self._partner_id:
            return self._base[partner_id]
        if self._state is None:
            now = self._base[partner_id]
            blocked = now.blocked_reason
            if self._edit.active and not now.active and blocked and blocked.startswith("paused"):
                blocked = None  # resuming lifts the pause, not a compliance block
            self._state = replace(now, active=self._edit.active, capacity=self._edit.capacity,
                                  blocked_reason=blocked)
        return self._state

    def __iter__(self) -> Iterator[int]:
        return iter(self._base)

    def __len__(self) -> int:
        return len(self._base)


def _edited_candidate(old: Candidate, edit: PartnerEdit) -> Candidate:
    return replace(old, territories=edit.territories, product_lines=edit.product_lines)


def _full_index_with(session: Session, current: PartnerIndex, edited: Candidate
                     ) -> PartnerIndex:
    """The current snapshot with one candidate replaced (candidates reused, not reloaded)."""
    ids = session.scalars(select(Partner.id).order_by(Partner.id))
    candidates = (edited if pid == edited.id else current.candidate(pid) for pid in ids)
    return PartnerIndex.build(c for c in candidates if c is not None)


def _window(since: datetime, parent_id: int | None
            ) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """(routed leads of the window, those a person placed) as SQL conditions."""
    if parent_id is None:
        routed = (Lead.offers_count > 0) | (Lead.status == LeadStatus.UNASSIGNED)
        # A forward is the distributor's choice, not the engine's: it cannot be re-decided.
        by_hand: tuple[str, ...] = ("manual", "forward")
    else:
        # A dealer under a distributor is chosen in the second tier, among the leads that
        # reached its distributor by rule (as if the distributor forwarded automatically).
        routed = exists().where(Offer.lead_id == Lead.id, Offer.partner_id == parent_id,
                                Offer.method == "rule")
        by_hand = ("manual",)
    # One uncorrelated subquery (built once) instead of an EXISTS probe per lead; offers of
    # the window's leads were all made after ``since``.
    placed = select(Offer.lead_id).where(Offer.method.in_(by_hand), Offer.offered_at >= since)
    in_window = (Lead.created_at >= since) & routed
    return in_window, Lead.owner_partner_id.is_not(None) | Lead.id.in_(placed)


def _counts(session: Session, since: datetime, parent_id: int | None) -> tuple[int, int]:
    """(routed leads of the window, those left out as placed by hand)."""
    in_window, left_out = _window(since, parent_id)
    total, placed = session.execute(
        select(func.count(), func.coalesce(func.sum(case((left_out, 1), else_=0)), 0))
        .where(in_window)
    ).one()
    return int(total), int(placed)


def _reach_clause(candidates: list[Candidate], geocoded: bool) -> ColumnElement[bool] | None:
    """A SQL condition true for every lead the candidates' rules may match (more is fine),
    so the database skips the rest; None when it cannot be said in SQL."""
    rules = [rule for candidate in candidates for rule in candidate.territories]
    if any(c.country.strip().upper() != "US" for c in candidates):
        return None  # other countries' postal spellings are not normalised in SQL
    postal = func.trim(Lead.postal_code)
    lead_country = func.upper(func.trim(func.coalesce(Lead.country, "")))
    conditions: list[ColumnElement[bool]] = []
    zips: set[str] = set()
    for rule in rules:
        if rule.kind in ("zip", "zip_prefix"):
            # "50401-1234" starts with its ZIP, so a prefix test covers ZIP+4 too.
            conditions.append(postal.startswith(rule.value, autoescape=True))
        elif rule.kind == "zip_range":
            low, high = rule.bounds
            conditions.append(func.substr(postal, 1, len(low)).between(low, high))
        elif rule.kind == "region":
            bare = rule.value.split("-", 1)[1]
            conditions.append(func.upper(func.trim(Lead.region)).in_((rule.value, bare)))
        elif rule.kind == "country":
            spelled = (rule.value, "") if rule.value == "US" else (rule.value,)
            conditions.append(lead_country.in_(spelled))
    radius = [(c, rule) for c in candidates for rule in c.territories if rule.kind == "radius"]
    if radius:
        if geocoded:
            return None  # leads located by the geocoder have no postal centroid to test
        for candidate, rule in radius:
            if candidate.location is None:
                continue  # ignored by the engine too
            centre = Trig.of(candidate.location)
            reach = rule.radius_km + 0.5  # a margin: the engine decides the borderline
            zips.update(code for country, code, point in CentroidTable.us().items()
                        if country == "US" and centre.distance_km(Trig.of(point)) <= reach)
        if len(zips) > _MAX_ZIPS:
            return None
        conditions.append(func.substr(postal, 1, 5).in_(sorted(zips)))
        # Leads with their own coordinates, or from other countries (a border area), are
        # left to the engine.
        conditions.append(Lead.latitude.is_not(None))
        conditions.append(lead_country.not_in(("US", "")))
    return or_(*conditions) if conditions else false()


def _lead_rows(session: Session, since: datetime, parent_id: int | None,
               line_ids: list[int], reach: ColumnElement[bool] | None) -> Result[Any]:
    """The routed leads of the window the edit may concern, placed-by-hand ones left out."""
    in_window, left_out = _window(since, parent_id)
    statement = (
        # The raw id: converting 250,000 UUIDs costs more than the rest of a row; only the
        # few listed leads are converted.
        select(type_coerce(Lead.id, String), Lead.country, Lead.postal_code, Lead.region,
               Lead.latitude, Lead.longitude, Lead.product_line_id, Lead.address, Lead.city)
        .where(in_window, ~left_out,
               # A line neither version sells leaves the partner ineligible either way.
               Lead.product_line_id.is_(None) | Lead.product_line_id.in_(line_ids))
        # Newest first, so the capped lists show the latest leads (the index gives the order).
        .order_by(Lead.created_at.desc())
        .execution_options(yield_per=_STREAM_BATCH)
    )
    if reach is not None:
        statement = statement.where(reach)
    # Core rows, not ORM ones: the stream is the preview's largest cost.
    return session.connection().execute(statement)


class _Locator:
    """Lead locations as routing found them, without per-lead queries or the network."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._points: dict[tuple[str, str | None, str], Point | None] = {}
        self._geocoded = geocoding.enabled()

    def __call__(self, country: str, postal: str | None, address: str, city: str,
                 region: str, raw_postal: str) -> Point | None:
        key = (country, postal, "")
        if key not in self._points:
            self._points[key] = centroid(self._session, country, postal)
        point = self._points[key]
        if point is None and self._geocoded:
            query = geocoding.address_query(address, city, region, raw_postal, country)
            if query is not None:
                cache_key = ("", None, geocoding.normalise(query))
                if cache_key not in self._points:
                    # Only what the geocoder already answered: a preview never calls out.
                    self._points[cache_key] = geocoding.cached_point(self._session, query)[1]
                point = self._points[cache_key]
        return point


def preview(session: Session, partner: Partner, edit: PartnerEdit, *,
            now: datetime | None = None, days: int = WINDOW_DAYS) -> Preview:
    """Re-decide the last ``days`` of leads with the edited partner; writes nothing."""
    started = time.perf_counter()
    now = now or utcnow()
    # Each concerned lead costs two decisions: bound the time a request may take.
    max_affected = int(current_app.config["WHATIF_MAX_AFFECTED"])
    result = Preview(partner_code=partner.code, since=now - timedelta(days=days))
    current = partner_index(session)
    old = current.candidate(partner.id)
    if old is None:  # a partner created since the snapshot: the stamp makes this rare
        raise WhatIfError("This partner is not in the routing snapshot yet; try again.", {})
    new = _edited_candidate(old, edit)
    tier = partner.parent_id
    # Which leads can change at all: those the old or the new version matches. A second
    # id keeps both versions apart in one small index.
    mini = PartnerIndex.build([old, replace(new, id=-1, parent_id=tier)])
    result.notes.extend(problem.replace("(id -1)", f"(id {partner.id})")
                        for problem in mini.problems if "(id -1)" in problem)
    lines = old.product_lines | new.product_lines
    edited = _full_index_with(session, current, new)
    live_old = LazyLiveState(session)
    live_new = _EditedLive(live_old, partner.id, edit)
    locate = _Locator(session)
    # Leads at one place share whether the partner can reach them, and leads with the same
    # facts share both decisions (one live state for the whole preview): memoise both.
    reach: dict[tuple[str, str | None, str | None, Point | None], bool] = {}
    decided: dict[LeadFacts, tuple[int | None, int | None, str]] = {}
    total, result.left_out = _counts(session, result.since, tier)
    result.considered = total - result.left_out
    line_codes: dict[int, str] = {
        pid: code for pid, code in session.execute(select(ProductLine.id, ProductLine.code))}
    line_ids = [pid for pid, code in line_codes.items() if code in lines]
    reach_sql = _reach_clause([old, new], geocoding.enabled())
    # Closed even when the preview stops early (PostgreSQL streams from a server cursor).
    with _lead_rows(session, result.since, tier, line_ids, reach_sql) as rows:
        for (lead_id, country, postal_code, region, lat, lon, line_id, address,
             city) in rows:
            line = line_codes.get(line_id) if line_id is not None else None
            country = (country or "US").upper()
            postal = normalise_postal_code(country, postal_code)
            if lat is not None and lon is not None:
                location: Point | None = Point(lat, lon)
            else:
                location = locate(country, postal, address or "", city or "", region or "",
                                  postal_code or "")
            place = (country, postal, region or None, location)
            reachable = reach.get(place)
            if reachable is None:
                facts = LeadFacts(country=country, postal_code=postal, region=region or None,
                                  location=location, product_line=None, rank=None)
                # Matching looks at territories only, so the product line can stay out here.
                reachable = reach[place] = bool(mini.match(facts, parent_id=tier))
            if not reachable:
                continue
            result.affected += 1
            if result.affected > max_affected:
                raise WhatIfError(
                    f"This edit concerns more than {max_affected:,} of the last {days} days' "
                    "leads (a country-wide rule, say): too many to preview while you wait. "
                    "Preview a narrower change, e.g. one region at a time.", {"territories": (
                        f"More than {max_affected:,} recent leads fall in these territories.")})
            facts = LeadFacts(country=country, postal_code=postal, region=region or None,
                              location=location, product_line=line, rank=None)
            outcome = decided.get(facts)
            if outcome is None:
                was = current.route(facts, live_old, parent_id=tier).partner_id
                decision = edited.route(facts, live_new, parent_id=tier)
                outcome = decided[facts] = (was, decision.partner_id,
                                            decision.explanation.summary)
            before, after, summary = outcome
            if before == after:
                continue
            move = Move(lead_id=uuid.UUID(str(lead_id)), before=_code(current, before),
                        after=_code(edited, after), summary=summary)
            if after == partner.id:
                result.gained_total += 1
                if len(result.gained) < LIST_CAP:
                    result.gained.append(move)
            elif before == partner.id:
                result.lost_total += 1
                if len(result.lost) < LIST_CAP:
                    result.lost.append(move)
            else:
                result.others_total += 1
    result.leads = _rows_for(session, [m.lead_id for m in (*result.gained, *result.lost)])
    result.seconds = time.perf_counter() - started
    return result


def _code(index: PartnerIndex, partner_id: int | None) -> str | None:
    if partner_id is None:
        return None
    candidate = index.candidate(partner_id)
    return candidate.code if candidate else str(partner_id)


def _rows_for(session: Session, ids: list[Any]) -> dict[Any, LeadRow]:
    """The listed leads' display fields, in one query per 500."""
    rows: dict[Any, LeadRow] = {}
    for start in range(0, len(ids), 500):
        for lead in session.execute(
            select(Lead.id, Lead.first_name, Lead.last_name, Lead.company, Lead.email,
                   Lead.postal_code, Lead.country, ProductLine.code, Lead.created_at,
                   Lead.status)
            .outerjoin(ProductLine, ProductLine.id == Lead.product_line_id)
            .where(Lead.id.in_(ids[start:start + 500]))
        ):
            name = f"{lead.first_name} {lead.last_name}".strip() or lead.company or lead.email
            rows[lead.id] = LeadRow(id=lead.id, name=name, postal_code=lead.postal_code,
                                    country=lead.country, product_line=lead.code or "",
                                    created_at=lead.created_at, status=lead.status)
    return rows
