"""Benchmark the partner inbox at scale: one dealer's 5,000 leads among 1,000,000.

    python bench/bench_inbox.py [--backend sqlite|postgresql|both] [--leads 1000000]
        [--partners 10000] [--rules 50000] [--inbox-leads 5000] [--duration 20]
        [--connections 20] [--workers 2] [--workdir /tmp/bench-inbox] [--reuse]
        [--rounds 1] [--explain] [--profile N]

Each backend gets a fresh, migrated database (bench/seed.py): partners with territories,
``--leads`` minus ``--inbox-leads`` leads spread over the partners in a year's status mix
(most closed, a few unrouted or being worked), and one dealer with ``--inbox-leads`` leads
in its inbox (40 new offers with pending offers, 300 being worked of which about a quarter
overdue, the rest closed) and a partner user. ``--reuse`` keeps the database (the SQLite
file in ``--workdir``, the PostgreSQL database ``portal_bench_inbox``) between runs (seeding
1 M leads takes minutes).

Then, in this process (test client, same database): the number of queries each inbox tab
makes (``--explain`` prints each query's plan, ``--profile N`` a cProfile of N renders).
Then the real thing: gunicorn (``--workers`` sync workers) on 127.0.0.1 on a free port,
sign-in through /auth/login with urllib, a check that the inbox shows the seeded counts,
and ``wrk -t2 -c<connections> -d<duration>s`` on the inbox's first tab (page 1) and on
/readyz (one ``SELECT 1`` through the same session machinery: the floor). wrk's own
percentiles come from a Lua ``done`` hook (it prints no p95 by itself).
"""

from __future__ import annotations

import argparse
import cProfile
import http.cookiejar
import json
import os
import platform
import pstats
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402

EMAIL = "dealer@bench.test"
PASSWORD = "bench-password-1"
#: the PostgreSQL database ``--reuse`` keeps (dropped and seeded again without it)
KEPT_DATABASE = "portal_bench_inbox"
TABS = ("new", "contact", "open", "overdue", "closed")
WRK_SCRIPT = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("BENCH requests=%d duration_us=%d bytes=%d errors=%d status=%d\\n",
    summary.requests, summary.duration, summary.bytes,
    e.connect + e.read + e.write + e.timeout, e.status))
  for _, p in ipairs({50, 75, 90, 95, 99, 99.9}) do
    io.write(string.format("BENCH p%s=%d\\n", p, latency:percentile(p)))
  end
  io.write(string.format("BENCH max=%d mean=%.0f\\n", latency.max, latency.mean))
end
"""


def loadavg() -> str:
    """The 1-minute load average (other work on the shared VM shows here)."""
    return Path("/proc/loadavg").read_text().split()[0]


# --- seeding ----------------------------------------------------------------------------------


def seed_database(app: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Partners, the background leads, the dealer's inbox; returns what the checks expect."""
    from seed import seed_dealer_inbox, seed_partners, seed_workload

    from portal.core.models import Partner
    from portal.extensions import db

    started = time.perf_counter()
    seed_partners(app, partners=args.partners, rules=args.rules)
    print(f"  partners + rules: {time.perf_counter() - started:.0f} s", flush=True)
    mix = seed_workload(app, leads=args.leads - args.inbox_leads, partners=args.partners)
    print(f"  {args.leads - args.inbox_leads:,} leads: {time.perf_counter() - started:.0f} s",
          flush=True)
    with app.app_context():
        # A busy top-level dealer: the heaviest inbox is the one the target is about.
        dealer_id = db.session.scalar(
            sa.select(Partner.id).where(Partner.kind == "dealer", Partner.active.is_(True),
                                        Partner.parent_id.is_(None))
            .order_by(Partner.id).limit(1))
    seed_dealer_inbox(app, partner_id=dealer_id, leads=args.inbox_leads, email=EMAIL,
                      password=PASSWORD)
    with app.app_context():
        # PostgreSQL's autovacuum would vacuum and analyse the new rows soon after a bulk
        # load (since PostgreSQL 13 inserts alone trigger it): the steady state, with the
        # visibility map set, is what a dealer meets. SQLite is left as a deployment would
        # leave it (no ANALYZE), unless --analyze.
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("VACUUM ANALYZE")
            elif args.analyze:
                conn.exec_driver_sql("ANALYZE")
        tabs, other = expected_tabs(dealer_id, app.config["OUTCOME_DUE_DAYS"])
    seconds = time.perf_counter() - started
    print(f"  seeded in {seconds:.0f} s; dealer {dealer_id}: {tabs}", flush=True)
    return {"dealer_id": dealer_id, "tabs": tabs, "mix": mix, "dealer_leads": other,
            "seed_seconds": round(seconds)}


