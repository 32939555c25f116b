"""Benchmark the channel reports at scale: 1,000,000 leads, 10,000 partners (issue 14).

    python bench/bench_reports.py [--backend sqlite|postgresql|both] [--leads 1000000]
        [--partners 10000] [--requests 20] [--warm 4] [--state IA] [--workers 2]
        [--workdir /tmp/bench-reports] [--reuse] [--no-events] [--analyze]
        [--pages auto|all|league,league-state,api,csv,csv-state,scorecard,scorecard-state,
                 overview,overview-state,won-lost,campaigns,speed,compliance]
        [--sql "CREATE INDEX …"]... [--explain] [--explain-pages league,…]
        [--profile PAGE,…] [--no-serve]

Each backend gets a fresh, migrated database (``bench_reports_<pid>_…`` on PostgreSQL,
dropped afterwards; ``--reuse`` keeps ``bench_reports_kept`` / the SQLite file in
``--workdir`` instead) seeded with Core bulk inserts, as bench/seed.py does:

* 10,000 partners at real US ZIP centroids: 10 % distributors, half of them with dealers
  (half of all dealers sit under one, in the distributor's state); each partner has its
  own habits (how often and how fast it accepts, contacts, reports an outcome, wins).
* ``--leads`` leads over the last 15 months, in the order they arrive, at real ZIPs, with
  product line, source, campaign (a third of them), rank. About 9 % never reach a partner
  (nurture, disqualified, not yet qualified); the rest are routed within a minute or so to
  a partner of their own state (5 % anywhere), weighted by a log-normal load.
* Each offer is answered as its partner would: accepted (about 70 %), declined with a
  reason or left to expire after the 24 h acceptance time (then the lead goes to the next
  partner, at most three), forwarded by a distributor with dealers to one of them (most of
  its offers), or, rarely, withdrawn by a manager after the accept and reassigned by hand.
  Of the accepted, most are contacted after a partner-dependent delay (minutes to days),
  some go on to appointment and quote, and about 60 % get an outcome: won (amount), lost
  (reason; half to a competitor, mostly one of 8 named ones, weighted by state) or no
  interest. Nothing happens after now: recent offers are pending, recent accepts open.
* The offer rows carry the facts the lifecycle writes (accepted_at, contacted_at,
  closed_at, outcome, amount, lost_reason, competitor, and the lead as offered:
  lead_created_at, product line, campaign, source, rank, region), rule offers their
  routing explanation (a few verdicts, ~0.7 KB, as the engine stores it); each lead its
  state after the last offer; ``lead_events`` every step (``--no-events`` leaves them out).

PostgreSQL is ``VACUUM ANALYZE``d after the load (autovacuum's steady state); SQLite is
left as a deployment leaves it unless ``--analyze``. ``--sql`` statements (e.g. a
candidate index) run after seeding, before anything is measured: the before/after of an
index is two runs with ``--reuse``.

Measured: in process (test client, signed in as a manager) the statements and SQL time of
each page (``--explain``: each statement's EXPLAIN (ANALYZE, BUFFERS) on PostgreSQL,
EXPLAIN QUERY PLAN on SQLite); then the real thing: gunicorn (``--workers`` sync workers,
``wsgi:app``) on a free port, a manager signed in through /auth/login, each page checked
against an independent count, warmed, and timed ``--requests`` times one after another
(no queueing: the service time), p50/p95/max, next to ``/readyz`` (one ``SELECT 1``
through the same machinery: the floor) timed the same way before and after.

Pages: the league table for the last 12 months and for one state (``--state``), its CSV,
``GET /api/v1/reports/partners`` for the same 12 months (bearer token), the scorecard of
the busiest distributor with dealers, and the channel overview (``/reports/``) when the
app has it (``--pages auto`` adds it as soon as the ``reports.overview`` endpoint exists;
naming ``overview`` in ``--pages`` insists on it).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import http.cookiejar
import json
import math
import os
import platform
import pstats
import random
import re
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from bisect import bisect_right
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402

EMAIL = "manager@bench.test"
PASSWORD = "bench-password-1"
KEPT_DATABASE = "bench_reports_kept"
DAYS = 457  #: 15 months of leads
ACCEPT_SLA = timedelta(hours=24)
COMPETITORS = ("Agrimax", "FieldPro", "Harvestline", "Deere Country", "Prairie Iron",
               "TerraWorks", "Valley Equipment", "Northstar Ag")
SOURCES = (("web", "Web form", 35), ("landing", "Campaign landing page", 25),
           ("show", "Trade show", 10), ("call", "Call centre", 10),
           ("walkin", "Dealer walk-in", 10), ("list", "Purchased list", 10))
DECLINES = (("Out of our area", 35), ("No capacity right now", 30),
            ("Not our product", 15), ("Duplicate of a lead we have", 10), ("Other", 10))
LOST = (("competitor", 50), ("price", 20), ("timing", 10), ("no_budget", 10),
        ("no_response", 5), ("other", 5))
#: the pages issue 14's target and the brief name (``--pages auto``) …
MAIN_PAGES = ("overview", "overview-state", "league", "league-state", "api", "csv",
              "csv-state", "scorecard", "scorecard-state")
#: … and the other reports, timed when named (``--pages all`` for every one)
OTHER_PAGES = ("won-lost", "campaigns", "speed", "compliance")
ALL_PAGES = MAIN_PAGES + OTHER_PAGES


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def pick(rng: random.Random, pairs: Any) -> Any:
    """One of ``(value, …, weight)`` pairs, by weight."""
    return rng.choices([p[0] for p in pairs], weights=[p[-1] for p in pairs])[0]


# --- seeding ----------------------------------------------------------------------------------


@dataclass
class Habits:
    """How one partner treats its offers."""

    accept: float  #: share of offers accepted
    decline: float  #: of the rest, share declined (the others expire)
    accept_hours: float  #: median hours to accept or decline
    contact: float  #: share of accepted leads contacted
    contact_hours: float  #: median hours from accept to first contact
    close: float  #: share of accepted leads given an outcome
    win: float  #: of the outcomes, share won
    lose: float  #: of the outcomes, share lost (the rest: no interest)


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def make_habits(rng: random.Random) -> Habits:
    return Habits(
        accept=clamp(rng.gauss(0.72, 0.12), 0.2, 0.98), decline=rng.uniform(0.4, 0.8),
        accept_hours=math.exp(rng.gauss(math.log(2.0), 0.8)),
        contact=clamp(rng.gauss(0.86, 0.1), 0.3, 0.99),
        contact_hours=math.exp(rng.gauss(math.log(16), 0.9)),
        close=clamp(rng.gauss(0.62, 0.16), 0.1, 0.97),
        win=clamp(rng.gauss(0.32, 0.1), 0.05, 0.7), lose=clamp(rng.gauss(0.36, 0.08), 0.1, 0.6))


def explanation(rng: random.Random, code: str, name: str, region: str, postal: str
                ) -> dict[str, Any]:
    """A routing explanation of the size the engine stores (~3.3 verdicts)."""
    level = rng.choice(("prefix", "prefix", "range", "exact", "radius"))
    count = min(8, 1 + int(rng.expovariate(1 / 2.3)))
    considered = []
    for rank in range(1, count + 1):
        kept = rank == 1 or rng.random() < 0.6
        distance = round(rng.uniform(2, 140), 1)
        considered.append({
            "partner_id": rng.randint(1, 10000), "code": code if rank == 1 else f"D-{rank}",
            "kept": kept,
            "reasons": ([f"ranked {rank} of {count}: farther ({distance:.0f} km vs 12 km)"]
                        if kept else [f"at capacity {rng.randint(20, 60)}/20"]),
            "rule": f"zip:{postal[:3]}*", "level": level, "distance_km": distance,
            "rank": rank if kept else None})
    return {"summary": f"Offered to {code} {name}: zip prefix {postal[:3]}*, 12 km away, "
                       f"least loaded of {count}",
            "level": level, "considered": considered, "notes": [],
            "less_specific": [{"level": "region", "count": rng.randint(0, 4)},
                              {"level": "country", "count": rng.randint(0, 60)}]}


class World:
    """Partners with homes and habits, catalogs, and how leads find partners."""

    def __init__(self, rng: random.Random, partners: int) -> None:
        from bench_routing import PRODUCT_LINES, load_zips

        self.zips = [(code, region) for code, _, region in load_zips()]
        by_region: dict[str, list[str]] = {}
        for code, region in self.zips:
            by_region.setdefault(region, []).append(code)
        self.product_lines = PRODUCT_LINES
        distributors = max(1, partners // 10)
        with_dealers = list(range(1, distributors // 2 + 1))  # half of them have dealers
        self.home: dict[int, tuple[str, str]] = {}
        self.kind: dict[int, str] = {}
        self.parent: dict[int, int | None] = {}
        self.load: dict[int, float] = {}
        self.habits: dict[int, Habits] = {}
        self.dealers: dict[int, list[int]] = {}
        for pid in range(1, partners + 1):
            distributor = pid <= distributors
            parent = None
            if not distributor and rng.random() < 0.5:  # half the dealers sit under one
                parent = rng.choice(with_dealers)
            if parent is not None:
                region = self.home[parent][1]
                home = (rng.choice(by_region[region]), region)
            else:
                home = rng.choice(self.zips)
            self.home[pid] = home
            self.kind[pid] = "distributor" if distributor else "dealer"
            self.parent[pid] = parent
            self.load[pid] = rng.lognormvariate(0, 1) * (3 if distributor else 1)
            self.habits[pid] = make_habits(rng)
            if parent is not None:
                self.dealers.setdefault(parent, []).append(pid)
        self.dealer_weights = {d: list(accumulate(self.load[x] for x in ds))
                               for d, ds in self.dealers.items()}
        regional: dict[str, list[int]] = {}
        for pid, (_, region) in self.home.items():
            regional.setdefault(region, []).append(pid)
        self.regional = {r: (ids, list(accumulate(self.load[i] for i in ids)))
                         for r, ids in regional.items()}
        ids = list(self.home)
        self.anywhere = (ids, list(accumulate(self.load[i] for i in ids)))
        self.competitor_weights: dict[str, list[float]] = {}
        for region in by_region:  # which competitors are strong where
            local = random.Random(region)
            self.competitor_weights[region] = list(accumulate(
                local.lognormvariate(0, 1.2) for _ in COMPETITORS))

    def pick_partner(self, rng: random.Random, region: str, exclude: set[int]) -> int | None:
        ids, cum = self.regional.get(region) or self.anywhere
        if rng.random() < 0.05:
            ids, cum = self.anywhere
        for _ in range(6):
            pid = ids[bisect_right(cum, rng.random() * cum[-1])]
            if pid not in exclude:
                return pid
        ids, cum = self.anywhere
        for _ in range(10):
            pid = ids[bisect_right(cum, rng.random() * cum[-1])]
            if pid not in exclude:
                return pid
        return None

    def pick_dealer(self, rng: random.Random, distributor: int) -> int:
        cum = self.dealer_weights[distributor]
        return self.dealers[distributor][bisect_right(cum, rng.random() * cum[-1])]


def hours(value: float) -> timedelta:
    return timedelta(hours=value)


def lognormal_hours(rng: random.Random, median: float, sigma: float = 1.0) -> timedelta:
    return hours(median * math.exp(rng.gauss(0, sigma)))


class Lead:
    """One lead's life, simulated: its row, its offers and its events."""

    def __init__(self, sim: Simulation, n: int, created: datetime) -> None:
        rng, world = sim.rng, sim.world
        self.sim = sim
        self.id = uuid.UUID(int=rng.getrandbits(128), version=4)
        self.postal, self.region = rng.choice(world.zips)
        self.created = created
        self.offers: list[dict[str, Any]] = []
        self.events: list[dict[str, Any]] = []
        self.status = "captured"
        self.version = 1
        source = rng.choices(sim.source_ids, cum_weights=sim.source_cum)[0]
        campaign = None
        if source in sim.campaign_sources or rng.random() < 0.1:
            campaign = sim.campaign_at(created)
        self.rank = rng.choices(("hot", "warm", "cold"), cum_weights=(25, 70, 100))[0]
        self.row: dict[str, Any] = {
            "id": self.id, "first_name": "Bench", "last_name": f"Lead{n}",
            "company": f"Farm {n % 997}" if n % 3 == 0 else "", "email": f"lead{n}@example.com",
            "email_normalized": f"lead{n}@example.com", "phone": "", "phone_normalized": "",
            "address": "", "city": "", "region": self.region, "postal_code": self.postal,
            "country": "US", "product_line_id": rng.randint(1, len(world.product_lines)),
            "campaign_id": campaign, "source_id": source, "comments": "",
            "wants_literature": rng.random() < 0.2, "answers": {"timeline": "3 months"},
            "qualification_reason": "bench", "rank": self.rank,
            "score": {"hot": 85, "warm": 60, "cold": 30}[self.rank], "offers_count": 0,
            "lost_competitor_other": "", "inquiries": 1, "engagements": 0,
            "created_at": created, "routing": None, "assigned_partner_id": None,
            "offered_at": None, "accepted_at": None, "first_contact_at": None,
            "closed_at": None, "won_amount": None, "lost_reason": None,
            "lost_competitor_id": None,
        }

    def event(self, kind: str, at: datetime, to: str | None = None,
              partner: int | None = None, data: dict[str, Any] | None = None,
              device: str = "web") -> None:
        self.events.append({
            "id": uuid.UUID(int=self.sim.rng.getrandbits(128), version=4),
            "lead_id": self.id, "kind": kind, "from_status": self.status if to else None,
            "to_status": to, "actor_id": None, "partner_id": partner, "device": device,
            "at": at, "data": data or {}})
        if to:
            self.status = to
        self.version += 1

    def live(self) -> None:
        rng, now = self.sim.rng, self.sim.now
        self.event("captured", self.created, "captured", device="api")
        fate = rng.random()
        if self.created > now - timedelta(minutes=2) and fate < 0.5:
            return self.finish()  # just captured, not qualified yet
        qualified = self.created + timedelta(seconds=rng.uniform(0.2, 3))
        if fate < 0.05:
            self.event("nurture", qualified, "nurture", data={"reason": "researching"},
                       device="job")
            return self.finish()
        if fate < 0.09:
            self.event("disqualified", qualified, "disqualified", data={"reason": "spam"},
                       device="job")
            return self.finish()
        self.event("qualified", qualified, "qualified", device="job")
        # Routed at once mostly; some wait for a manager or a routing run.
        u = rng.random()
        delay = (timedelta(seconds=rng.uniform(1, 50)) if u < 0.85 else
                 timedelta(minutes=rng.uniform(1, 10)) if u < 0.95 else
                 lognormal_hours(rng, 3))
        self.route(qualified + delay, method="rule")
        return self.finish()

    def route(self, at: datetime, method: str) -> None:
        tried = {o["partner_id"] for o in self.offers}
        if len(self.offers) >= 3 or at > self.sim.now:
            if at <= self.sim.now:
                self.event("unassigned", at, "unassigned", device="job",
                           data={"summary": "No partner fits: every nearby partner tried"})
            return
        partner = self.sim.world.pick_partner(self.sim.rng, self.region, tried)
        if partner is None:
            self.event("unassigned", at, "unassigned", device="job")
            return
        self.offer(partner, at, method)

    def offer(self, partner: int, at: datetime, method: str, forwarded_by: int | None = None
              ) -> None:
        sim, rng, now = self.sim, self.sim.rng, self.sim.now
        world = sim.world
        code = sim.codes[partner]
        explained = (explanation(rng, code, f"Partner {partner}", self.region, self.postal)
                     if method == "rule" else None)
        row = {
            "lead_id": self.id, "partner_id": partner, "offered_at": at,
            "expires_at": at + ACCEPT_SLA, "method": method, "by_user_id": None,
            "reason": "" if method == "rule" else "reassigned by hand",
            "explanation": explained, "response": "pending", "responded_at": None,
            "decline_reason": "", "accepted_at": None, "contacted_at": None,
            "closed_at": None, "outcome": None, "amount": None, "lost_reason": None,
            "competitor_id": None, "competitor_other": "", "lead_created_at": self.created,
            "product_line_id": self.row["product_line_id"],
            "campaign_id": self.row["campaign_id"], "source_id": self.row["source_id"],
            "rank": self.rank, "region": self.region}
        self.offers.append(row)
        self.row.update(assigned_partner_id=partner, offered_at=at, accepted_at=None,
                        routing=explained or self.row["routing"])
        if forwarded_by is None:
            self.event("offered", at, "offered", partner, device="job" if method == "rule"
                       else "web", data={"method": method, "reason": row["reason"],
                                         "summary": (explained or {}).get("summary", "")})
        else:
            self.event("forwarded", at, "offered", partner,
                       data={"from_partner_id": forwarded_by, "to": code, "reason": ""})
        habits = world.habits[partner]
        # A distributor with dealers passes most of its offers on.
        if forwarded_by is None and partner in world.dealers and rng.random() < 0.7:
            when = at + lognormal_hours(rng, 1.0, 0.9)
            if when < min(now, at + ACCEPT_SLA):
                row.update(response="forwarded", responded_at=when)
                return self.offer(world.pick_dealer(rng, partner), when, "forward",
                                  forwarded_by=partner)
        u = rng.random()
        if u < habits.accept:
            when = at + min(lognormal_hours(rng, habits.accept_hours), ACCEPT_SLA * 0.98)
            if when > now:
                return  # still pending
            row.update(response="accepted", responded_at=when, accepted_at=when)
            self.row["accepted_at"] = when
            self.event("accepted", when, "accepted", partner)
            return self.work(row, partner, when)
        if u < habits.accept + (1 - habits.accept) * habits.decline:
            when = at + min(lognormal_hours(rng, habits.accept_hours), ACCEPT_SLA * 0.98)
            if when > now:
                return
            reason = pick(rng, DECLINES)
            row.update(response="declined", responded_at=when, decline_reason=reason)
            self.event("declined", when, "qualified", partner, data={"reason": reason})
        else:
            when = at + ACCEPT_SLA + timedelta(minutes=rng.uniform(0, 5))  # the sweep
            if when > now:
                return
            row.update(response="expired", responded_at=when,
                       decline_reason="not accepted in time")
            self.event("expired", when, "qualified", partner, device="job",
                       data={"reason": "not accepted in time"})
        self.row.update(assigned_partner_id=None, offered_at=None)
        self.route(when + timedelta(seconds=rng.uniform(1, 120)), method="rule")

    def work(self, row: dict[str, Any], partner: int, accepted: datetime) -> None:
        sim, rng, now = self.sim, self.sim.rng, self.sim.now
        habits = sim.world.habits[partner]
        last = accepted
        contacted = None
        if rng.random() < habits.contact:
            when = accepted + lognormal_hours(rng, habits.contact_hours, 1.1)
            if when <= now:
                contacted = last = when
                row["contacted_at"] = when
                if self.row["first_contact_at"] is None:
                    self.row["first_contact_at"] = when
                self.event("contacted", when, "contacted", partner,
                           data={"channel": rng.choice(("phone", "phone", "email", "visit"))})
                for stage, share in (("appointment", 0.4), ("quoted", 0.3)):
                    if rng.random() >= share:
                        break
                    when = last + lognormal_hours(rng, 24 * 5, 0.8)
                    if when > now:
                        break
                    last = when
                    data = ({"date": when.date().isoformat()} if stage == "appointment"
                            else {"amount": str(rng.randint(20, 600) * 100)})
                    self.event(stage, when, stage, partner, data=data)
        if contacted is None and rng.random() < 0.03:
            # A manager takes it back from a partner that sat on it, and reassigns it.
            when = accepted + timedelta(days=rng.uniform(2, 10))
            if when <= now:
                row.update(response="withdrawn", responded_at=when,
                           decline_reason="no contact: reassigned")
                self.event("withdrawn", when, "qualified", partner,
                           data={"reason": "no contact: reassigned"})
                self.row.update(assigned_partner_id=None, offered_at=None, accepted_at=None)
                return self.route(when + timedelta(seconds=5), method="manual")
        if rng.random() >= habits.close:
            return  # never reported (overdue once past the outcome time)
        when = last + lognormal_hours(rng, 24 * 18, 0.9)
        if when > now:
            return
        u = rng.random()
        outcome = ("won" if u < habits.win else "lost" if u < habits.win + habits.lose
                   else "no_interest")
        if contacted is None and outcome != "no_interest" and rng.random() < 0.7:
            outcome = "no_interest"
        data: dict[str, Any] = {}
        row.update(outcome=outcome, closed_at=when)
        self.row["closed_at"] = when
        if outcome == "won":
            amount = rng.randint(5, 400) * 100
            row["amount"] = self.row["won_amount"] = amount
            data = {"amount": str(amount), "date": when.date().isoformat()}
        elif outcome == "lost":
            reason = pick(rng, LOST)
            row["lost_reason"] = self.row["lost_reason"] = reason
            data = {"reason": reason}
            if reason == "competitor":
                if rng.random() < 0.06:
                    name = rng.choice(("Local dealer", "Used machine", "Neighbour's auction"))
                    row["competitor_other"] = self.row["lost_competitor_other"] = name
                else:
                    cid = rng.choices(range(1, len(COMPETITORS) + 1),
                                      cum_weights=sim.world.competitor_weights[self.region])[0]
                    row["competitor_id"] = self.row["lost_competitor_id"] = cid
                    name = COMPETITORS[cid - 1]
                data["competitor"] = name
        self.event(outcome, when, outcome, partner, data=data)

    def finish(self) -> None:
        self.row.update(status=self.status, version=self.version,
                        offers_count=len(self.offers),
                        updated_at=self.events[-1]["at"] if self.events else self.created)


