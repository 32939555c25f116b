"""The routing engine: territory matching over an index, then a decision with its reasons.

Flow: ``PartnerIndex.build(candidates)`` once per snapshot; per lead ``index.match(lead)``
finds every partner whose territory covers the lead, and ``decide(lead, matches, live)``
picks one. ``route`` does both.

Evaluation is staged by specificity, most specific level first. Once a level has an eligible
partner, less specific matches cannot win (rule 2), so they are not examined one by one:
the explanation counts them per level (``Explanation.less_specific``) instead of listing a
verdict each. With country-wide partners a lead can match hundreds of them; a verdict for
each would make every stored explanation hundreds of entries long and cost most of the
routing time. ``route`` uses the same staging without even building those matches.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from math import atan2, cos, sin, sqrt
from typing import Any

from routing.geo import EARTH_RADIUS_KM, Point, Trig
from routing.territory import (
    COUNTRY_LEVEL,
    REGION_LEVEL,
    TerritoryRule,
    normalise_postal_code,
)

__all__ = [
    "Candidate",
    "Decision",
    "Explanation",
    "LeadFacts",
    "LiveState",
    "Match",
    "PartnerIndex",
    "Verdict",
    "decide",
    "route",
]

PARTNER_KINDS = ("dealer", "distributor")

#: Radius rules are indexed in cells of this many degrees of latitude and longitude.
GRID_DEGREES = 0.5
_KM_PER_DEGREE = math.radians(1.0) * EARTH_RADIUS_KM
_RANGE_BUCKET_DIGITS = 3

_EXCLUDED = "declined or let this lead expire before"
_UNKNOWN = "unknown to the live state"
_PAUSED = "paused"
_NO_RADIUS = "radius rule ignored: partner has no location"


@dataclass(frozen=True, slots=True)
class Candidate:
    """A partner as the engine sees it: identity, hierarchy, location, lines, territory."""

    id: int
    code: str
    name: str
    kind: str
    parent_id: int | None
    country: str
    location: Point | None
    product_lines: frozenset[str]
    territories: tuple[TerritoryRule, ...]

    def __post_init__(self) -> None:
        if self.kind not in PARTNER_KINDS:
            raise ValueError(f"partner {self.code}: kind {self.kind!r} is not dealer/distributor")
        if self.parent_id == self.id:
            raise ValueError(f"partner {self.code} cannot be its own parent")


@dataclass(frozen=True, slots=True)
class LiveState:
    """A partner's state that changes lead by lead (the portal loads it per decision)."""

    active: bool
    capacity: int | None
    open_leads: int
    last_offered_at: datetime | None
    blocked_reason: str | None = None

    def __post_init__(self) -> None:
        if self.capacity is not None and self.capacity < 0:
            raise ValueError(f"capacity {self.capacity} is negative")
        if self.open_leads < 0:
            raise ValueError(f"open_leads {self.open_leads} is negative")


@dataclass(frozen=True, slots=True)
class LeadFacts:
    """What routing needs to know about a lead.

    ``region`` is ISO 3166-2 ("US-IA"); a bare subdivision ("IA") is read within
    ``country``. ``rank`` is carried for callers and future rules; matching ignores it.
    """

    country: str
    postal_code: str | None
    region: str | None
    location: Point | None
    product_line: str | None
    rank: str | None
    excluded: frozenset[int] = frozenset()


@dataclass(frozen=True, slots=True)
class Match:
    """A candidate whose territory covers the lead, by its most specific rule."""

    candidate: Candidate
    rule: TerritoryRule
    level: int
    distance_km: float | None

    @property
    def level_name(self) -> str:
        """Readable name of the match level, e.g. 'exact postal code'."""
        return self.rule.level_name