def expected_tabs(partner_id: int, due_days: float) -> tuple[dict[str, int], int]:
    """What the inbox should count, counted here by status (the background leads the
    dealer also received included), and how many leads the dealer holds."""
    from datetime import UTC, datetime, timedelta

    from portal.core.models import Lead
    from portal.extensions import db

    by_status = dict(db.session.execute(
        sa.select(Lead.status, sa.func.count()).where(Lead.assigned_partner_id == partner_id)
        .group_by(Lead.status)).all())
    cutoff = datetime.now(UTC) - timedelta(days=due_days)
    working = ("accepted", "contacted", "appointment", "quoted")
    late = db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
        Lead.assigned_partner_id == partner_id, Lead.status.in_(working),
        Lead.accepted_at < cutoff)) or 0
    tabs = {
        "new": by_status.get("offered", 0), "contact": by_status.get("accepted", 0),
        "open": sum(by_status.get(s, 0) for s in working[1:]), "overdue": late,
        "closed": sum(by_status.get(s, 0) for s in ("won", "lost", "no_interest")),
    }
    return tabs, sum(by_status.values())


@contextmanager
def database(backend: str, args: argparse.Namespace) -> Any:
    """An app on a seeded database, and the seeding facts (reused when asked and possible)."""
    from seed import bench_app, database_exists, database_url

    from portal import create_app
    from portal.extensions import db

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    facts_file = workdir / f"seeded-{backend}.json"
    url = database_url(backend, workdir, KEPT_DATABASE)
    if args.reuse and facts_file.exists() and database_exists(url):
        facts = json.loads(facts_file.read_text())
        app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "HUEY_IMMEDIATE": True,
                          "MAIL_SINK_DIR": str(workdir / "mail")})
        print(f"  reusing {sa.make_url(url).render_as_string()}: {facts['tabs']}")
        try:
            yield app, facts
        finally:
            with app.app_context():
                db.engine.dispose()
        return
    facts_file.unlink(missing_ok=True)
    with bench_app(backend, workdir, keep_as=KEPT_DATABASE if args.reuse else None) as app:
        facts = seed_database(app, args)
        if args.reuse:
            facts_file.write_text(json.dumps(facts))
        yield app, facts


# --- in process: query counts, plans, profile ------------------------------------------------


def in_process(app: Any, facts: dict[str, Any], args: argparse.Namespace) -> dict[str, int]:
    """Queries per inbox tab through the test client; optionally plans and a profile."""
    from portal.extensions import db

    app.config["WTF_CSRF_ENABLED"] = False
    client = app.test_client()
    answer = client.post("/auth/login", data={"email": EMAIL, "password": PASSWORD})
    assert answer.status_code == 303, answer.status_code
    counts: dict[str, int] = {}
    with app.app_context():
        engine = db.engine
    for tab in TABS:
        statements: list[tuple[str, Any]] = []

        def before(conn: Any, cursor: Any, statement: str, params: Any, *rest: Any) -> None:
            statements.append((statement, params))  # noqa: B023 (used inside the loop)

        sa.event.listen(engine, "before_cursor_execute", before)
        try:
            response = client.get(f"/leads/?tab={tab}")
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)
        assert response.status_code == 200, (tab, response.status_code)
        queries = [s for s in statements if not s[0].lstrip().upper().startswith(
            ("SAVEPOINT", "RELEASE", "ROLLBACK", "BEGIN", "COMMIT"))]
        counts[tab] = len(queries)
        if args.explain:
            print(f"\n-- tab {tab}: {len(queries)} queries")
            explain(engine, queries)
    if args.profile:
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.profile):
            client.get("/leads/?tab=new")
        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(20)
    return counts