class Simulation:
    """Seeded: the same database every run."""

    def __init__(self, partners: int, seed: int = 14) -> None:
        self.rng = random.Random(seed)
        self.world = World(self.rng, partners)
        self.now = datetime.now(UTC)
        self.codes = {pid: f"{'T' if kind == 'distributor' else 'D'}-{pid}"
                      for pid, kind in self.world.kind.items()}
        self.source_ids = list(range(1, len(SOURCES) + 1))
        self.source_cum = list(accumulate(s[2] for s in SOURCES))
        self.campaign_sources = {2, 3}  # landing pages and trade shows
        start = self.now - timedelta(days=DAYS)
        # 24 campaigns, each running about two months, one starting every ~19 days.
        self.campaigns = [(i + 1, start + timedelta(days=19 * i),
                           start + timedelta(days=19 * i + 60)) for i in range(24)]

    def campaign_at(self, when: datetime) -> int | None:
        running = [cid for cid, begin, end in self.campaigns if begin <= when < end]
        return self.rng.choice(running) if running else None


def seed_catalog(conn: sa.Connection, sim: Simulation) -> None:
    from portal.core.models import Campaign, Competitor, Partner, ProductLine, Source

    now = sim.now
    conn.execute(sa.insert(ProductLine), [
        {"id": i + 1, "code": code, "name": code, "description": "", "active": True}
        for i, code in enumerate(sim.world.product_lines)])
    conn.execute(sa.insert(Competitor), [
        {"id": i + 1, "name": name, "active": True} for i, name in enumerate(COMPETITORS)])
    conn.execute(sa.insert(Source), [
        {"id": i + 1, "code": code, "name": name, "cost_per_lead": 12, "active": True}
        for i, (code, name, _) in enumerate(SOURCES)])
    conn.execute(sa.insert(Campaign), [
        {"id": cid, "code": f"C{cid:02d}", "name": f"Campaign {cid}", "channel": "web",
         "cost": 20000, "starts_on": begin.date(), "ends_on": end.date(), "active": True,
         "created_at": begin} for cid, begin, end in sim.campaigns])
    world = sim.world
    rows = [{
        "id": pid, "code": sim.codes[pid], "name": f"Partner {pid}", "kind": world.kind[pid],
        "parent_id": None, "email": f"p{pid}@dealer.test", "phone": "", "address": "",
        "city": "", "region": world.home[pid][1], "postal_code": world.home[pid][0],
        "country": "US", "location_from_centroid": True,
        "capacity": None if sim.rng.random() < 0.3 else sim.rng.randint(20, 200),
        "open_leads": 0, "forwarding": "manual", "active": sim.rng.random() < 0.97,
        "paused_reason": "", "created_at": now - timedelta(days=DAYS + 30),
        "updated_at": now - timedelta(days=DAYS + 30)} for pid in world.home]
    for start in range(0, len(rows), 5000):
        conn.execute(sa.insert(Partner), rows[start:start + 5000])
    parents = [{"pid": pid, "parent": p} for pid, p in world.parent.items() if p]
    conn.execute(sa.update(Partner).where(Partner.id == sa.bindparam("pid"))
                 .values(parent_id=sa.bindparam("parent")), parents)
    if conn.dialect.name == "postgresql":
        for table in ("partners", "product_lines", "competitors", "sources", "campaigns"):
            conn.exec_driver_sql(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                                 f"(SELECT max(id) FROM {table}))")


