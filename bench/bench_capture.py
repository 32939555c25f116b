"""Benchmark capture: the JSON API (validate, dedup, qualify, score, route) and the CSV import.

    python bench/bench_capture.py [--backend sqlite|postgresql|both] [--partners 2000]
                                  [--requests 2000] [--rows 100000] [--part api|import|all]

Each backend gets a fresh database (a temporary SQLite file, or a database created and
dropped on 127.0.0.1:5432 as user postgres), migrated with Alembic and seeded with
``--partners`` partners at random real US ZIP centroids with realistic territories (the
rule mix of bench_routing.py, five rules per partner, three product lines).

* api: ``--requests`` POST /api/v1/leads through the Flask test client (in process, one
  client, bearer token; each request its own app context and transaction, as in
  production). 10 % repeat an earlier person (dedup attaches them), 20 % are "just
  researching" (nurture). Throughput and latency percentiles.
* import: a ``--rows`` CSV (3 % bad rows, 2 % people already in the file) uploaded through
  the import service and run by the import job's code (``run_import``) in a separate
  process, so its peak RSS (``getrusage``) is the import's own; the high-water mark is
  printed after setup and at the end. ``--tracemalloc`` adds Python-heap peaks (slow).
  Before the run, the mapping page's dry run over the same file is timed (it reads every
  row through the capture's checks and dedup, writing nothing); the floor is a bare
  ``csv.reader`` pass over the file.

Wall-clock rates depend on what else the machine runs; the app-CPU figures (this
process's CPU time, so without the PostgreSQL server's share) are the steadier ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402

PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
LINES = ("TRC", "SPR", "HRV")


def rss_mb() -> float:
    """This process's peak resident set so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- databases ---------------------------------------------------------------------------


def make_database(backend: str, workdir: Path) -> tuple[str, Any]:
    """A fresh, empty database URL for ``backend`` and a function that drops it."""
    from seed import fresh_database

    return fresh_database(backend, workdir, prefix="bench_capture")


def make_app(url: str, workdir: Path) -> Any:
    from portal import create_app

    return create_app({
        "SECRET_KEY": "bench-only", "DATABASE_URL": url, "HUEY_IMMEDIATE": True,
        "IMPORTS_DIR": str(workdir / "imports"), "MAIL_SINK_DIR": str(workdir / "mail"),
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000", "PORTAL_BASE_URL": "http://bench",
    })


def seed(app: Any, partners: int, seed_value: int) -> list[str]:
    """Migrate, then add product lines, partners with territories and an admin; the ZIPs."""
    from bench_routing import load_zips, make_partners
    from flask_migrate import upgrade

    from portal.core.models import Partner, ProductLine, Territory, User
    from portal.extensions import db

    rng = random.Random(seed_value)
    zips = load_zips()
    with app.app_context():
        upgrade(revision="heads")
        session = db.session
        lines = {code: ProductLine(code=code, name=f"{code} line") for code in LINES}
        session.add_all(lines.values())
        session.flush()
        candidates = make_partners(rng, zips, partners, partners * 5)
        for candidate in candidates:
            partner = Partner(
                id=candidate.id, code=candidate.code, name=candidate.name, kind=candidate.kind,
                parent_id=candidate.parent_id, email=f"{candidate.code.lower()}@dealer.test",
                country="US", latitude=candidate.location.lat if candidate.location else None,
                longitude=candidate.location.lon if candidate.location else None,
                capacity=None if rng.random() < 0.3 else rng.randint(200, 2000),
            )
            partner.product_lines = [lines[code] for code in sorted(candidate.product_lines)]
            partner.territories = [Territory(kind=rule.kind, value=rule.value, position=i)
                                   for i, rule in enumerate(candidate.territories)]
            session.add(partner)
        if session.bind.dialect.name == "postgresql":  # ids were given explicitly
            session.execute(sa.text(
                "SELECT setval('partners_id_seq', (SELECT max(id) FROM partners))"))
        admin = User(email="admin@bench.test", name="Admin", role="admin")
        admin.set_password("bench password 1")
        session.add(admin)
        session.commit()
    return [code for code, _, _ in zips]


