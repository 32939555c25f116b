"""Property tests: generated partners, rules, live states and leads against a brute-force oracle.

The oracle below re-derives, rule by rule and without any index, which partners a lead's
territory matches and which of them may take it; the engine must agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from routing import (
    Candidate,
    Decision,
    Explanation,
    LeadFacts,
    LiveState,
    PartnerIndex,
    Point,
    TerritoryRule,
    decide,
    distance_km,
    normalise_postal_code,
    parse_rule,
    route,
)

POOL = ("50400", "50401", "50402", "50410", "50499", "50500", "51000", "00501")
LINES = ("A", "B", "C")
TIMES = (
    datetime(2026, 1, 1, tzinfo=UTC),
    datetime(2026, 3, 1, tzinfo=UTC),
    datetime(2026, 3, 1, 8, 0),  # naive: read as UTC
)

points = st.builds(
    Point, st.floats(min_value=41, max_value=44), st.floats(min_value=-95, max_value=-91)
)


@st.composite
def rules(draw: st.DrawFn) -> TerritoryRule:
    kind = draw(st.sampled_from(("zip", "prefix", "range", "radius", "region", "country")))
    if kind == "zip":
        return parse_rule(f"zip:{draw(st.sampled_from(POOL))}")
    if kind == "prefix":
        code = draw(st.sampled_from(POOL))
        return parse_rule(f"zip:{code[: draw(st.integers(1, 5))]}*")
    if kind == "range":
        low, high = sorted(draw(st.lists(st.sampled_from(POOL), min_size=2, max_size=2)))
        return parse_rule(f"zip:{low}-{high}")
    if kind == "radius":
        return parse_rule(f"radius:{draw(st.integers(10, 300))}")
    if kind == "region":
        return parse_rule(f"region:{draw(st.sampled_from(('US-IA', 'US-IL')))}")
    return parse_rule(f"country:{draw(st.sampled_from(('US', 'CA')))}")


@st.composite
def worlds(draw: st.DrawFn) -> tuple[list[Candidate], dict[int, LiveState], LeadFacts, int | None]:
    ids = draw(st.lists(st.integers(1, 30), min_size=1, max_size=9, unique=True))
    candidates = []
    for partner_id in ids:
        parent = draw(st.sampled_from((None, None, 1, 2)))
        candidates.append(
            Candidate(
                id=partner_id,
                code=f"P-{partner_id}",
                name=f"Partner {partner_id}",
                kind=draw(st.sampled_from(("dealer", "distributor"))),
                parent_id=None if parent == partner_id else parent,
                country=draw(st.sampled_from(("US", "US", "CA"))),
                location=draw(st.none() | points),
                product_lines=frozenset(draw(st.lists(st.sampled_from(LINES), max_size=3))),
                territories=tuple(draw(st.lists(rules(), max_size=4))),
            )
        )
    live: dict[int, LiveState] = {}
    for partner_id in ids:
        if draw(st.integers(0, 9)) == 0:
            continue  # unknown to the live state
        capacity = draw(st.none() | st.integers(0, 3))
        live[partner_id] = LiveState(
            active=draw(st.integers(0, 5)) > 0,
            capacity=capacity,
            open_leads=draw(st.integers(0, 4)),
            last_offered_at=draw(st.none() | st.sampled_from(TIMES)),
            blocked_reason=draw(st.sampled_from((None, None, None, "compliance gate"))),
        )
    lead = LeadFacts(
        country=draw(st.sampled_from(("US", "US", "CA", ""))),
        postal_code=draw(st.sampled_from((*POOL, None, "5040", "50401-1234"))),
        region=draw(st.sampled_from(("US-IA", "US-IL", "IA", None))),
        location=draw(st.none() | points),
        product_line=draw(st.sampled_from((*LINES, None))),
        rank="hot",
        excluded=frozenset(draw(st.lists(st.sampled_from(ids), max_size=2))),
    )
    return candidates, live, lead, draw(st.sampled_from((None, None, 1, 2)))


def rule_matches(rule: TerritoryRule, partner: Candidate, lead: LeadFacts) -> bool:
    """Does one rule of ``partner`` cover ``lead``? Straight from the rule's meaning."""
    country = lead.country.upper()
    code = normalise_postal_code(country, lead.postal_code)
    if rule.kind in ("zip", "zip_prefix", "zip_range"):
        if code is None or partner.country != country:
            return False
        if rule.kind == "zip":
            return code == rule.value
        if rule.kind == "zip_prefix":
            return code.startswith(rule.value)
        low, high = rule.value.split("-")
        return code.isdigit() and len(code) == len(low) and int(low) <= int(code) <= int(high)
    if rule.kind == "radius":
        if partner.location is None or lead.location is None:
            return False
        return distance_km(partner.location, lead.location) <= float(rule.value)
    if rule.kind == "region":
        region = lead.region
        if region is not None and "-" not in region:
            region = f"{country}-{region}"
        return region == rule.value
    return rule.value == country


