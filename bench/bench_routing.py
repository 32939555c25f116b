"""Benchmark the routing engine on realistic synthetic data built from real US ZIP centroids.

    python bench/bench_routing.py [--partners 10000] [--rules 50000] [--leads 50000] [--seed 7]

Partners sit at random real ZIPs; rules are drawn with the mix 40 % exact ZIPs near the
partner, 20 % prefixes, 15 % ranges, 15 % radius (25-150 km), 7 % region, 3 % country.
Prints the index build time, leads/s for route() (match + decide + explanation), the
floor (a bare dict lookup of each lead's postal code), their ratio and per-lead latency.
"""

from __future__ import annotations

import argparse
import gc
import platform
import random
import statistics
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import zipcodes  # noqa: E402

from routing import (  # noqa: E402
    Candidate,
    CentroidTable,
    LeadFacts,
    LiveState,
    PartnerIndex,
    Point,
    TerritoryRule,
    decide,
    parse_rule,
    route,
)

PRODUCT_LINES = ("TRC", "SPR", "HRV")
RULE_MIX = (
    ("zip", 40),
    ("zip_prefix", 20),
    ("zip_range", 15),
    ("radius", 15),
    ("region", 7),
    ("country", 3),
)
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def load_zips() -> list[tuple[str, Point, str]]:
    """Real US ZIPs with a centroid: (code, centroid, ISO 3166-2 region)."""
    states = {str(r["zip_code"]): str(r["state"]) for r in zipcodes.list_all()}
    return [
        (code, point, f"US-{states[code]}")
        for country, code, point in CentroidTable.us().items()
        if country == "US"
    ]


def make_rule(
    rng: random.Random,
    kind: str,
    home: tuple[str, Point, str],
    by_prefix: dict[str, list[str]],
) -> TerritoryRule:
    """One rule of the given kind around the partner's home ZIP, in the CSV spelling."""
    code, _, region = home
    if kind == "zip":
        return parse_rule(f"zip:{rng.choice(by_prefix[code[:3]])}")
    if kind == "zip_prefix":
        return parse_rule(f"zip:{code[: rng.choice((3, 3, 4))]}*")
    if kind == "zip_range":
        low = max(0, int(code) - rng.randint(0, 60))
        high = min(99999, low + rng.randint(10, 300))
        return parse_rule(f"zip:{low:05d}-{high:05d}")
    if kind == "radius":
        return parse_rule(f"radius:{rng.randint(25, 150)}")
    if kind == "region":
        return parse_rule(f"region:{region}")
    return parse_rule("country:US")