def person(rng: random.Random, n: int, zips: list[str]) -> dict[str, Any]:
    """A realistic inquiry: hot, warm or researching, email or phone, a real ZIP."""
    timeline = rng.choices(["now", "3_months", "6_months", "researching"], [35, 25, 20, 20])[0]
    body: dict[str, Any] = {
        "first_name": rng.choice(["Ann", "Bob", "Cy", "Di", "Ed", "Fay", "Gus", "Hal"]),
        "last_name": f"Farmer{n}", "company": f"Acres {n}",
        "email": f"person{n}@farm{n % 97}.example",
        "postal_code": rng.choice(zips), "product_line": rng.choice(LINES),
        "timeline": timeline, "budget": rng.choice(["approved", "approved", "planned"]),
        "role": "decision_maker",
    }
    if rng.random() < 0.5:
        body["phone"] = f"515555{n % 10000:04d}"
    return body


# --- the API -----------------------------------------------------------------------------


def bench_api(app: Any, zips: list[str], requests: int, seed_value: int) -> dict[str, Any]:
    """POST /api/v1/leads ``requests`` times; per-request latency."""
    rng = random.Random(seed_value + 1)
    client = app.test_client()
    token = client.post("/api/v1/tokens", json={"email": "admin@bench.test",
                                               "password": "bench password 1"}).get_json()
    headers = {"Authorization": f"Bearer {token['token']}"}
    bodies = []
    for n in range(requests):
        if n > 10 and rng.random() < 0.10:
            bodies.append(dict(bodies[rng.randrange(len(bodies))]))  # a repeat inquiry
        else:
            answers = {}
            body = person(rng, n, zips)
            for key in ("timeline", "budget", "role"):
                answers[key] = body.pop(key)
            body["answers"] = answers
            body["source"] = None
            bodies.append(body)
    for body in bodies[:20]:  # warm-up: caches, connections, the routing snapshot
        client.post("/api/v1/leads", json=dict(body, email="warm" + body["email"]),
                    headers=headers)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    cpu_started = time.process_time()
    started = time.perf_counter()
    for body in bodies:
        t0 = time.perf_counter()
        response = client.post("/api/v1/leads", json=body, headers=headers)
        latencies.append(time.perf_counter() - t0)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
    elapsed = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    from portal.core.models import Lead
    from portal.extensions import db

    with app.app_context():
        by_status = dict(db.session.execute(
            sa.select(Lead.status, sa.func.count()).group_by(Lead.status)).all())
    return {"requests": requests, "seconds": round(elapsed, 2),
            "per_second": round(requests / elapsed, 1), "p50_ms": round(pct(0.50), 1),
            "p95_ms": round(pct(0.95), 1), "p99_ms": round(pct(0.99), 1),
            "mean_ms": round(statistics.fmean(latencies) * 1000, 1),
            "app_cpu_ms_per_request": round(cpu / requests * 1000, 1),
            "per_app_cpu_second": round(requests / cpu, 1),
            "statuses": statuses, "leads_by_status": by_status}


# --- the import --------------------------------------------------------------------------


def write_csv(path: Path, rows: int, zips: list[str], seed_value: int) -> None:
    """A trade-show list: standard columns, an extra answer, some bad and repeated rows."""
    rng = random.Random(seed_value + 2)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        columns = ["external_id", "first_name", "last_name", "company", "email", "phone",
                   "postal_code", "product_line", "timeline", "budget", "role", "Herd size"]
        writer.writerow(columns)
        for n in range(rows):
            body = person(rng, 1_000_000 + n, zips)
            body["external_id"] = f"SHOW-{n}"
            if rng.random() < 0.02 and n > 100:  # someone already earlier in the file
                body["email"] = f"person{1_000_000 + n - rng.randint(1, 100)}@farm" \
                                f"{(1_000_000 + n - 1) % 97}.example"
            roll = rng.random()
            if roll < 0.01:
                body["email"] = "not-an-email"
            elif roll < 0.02:
                body["postal_code"] = "ABCDE"
            elif roll < 0.03:
                body["timeline"] = "someday"
            body["Herd size"] = str(rng.randint(10, 900))
            writer.writerow([body.get(column, "") for column in columns])