def seed_database(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Catalogs, partners, leads with their offers and events, a manager; the counts."""
    from portal.core.models import Lead as LeadRow
    from portal.core.models import LeadEvent, Offer, Role, User
    from portal.extensions import db

    started = time.perf_counter()
    sim = Simulation(args.partners)
    print(f"  world: {time.perf_counter() - started:.0f} s", flush=True)
    # Arrival times over 15 months, uniform, in order (as leads arrive).
    spread = sorted(sim.rng.random() for _ in range(args.leads))
    first = sim.now - timedelta(days=DAYS)
    counts = {"leads": 0, "offers": 0, "events": 0}
    with app.app_context():
        conn = db.session.connection()
        seed_catalog(conn, sim)
        user = User(email=EMAIL, name="Bench Manager", role=Role.MANAGER)
        user.set_password(PASSWORD)
        db.session.add(user)
        db.session.flush()
        leads, offers, events = [], [], []
        for n, fraction in enumerate(spread):
            created = first + timedelta(seconds=fraction * (DAYS * 86400 - 600))
            lead = Lead(sim, n, created)
            lead.live()
            leads.append(lead.row)
            offers.extend(lead.offers)
            events.extend(lead.events)
            if len(leads) == 5000 or n == args.leads - 1:
                conn.execute(sa.insert(LeadRow), leads)
                conn.execute(sa.insert(Offer), offers)
                if not args.no_events:
                    conn.execute(sa.insert(LeadEvent), events)
                counts["leads"] += len(leads)
                counts["offers"] += len(offers)
                counts["events"] += len(events)
                leads, offers, events = [], [], []
                if counts["leads"] % 100_000 == 0:
                    db.session.commit()
                    conn = db.session.connection()
                    print(f"  {counts['leads']:,} leads, {counts['offers']:,} offers, "
                          f"{counts['events']:,} events: {time.perf_counter() - started:.0f} s",
                          flush=True)
        db.session.commit()
        if args.no_events:
            counts["events"] = 0
        # open_leads as the lifecycle keeps it (offered or working, per partner).
        db.session.execute(sa.text(
            "UPDATE partners SET open_leads = (SELECT count(*) FROM leads WHERE "
            "leads.assigned_partner_id = partners.id AND leads.status IN "
            "('offered','accepted','contacted','appointment','quoted'))"))
        db.session.commit()
    with app.app_context(), db.engine.connect().execution_options(
            isolation_level="AUTOCOMMIT") as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("VACUUM ANALYZE")
        elif args.analyze:
            conn.exec_driver_sql("ANALYZE")
    counts["seed_seconds"] = round(time.perf_counter() - started)
    print(f"  seeded in {counts['seed_seconds']} s: {counts}", flush=True)
    return counts


@contextmanager
def database(backend: str, args: argparse.Namespace) -> Any:
    """An app on a seeded database and the seed counts. A new database of our own
    (``bench_reports_<pid>_…`` on PostgreSQL, a file in ``--workdir`` for SQLite), dropped
    at the end, unless ``--reuse``: then ``bench_reports_kept`` is kept and used again."""
    from flask_migrate import upgrade
    from seed import database_exists, database_url, fresh_database

    from portal import create_app
    from portal.extensions import db

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    facts_file = workdir / f"seeded-{backend}.json"
    url = database_url(backend, workdir, KEPT_DATABASE)
    reusing = args.reuse and facts_file.exists() and database_exists(url)
    drop = None
    if not reusing:
        facts_file.unlink(missing_ok=True)
        url, drop = fresh_database(backend, workdir, prefix="bench_reports",
                                   name=KEPT_DATABASE if args.reuse else None)
        if args.reuse:
            drop = None
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "HUEY_IMMEDIATE": True,
                      "MAIL_SINK_DIR": str(workdir / "mail")})
    try:
        if reusing:
            facts = json.loads(facts_file.read_text())
            print(f"  reusing {sa.make_url(url).render_as_string()}: {facts}")
            with app.app_context():
                upgrade(revision="heads")  # migrations added since it was seeded
        else:
            print(f"  seeding {sa.make_url(url).render_as_string()}", flush=True)
            with app.app_context():
                upgrade(revision="heads")
            facts = seed_database(app, args)
            with app.app_context():  # written around the portal's writes: count again
                from portal.core import rollups

                with db.engine.begin() as conn:
                    rollups.mark(conn, "stale")
            if args.reuse:
                facts_file.write_text(json.dumps(facts))
        rebuild_rollups(app)
        yield app, facts
    finally:
        with app.app_context():
            db.engine.dispose()
        if drop is not None:
            drop()


def rebuild_rollups(app: Any) -> None:
    """The seed writes around the portal (Core bulk inserts), as a bulk load would: count
    the reports' rollups as ``flask reports rebuild`` does, timed (a deploy's cost)."""
    from portal.core import rollups
    from portal.extensions import db

    with app.app_context():
        readable = rollups.readable(db.session)
        db.session.remove()  # an open snapshot would keep VACUUM from marking pages visible
        if readable:
            print("  rollups: built", flush=True)
            return
        started = time.perf_counter()
        with db.engine.begin() as conn:
            counted = rollups.rebuild(conn)
        print(f"  rollups rebuilt: {counted['offers']:,} offers, {counted['leads']:,} leads "
              f"in {time.perf_counter() - started:.0f} s", flush=True)
        if db.engine.dialect.name == "postgresql":
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                for table in ("offer_months", "lead_days", "duration_months", "lead_facts"):
                    conn.exec_driver_sql(f"VACUUM ANALYZE {table}")


# --- what the pages should show, counted here independently ---------------------------------


def period(today: date) -> tuple[date, date, datetime, datetime]:
    """"Last 12 months" as the reports read it: 365 days to today, both included."""
    start = today - timedelta(days=364)
    since = datetime(start.year, start.month, start.day, tzinfo=UTC)
    until = datetime(today.year, today.month, today.day, tzinfo=UTC) + timedelta(days=1)
    return start, today, since, until


def expectations(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Offers in the year (all, in the state), the partners, the scorecard's partner."""
    from portal.extensions import db

    start, end, since, until = period(datetime.now(UTC).date())
    region = f"US-{args.state}"
    with app.app_context():
        conn = db.session.connection()
        bind = {"since": since.replace(tzinfo=None), "until": until.replace(tzinfo=None),
                "region": region}
        year = ("FROM offers WHERE offered_at >= :since AND offered_at < :until "
                "AND response != 'forwarded'")
        offered = conn.execute(sa.text(f"SELECT count(*) {year}"), bind).scalar_one()
        offered_state = conn.execute(sa.text(f"SELECT count(*) {year} AND region = :region"),
                                     bind).scalar_one()
        partners = conn.execute(sa.text("SELECT count(*) FROM partners")).scalar_one()
        # The busiest distributor with dealers: its offers and its dealers'.
        busiest = conn.execute(sa.text(
            "SELECT coalesce(p.parent_id, p.id) AS d, count(*) AS n FROM offers o "
            "JOIN partners p ON p.id = o.partner_id WHERE o.offered_at >= :since "
            "AND o.offered_at < :until AND o.response != 'forwarded' "
            "AND coalesce(p.parent_id, p.id) IN (SELECT parent_id FROM partners "
            "WHERE parent_id IS NOT NULL) GROUP BY d ORDER BY n DESC LIMIT 1"), bind).one()
        code = conn.execute(sa.text("SELECT code FROM partners WHERE id = :i"),
                            {"i": busiest.d}).scalar_one()
        captured = ("SELECT count(*) FROM leads WHERE created_at >= :since "
                    "AND created_at < :until")
        captured_state = conn.execute(sa.text(captured + " AND region = :region"),
                                      bind).scalar_one()
        captured = conn.execute(sa.text(captured), bind).scalar_one()
        offers_total = conn.execute(sa.text("SELECT count(*) FROM offers")).scalar_one()
        leads_total = conn.execute(sa.text("SELECT count(*) FROM leads")).scalar_one()
    return {"start": start, "end": end, "offered": offered, "offered_state": offered_state,
            "partners": partners, "scorecard": code, "scorecard_offers": busiest.n,
            "offers_total": offers_total, "leads_total": leads_total, "captured": captured,
            "captured_state": captured_state}


