"""Benchmark the routing what-if preview on SQLite at the planned scale.

    python bench/bench_whatif.py [--partners 10000] [--rules 50000] [--leads 250000]
                                 [--old-leads 50000] [--seed 7] [--db /tmp/bench-whatif.db]

Builds a real, migrated SQLite database: partners and rules as in bench_routing.py (real
US ZIP centroids), 250,000 routed leads spread over the last 90 days (1 M a year) plus
older ones outside the window, one offer each (3 % by hand, 2 % forwarded). Then times
``portal.dispatch.whatif.preview`` for typical and extreme edits, and the ways to get the
edited index (rebuilt from the database, or from the cached snapshot's candidates).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time
import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_routing import PRODUCT_LINES, load_zips, make_partners  # noqa: E402
from sqlalchemy import insert, select  # noqa: E402

from routing import parse_rules  # noqa: E402


def build_database(app, args: argparse.Namespace) -> None:  # type: ignore[no-untyped-def]
    """Migrate and fill the database in bulk (Core inserts, one transaction per table)."""
    from flask_migrate import upgrade

    from portal.core.models import Lead, Offer, Partner, ProductLine, Territory, utcnow
    from portal.core.models.partners import partner_product_lines
    from portal.extensions import db

    upgrade(revision="heads")
    rng = random.Random(args.seed)
    zips = load_zips()
    candidates = make_partners(rng, zips, args.partners, args.rules)
    session = db.session
    line_ids = {}
    for code in PRODUCT_LINES:
        line = ProductLine(code=code, name=f"{code} line")
        session.add(line)
        session.flush()
        line_ids[code] = line.id
    session.execute(insert(Partner), [
        {"id": c.id, "code": c.code, "name": c.name, "kind": c.kind, "parent_id": c.parent_id,
         "country": "US", "latitude": c.location.lat if c.location else None,
         "longitude": c.location.lon if c.location else None,
         "capacity": None if rng.random() < 0.3 else rng.randint(5, 50),
         "open_leads": rng.randint(0, 5), "active": rng.random() < 0.95,
         "forwarding": "auto" if c.kind == "distributor" and rng.random() < 0.5 else "manual"}
        for c in candidates
    ])
    session.execute(insert(Territory), [
        {"partner_id": c.id, "kind": rule.kind, "value": rule.value, "position": position}
        for c in candidates for position, rule in enumerate(c.territories)
    ])
    session.execute(insert(partner_product_lines), [
        {"partner_id": c.id, "product_line_id": line_ids[code]}
        for c in candidates for code in c.product_lines
    ])
    now = utcnow()
    top_level = [c.id for c in candidates if c.parent_id is None]
    total = args.leads + args.old_leads
    # Leads arrive over time, so rows are stored in created_at order, as in production.
    ages = sorted((rng.uniform(0, 89.9) if number < args.leads else rng.uniform(91, 365)
                   for number in range(total)), reverse=True)
    for start in range(0, total, 20_000):
        leads, offers = [], []
        for number in range(start, min(total, start + 20_000)):
            code, _, region = rng.choice(zips)
            created = now - timedelta(days=ages[number])
            lead_id = uuid.uuid4()
            partner_id = rng.choice(top_level)
            leads.append({
                "id": lead_id, "first_name": "Pat", "last_name": f"Prospect{number}",
                "email": f"pat{number}@example.com", "postal_code": code, "region": region,
                "country": "US", "product_line_id": line_ids[rng.choice(PRODUCT_LINES)],
                "status": "offered", "rank": "hot", "score": 80, "offers_count": 1,
                "assigned_partner_id": partner_id, "created_at": created,
                "updated_at": created, "offered_at": created,
            })
            roll = rng.random()
            method = "manual" if roll < 0.03 else "forward" if roll < 0.05 else "rule"
            offers.append({"lead_id": lead_id, "partner_id": partner_id, "offered_at": created,
                           "method": method, "response": "pending"})
        session.execute(insert(Lead), leads)
        session.execute(insert(Offer), offers)
    session.commit()


def timed(label: str, func):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = func()
    seconds = time.perf_counter() - started
    print(f"{label:<58} {seconds:7.2f} s")
    return result, seconds


def main() -> None:
    """Build (or reuse) the database, then time the previews."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50_000)
    parser.add_argument("--leads", type=int, default=250_000)
    parser.add_argument("--old-leads", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--db", default="/tmp/bench-whatif.db")
    parser.add_argument("--reuse", action="store_true", help="keep an existing database")
    parser.add_argument("--check", action="store_true",
                        help="also run each preview without the database pre-filter and "
                             "compare (slow)")
    args = parser.parse_args()

    from portal import create_app

    if not args.reuse:
        for suffix in ("", "-wal", "-shm"):
            Path(args.db + suffix).unlink(missing_ok=True)
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": f"sqlite:///{args.db}"})
    print(f"python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
    with app.app_context():
        from portal.core.models import Partner
        from portal.dispatch import services as routing_service
        from portal.dispatch import whatif as services
        from portal.extensions import db

        if not args.reuse:
            timed("build the database", lambda: build_database(app, args))
        session = db.session
        from routing import CentroidTable

        timed("US centroid table (once per process)", CentroidTable.us)
        index, _ = timed("cached snapshot: build_index (cold)",
                         lambda: routing_service.partner_index(session))
        timed("cached snapshot: partner_index (warm, stamp check)",
              lambda: routing_service.partner_index(session))

        def dealer_with(kind: str) -> Partner:
            for partner in session.scalars(
                    select(Partner).where(Partner.parent_id.is_(None), Partner.kind == "dealer")
                    .order_by(Partner.id)):
                if any(t.kind == kind for t in partner.territories):
                    return partner
            raise SystemExit(f"no top-level dealer with a {kind} rule")

        partner = dealer_with("zip_prefix")
        old = index.candidate(partner.id)
        assert old is not None
        edited = replace(old, territories=(*old.territories, *parse_rules("zip:50401")))

        def from_database():  # type: ignore[no-untyped-def]
            from sqlalchemy.orm import selectinload

            rows = session.scalars(select(Partner).options(
                selectinload(Partner.territories), selectinload(Partner.product_lines)))
            candidates = [edited if c.id == edited.id else c
                          for c in routing_service.candidates_from(rows)]
            return routing_service.PartnerIndex.build(candidates)

        timed("edited index: candidates_from(all partners) + build", from_database)
        timed("edited index: cached candidates, one replaced + build",
              lambda: services._full_index_with(session, index, edited))

        current = services.current_edit(partner)
        scenarios = [
            ("typical: a dealer adds one ZIP", partner, replace(
                current, territories=(*current.territories, *parse_rules("zip:50401")))),
            ("typical: same dealer drops a product line", partner, replace(
                current, product_lines=frozenset(sorted(current.product_lines)[1:]))),
            ("capacity: same dealer capped at 0", partner, replace(current, capacity=0)),
            ("wide: a dealer adds region:US-TX", partner, replace(
                current, territories=(*current.territories, *parse_rules("region:US-TX")))),
            ("extreme: a dealer adds country:US", partner, replace(
                current, territories=(*current.territories, *parse_rules("country:US")))),
        ]
        scenarios.append(("extreme, limit lifted (WHATIF_MAX_AFFECTED=10**9)", partner,
                          scenarios[-1][2]))
        for label, who, edit in scenarios:
            if "limit lifted" in label:
                app.config["WHATIF_MAX_AFFECTED"] = 10**9
            started = time.perf_counter()
            try:
                result, seconds = timed(f"preview {label}",
                                        lambda who=who, edit=edit: services.preview(session, who,
                                                                                    edit))
            except services.WhatIfError as error:
                print(f"{'preview ' + label:<58} {time.perf_counter() - started:7.2f} s")
                print(f"    refused: {error.message[:70]}…")
                session.rollback()
                continue
            print(f"    considered {result.considered:,}, left out {result.left_out:,}, "
                  f"affected {result.affected:,}, changed {result.changed:,} "
                  f"(to {result.gained_total:,}, away {result.lost_total:,})")
            session.rollback()
            if args.check and "limit lifted" not in label:
                filtered = services._reach_clause
                services._reach_clause = lambda *_: None  # type: ignore[assignment]
                try:
                    full, _ = timed("    same, every lead streamed (check)",
                                    lambda who=who, edit=edit: services.preview(session, who,
                                                                                edit))
                finally:
                    services._reach_clause = filtered  # type: ignore[assignment]
                same = ((full.affected, full.gained_total, full.lost_total)
                        == (result.affected, result.gained_total, result.lost_total)
                        and {m.lead_id for m in full.gained} == {m.lead_id for m in result.gained}
                        and {m.lead_id for m in full.lost} == {m.lead_id for m in result.lost})
                print(f"    pre-filter check: {'same result' if same else 'DIFFERENT'}")
                session.rollback()


if __name__ == "__main__":
    main()
