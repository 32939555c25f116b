"""The engine: matching over the index and the decision with its explanation."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta

import pytest
from routing_helpers import AMES, DES_MOINES, MASON_CITY, all_live, candidate, lead, live

from routing import (
    Decision,
    Explanation,
    LiveState,
    PartnerIndex,
    Point,
    decide,
    distance_km,
    parse_rules,
    route,
)
from routing.geo import EARTH_RADIUS_KM

LADDER = (
    "zip:50401",
    "zip:50400-50409",
    "zip:504*",
    "radius:80",
    "region:US-IA",
    "country:US",
)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def by_id(decision: Decision) -> dict[int, tuple[bool, tuple[str, ...]]]:
    return {v.partner_id: (v.kept, v.reasons) for v in decision.explanation.considered}


def test_single_match_is_offered_with_a_readable_summary() -> None:
    acme = candidate(1042, code="D-1042", name="Acme Tractors")
    decision = route(PartnerIndex.build([acme]), lead(), {1042: live(open_leads=3)})
    assert decision.partner_id == 1042
    summary = decision.explanation.summary
    assert summary.startswith("Offered to D-1042 Acme Tractors: exact postal code 50401")
    assert "3/10 open" in summary
    assert decision.explanation.level == "exact postal code"
    [verdict] = decision.explanation.considered
    assert (verdict.partner_id, verdict.kept, verdict.rank) == (1042, True, 1)
    assert verdict.rule == "zip:50401"
    assert verdict.distance_km == 0.0


def test_the_most_specific_eligible_level_wins_all_the_way_down_the_ladder() -> None:
    partners = [candidate(n, rule) for n, rule in enumerate(LADDER, start=1)]
    index = PartnerIndex.build(partners)
    state = all_live(*partners)
    expected_levels = [
        "exact postal code",
        "postal range",
        "postal prefix",
        "radius",
        "region",
        "country",
    ]
    for winner, level in enumerate(expected_levels, start=1):
        decision = route(index, lead(), state)
        assert decision.partner_id == winner
        assert decision.explanation.level == level
        # every more specific partner is listed as dropped, with the reason
        verdicts = by_id(decision)
        for loser in range(1, winner):
            assert verdicts[loser] == (False, ("paused",))
        # less specific ones are counted, not examined
        assert sum(count for _, count in decision.explanation.less_specific) == 6 - winner
        state[winner] = live(active=False)
    assert route(index, lead(), state).partner_id is None


def test_narrower_postal_sets_beat_wider_ones() -> None:
    partners = [
        candidate(1, "zip:5*"),
        candidate(2, "zip:50*"),
        candidate(3, "zip:50400-50449"),
        candidate(4, "zip:504*"),
    ]
    decision = route(PartnerIndex.build(partners), lead(), all_live(*partners))
    assert decision.partner_id == 3
    assert dict(decision.explanation.less_specific) == {"postal prefix": 3}


@pytest.mark.parametrize(
    ("facts", "state", "reason"),
    [
        (lead(excluded=frozenset({1})), live(), "declined or let this lead expire before"),
        (lead(product_line="HRV"), live(), "not authorised for product line HRV"),
        (lead(), live(active=False), "paused"),
        (lead(), live(blocked_reason="paused until 2026-12-01"), "paused until 2026-12-01"),
        (
            lead(),
            live(blocked_reason="compliance gate: 7 overdue outcomes (limit 5)"),
            "compliance gate: 7 overdue outcomes (limit 5)",
        ),
        (lead(), live(capacity=10, open_leads=10), "at capacity 10/10"),
        (lead(), live(capacity=0), "at capacity 0/0"),
        (lead(), None, "unknown to the live state"),
    ],
)
def test_each_drop_reason(facts: object, state: LiveState | None, reason: str) -> None:
    index = PartnerIndex.build([candidate(1), candidate(2, "zip:504*")])
    states = {2: live(active=False)}
    if state is not None:
        states[1] = state
    assert isinstance(facts, type(lead()))
    decision = route(index, facts, states)
    assert decision.partner_id is None
    assert by_id(decision)[1] == (False, (reason,))
    assert decision.explanation.summary.startswith("No partner fits: 2 partners matched")


def test_all_drop_reasons_are_listed_together() -> None:
    index = PartnerIndex.build([candidate(1)])
    state = live(active=False, capacity=2, open_leads=2, blocked_reason="gate")
    decision = route(index, lead(product_line="HRV", excluded=frozenset({1})), {1: state})
    assert by_id(decision)[1] == (
        False,
        (
            "declined or let this lead expire before",
            "not authorised for product line HRV",
            "paused",
            "gate",
            "at capacity 2/2",
        ),
    )


def test_nobody_sells_the_product_line() -> None:
    partners = [candidate(n, product_lines=frozenset({"TRC"})) for n in range(1, 5)]
    decision = route(PartnerIndex.build(partners), lead(product_line="SPR"), all_live(*partners))
    assert decision.partner_id is None
    assert decision.explanation.summary == (
        "No partner fits: 4 partners matched the territory, none sells product line SPR"
    )
    assert len(decision.explanation.considered) == 4


def test_a_lead_without_product_line_drops_nobody_for_it() -> None:
    acme = candidate(1, product_lines=frozenset())
    decision = route(PartnerIndex.build([acme]), lead(product_line=None), all_live(acme))
    assert decision.partner_id == 1


def test_tie_break_nearest_first_unknown_distance_last() -> None:
    far = candidate(1, "region:US-IA", location=DES_MOINES)
    near = candidate(2, "region:US-IA", location=AMES)
    nowhere = candidate(3, "region:US-IA", location=None)
    partners = [far, near, nowhere]
    decision = route(PartnerIndex.build(partners), lead(), all_live(*partners))
    assert decision.partner_id == 2
    assert [v.partner_id for v in decision.explanation.considered] == [2, 1, 3]
    assert [v.rank for v in decision.explanation.considered] == [1, 2, 3]
    assert "nearest of 3 (130 km)" in decision.explanation.summary
    assert by_id(decision)[1][1] == ("ranked 2 of 3: farther (178 km vs 130 km)",)
    assert by_id(decision)[3][1] == ("ranked 3 of 3: distance unknown (winner 130 km away)",)


def test_tie_break_load_ratio_then_open_leads_then_last_offer_then_id() -> None:
    partners = [candidate(n) for n in range(1, 7)]
    index = PartnerIndex.build(partners)
    earlier, later = NOW - timedelta(days=3), NOW - timedelta(hours=1)
    state = {
        1: live(capacity=10, open_leads=5),  # ratio 0.5
        2: live(capacity=4, open_leads=1),  # ratio 0.25
        3: live(capacity=None, open_leads=3),  # unlimited: ratio 0, 3 open
        4: live(capacity=None, open_leads=2, last_offered_at=later),  # ratio 0, 2 open
        5: live(capacity=20, open_leads=2, last_offered_at=earlier),  # ratio 0.1
        6: live(capacity=None, open_leads=2, last_offered_at=earlier),  # ratio 0, 2 open
    }
    decision = route(index, lead(), state)
    assert [v.partner_id for v in decision.explanation.considered] == [6, 4, 3, 5, 2, 1]
    assert "least recently offered of 6" in decision.explanation.summary
    reasons = by_id(decision)
    assert "offered a lead more recently" in reasons[4][1][0]
    assert reasons[3][1] == ("ranked 3 of 6: more open leads (3 vs 2)",)
    assert reasons[5][1][0].startswith("ranked 4 of 6: busier (2/20 open vs 2 open, no limit)")
    # never offered beats any earlier offer; then the lowest id decides
    state[7] = live(capacity=None, open_leads=2)
    state[8] = live(capacity=None, open_leads=2)
    index = PartnerIndex.build([*partners, candidate(8), candidate(7)])
    decision = route(index, lead(), state)
    assert decision.partner_id == 7
    assert by_id(decision)[8][1] == ("ranked 2 of 8: higher partner id, tied on everything else",)
    assert "lowest partner id of 8" in decision.explanation.summary


def test_naive_and_aware_last_offer_times_compare_without_error() -> None:
    partners = [candidate(1), candidate(2)]
    state = {
        1: live(last_offered_at=datetime(2026, 5, 1, 12, 0)),  # naive: read as UTC
        2: live(last_offered_at=datetime(2026, 5, 1, 11, 0, tzinfo=UTC)),
    }
    assert route(PartnerIndex.build(partners), lead(), state).partner_id == 2


def test_two_tier_parent_filtering() -> None:
    distributor = candidate(1, "region:US-IA", kind="distributor")
    own_dealer = candidate(2, "zip:50401", parent_id=1)
    other_dealer = candidate(3, "zip:50401", parent_id=9)
    independent = candidate(4, "country:US")
    partners = [distributor, own_dealer, other_dealer, independent]
    index = PartnerIndex.build(partners)
    state = all_live(*partners)
    top = index.match(lead())
    assert [m.candidate.id for m in top] == [1, 4]
    assert route(index, lead(), state).partner_id == 1
    assert [m.candidate.id for m in index.match(lead(), parent_id=1)] == [2]
    assert route(index, lead(), state, parent_id=1).partner_id == 2
    assert route(index, lead(), state, parent_id=9).partner_id == 3
    assert index.match(lead(), parent_id=4) == []
    assert index.candidate(2) == own_dealer
    assert index.candidate(99) is None


def test_explanation_round_trips_through_json() -> None:
    partners = [candidate(1, location=None), candidate(2, "zip:504*"), candidate(3, "country:US")]
    state = {1: live(), 2: live(blocked_reason="paused until 2026-12-01")}
    decision = route(PartnerIndex.build(partners), lead(postal_code=None), state)
    assert decision.explanation.considered  # something to round-trip
    stored = json.loads(json.dumps(decision.explanation.to_dict()))
    assert Explanation.from_dict(stored) == decision.explanation
    partners[1] = candidate(2, "zip:504*", location=None)
    decision = route(PartnerIndex.build(partners), lead(), {1: live(), 2: live(active=False)})
    stored = json.loads(json.dumps(decision.explanation.to_dict()))
    assert Explanation.from_dict(stored) == decision.explanation
    assert stored["less_specific"] == [
        {"level": "postal prefix", "count": 1},
        {"level": "country", "count": 1},
    ]
    assert "radius rule ignored" not in json.dumps(stored)  # partner 1 has no radius rule


def test_radius_rule_without_partner_location_never_matches_and_is_reported() -> None:
    blind = candidate(1, "radius:500", location=None)
    mixed = candidate(2, "region:US-IA;radius:500", location=None)
    index = PartnerIndex.build([blind, mixed])
    assert index.problems == (
        "D-1 (id 1): radius:500 ignored: partner has no location",
        "D-2 (id 2): radius:500 ignored: partner has no location",
    )
    decision = route(index, lead(), all_live(blind, mixed))
    assert decision.partner_id == 2
    assert decision.explanation.level == "region"
    assert "radius rule ignored: partner has no location" in by_id(decision)[2][1]


def test_radius_needs_the_lead_location_too() -> None:
    ring = candidate(1, "radius:80", location=AMES)
    index = PartnerIndex.build([ring])
    assert route(index, lead(location=Point(42.2, -93.6)), all_live(ring)).partner_id == 1
    decision = route(index, lead(location=None), all_live(ring))
    assert decision.partner_id is None
    assert "no location for the lead: radius rules not checked" in decision.explanation.notes[0]
    assert route(index, lead(location=MASON_CITY), all_live(ring)).partner_id is None  # 130 km away


def test_lead_without_postal_code_still_matches_region_and_says_why() -> None:
    partners = [candidate(1, "zip:50401"), candidate(2, "region:US-IA")]
    decision = route(PartnerIndex.build(partners), lead(postal_code=None), all_live(*partners))
    assert decision.partner_id == 2
    assert "no postal code: postal-code rules not checked" in decision.explanation.notes


def test_invalid_us_postal_code_is_explained() -> None:
    decision = route(PartnerIndex.build([candidate(1)]), lead(postal_code="5040"), {})
    assert decision.partner_id is None
    assert decision.explanation.notes[0].startswith("postal code '5040' is not valid for US")


def test_zip_plus_four_lead_matches_the_five_digit_rule() -> None:
    acme = candidate(1)
    decision = route(PartnerIndex.build([acme]), lead(postal_code="50401-1234"), all_live(acme))
    assert decision.partner_id == 1


def test_unknown_or_missing_country_is_explained_never_a_crash() -> None:
    partners = [candidate(1, "zip:50401;country:US"), candidate(2, "radius:50", location=AMES)]
    index = PartnerIndex.build(partners)
    decision = route(index, lead(country="ZZ", region=None, location=None), all_live(*partners))
    assert decision.partner_id is None
    assert decision.explanation.summary == (
        "No partner fits: no territory rule covers this lead (ZZ 50401)"
    )
    decision = route(index, lead(country="", region=None, location=AMES), all_live(*partners))
    assert decision.partner_id == 2
    assert "the lead has no country: only radius rules can match" in decision.explanation.notes


def test_postal_rules_apply_within_the_partner_country() -> None:
    us = candidate(1, "zip:50401")
    de = candidate(2, "zip:50401", country="DE", location=Point(50.94, 6.96))
    index = PartnerIndex.build([us, de])
    assert [m.candidate.id for m in index.match(lead(region=None))] == [1]
    cologne = lead(country="DE", region=None, location=Point(50.94, 6.96))
    assert [m.candidate.id for m in index.match(cologne)] == [2]


def test_region_given_without_country_prefix() -> None:
    acme = candidate(1, "region:US-IA")
    assert route(PartnerIndex.build([acme]), lead(region="ia"), all_live(acme)).partner_id == 1


@pytest.mark.parametrize(
    ("rule", "code", "matches"),
    [
        ("zip:00000-99999", "00501", True),
        ("zip:00000-99999", "99950", True),
        ("zip:50000-59999", "49999", False),
        ("zip:50000-59999", "50000", True),
        ("zip:50000-59999", "59999", True),
        ("zip:50000-59999", "60000", False),
        ("zip:50399-50401", "50400", True),
        ("zip:50399-50401", "50402", False),
        ("zip:5040*", "50401", True),
        ("zip:5040*", "50411", False),
        ("zip:50401*", "50401", True),
    ],
)
def test_range_and_prefix_lookup(rule: str, code: str, matches: bool) -> None:
    index = PartnerIndex.build([candidate(1, rule)])
    assert bool(index.match(lead(postal_code=code, region=None))) is matches


def test_radius_grid_wraps_the_antimeridian_and_covers_the_poles() -> None:
    fiji = candidate(1, "radius:100", location=Point(-17.0, 179.9))
    pole = candidate(2, "radius:200", location=Point(89.5, 10.0))
    index = PartnerIndex.build([fiji, pole])
    east = lead(country="FJ", postal_code=None, region=None, location=Point(-17.0, -179.6))
    assert [m.candidate.id for m in index.match(east)] == [1]
    across = lead(country="NO", postal_code=None, region=None, location=Point(89.0, -170.0))
    [match] = index.match(across)
    assert match.candidate.id == 2
    assert match.distance_km is not None and match.distance_km < 200


def test_each_candidate_matches_once_by_its_most_specific_rule() -> None:
    acme = candidate(1, "country:US;region:US-IA;zip:504*;radius:80;zip:50401")
    [match] = PartnerIndex.build([acme]).match(lead())
    assert str(match.rule) == "zip:50401"
    assert match.level_name == "exact postal code"


def test_route_equals_decide_on_match_and_ignores_match_order() -> None:
    partners = [
        candidate(1, "country:US"),
        candidate(2, "region:US-IA;country:US", location=DES_MOINES),
        candidate(3, "radius:150", location=AMES),
        candidate(4, "zip:504*"),
    ]
    index = PartnerIndex.build(partners)
    state = {1: live(), 2: live(), 3: live(capacity=1, open_leads=1), 4: live(active=False)}
    matches = index.match(lead())
    assert [m.candidate.id for m in matches] == [4, 3, 2, 1]
    routed = route(index, lead(), state)
    assert routed == decide(lead(), matches, state)
    assert routed == decide(lead(), list(reversed(matches + matches)), state)
    assert routed.partner_id == 2
    assert dict(routed.explanation.less_specific) == {"country": 1}


def test_duplicate_partner_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="partner id 1 appears twice"):
        PartnerIndex.build([candidate(1), candidate(1)])


def test_candidate_and_live_state_validate_their_fields() -> None:
    with pytest.raises(ValueError, match="dealer/distributor"):
        candidate(1, kind="reseller")
    with pytest.raises(ValueError, match="own parent"):
        candidate(1, parent_id=1)
    with pytest.raises(ValueError, match="negative"):
        live(capacity=-1)
    assert parse_rules("zip:50401") == candidate(1).territories


@pytest.mark.parametrize(("offset_km", "inside"), [(-0.001, True), (0.0, True), (0.001, False)])
def test_radius_boundary_is_inclusive(offset_km: float, inside: bool) -> None:
    ring = candidate(1, "radius:80", location=AMES)
    # Along a meridian the great-circle distance is exactly the latitude difference.
    north = Point(AMES.lat + math.degrees((80 + offset_km) / EARTH_RADIUS_KM), AMES.lon)
    assert distance_km(AMES, north) == pytest.approx(80 + offset_km, abs=1e-6)
    matches = PartnerIndex.build([ring]).match(lead(location=north, region=None))
    assert bool(matches) is inside