def page_list(app: Any, args: argparse.Namespace, exp: dict[str, Any]) -> list[dict[str, Any]]:
    """The pages to time: name, path, how it signs in, what it must show."""
    year = "period=365d"
    state = f"{year}&region={args.state}"
    api = f"since={exp['start'].isoformat()}&until={exp['end'].isoformat()}"
    code = exp["scorecard"]
    every = {
        "league": ("/reports/partners?" + year, "cookie", ("footer", exp["offered"])),
        "league-state": ("/reports/partners?" + state, "cookie",
                         ("footer", exp["offered_state"])),
        "api": ("/api/v1/reports/partners?" + api, "bearer", ("api", exp["partners"])),
        "csv": ("/reports/partners.csv?" + year, "cookie", ("csv", exp["partners"])),
        "csv-state": ("/reports/partners.csv?" + state, "cookie", ("csv", exp["partners"])),
        "scorecard": (f"/reports/partners/{code}?" + year, "cookie", ("text", code)),
        "scorecard-state": (f"/reports/partners/{code}?" + state, "cookie", ("text", code)),
        "overview": ("/reports/?" + year, "cookie", ("captured", exp["captured"])),
        "overview-state": ("/reports/?" + state, "cookie",
                           ("captured", exp["captured_state"])),
        "won-lost": ("/reports/won-lost?" + year, "cookie", ("status", 200)),
        "campaigns": ("/reports/campaigns?" + year, "cookie", ("status", 200)),
        "speed": ("/reports/speed?" + year, "cookie", ("status", 200)),
        "compliance": ("/reports/compliance", "cookie", ("status", 200)),
    }
    has_overview = "reports.overview" in app.view_functions
    if args.pages in ("auto", "all"):
        names = [n for n in (MAIN_PAGES if args.pages == "auto" else ALL_PAGES)
                 if (has_overview or not n.startswith("overview"))
                 and (n.split("-")[0] in ("league", "api", "csv", "scorecard", "overview")
                      or f"reports.{n.replace('-', '_')}" in app.view_functions)]
        if not has_overview:
            print("  no reports.overview endpoint in this app: the overview is not measured "
                  "(it is added by itself once it exists)")
    else:
        names = [n.strip() for n in args.pages.split(",") if n.strip()]
        unknown = set(names) - set(every)
        if unknown:
            raise SystemExit(f"unknown pages: {sorted(unknown)}")
        if any(n.startswith("overview") for n in names) and not has_overview:
            raise SystemExit("--pages names the overview, but the app has no reports.overview")
    return [{"name": n, "path": every[n][0], "auth": every[n][1], "check": every[n][2]}
            for n in names]