def oracle_levels(
    candidates: list[Candidate], lead: LeadFacts, parent: int | None
) -> dict[int, int]:
    """Partner id -> level of its most specific matching rule, for the partners in the tier."""
    levels = {}
    for partner in candidates:
        if partner.parent_id != parent:
            continue
        hits = [rule.level for rule in partner.territories if rule_matches(rule, partner, lead)]
        if hits:
            levels[partner.id] = max(hits)
    return levels


def eligible(partner: Candidate, lead: LeadFacts, live: dict[int, LiveState]) -> bool:
    state = live.get(partner.id)
    return (
        partner.id not in lead.excluded
        and (not lead.product_line or lead.product_line in partner.product_lines)
        and state is not None
        and state.active
        and not state.blocked_reason
        and (state.capacity is None or state.open_leads < state.capacity)
    )


def tie_key(partner: Candidate, lead: LeadFacts, state: LiveState) -> tuple[Any, ...]:
    """The documented tie-break, spelled out independently of the engine."""
    if partner.location is not None and lead.location is not None:
        distance: tuple[int, float] = (0, distance_km(partner.location, lead.location))
    else:
        distance = (1, 0.0)
    ratio = state.open_leads / state.capacity if state.capacity else 0.0
    offered = state.last_offered_at
    if offered is not None and offered.tzinfo is None:
        offered = offered.replace(tzinfo=UTC)
    when = (0, 0.0) if offered is None else (1, offered.timestamp())
    return distance, ratio, state.open_leads, when, partner.id


@settings(max_examples=400, deadline=None)
@given(worlds())
def test_routing_agrees_with_the_oracle(
    world: tuple[list[Candidate], dict[int, LiveState], LeadFacts, int | None],
) -> None:
    candidates, live, lead, parent = world
    index = PartnerIndex.build(candidates)
    by_id = {c.id: c for c in candidates}
    levels = oracle_levels(candidates, lead, parent)

    matches = index.match(lead, parent_id=parent)
    assert {m.candidate.id: m.level for m in matches} == levels

    decision = route(index, lead, live, parent_id=parent)
    assert decision == decide(lead, matches, live)

    fit = [pid for pid in levels if eligible(by_id[pid], lead, live)]
    if not fit:
        assert decision.partner_id is None
        assert sorted(v.partner_id for v in decision.explanation.considered) == sorted(levels)
        assert not any(v.kept for v in decision.explanation.considered)
        return
    winner = decision.partner_id
    assert winner is not None
    assert eligible(by_id[winner], lead, live)
    assert levels[winner] == max(levels[pid] for pid in fit)
    rivals = [pid for pid in fit if levels[pid] == levels[winner]]
    assert winner == min(rivals, key=lambda pid: tie_key(by_id[pid], lead, live[pid]))

    explanation = decision.explanation
    assert f"Offered to P-{winner} Partner {winner}:" in explanation.summary
    assert [v.partner_id for v in explanation.considered if v.kept] == sorted(
        rivals, key=lambda pid: tie_key(by_id[pid], lead, live[pid])
    )
    examined = {v.partner_id for v in explanation.considered}
    assert examined == {pid for pid in levels if levels[pid] >= levels[winner]}
    assert len(explanation.considered) + sum(n for _, n in explanation.less_specific) == len(
        levels
    )
    for verdict in explanation.considered:
        assert verdict.kept == eligible(by_id[verdict.partner_id], lead, live)
        assert verdict.reasons


@settings(max_examples=150, deadline=None)
@given(worlds(), st.randoms(use_true_random=False))
def test_decisions_do_not_depend_on_input_order(
    world: tuple[list[Candidate], dict[int, LiveState], LeadFacts, int | None],
    shuffler: Any,
) -> None:
    candidates, live, lead, parent = world
    first = route(PartnerIndex.build(candidates), lead, live, parent_id=parent)
    shuffled = list(candidates)
    shuffler.shuffle(shuffled)
    index = PartnerIndex.build(shuffled)
    second = route(index, lead, dict(reversed(list(live.items()))), parent_id=parent)
    assert second == first
    matches = index.match(lead, parent_id=parent)
    shuffler.shuffle(matches)
    assert decide(lead, matches, live) == first
    assert route(index, lead, live, parent_id=parent) == first  # same input, same output


@settings(max_examples=150, deadline=None)
@given(worlds())
def test_explanations_survive_json(
    world: tuple[list[Candidate], dict[int, LiveState], LeadFacts, int | None],
) -> None:
    candidates, live, lead, parent = world
    decision: Decision = route(PartnerIndex.build(candidates), lead, live, parent_id=parent)
    stored = json.loads(json.dumps(decision.explanation.to_dict()))
    assert Explanation.from_dict(stored) == decision.explanation
