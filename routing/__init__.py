"""The routing engine: a pure functional core (no Flask, database, clock or network)."""

from __future__ import annotations

from routing.engine import (
    Candidate,
    Decision,
    Explanation,
    LeadFacts,
    LiveState,
    Match,
    PartnerIndex,
    Verdict,
    decide,
    route,
)
from routing.geo import (
    CentroidTable,
    GeoNamesLineError,
    Point,
    distance_km,
    longitude_scale,
    parse_geonames,
)
from routing.territory import (
    RuleError,
    TerritoryRule,
    normalise_postal_code,
    parse_rule,
    parse_rules,
    problem_for_country,
)

__all__ = [
    "Candidate",
    "CentroidTable",
    "Decision",
    "Explanation",
    "GeoNamesLineError",
    "LeadFacts",
    "LiveState",
    "Match",
    "PartnerIndex",
    "Point",
    "RuleError",
    "TerritoryRule",
    "Verdict",
    "decide",
    "distance_km",
    "longitude_scale",
    "normalise_postal_code",
    "problem_for_country",
    "parse_geonames",
    "parse_rule",
    "parse_rules",
    "route",
]