def make_partners(
    rng: random.Random, zips: list[tuple[str, Point, str]], partners: int, rules: int
) -> list[Candidate]:
    """Partners: 10 % distributors, half of the dealers under one of them."""
    by_prefix: dict[str, list[str]] = {}
    for code, _, _ in zips:
        by_prefix.setdefault(code[:3], []).append(code)
    kinds = [kind for kind, _ in RULE_MIX]
    weights = [weight for _, weight in RULE_MIX]
    homes = [rng.choice(zips) for _ in range(partners)]
    rule_lists: list[list[TerritoryRule]] = [[] for _ in range(partners)]
    for number, kind in enumerate(rng.choices(kinds, weights, k=rules)):
        owner = number % partners if number < partners else rng.randrange(partners)
        rule_lists[owner].append(make_rule(rng, kind, homes[owner], by_prefix))
    distributors = max(1, partners // 10)
    candidates = []
    for index in range(partners):
        partner_id = index + 1
        is_distributor = index < distributors
        parent = None
        if not is_distributor and rng.random() < 0.5:
            parent = rng.randint(1, distributors)
        lines = frozenset(line for line in PRODUCT_LINES if rng.random() < 0.6) or frozenset(
            {rng.choice(PRODUCT_LINES)}
        )
        code, point, _ = homes[index]
        candidates.append(
            Candidate(
                id=partner_id,
                code=f"{'T' if is_distributor else 'D'}-{partner_id}",
                name=f"Partner {partner_id}",
                kind="distributor" if is_distributor else "dealer",
                parent_id=parent,
                country="US",
                location=point,
                product_lines=lines,
                territories=tuple(rule_lists[index]),
            )
        )
    return candidates


def make_live(rng: random.Random, candidates: list[Candidate]) -> dict[int, LiveState]:
    """Live state for every partner: some paused, blocked, at capacity or unlimited."""
    live = {}
    for candidate in candidates:
        capacity = None if rng.random() < 0.3 else rng.randint(5, 50)
        top = capacity if capacity is not None else 40
        live[candidate.id] = LiveState(
            active=rng.random() < 0.95,
            capacity=capacity,
            open_leads=rng.randint(0, top),
            last_offered_at=None
            if rng.random() < 0.2
            else NOW - timedelta(minutes=rng.randint(1, 60 * 24 * 60)),
            blocked_reason="compliance gate: 7 overdue outcomes (limit 5)"
            if rng.random() < 0.03
            else None,
        )
    return live


def make_leads(
    rng: random.Random, zips: list[tuple[str, Point, str]], leads: int, partners: int
) -> list[LeadFacts]:
    """Leads at random real ZIPs; 5 % once declined by some partner; some ZIP+4."""
    facts = []
    for _ in range(leads):
        code, point, region = rng.choice(zips)
        postal = f"{code}-{rng.randint(0, 9999):04d}" if rng.random() < 0.1 else code
        excluded = (
            frozenset({rng.randint(1, partners)}) if rng.random() < 0.05 else frozenset()
        )
        facts.append(
            LeadFacts(
                country="US",
                postal_code=postal,
                region=region,
                location=point,
                product_line=rng.choice(PRODUCT_LINES),
                rank=rng.choice(("hot", "warm")),
                excluded=excluded,
            )
        )
    return facts


def percentile(sorted_values: list[int], fraction: float) -> float:
    """Nearest-rank percentile of already sorted values."""
    position = min(len(sorted_values) - 1, max(0, round(fraction * len(sorted_values)) - 1))
    return float(sorted_values[position])


def main() -> None:
    """Build the data, time the engine, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50_000)
    parser.add_argument("--leads", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs over the leads")
    args = parser.parse_args()

    rng = random.Random(args.seed)
    started = time.perf_counter()
    zips = load_zips()
    candidates = make_partners(rng, zips, args.partners, args.rules)
    live = make_live(rng, candidates)
    leads = make_leads(rng, zips, args.leads, args.partners)
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{len(zips):,} real ZIP centroids, data built in {time.perf_counter() - started:.1f} s")
    kinds = Counter(rule.kind for c in candidates for rule in c.territories)
    print(f"partners {len(candidates):,}, rules {sum(kinds.values()):,} "
          f"({', '.join(f'{k} {v:,}' for k, v in kinds.items())}), leads {len(leads):,}")

    gc.collect()
    started = time.perf_counter()
    index = PartnerIndex.build(candidates)
    build_s = time.perf_counter() - started
    print(f"index build: {build_s:.2f} s")

    # The index lives as long as the process: keep the collector from rescanning it (the
    # portal's worker should do the same after building its index).
    gc.collect()
    gc.freeze()

    # Warm-up, then the timed runs: one route() per lead, explanation included.
    for lead in leads[:1000]:
        route(index, lead, live)
    clock = time.perf_counter_ns
    runs: list[float] = []
    cpu_runs: list[float] = []
    for _ in range(args.repeat):
        latencies: list[int] = []
        winners: list[int | None] = []
        levels: Counter[str] = Counter()
        verdicts = 0
        started = time.perf_counter()
        cpu_started = time.process_time()
        for lead in leads:
            before = clock()
            decision = route(index, lead, live)
            latencies.append(clock() - before)
            winners.append(decision.partner_id)
            levels[decision.explanation.level or "unassigned"] += 1
            verdicts += len(decision.explanation.considered)
        runs.append(len(leads) / (time.perf_counter() - started))
        cpu_runs.append(len(leads) / (time.process_time() - cpu_started))
    route_rate = statistics.median(runs)

    # The floor: a bare dictionary lookup of each lead's postal code (best of 5 rounds).
    table = {code: point for code, point, _ in zips}
    codes = [lead.postal_code or "" for lead in leads]
    floor_rate = 0.0
    for _ in range(5):
        started = time.perf_counter()
        for code in codes:
            table.get(code)
        floor_rate = max(floor_rate, len(codes) / (time.perf_counter() - started))

    latencies.sort()
    assigned = sum(1 for winner in winners if winner is not None)
    print(f"route(): {route_rate:,.0f} leads/s (median of {len(runs)} runs over "
          f"{len(leads):,} leads: {', '.join(f'{rate:,.0f}' for rate in runs)}); "
          f"per CPU-second: {statistics.median(cpu_runs):,.0f}")
    print(f"latency per lead (last run): p50 {percentile(latencies, 0.50) / 1000:.0f} us, "
          f"p99 {percentile(latencies, 0.99) / 1000:.0f} us, "
          f"max {latencies[-1] / 1000:.0f} us")
    print(f"floor (dict lookup of the postal code): {floor_rate:,.0f} lookups/s; "
          f"route() takes {floor_rate / route_rate:,.0f}x as long per lead")
    print(f"assigned {assigned:,} / {len(leads):,}; winning level: "
          + ", ".join(f"{name} {count:,}" for name, count in levels.most_common()))
    print(f"verdicts per explanation: mean {verdicts / len(leads):.1f}")

    # For comparison: every match built (match()), then decide() - the unstaged path.
    sample = leads[: min(len(leads), 5000)]
    started = time.perf_counter()
    matched = [index.match(lead) for lead in sample]
    match_s = time.perf_counter() - started
    started = time.perf_counter()
    for lead, matches in zip(sample, matched, strict=True):
        decide(lead, matches, live)
    decide_s = time.perf_counter() - started
    print(f"match() alone, all matches built: {len(sample) / match_s:,.0f} leads/s, "
          f"mean {statistics.mean(len(m) for m in matched):.0f} matches per lead; "
          f"decide() on them: {len(sample) / decide_s:,.0f} leads/s")

    # Second tier: leads won by a distributor, passed on at once among its own dealers.
    forwarded = [
        (lead, winner)
        for lead, winner in zip(leads, winners, strict=True)
        if winner is not None and winner <= max(1, args.partners // 10)
    ]
    if forwarded:
        started = time.perf_counter()
        placed = sum(
            1
            for lead, parent in forwarded
            if route(index, lead, live, parent_id=parent).partner_id is not None
        )
        tier_s = time.perf_counter() - started
        print(f"second tier (auto-forward): {len(forwarded) / tier_s:,.0f} leads/s over "
              f"{len(forwarded):,} distributor wins, {placed:,} placed with a dealer")


if __name__ == "__main__":
    main()