def check(page: dict[str, Any], status: int, body: str) -> str:
    """Raise unless the page answered with what it should; a short note of what it showed."""
    kind, expected = page["check"]
    assert status == 200, (page["name"], status)
    if kind == "footer":
        found = re.search(r'<tfoot><tr><th scope="row">All offers</th><td class="num">'
                          r'([\d,]+)</td>', body)
        assert found and int(found.group(1).replace(",", "")) == expected, (
            page["name"], found and found.group(1), expected)
        rows = body.count('<th scope="row"><a href="/reports/partners/')
        return f"footer offered {expected:,}, {rows} rows on page 1"
    if kind == "api":
        data = json.loads(body)
        assert len(data["partners"]) == expected, len(data["partners"])
        offered = sum(p["offered"] for p in data["partners"])
        return f"{len(data['partners']):,} partners, {offered:,} own offers"
    if kind == "csv":
        lines = body.count("\n")
        assert lines == expected + 1, (page["name"], lines)
        return f"{lines - 1:,} partner rows"
    if kind == "captured":  # the overview's "Leads captured" tile
        assert f"{expected:,}" in body, (page["name"], expected)
        return f"{expected:,} leads captured"
    if kind == "text":
        assert expected in body, (page["name"], expected)
        return f"scorecard of {expected}"
    return "answered"