def explain(engine: sa.Engine, queries: list[tuple[str, Any]]) -> None:
    """Each statement with its plan (EXPLAIN QUERY PLAN / EXPLAIN ANALYZE) and time."""
    with engine.connect() as conn:
        sqlite = conn.dialect.name == "sqlite"
        for statement, params in queries:
            print("\n" + " ".join(statement.split())[:400])
            prefix = "EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN (ANALYZE, BUFFERS) "
            for row in conn.exec_driver_sql(prefix + statement, params):
                print("   ", row[-1] if sqlite else row[0])
            started = time.perf_counter()
            conn.exec_driver_sql(statement, params).fetchall()
            print(f"    ({(time.perf_counter() - started) * 1000:.2f} ms)")


# --- gunicorn, sign-in, wrk ---------------------------------------------------------------------


def free_port() -> int:
    """A free TCP port on 127.0.0.1 (never 5000)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port != 5000:
            return port


@contextmanager
def gunicorn(url: str, workers: int, workdir: Path) -> Any:
    """The portal under gunicorn on a free port, as production starts it (``wsgi:app``:
    each worker warms its routing caches first); yields its base URL."""
    port = free_port()
    env = dict(os.environ, SECRET_KEY="bench-inbox", DATABASE_URL=url,
               HUEY_SQLITE_PATH=str(workdir / "huey.db"))
    log = (workdir / "gunicorn.log").open("w")
    process = subprocess.Popen(
        [str(ROOT / ".venv/bin/gunicorn"), "--workers", str(workers), "--bind",
         f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
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
        process.wait(timeout=20)
        log.close()


def sign_in(base: str) -> tuple[urllib.request.OpenerDirector, str]:
    """Sign in through the login form (CSRF token and all); the opener and session cookie."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(base + "/auth/login").read().decode()
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token, "no CSRF token on the login page"
    body = urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD,
                                   "csrf_token": token.group(1)}).encode()
    answer = opener.open(base + "/auth/login", data=body)  # follows the 303 home
    assert answer.status == 200 and "/auth/login" not in answer.url, answer.url
    cookie = next(c.value for c in jar if c.name == "session")
    return opener, cookie


def fetch(opener: urllib.request.OpenerDirector, url: str) -> tuple[int, str, float]:
    """GET ``url``: status, body and milliseconds."""
    started = time.perf_counter()
    with opener.open(url) as answer:
        body = answer.read().decode()
        return answer.status, body, (time.perf_counter() - started) * 1000


def shown_counts(page: str) -> dict[str, str]:
    """The tab counts as the inbox page shows them ("4,719", or "1,000+" past the cap)."""
    return dict(re.findall(
        r'class="tab tab-(\w+)[^"]*"[^>]*>[^<]*<span class="count"[^>]*>([\d,]+\+?)<', page))


def expected_counts(tabs: dict[str, int]) -> dict[str, str]:
    """The seeded counts as the inbox should show them."""
    from portal.leads.partner_inbox import count_text

    return {tab: count_text(n, tab) for tab, n in tabs.items()}


def check_card_forms(page: str) -> None:
    """Every card's accept and decline forms post to its own lead, with ids of its own."""
    cards = page.split('<article class="lead-card')[1:]
    for card in cards:
        lead_id = re.search(r'href="/leads/([0-9a-f-]{36})"', card).group(1)  # type: ignore
        posts = re.findall(r'hx-post="/leads/([0-9a-f-]{36})/(\w+)"', card)
        assert posts == [(lead_id, "accept"), (lead_id, "decline")], (lead_id, posts)
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "duplicate element ids"