def bench_import(app: Any, zips: list[str], rows: int, seed_value: int, workdir: Path,
                 trace: bool) -> dict[str, Any]:
    """Upload (store + check) and run a ``rows``-row import; time and peak memory."""
    import tracemalloc

    from portal.capture import imports
    from portal.core.models import Lead, LeadImport
    from portal.extensions import db

    path = workdir / "leads.csv"
    write_csv(path, rows, zips, seed_value)
    size_mb = path.stat().st_size / 1024 / 1024
    before = rss_mb()
    if trace:
        tracemalloc.start()
    with app.app_context():
        t0 = time.perf_counter()
        with open(path, "rb") as handle:
            lead_import = imports.create_import(db.session, handle, "leads.csv", None)
        imports.start_import(db.session, lead_import, lead_import.mapping, None, None,
                             nudge=False)  # run here, timed, not by the job
        db.session.commit()
        upload_s = time.perf_counter() - t0
        import_id = lead_import.id
        # The dry run the mapping page shows (reads every row, writes nothing).
        from portal.capture.import_dry_run import dry_run
        from portal.core.models import utcnow

        t_dry = time.perf_counter()
        checked = dry_run(db.session, lead_import, now=utcnow())
        dry_s = time.perf_counter() - t_dry
        db.session.commit()
        t1, cpu1 = time.perf_counter(), time.process_time()
        imports.run_import(db.session, lead_import, batch_rows=500)
        run_s, run_cpu = time.perf_counter() - t1, time.process_time() - cpu1
        done = db.session.get(LeadImport, import_id, populate_existing=True)
        leads = db.session.scalar(sa.select(sa.func.count()).select_from(Lead))
        summary = done.summary() if done else {}
    heap_peak = tracemalloc.get_traced_memory()[1] / 1024 / 1024 if trace else None
    # Floor: reading the same file with csv.reader and nothing else.
    t_floor = time.perf_counter()
    with open(path, encoding="utf-8", newline="") as handle:
        read = sum(1 for _ in csv.reader(handle)) - 1
    floor_s = time.perf_counter() - t_floor
    return {"rows": rows, "file_mb": round(size_mb, 1), "upload_check_s": round(upload_s, 2),
            "run_s": round(run_s, 1), "rows_per_s": round(rows / run_s, 1),
            "app_cpu_s": round(run_cpu, 1), "rows_per_app_cpu_s": round(rows / run_cpu, 1),
            "rss_before_mb": round(before, 1), "rss_peak_mb": round(rss_mb(), 1),
            "python_heap_peak_mb": round(heap_peak, 1) if heap_peak else None,
            "leads_in_db": leads,
            "dry_run_s": round(dry_s, 1), "dry_run_rows_per_s": round(rows / dry_s, 1),
            "dry_run": {"created": checked.created, "joined": checked.joined,
                        "refused": checked.refused},
            "floor_csv_read_rows_per_s": round(read / floor_s), **summary}


# --- driver ------------------------------------------------------------------------------


def run_part(args: argparse.Namespace) -> dict[str, Any]:
    """One part on one backend, in this process, on a database made for it."""
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        workdir = Path(tmp)
        url, drop = make_database(args.backend, workdir)
        try:
            app = make_app(url, workdir)
            t0 = time.perf_counter()
            zips = seed(app, args.partners, args.seed)
            result: dict[str, Any] = {"backend": args.backend, "partners": args.partners,
                                      "seed_s": round(time.perf_counter() - t0, 1)}
            if args.part == "api":
                result["api"] = bench_api(app, zips, args.requests, args.seed)
            else:
                result["import"] = bench_import(app, zips, args.rows, args.seed, workdir,
                                                args.tracemalloc)
            with app.app_context():
                from portal.extensions import db

                db.engine.dispose()
            return result
        finally:
            drop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--part", choices=["api", "import", "all"], default="all")
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--tracemalloc", action="store_true")
    args = parser.parse_args()
    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    parts = ["api", "import"] if args.part == "all" else [args.part]
    if len(backends) == 1 and len(parts) == 1:
        print(json.dumps(run_part(args), indent=2), flush=True)
        return
    print(f"# {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs", flush=True)
    for backend in backends:
        for part in parts:
            # A process per part: each one's peak memory is its own.
            command = [sys.executable, __file__, "--backend", backend, "--part", part,
                       "--partners", str(args.partners), "--requests", str(args.requests),
                       "--rows", str(args.rows), "--seed", str(args.seed)]
            if args.tracemalloc:
                command.append("--tracemalloc")
            subprocess.run(command, check=True)


if __name__ == "__main__":
    main()