# --- in process: statements, SQL time, plans --------------------------------------------------


def token_for(app: Any) -> str:
    from portal.api.auth import issue_token
    from portal.core.models import User
    from portal.extensions import db

    with app.app_context():
        user = db.session.scalars(sa.select(User).where(User.email == EMAIL)).one()
        token = issue_token(user)  # a row now (revocable): kept for the requests to find
        db.session.commit()
        return token


def repeated(client: Any, page: dict[str, Any], headers: dict[str, str], times: int
             ) -> dict[str, float]:
    """The page ``times`` more times: min and median wall, the median CPU time of this
    process (the Python side, not the database's) and the garbage collector's share."""
    walls, cpus, collecting = [], [], [0.0, 0.0]

    def on_gc(phase: str, info: Any) -> None:
        if phase == "start":
            collecting[1] = time.perf_counter()
        else:
            collecting[0] += time.perf_counter() - collecting[1]

    gc.callbacks.append(on_gc)
    try:
        for _ in range(times):
            wall, cpu = time.perf_counter(), time.process_time()
            client.get(page["path"], headers=headers)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    finally:
        gc.callbacks.remove(on_gc)
    found = {"repeat_wall_min_ms": min(walls) * 1000,
             "repeat_wall_median_ms": statistics.median(walls) * 1000,
             "repeat_cpu_median_ms": statistics.median(cpus) * 1000,
             "repeat_gc_ms": collecting[0] * 1000 / times}
    print(f"  {page['name']} × {times}: wall min {found['repeat_wall_min_ms']:,.0f} ms, "
          f"median {found['repeat_wall_median_ms']:,.0f} ms; this process's CPU (Python, not "
          f"the database's) median {found['repeat_cpu_median_ms']:,.0f} ms, of which the "
          f"garbage collector {found['repeat_gc_ms']:,.0f} ms", flush=True)
    return found


