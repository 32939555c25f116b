"""Memory of partner-index rebuilds: does a process that rebuilds its routing snapshot many
times (every partner edit triggers one) keep its memory flat?

Seeds N partners in a fresh SQLite database, then rebuilds the index R times as
``partner_index`` does (a partner edit in between, the old snapshot replaced), and reports
what tracemalloc and the process's RSS hold after every tenth rebuild, beside the
objects the cyclic collector tracks. A bare loop of the same number of iterations is the
floor of the run. Usage:

    .venv/bin/python bench/bench_index_memory.py [--partners 2000] [--rebuilds 100]
"""

from __future__ import annotations

import argparse
import gc
import resource
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))

from seed import bench_app, seed_partners  # noqa: E402

from portal.core.models import Partner, utcnow  # noqa: E402
from portal.dispatch import services as dispatch  # noqa: E402
from portal.extensions import db  # noqa: E402


def _rss_mib() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * resource.getpagesize() / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--partners", type=int, default=2000)
    parser.add_argument("--rules", type=int, default=8000)
    parser.add_argument("--rebuilds", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, bench_app("sqlite", Path(tmp)) as app:
        seed_partners(app, partners=args.partners, rules=args.rules)
        started = time.perf_counter()
        for _ in range(args.rebuilds * 1000):
            pass
        floor = time.perf_counter() - started
        with app.app_context():
            session = db.session
            dispatch.warm_up(session)  # start-up, as wsgi.py does
            db.session.remove()
            dispatch.freeze_start_up_objects()
            tracemalloc.start()
            base = tracemalloc.get_traced_memory()[0]
            rss0 = _rss_mib()
            print(f"{args.partners} partners; floor: bare loop of {args.rebuilds * 1000} "
                  f"iterations {floor * 1000:.1f} ms")
            print(f"{'rebuilds':>8} {'traced MiB':>11} {'RSS MiB':>8} {'gc objects':>11} "
                  f"{'s/rebuild':>9}")
            first = last = 0.0
            timer = time.perf_counter()
            for n in range(1, args.rebuilds + 1):
                # A partner edit: the stamp changes, the next request rebuilds.
                db.session.execute(sa.update(Partner).where(Partner.id == 1 + n % 50)
                                   .values(updated_at=utcnow()))
                db.session.commit()
                dispatch.partner_index(db.session)
                db.session.remove()
                if n % 10 == 0:
                    gc.collect()
                    traced = (tracemalloc.get_traced_memory()[0] - base) / 2**20
                    first = first or traced
                    last = traced
                    per = (time.perf_counter() - timer) / 10
                    timer = time.perf_counter()
                    print(f"{n:>8} {traced:>11.2f} {_rss_mib() - rss0:>8.1f} "
                          f"{len(gc.get_objects()):>11,} {per:>9.3f}")
            print(f"growth from rebuild 10 to {args.rebuilds}: {last - first:+.2f} MiB traced")


if __name__ == "__main__":
    main()