@dataclass(frozen=True, slots=True)
class Verdict:
    """How one matched candidate fared: kept (eligible, ranked) or dropped, and why."""

    partner_id: int
    code: str
    kept: bool
    reasons: tuple[str, ...]
    rule: str
    level: str
    distance_km: float | None
    rank: int | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form."""
        return {
            "partner_id": self.partner_id,
            "code": self.code,
            "kept": self.kept,
            "reasons": list(self.reasons),
            "rule": self.rule,
            "level": self.level,
            "distance_km": self.distance_km,
            "rank": self.rank,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Verdict:
        """Rebuild a verdict from :meth:`to_dict` output."""
        distance = data["distance_km"]
        rank = data["rank"]
        return cls(
            partner_id=int(data["partner_id"]),
            code=str(data["code"]),
            kept=bool(data["kept"]),
            reasons=tuple(str(reason) for reason in data["reasons"]),
            rule=str(data["rule"]),
            level=str(data["level"]),
            distance_km=None if distance is None else float(distance),
            rank=None if rank is None else int(rank),
        )


@dataclass(frozen=True, slots=True)
class Explanation:
    """Why a lead went where it went (or nowhere), in a form people can read.

    ``considered`` holds a verdict for every candidate examined: all matches at levels
    more specific than the winner's (each dropped, with its reasons) and all at the
    winner's level, ranked; within a level the kept come first, in rank order. Matches
    at less specific levels are counted per level in ``less_specific``. ``notes`` say what
    could not be checked (no postal code, no location, ...).
    """

    summary: str
    level: str | None
    considered: tuple[Verdict, ...]
    notes: tuple[str, ...] = ()
    less_specific: tuple[tuple[str, int], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (stored with the lead)."""
        return {
            "summary": self.summary,
            "level": self.level,
            "considered": [verdict.to_dict() for verdict in self.considered],
            "notes": list(self.notes),
            "less_specific": [
                {"level": name, "count": count} for name, count in self.less_specific
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Explanation:
        """Rebuild an explanation from :meth:`to_dict` output."""
        level = data["level"]
        return cls(
            summary=str(data["summary"]),
            level=None if level is None else str(level),
            considered=tuple(Verdict.from_dict(item) for item in data["considered"]),
            notes=tuple(str(note) for note in data.get("notes", ())),
            less_specific=tuple(
                (str(item["level"]), int(item["count"]))
                for item in data.get("less_specific", ())
            ),
        )


@dataclass(frozen=True, slots=True)
class Decision:
    """The partner to offer the lead to (None: manager queue) and the explanation."""

    partner_id: int | None
    explanation: Explanation


# --------------------------------------------------------------------------------------
# Index

# (candidate, rule, level, rule position in candidate.territories, candidate trig or None)
_Entry = tuple[Candidate, TerritoryRule, int, int, Trig | None]
# (candidate, rule, level, distance in km or None): what the decision works on
_Item = tuple[Candidate, TerritoryRule, int, float | None]
# (centre latitude, radius in degrees of latitude, centre trig, radius km, entry)
_RadiusEntry = tuple[float, float, Trig, float, _Entry]


class _Tier:
    """The lookup structures for the partners sharing one parent (None: top level)."""

    __slots__ = (
        "exact",
        "prefix",
        "prefix_lengths",
        "ranges",
        "grid",
        "region",
        "region_ids",
        "country",
        "country_ids",
    )

    def __init__(self) -> None:
        self.exact: dict[tuple[str, str], list[_Entry]] = {}
        self.prefix: dict[tuple[str, str], list[_Entry]] = {}
        self.prefix_lengths: dict[str, tuple[int, ...]] = {}
        self.ranges: dict[tuple[str, int, str], list[tuple[str, str, _Entry]]] = {}
        self.grid: dict[tuple[int, int], list[_RadiusEntry]] = {}
        self.region: dict[str, tuple[_Entry, ...]] = {}
        self.region_ids: dict[str, frozenset[int]] = {}
        self.country: dict[str, tuple[_Entry, ...]] = {}
        self.country_ids: dict[str, frozenset[int]] = {}


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return math.floor(lat / GRID_DEGREES), math.floor((lon + 180.0) / GRID_DEGREES) % _LON_CELLS


_LON_CELLS = round(360 / GRID_DEGREES)


def _radius_cells(centre: Point, km: float) -> Iterable[tuple[int, int]]:
    """Every grid cell the circle's bounding box touches (wrapping at the antimeridian)."""
    angle = km / EARTH_RADIUS_KM
    delta_lat = math.degrees(angle)
    low_lat, high_lat = centre.lat - delta_lat, centre.lat + delta_lat
    cos_lat = math.cos(math.radians(centre.lat))
    if low_lat <= -90.0 or high_lat >= 90.0 or math.sin(angle) >= cos_lat:
        lon_cells: Iterable[int] = range(_LON_CELLS)  # the circle contains a pole
    else:
        delta_lon = math.degrees(math.asin(math.sin(angle) / cos_lat))
        first = math.floor((centre.lon - delta_lon + 180.0) / GRID_DEGREES)
        last = math.floor((centre.lon + delta_lon + 180.0) / GRID_DEGREES)
        lon_cells = sorted({column % _LON_CELLS for column in range(first, last + 1)})
    low_row = math.floor(max(low_lat, -90.0) / GRID_DEGREES)
    high_row = math.floor(min(high_lat, 90.0) / GRID_DEGREES)
    return [(row, column) for row in range(low_row, high_row + 1) for column in lon_cells]


class PartnerIndex:
    """Immutable territory index over one snapshot of candidates; answers matches fast."""

    __slots__ = ("_by_id", "_tiers", "_problems")

    def __init__(
        self, by_id: dict[int, Candidate], tiers: dict[int | None, _Tier], problems: list[str]
    ) -> None:
        self._by_id = by_id
        self._tiers = tiers
        self._problems = tuple(problems)

    @classmethod
    def build(cls, candidates: Iterable[Candidate]) -> PartnerIndex:
        """Index a snapshot of candidates; ValueError on duplicate partner ids."""
        by_id: dict[int, Candidate] = {}
        for candidate in candidates:
            if candidate.id in by_id:
                raise ValueError(f"partner id {candidate.id} appears twice")
            by_id[candidate.id] = candidate
        tiers: dict[int | None, _Tier] = {}
        prefix_lengths: dict[tuple[int | None, str], set[int]] = {}
        regions: dict[tuple[int | None, str], dict[int, _Entry]] = {}
        countries: dict[tuple[int | None, str], dict[int, _Entry]] = {}
        problems: list[str] = []
        # Sorted, so that equal snapshots build equal indexes whatever the input order.
        for partner_id in sorted(by_id):
            candidate = by_id[partner_id]
            tier_key = candidate.parent_id
            tier = tiers.get(tier_key)
            if tier is None:
                tier = tiers[tier_key] = _Tier()
            country = candidate.country.strip().upper()
            trig = Trig.of(candidate.location) if candidate.location is not None else None
            for position, rule in enumerate(candidate.territories):
                entry: _Entry = (candidate, rule, rule.level, position, trig)
                kind = rule.kind
                if kind == "zip":
                    tier.exact.setdefault((country, rule.value), []).append(entry)
                elif kind == "zip_prefix":
                    tier.prefix.setdefault((country, rule.value), []).append(entry)
                    prefix_lengths.setdefault((tier_key, country), set()).add(len(rule.value))
                elif kind == "zip_range":
                    _add_range(tier, country, rule, entry)
                elif kind == "radius":
                    if candidate.location is None or trig is None:
                        problems.append(
                            f"{candidate.code} (id {candidate.id}): {rule} ignored: "
                            "partner has no location"
                        )
                        continue
                    km = rule.radius_km
                    radial: _RadiusEntry = (
                        candidate.location.lat, km / _KM_PER_DEGREE, trig, km, entry
                    )
                    for cell in _radius_cells(candidate.location, km):
                        tier.grid.setdefault(cell, []).append(radial)
                elif kind == "region":
                    regions.setdefault((tier_key, rule.value), {}).setdefault(
                        candidate.id, entry
                    )
                else:
                    countries.setdefault((tier_key, rule.value), {}).setdefault(
                        candidate.id, entry
                    )
        for (tier_key, country), lengths in prefix_lengths.items():
            tiers[tier_key].prefix_lengths[country] = tuple(sorted(lengths))
        for (tier_key, region), members in regions.items():
            tiers[tier_key].region[region] = tuple(members.values())
            tiers[tier_key].region_ids[region] = frozenset(members)
        for (tier_key, country), members in countries.items():
            tiers[tier_key].country[country] = tuple(members.values())
            tiers[tier_key].country_ids[country] = frozenset(members)
        return cls(by_id, tiers, problems)

    @property
    def problems(self) -> tuple[str, ...]:
        """Rules the index had to ignore, e.g. a radius rule on a partner without location."""
        return self._problems

    def __len__(self) -> int:
        return len(self._by_id)

    def candidate(self, partner_id: int) -> Candidate | None:
        """The indexed candidate with this id, or None."""
        return self._by_id.get(partner_id)

    def match(self, lead: LeadFacts, *, parent_id: int | None = None) -> list[Match]:
        """Every candidate whose territory covers the lead, most specific first, then by id.

        parent_id None: top-level partners only (distributors and dealers without a
        parent); parent_id X: only the partners whose parent is X.
        """
        matches: list[Match] = []
        for group in self._groups(lead, parent_id):
            matches.extend(Match(*item) for item in group.items())
        return matches

    def route(
        self, lead: LeadFacts, live: Mapping[int, LiveState], *, parent_id: int | None = None
    ) -> Decision:
        """Same decision as decide(lead, self.match(lead), live), without building matches
        at levels that cannot win."""
        return _decide_groups(lead, self._groups(lead, parent_id), live)

    def _groups(self, lead: LeadFacts, parent_id: int | None) -> list[_Group]:
        tier = self._tiers.get(parent_id)
        if tier is None:
            return []
        country = lead.country.strip().upper()
        lead_trig = Trig.of(lead.location) if lead.location is not None else None
        best: dict[int, tuple[_Entry, float | None]] = {}
        code = normalise_postal_code(country, lead.postal_code)
        if code is not None:
            for entry in tier.exact.get((country, code), ()):
                _offer(best, entry, None)
            for length in tier.prefix_lengths.get(country, ()):
                if length > len(code):
                    break
                for entry in tier.prefix.get((country, code[:length]), ()):
                    _offer(best, entry, None)
            if code.isdigit():
                bucket = (country, len(code), code[:_RANGE_BUCKET_DIGITS])
                for low, high, entry in tier.ranges.get(bucket, ()):
                    if low <= code <= high:
                        _offer(best, entry, None)
        if lead_trig is not None and lead.location is not None:
            lat = lead.location.lat
            sin_lat, cos_lat, lon_rad = lead_trig.sin_lat, lead_trig.cos_lat, lead_trig.lon_rad
            for centre_lat, reach, centre, radius, entry in tier.grid.get(
                _cell(lat, lead.location.lon), ()
            ):
                # Cheap necessary condition first: the north-south gap alone is too far.
                if abs(centre_lat - lat) > reach:
                    continue
                # Trig.distance_km inlined (same operations, same result): the hot loop.
                delta = centre.lon_rad - lon_rad
                cos_delta = cos(delta)
                across = centre.cos_lat * sin(delta)
                along = cos_lat * centre.sin_lat - sin_lat * centre.cos_lat * cos_delta
                distance = EARTH_RADIUS_KM * atan2(
                    sqrt(across * across + along * along),
                    sin_lat * centre.sin_lat + cos_lat * centre.cos_lat * cos_delta,
                )
                if distance <= radius:
                    if entry[0].id in best:
                        _offer(best, entry, distance)
                    else:
                        best[entry[0].id] = (entry, distance)
        groups: list[_Group] = []
        if best:
            ordered = sorted(best.values(), key=_entry_order)
            current: list[_Item] = []
            for entry, known in ordered:
                if current and current[-1][2] != entry[2]:
                    groups.append(_Listed(current))
                    current = []
                if known is None and lead_trig is not None and entry[4] is not None:
                    known = lead_trig.distance_km(entry[4])
                current.append((entry[0], entry[1], entry[2], known))
            groups.append(_Listed(current))
        taken = set(best)
        region = _region_key(country, lead.region)
        if region is not None and region in tier.region:
            ids = tier.region_ids[region]
            groups.append(_Bulk(REGION_LEVEL, tier.region[region], ids, taken, lead_trig))
            taken = taken | ids
        if country in tier.country:
            ids = tier.country_ids[country]
            groups.append(_Bulk(COUNTRY_LEVEL, tier.country[country], ids, taken, lead_trig))
        return groups


def _add_range(tier: _Tier, country: str, rule: TerritoryRule, entry: _Entry) -> None:
    low, high = rule.bounds
    digits = min(_RANGE_BUCKET_DIGITS, len(low))
    for head in range(int(low[:digits]), int(high[:digits]) + 1):
        bucket = (country, len(low), str(head).zfill(digits))
        tier.ranges.setdefault(bucket, []).append((low, high, entry))


def _offer(
    best: dict[int, tuple[_Entry, float | None]], entry: _Entry, distance: float | None
) -> None:
    """Keep the candidate's most specific rule; on a tie, the one listed first."""
    partner_id = entry[0].id
    current = best.get(partner_id)
    if current is None:
        best[partner_id] = (entry, distance)
        return
    held = current[0]
    if entry[2] > held[2] or (entry[2] == held[2] and entry[3] < held[3]):
        best[partner_id] = (entry, distance if distance is not None else current[1])


def _entry_order(pair: tuple[_Entry, float | None]) -> tuple[int, int]:
    return -pair[0][2], pair[0][0].id


def _region_key(country: str, region: str | None) -> str | None:
    if region is None:
        return None
    key = region.strip().upper()
    if not key:
        return None
    return key if "-" in key else f"{country}-{key}"


class _Listed:
    """A level's matches, already in hand."""

    __slots__ = ("level", "_items")

    def __init__(self, items: list[_Item]) -> None:
        self.level = items[0][2]
        self._items = items

    def items(self) -> list[_Item]:
        return self._items

    def counts(self) -> list[tuple[str, int]]:
        counts: dict[str, int] = {}
        for item in self._items:
            name = item[1].level_name
            counts[name] = counts.get(name, 0) + 1
        return list(counts.items())


class _Bulk:
    """A region or country level: a shared member list, minus the more specific matches.

    Members are only turned into items (with distances) when the level is examined.
    """

    __slots__ = ("level", "_entries", "_ids", "_taken", "_lead")

    def __init__(
        self,
        level: int,
        entries: tuple[_Entry, ...],
        ids: frozenset[int],
        taken: set[int],
        lead: Trig | None,
    ) -> None:
        self.level = level
        self._entries = entries
        self._ids = ids
        self._taken = taken
        self._lead = lead

    def items(self) -> list[_Item]:
        lead, taken = self._lead, self._taken
        return [
            (
                candidate,
                rule,
                level,
                lead.distance_km(trig) if lead is not None and trig is not None else None,
            )
            for candidate, rule, level, _, trig in self._entries
            if candidate.id not in taken
        ]

    def counts(self) -> list[tuple[str, int]]:
        remaining = len(self._ids) - len(self._ids & self._taken)
        if not remaining:
            return []
        return [(self._entries[0][1].level_name, remaining)]


_Group = _Listed | _Bulk


# --------------------------------------------------------------------------------------
# Decision


def decide(lead: LeadFacts, matches: Sequence[Match], live: Mapping[int, LiveState]) -> Decision:
    """Pick the partner for a lead among its territory matches, with the explanation.

    ``live`` is only read for the candidates examined, so a lazy mapping works.
    """
    best: dict[int, Match] = {}
    for match in matches:
        held = best.get(match.candidate.id)
        if held is None or match.level > held.level:
            best[match.candidate.id] = match
    ordered = sorted(best.values(), key=lambda match: (-match.level, match.candidate.id))
    groups: list[_Group] = []
    current: list[_Item] = []
    for match in ordered:
        if current and current[-1][2] != match.level:
            groups.append(_Listed(current))
            current = []
        current.append((match.candidate, match.rule, match.level, match.distance_km))
    if current:
        groups.append(_Listed(current))
    return _decide_groups(lead, groups, live)


def route(
    index: PartnerIndex,
    lead: LeadFacts,
    live: Mapping[int, LiveState],
    *,
    parent_id: int | None = None,
) -> Decision:
    """Match and decide in one call: decide(lead, index.match(lead, parent_id=...), live)."""
    return index.route(lead, live, parent_id=parent_id)


def _decide_groups(
    lead: LeadFacts, groups: Sequence[_Group], live: Mapping[int, LiveState]
) -> Decision:
    notes = _lead_notes(lead)
    considered: list[Verdict] = []
    drop_counts: dict[str, int] = {}
    matched = 0
    for position, group in enumerate(groups):
        items = group.items()
        matched += len(items)
        kept: list[tuple[tuple[Any, ...], _Item, LiveState]] = []
        dropped: list[tuple[tuple[Any, ...], _Item, list[str]]] = []
        for item in items:
            candidate = item[0]
            state = live.get(candidate.id)
            reasons, category = _drop_reasons(lead, candidate, state)
            if reasons or state is None:
                drop_counts[category] = drop_counts.get(category, 0) + 1
                dropped.append((_distance_key(item[3], candidate.id), item, reasons))
            else:
                kept.append((_rank_key(item, state), item, state))
        if kept:
            kept.sort(key=lambda row: row[0])
            dropped.sort(key=lambda row: row[0])
            considered.extend(_ranked_verdicts(kept))
            considered.extend(_verdict(item, False, reasons, None) for _, item, reasons in dropped)
            less = _merge_counts(later.counts() for later in groups[position + 1 :])
            winner, state = kept[0][1], kept[0][2]
            return Decision(
                winner[0].id,
                Explanation(
                    summary=_winner_summary(winner, state, kept),
                    level=winner[1].level_name,
                    considered=tuple(considered),
                    notes=notes,
                    less_specific=less,
                ),
            )
        dropped.sort(key=lambda row: row[0])
        considered.extend(_verdict(item, False, reasons, None) for _, item, reasons in dropped)
    return Decision(
        None,
        Explanation(
            summary=_nobody_summary(lead, matched, drop_counts),
            level=None,
            considered=tuple(considered),
            notes=notes,
        ),
    )


def _drop_reasons(
    lead: LeadFacts, candidate: Candidate, state: LiveState | None
) -> tuple[list[str], str]:
    """The reasons a candidate cannot take the lead, and the first one's category."""
    reasons: list[str] = []
    category = ""
    if candidate.id in lead.excluded:
        reasons.append(_EXCLUDED)
        category = _EXCLUDED
    if lead.product_line and lead.product_line not in candidate.product_lines:
        reasons.append(f"not authorised for product line {lead.product_line}")
        category = category or "product"
    if state is None:
        reasons.append(_UNKNOWN)
        return reasons, category or _UNKNOWN
    if not state.active:
        reasons.append(_PAUSED)
        category = category or _PAUSED
    if state.blocked_reason:
        reasons.append(state.blocked_reason)
        category = category or "blocked"
    if state.capacity is not None and state.open_leads >= state.capacity:
        reasons.append(f"at capacity {state.open_leads}/{state.capacity}")
        category = category or "at capacity"
    return reasons, category


def _distance_key(distance: float | None, partner_id: int) -> tuple[int, float, int]:
    return (0, distance, partner_id) if distance is not None else (1, 0.0, partner_id)


def _rank_key(item: _Item, state: LiveState) -> tuple[Any, ...]:
    """Tie-break: nearest, lowest load ratio, fewest open, least recently offered, lowest id."""
    distance = item[3]
    capacity = state.capacity
    ratio = state.open_leads / capacity if capacity else 0.0
    offered = state.last_offered_at
    if offered is None:
        offered_key: tuple[int, float] = (0, 0.0)
    else:
        if offered.tzinfo is None:  # naive datetimes are read as UTC, never as local time
            offered = offered.replace(tzinfo=UTC)
        offered_key = (1, offered.timestamp())
    return (
        (0, distance) if distance is not None else (1, 0.0),
        ratio,
        state.open_leads,
        offered_key,
        item[0].id,
    )


_CRITERIA = ("distance", "load", "open", "offered", "id")


def _decider(first: tuple[Any, ...], second: tuple[Any, ...]) -> str:
    """Which tie-break criterion puts ``first`` ahead of ``second``."""
    for criterion, a, b in zip(_CRITERIA, first, second, strict=True):
        if a != b:
            return criterion
    return "id"


def _km(distance: float) -> str:
    return f"{distance:.0f} km" if distance >= 10 else f"{distance:.1f} km"


def _load(state: LiveState) -> str:
    if state.capacity is None:
        return f"{state.open_leads} open, no limit"
    return f"{state.open_leads}/{state.capacity} open"


def _when(state: LiveState) -> str:
    offered = state.last_offered_at
    return "never" if offered is None else offered.isoformat(sep=" ", timespec="minutes")


def _versus(criterion: str, loser: tuple[_Item, LiveState], winner: tuple[_Item, LiveState]) -> str:
    """Why ``loser`` ranks below ``winner``."""
    (lost, lost_state), (won, won_state) = loser, winner
    if criterion == "distance":
        if lost[3] is None and won[3] is not None:
            return f"distance unknown (winner {_km(won[3])} away)"
        if lost[3] is not None and won[3] is not None:
            return f"farther ({_km(lost[3])} vs {_km(won[3])})"
    if criterion == "load":
        return f"busier ({_load(lost_state)} vs {_load(won_state)})"
    if criterion == "open":
        return f"more open leads ({lost_state.open_leads} vs {won_state.open_leads})"
    if criterion == "offered":
        return f"offered a lead more recently ({_when(lost_state)} vs {_when(won_state)})"
    return "higher partner id, tied on everything else"


def _ranked_verdicts(kept: list[tuple[tuple[Any, ...], _Item, LiveState]]) -> list[Verdict]:
    verdicts: list[Verdict] = []
    winner_key, winner, winner_state = kept[0]
    for rank, (key, item, state) in enumerate(kept, start=1):
        if rank == 1:
            reasons = [f"offered: {item[1].describe()}", _load(state)]
            if item[3] is not None:
                reasons.append(f"{_km(item[3])} away")
        else:
            criterion = _decider(winner_key, key)
            versus = _versus(criterion, (item, state), (winner, winner_state))
            reasons = [f"ranked {rank} of {len(kept)}: {versus}"]
        verdicts.append(_verdict(item, True, reasons, rank))
    return verdicts


def _verdict(item: _Item, kept: bool, reasons: list[str], rank: int | None) -> Verdict:
    candidate, rule, _, distance = item
    if candidate.location is None and any(r.kind == "radius" for r in candidate.territories):
        reasons = [*reasons, _NO_RADIUS]
    return Verdict(
        partner_id=candidate.id,
        code=candidate.code,
        kept=kept,
        reasons=tuple(reasons),
        rule=str(rule),
        level=rule.level_name,
        distance_km=None if distance is None else round(distance, 3),
        rank=rank,
    )


def _merge_counts(parts: Iterable[list[tuple[str, int]]]) -> tuple[tuple[str, int], ...]:
    merged: dict[str, int] = {}
    for part in parts:
        for name, count in part:
            merged[name] = merged.get(name, 0) + count
    return tuple(merged.items())


def _winner_summary(
    winner: _Item, state: LiveState, kept: list[tuple[tuple[Any, ...], _Item, LiveState]]
) -> str:
    candidate, rule, _, distance = winner
    parts = [rule.describe()]
    if len(kept) == 1:
        parts.append("the only eligible partner at this level")
        if distance is not None:
            parts.append(f"{_km(distance)} away")
    else:
        criterion = _decider(kept[0][0], kept[1][0])
        of = f"of {len(kept)}"
        if criterion == "distance" and distance is not None:
            parts.append(f"nearest {of} ({_km(distance)})")
        else:
            parts.append(
                {
                    "load": f"least loaded {of}",
                    "open": f"fewest open leads {of}",
                    "offered": f"least recently offered {of}",
                }.get(criterion, f"lowest partner id {of}, tied otherwise")
            )
            if distance is not None:
                parts.append(f"{_km(distance)} away")
    parts.append(_load(state))
    return f"Offered to {candidate.code} {candidate.name}: {', '.join(parts)}"


def _nobody_summary(lead: LeadFacts, matched: int, drop_counts: Mapping[str, int]) -> str:
    if matched == 0:
        where = " ".join(
            part for part in (lead.country.strip().upper(), lead.postal_code or "") if part
        )
        return f"No partner fits: no territory rule covers this lead ({where or 'no address'})"
    partners = "1 partner" if matched == 1 else f"{matched} partners"
    if set(drop_counts) == {"product"}:
        return (
            f"No partner fits: {partners} matched the territory, "
            f"none sells product line {lead.product_line}"
        )
    phrases = []
    for category, count in sorted(drop_counts.items(), key=lambda pair: (-pair[1], pair[0])):
        if category == "product":
            category = f"not authorised for product line {lead.product_line}"
        phrases.append(f"{category} ({count})")
    return (
        f"No partner fits: {partners} matched the territory, none eligible: "
        + "; ".join(phrases)
    )


def _lead_notes(lead: LeadFacts) -> tuple[str, ...]:
    notes: list[str] = []
    country = lead.country.strip().upper()
    if not country:
        notes.append("the lead has no country: only radius rules can match")
    if lead.postal_code is None or not lead.postal_code.strip():
        notes.append("no postal code: postal-code rules not checked")
    elif country and normalise_postal_code(country, lead.postal_code) is None:
        notes.append(
            f"postal code {lead.postal_code!r} is not valid for {country}: "
            "postal-code rules not checked"
        )
    if lead.location is None:
        notes.append("no location for the lead: radius rules not checked, distances unknown")
    return tuple(notes)