def in_process(app: Any, pages: list[dict[str, Any]], args: argparse.Namespace,
               backend: str) -> dict[str, dict[str, Any]]:
    """Each page twice through the test client; the second's statements and SQL time
    (and ``--repeat`` times more: wall, CPU and garbage-collector time)."""
    from portal.extensions import db

    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    answer = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code in (302, 303), answer.status_code
    bearer = {"Authorization": f"Bearer {token_for(app)}"}
    with app.app_context():
        engine = db.engine
    from portal.dispatch.services import freeze_start_up_objects

    freeze_start_up_objects()  # as a served worker does (wsgi.py)
    found: dict[str, dict[str, Any]] = {}
    plans: list[str] = []
    for page in pages:
        statements: list[list[Any]] = []

        def before(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
            statements.append([statement, params, time.perf_counter()])  # noqa: B023

        def after(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
            statements[-1][2] = time.perf_counter() - statements[-1][2]  # noqa: B023

        headers = bearer if page["auth"] == "bearer" else {}
        client.get(page["path"], headers=headers)  # warm
        sa.event.listen(engine, "before_cursor_execute", before)
        sa.event.listen(engine, "after_cursor_execute", after)
        started = time.perf_counter()
        try:
            response = client.get(page["path"], headers=headers)
        finally:
            total = time.perf_counter() - started
            sa.event.remove(engine, "before_cursor_execute", before)
            sa.event.remove(engine, "after_cursor_execute", after)
        body = response.get_data(as_text=True)
        note = check(page, response.status_code, body)
        queries = [s for s in statements if not s[0].lstrip().upper().startswith(
            ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT", "PRAGMA", "SET"))]
        sql = sum(s[2] for s in queries)
        slowest = sorted(queries, key=lambda s: -s[2])[:4]
        found[page["name"]] = {"queries": len(queries), "sql_ms": sql * 1000,
                               "total_ms": total * 1000, "bytes": len(body.encode()),
                               "note": note,
                               "slowest_ms": [round(s[2] * 1000, 1) for s in slowest]}
        print(f"  in process {page['name']}: {total * 1000:,.0f} ms, {len(queries)} queries, "
              f"SQL {sql * 1000:,.0f} ms (slowest {found[page['name']]['slowest_ms']}); "
              f"{note}", flush=True)
        if args.repeat > 1:  # wall time moves with the machine's load; CPU time less so
            found[page["name"]].update(repeated(client, page, headers, args.repeat))
        if args.explain and page["name"] in args.explain_pages.split(","):
            plans.append(f"\n==== {page['name']} ({page['path']}): {len(queries)} statements")
            plans.extend(explain(engine, queries))
    for name in filter(None, args.profile.split(",")):
        page = next(p for p in pages if p["name"] == name)
        headers = bearer if page["auth"] == "bearer" else {}
        profiler = cProfile.Profile()
        profiler.enable()
        client.get(page["path"], headers=headers)
        profiler.disable()
        print(f"\n-- cProfile of {name}")
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(35)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    if plans:
        out = Path(args.workdir) / f"explain-{backend}.txt"
        out.write_text("\n".join(plans) + "\n")
        print("\n".join(plans))
        print(f"  plans written to {out}")
    return found


def explain(engine: sa.Engine, queries: list[list[Any]]) -> list[str]:
    """Each distinct statement with its plan and time (the slow ones are what matter)."""
    lines: list[str] = []
    seen: set[str] = set()
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        for statement, params, seconds in queries:
            if statement in seen or seconds < 0.005:
                continue
            seen.add(statement)
            lines.append(f"\n-- {seconds * 1000:.1f} ms in the page: "
                         + " ".join(statement.split())[:1500])
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
            for row in conn.exec_driver_sql(prefix + statement, params):
                lines.append("    " + str(row[-1] if sqlite else row[0]))
    return lines


# --- served: gunicorn, a manager signed in, timed requests --------------------------------------


def free_port() -> int:
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 5000:
            return port


@contextmanager
def gunicorn(url: str, workers: int, workdir: Path) -> Any:
    """The portal under gunicorn as production starts it (``wsgi:app``), this tree's code."""
    port = free_port()
    env = dict(os.environ, SECRET_KEY="bench", DATABASE_URL=url,
               HUEY_SQLITE_PATH=str(workdir / "huey.db"),
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    log = (workdir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--timeout", "600",
         "--bind", f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/healthz", timeout=2).read()
                break
            except OSError as error:
                if process.poll() is not None:
                    raise RuntimeError(f"gunicorn exited: see {workdir / 'gunicorn.log'}"
                                       ) from error
                time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def sign_in(base: str) -> urllib.request.OpenerDirector:
    """Sign in through the login form (CSRF token and all): an opener with the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/auth/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD,
                                   "csrf_token": token.group(1)}).encode()
    answer = opener.open(base + "/auth/login", data=body)
    assert answer.status == 200 and "/auth/login" not in answer.url, answer.url
    return opener


def fetch(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str]
          ) -> tuple[int, str, float]:
    request = urllib.request.Request(url, headers=headers)
    started = time.perf_counter()
    with opener.open(request, timeout=900) as answer:
        body = answer.read()
        elapsed = (time.perf_counter() - started) * 1000
        return answer.status, body.decode(), elapsed


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p95 of 20 requests is the 19th)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]


def timed(opener: urllib.request.OpenerDirector, url: str, headers: dict[str, str],
          requests: int, warm: int = 4) -> dict[str, Any]:
    for _ in range(warm):  # both workers, statements prepared
        fetch(opener, url, headers)
    load_before = loadavg()
    times = [fetch(opener, url, headers)[2] for _ in range(requests)]
    return {"p50": statistics.median(times), "p95": percentile(times, 95), "max": max(times),
            "min": min(times), "n": requests, "load_before": load_before,
            "load_after": loadavg()}


def served(url: str, app: Any, pages: list[dict[str, Any]], args: argparse.Namespace
           ) -> dict[str, Any]:
    """Serve with gunicorn, check each page, time it N times and the floor around them."""
    workdir = Path(args.workdir)
    bearer = {"Authorization": f"Bearer {token_for(app)}"}
    results: dict[str, Any] = {}
    with gunicorn(url, args.workers, workdir) as base:
        opener = sign_in(base)
        for page in pages:
            headers = bearer if page["auth"] == "bearer" else {}
            status, body, _ = fetch(opener, base + page["path"], headers)
            check(page, status, body)
        results["readyz-before"] = timed(opener, base + "/readyz", {}, args.requests)
        print(f"  /readyz: p50 {results['readyz-before']['p50']:.1f} ms, p95 "
              f"{results['readyz-before']['p95']:.1f} ms", flush=True)
        for page in pages:
            headers = bearer if page["auth"] == "bearer" else {}
            results[page["name"]] = timed(opener, base + page["path"], headers, args.requests,
                                          warm=args.warm)
            r = results[page["name"]]
            print(f"  {page['name']}: p50 {r['p50']:,.0f} ms, p95 {r['p95']:,.0f} ms, max "
                  f"{r['max']:,.0f} ms (load {r['load_before']} -> {r['load_after']})",
                  flush=True)
        results["readyz-after"] = timed(opener, base + "/readyz", {}, args.requests)
    return results


# --- the run --------------------------------------------------------------------------------------

TARGET_MS = {"postgresql": 500, "sqlite": 2000}


def run_backend(backend: str, args: argparse.Namespace) -> None:
    from portal.extensions import db

    print(f"\n=== {backend} === load average {loadavg()}", flush=True)
    with database(backend, args) as (app, facts):
        with app.app_context():
            url = db.engine.url.render_as_string(hide_password=False)
            conn = db.session.connection()
            for statement in args.sql:
                started = time.perf_counter()
                print(f"  {statement}", flush=True)
                conn.exec_driver_sql(statement)
                db.session.commit()
                conn = db.session.connection()
                print(f"    ({time.perf_counter() - started:.1f} s)", flush=True)
            db.session.commit()
            if args.sql and db.engine.dialect.name == "postgresql":  # as autovacuum would
                with db.engine.connect().execution_options(
                        isolation_level="AUTOCOMMIT") as auto:
                    auto.exec_driver_sql("ANALYZE")
            db.session.remove()
            db.engine.dispose()  # settings made by --sql reach every new connection
        exp = expectations(app, args)
        print(f"  data: {exp['leads_total']:,} leads, {exp['offers_total']:,} offers, "
              f"{exp['partners']:,} partners; last 12 months ({exp['start']} to {exp['end']}): "
              f"{exp['offered']:,} offers counted, {exp['offered_state']:,} in US-{args.state}; "
              f"scorecard {exp['scorecard']} ({exp['scorecard_offers']:,} offers with its "
              f"dealers')", flush=True)
        pages = page_list(app, args, exp)
        inproc = in_process(app, pages, args, backend)
        with app.app_context():
            db.engine.dispose()
        results = served(url, app, pages, args) if not args.no_serve else {}
    report(backend, facts, exp, pages, inproc, results, args)


def report(backend: str, facts: dict[str, Any], exp: dict[str, Any],
           pages: list[dict[str, Any]], inproc: dict[str, Any], results: dict[str, Any],
           args: argparse.Namespace) -> None:
    """Markdown, the README's shape; and the figures as JSON in --workdir."""
    out = Path(args.workdir) / f"results-{backend}-{datetime.now():%H%M}.json"
    out.write_text(json.dumps({"facts": facts, "expected": {k: str(v) for k, v in exp.items()},
                               "in_process": inproc, "served": results,
                               "sql": args.sql, "nproc": os.cpu_count()}, indent=1))
    print(f"\n### {backend}: {exp['leads_total']:,} leads, {exp['offers_total']:,} offers, "
          f"{facts.get('events', 0):,} events, {exp['partners']:,} partners")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, gunicorn "
          f"--workers {args.workers} (sync), {args.requests} requests per page one after "
          f"another after {args.warm} to warm up; extra SQL: {args.sql or 'none'}")
    target = TARGET_MS[backend]
    print("\n| page | queries | SQL in process | p50 | p95 | max | p95 ÷ floor p95 | bytes "
          "| load before → after |")
    print("|---|---|---|---|---|---|---|---|---|")
    floor = results.get("readyz-before")
    for name in ("readyz-before", *[p["name"] for p in pages], "readyz-after"):
        r, i = results.get(name), inproc.get(name)
        if r is None and i is None:
            continue
        label = {"readyz-before": "`/readyz` (floor), before",
                 "readyz-after": "`/readyz` (floor), after"}.get(name, name)
        if name in ("league", "overview") and r:
            label += f" ({'met' if r['p95'] < target else 'NOT met'}: < {target} ms)"
        cells = [label, str(i["queries"]) if i else "1",
                 f"{i['sql_ms']:,.0f} ms" if i else ""]
        if r:
            ratio = f"{r['p95'] / floor['p95']:,.0f}x" if floor and i else ""
            cells += [f"{r['p50']:,.1f} ms", f"{r['p95']:,.1f} ms", f"{r['max']:,.1f} ms",
                      ratio]
        else:
            cells += ["", "", "", ""]
        cells += [f"{i['bytes']:,}" if i else "",
                  f"{r['load_before']} → {r['load_after']}" if r else ""]
        print("| " + " | ".join(cells) + " |")
    print(f"\nresults written to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--warm", type=int, default=4, help="requests before the timed ones")
    parser.add_argument("--state", default="IA", help="the filtered view's state")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--workdir", default="/tmp/bench-reports")
    parser.add_argument("--pages", default="auto",
                        help=f"comma-separated, of {', '.join(ALL_PAGES)}; auto: all, the "
                             "overview once the app has it")
    parser.add_argument("--reuse", action="store_true",
                        help=f"keep the seeded database ({KEPT_DATABASE} / the SQLite file in "
                             "--workdir) and use it again next time")
    parser.add_argument("--no-events", action="store_true", help="seed no lead_events")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE SQLite after seeding")
    parser.add_argument("--sql", action="append", default=[],
                        help="a statement to run before measuring (e.g. CREATE INDEX …)")
    parser.add_argument("--explain", action="store_true",
                        help="EXPLAIN each statement over 5 ms of --explain-pages")
    parser.add_argument("--explain-pages", default="league,league-state")
    parser.add_argument("--profile", default="",
                        help="comma-separated pages to cProfile once each, in process")
    parser.add_argument("--no-serve", action="store_true", help="in process only")
    parser.add_argument("--repeat", type=int, default=0,
                        help="time each page this many more times in process: min and "
                             "median wall, and the Python side's CPU time")
    args = parser.parse_args()
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}; nproc {os.cpu_count()}")
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        run_backend(backend, args)


if __name__ == "__main__":
    main()
