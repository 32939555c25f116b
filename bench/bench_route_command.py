"""Route 50,000 pending leads through the portal (`flask --app portal route`).

Seeds 10,000 partners / 50,000 territory rules and 50,000 qualified leads into a fresh
database, then runs the real command in a subprocess (as an operator would) and reports
its throughput. Every offer is a real lifecycle write: the offer row, the event, the
lead and the partner's capacity counter.

    python bench/bench_route_command.py [--backend sqlite|postgresql|both]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from seed import bench_app, seed_leads, seed_partners

from portal.core.models import Lead
from portal.extensions import db

ROOT = Path(__file__).resolve().parent.parent


def run(backend: str, partners: int, rules: int, leads: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, bench_app(backend, Path(tmp)) as app:
        started = time.perf_counter()
        seed_partners(app, partners=partners, rules=rules)
        seed_leads(app, leads=leads)
        seeded = time.perf_counter() - started
        env = dict(os.environ, SECRET_KEY="bench", DATABASE_URL=app.config["DATABASE_URL"])
        started = time.perf_counter()
        done = subprocess.run(
            [str(ROOT / ".venv/bin/flask"), "--app", "portal", "route", "--batch", "1000"],
            cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        seconds = time.perf_counter() - started
        with app.app_context():
            counts = dict(db.session.execute(
                sa.select(Lead.status, sa.func.count()).group_by(Lead.status)).all())
        return {"backend": backend, "seed_s": round(seeded, 1), "route_s": round(seconds, 1),
                "leads_per_s": round(leads / seconds), "statuses": counts,
                "command_says": done.stdout.strip()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="both")
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50_000)
    parser.add_argument("--leads", type=int, default=50_000)
    args = parser.parse_args()
    backends = ("sqlite", "postgresql") if args.backend == "both" else (args.backend,)
    for backend in backends:
        result = run(backend, args.partners, args.rules, args.leads)
        for key, value in result.items():
            print(f"{key:>14}: {value}")
        print()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