def wrk(url: str, cookie: str | None, args: argparse.Namespace, connections: int | None = None
        ) -> dict[str, Any]:
    """Run wrk on ``url``; req/s, latency percentiles (ms), errors, bytes per request."""
    connections = connections or args.connections
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    command = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{args.duration}s",
               "--latency",
               "-s", script.name]
    if cookie:
        command += ["-H", f"Cookie: session={cookie}"]
    load_before = loadavg()
    output = subprocess.run(command + [url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)
    facts = dict(re.findall(r"(\S+)=(\S+)", " ".join(
        line[6:] for line in output.splitlines() if line.startswith("BENCH "))))
    requests = int(facts["requests"])
    result = {
        "req_s": requests / (int(facts["duration_us"]) / 1e6),
        "requests": requests, "errors": int(facts["errors"]), "non_2xx": int(facts["status"]),
        "bytes_per_request": int(facts["bytes"]) / max(requests, 1),
        "load_before": load_before, "load_after": loadavg(),
        "command": " ".join(command[:-2] + ([command[-1][:24] + '…"'] if cookie else [])),
    }
    for key in ("p50", "p75", "p90", "p95", "p99", "p99.9", "max", "mean"):
        result[key] = float(facts[key]) / 1000
    return result


# --- the run --------------------------------------------------------------------------------------


def run_backend(backend: str, args: argparse.Namespace) -> None:
    """Seed (or reuse), count queries, serve with gunicorn, check and measure."""
    from portal.extensions import db

    print(f"\n=== {backend} ===", flush=True)
    with database(backend, args) as (app, facts):
        with app.app_context():
            url = db.engine.url.render_as_string(hide_password=False)
            total = db.session.scalar(sa.text("SELECT count(*) FROM leads"))
            partners = db.session.scalar(sa.text("SELECT count(*) FROM partners"))
            rules = db.session.scalar(sa.text("SELECT count(*) FROM territories"))
        print(f"  data: {total:,} leads, {partners:,} partners, {rules:,} territory rules; "
              f"the dealer holds {facts['dealer_leads']:,}")
        queries = in_process(app, facts, args)
        print(f"  queries per inbox render (test client): {queries}")
        with app.app_context():
            db.engine.dispose()

        with gunicorn(url, args.workers, Path(args.workdir)) as base:
            opener, cookie = sign_in(base)
            status, page, _ = fetch(opener, base + "/leads/?tab=new")
            shown = shown_counts(page)
            cards = page.count('<article class="lead-card')
            print(f"  inbox answers {status}: counts {shown}, {cards} cards on page 1")
            expected = expected_counts(facts["tabs"])
            assert status == 200 and shown == expected, (shown, expected)
            assert cards == min(25, facts["tabs"]["new"]), cards
            assert "Accept within:" in page
            check_card_forms(page)
            for _ in range(20):  # warm both workers
                fetch(opener, base + "/leads/?tab=new")
                fetch(opener, base + "/readyz")

            tab_times = {}
            for tab in TABS:
                times = []
                for _ in range(3):
                    status, body, ms = fetch(opener, f"{base}/leads/?tab={tab}")
                    assert status == 200
                    times.append(ms)
                tab_times[tab] = (min(times), len(body))
            for extra, path in (("closed p. 100", "/leads/?tab=closed&page=100"),
                                ("search 'Lead4'", "/leads/?tab=closed&q=Lead4")):
                status, body, ms = fetch(opener, base + path)
                assert status == 200
                tab_times[extra] = (ms, len(body))

            rounds = []
            for _ in range(args.rounds):
                ready = wrk(base + "/readyz", None, args)
                inbox = wrk(base + "/leads/?tab=new", cookie, args)
                # One connection per worker: no queueing, so this is the service time.
                alone = wrk(base + "/leads/?tab=new", cookie, args, args.workers)
                rounds.append((inbox, ready, alone))
            # The session still works after the run (wrk counts 3xx as success).
            status, page, _ = fetch(opener, base + "/leads/?tab=new")
            assert status == 200 and shown_counts(page) == expected

    report(backend, facts, queries, tab_times, rounds, args)


def report(backend: str, facts: dict[str, Any], queries: dict[str, int],
           tab_times: dict[str, tuple[float, int]], rounds: list[Any],
           args: argparse.Namespace) -> None:
    """Print the results as Markdown tables (the README's shape)."""
    print(f"\n### {backend}: {args.leads:,} leads, {args.partners:,} partners, "
          f"{args.rules:,} rules; dealer inbox {facts['tabs']}")
    print(f"machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"gunicorn --workers {args.workers}, wrk -t2 -c{args.connections} "
          f"-d{args.duration}s")
    print("\n| tab (single request, best of 3) | ms | HTML bytes | queries |")
    print("|---|---|---|---|")
    for tab, (ms, size) in tab_times.items():
        print(f"| {tab} | {ms:.1f} | {size:,} | {queries.get(tab, '')} |")
    for n, (inbox, ready, alone) in enumerate(rounds, 1):
        print(f"\nround {n}: load average before/after: inbox {inbox['load_before']}/"
              f"{inbox['load_after']}, /readyz {ready['load_before']}/{ready['load_after']}")
        print("\n| page | req/s | p50 | p75 | p90 | p95 | p99 | max | errors / non-2xx |")
        print("|---|---|---|---|---|---|---|---|---|")
        for name, r in ((f"inbox (new, page 1), c{args.connections}", inbox),
                        (f"/readyz, c{args.connections}", ready),
                        (f"inbox, c{args.workers} (one per worker)", alone)):
            print(f"| {name} | {r['req_s']:.0f} | {r['p50']:.1f} | {r['p75']:.1f} | "
                  f"{r['p90']:.1f} | {r['p95']:.1f} | {r['p99']:.1f} | {r['max']:.0f} | "
                  f"{r['errors']} / {r['non_2xx']} |")
        print(f"\nratio inbox / readyz: {inbox['req_s'] / ready['req_s']:.2f} of the req/s; "
              f"{inbox['bytes_per_request']:,.0f} bytes per inbox response; "
              f"p95 target < 50 ms: {'met' if inbox['p95'] < 50 else 'NOT met'}")


def main() -> None:
    """Parse the options and run each backend."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgresql", "both"), default="sqlite")
    parser.add_argument("--leads", type=int, default=1_000_000)
    parser.add_argument("--partners", type=int, default=10_000)
    parser.add_argument("--rules", type=int, default=50_000)
    parser.add_argument("--inbox-leads", type=int, default=5000)
    parser.add_argument("--duration", type=int, default=20)
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp/bench-inbox")
    parser.add_argument("--reuse", action="store_true",
                        help="keep the seeded database (SQLite file in --workdir, PostgreSQL "
                             f"database {KEPT_DATABASE}) and reuse it on the next run")
    parser.add_argument("--analyze", action="store_true", help="ANALYZE SQLite after seeding")
    parser.add_argument("--explain", action="store_true", help="print each query's plan")
    parser.add_argument("--profile", type=int, default=0, help="cProfile N inbox renders")
    parser.add_argument("--no-wrk", action="store_true", help="only seed and count queries")
    args = parser.parse_args()
    print(f"load average: {Path('/proc/loadavg').read_text().strip()}")
    for backend in (("sqlite", "postgresql") if args.backend == "both" else (args.backend,)):
        if args.no_wrk:
            with database(backend, args) as (app, facts):
                print(f"  queries per render: {in_process(app, facts, args)}")
        else:
            run_backend(backend, args)


if __name__ == "__main__":
    main()
