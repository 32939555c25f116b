"""Benchmark alerts and digests (issue 13): capture → alert on a real SMTP server, and a
daily digest run for 10,000 partner users.

    python bench/bench_notify.py [--backend sqlite|postgresql|both] [--captures 1000]
                                 [--users 10000] [--rate 10]
                                 [--patterns burst,steady[,digest-hour]]

Each backend runs in its own process on a fresh database (a temporary SQLite file, or a
database created and dropped on 127.0.0.1:5432 as user postgres), migrated to heads and
seeded with Core bulk inserts: ``--users / 5`` partners with the routing benchmark's
territories (five rules a partner), five users each (the first the firm's administrator;
a mix of own email choices over the firm defaults), four channel managers and an admin,
and ~35 leads a partner: waiting offers, late first contacts, overdue outcomes, results of
the last day and older closed leads. A real SMTP server (aiosmtpd) runs in this process
and records when each message arrives.

1. Digests: one daily run, ``outbox.send_digests(frequency="daily", by_hand=True)`` (what
   ``flask --app portal digests send --period daily`` calls) in a process of its own, so
   its peak RSS is the run's. Wall time, plan time, messages/s, sent vs skipped (nothing
   to say), at most one per user, SQL statements per digest. Then ``plan`` again: 0 new.
2. Alerts: the real worker (``flask --app portal worker``: Huey on the SQLite queue,
   2 threads, periodic sweeps on) in a subprocess pointed at the database and the SMTP
   port; leads captured through ``POST /api/v1/leads`` (Flask test client, bearer token,
   every one hot so it routes) in a burst as fast as one client goes, then at a steady
   ``--rate`` a second. Latency = SMTP arrival − start of the capture request, per alert
   email and per capture (its last alert); every alert row must arrive exactly once.
   ``--patterns …,digest-hour`` adds the steady pattern while the worker sends a daily
   digest run (the day's digest rows written again, its ``digest_run`` job queued).
3. Floors in the same run: ``/readyz`` (one SELECT 1) through the test client, and raw
   ``smtplib`` sends of a message the size of an alert and of a digest to the same
   server, a connection each (as ``core.mail.deliver`` does) and over one connection.

The seed keeps the clocks quiet during the alert run (waiting offers are younger than half
their acceptance time, late first contacts older than the clocks' look-back), so every
email in part 2 is an alert of a capture; anything else that arrives is counted apart.
"""

from __future__ import annotations

import argparse
import email.policy
import json
import os
import platform
import random
import re
import shutil
import signal
import smtplib
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.parser import BytesHeaderParser
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402

ALERT_TITLES = ("New lead offered", "Lead forwarded to you", "Lead assigned to you")
ZONES = ("", "", "America/New_York", "America/Denver", "America/Los_Angeles")
LEAD_LINK = re.compile(r"/leads/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})")


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * len(ordered)) - 1))]


def proc_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# --- the SMTP server ---------------------------------------------------------------------


class Recorder:
    """aiosmtpd handler: when each message arrived, to whom, its subject and size; the raw
    message of alerts (their lead is read from the link in the body afterwards)."""

    def __init__(self) -> None:
        self.messages: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self._headers = BytesHeaderParser(policy=email.policy.default)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        arrived = time.monotonic()
        content = envelope.original_content
        subject = str(self._headers.parsebytes(content)["Subject"] or "")
        alert = subject.startswith(ALERT_TITLES)
        with self.lock:
            self.messages.append({"at": arrived, "to": [a.lower() for a in envelope.rcpt_tos],
                                  "subject": subject, "size": len(content),
                                  "raw": content if alert else None})
        return "250 OK"

    def since(self, start: int) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.messages[start:])

    def __len__(self) -> int:
        with self.lock:
            return len(self.messages)


def lead_of(raw: bytes) -> str | None:
    message = message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("plain",))
    found = LEAD_LINK.search(str(body.get_content()) if body else "")
    return found.group(1) if found else None


# --- seeding -----------------------------------------------------------------------------


def app_config(url: str, tmp: Path, smtp_port: int) -> dict[str, Any]:
    """The settings this process, the worker and the digest run share."""
    return {"SECRET_KEY": "bench-notify-not-for-production", "DATABASE_URL": url,
            "HUEY_SQLITE_PATH": str(tmp / "huey.db"), "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": smtp_port, "PORTAL_BASE_URL": "http://portal.bench",
            "MAIL_SINK_DIR": str(tmp / "mail-sink"), "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000"}


def seed_people(app: Any, partners: list[Any], rng: random.Random) -> dict[str, int]:
    """Five users a partner (the first its administrator), firm defaults and own choices;
    four channel managers (one wants a daily digest) and an admin for the API token."""
    from portal.core.models import MailPreference, Partner, User
    from portal.extensions import db

    now = datetime.now(UTC)
    users, prefs, firms = [], [], []
    counts = {"partner_users": 0, "own_choices": 0}
    user_id = 0
    for candidate in partners:
        firm_alerts = "digest" if rng.random() < 0.05 else "every"
        firms.append({"pid": candidate.id, "zone": rng.choice(ZONES), "alerts": firm_alerts})
        for k in range(5):
            user_id += 1
            users.append({"id": user_id, "email": f"u{k}.p{candidate.id}@partners.bench",
                          "name": f"User {k} of {candidate.name}", "password_hash": None,
                          "role": "partner", "partner_id": candidate.id,
                          "partner_admin": k == 0, "active": True, "session_version": 1,
                          "created_at": now})
            counts["partner_users"] += 1
            roll = rng.random()
            if roll < 0.20:  # a fifth chose something of their own
                choice = rng.choice([
                    {"alerts": "digest"}, {"alerts": "off"}, {"frequency": "off"},
                    {"alerts": "every"},
                    {"digest_hour": rng.randint(5, 9), "time_zone": rng.choice(ZONES[2:])}])
                prefs.append({"user_id": user_id, "frequency": None, "alerts": None,
                              "digest_hour": None, "time_zone": None, "updated_at": now,
                              **choice})
                counts["own_choices"] += 1
    with app.app_context():
        conn = db.session.connection()
        conn.execute(sa.update(Partner).where(Partner.id == sa.bindparam("pid"))
                     .values(time_zone=sa.bindparam("zone"),
                             alert_default=sa.bindparam("alerts")), firms)
        for start in range(0, len(users), 5000):
            conn.execute(sa.insert(User), users[start:start + 5000])
        if prefs:
            conn.execute(sa.insert(MailPreference), prefs)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT setval(pg_get_serial_sequence('users', 'id'), "
                                 "(SELECT max(id) FROM users))")
        for n in range(4):
            manager = User(email=f"manager{n}@bench.test", name=f"Manager {n}", role="manager")
            db.session.add(manager)
            if n == 0:
                db.session.flush()
                db.session.add(MailPreference(user_id=manager.id, frequency="daily"))
        admin = User(email="admin@bench.test", name="Admin", role="admin")
        admin.set_password("bench password 1")
        db.session.add(admin)
        db.session.commit()
    return counts


def seed_leads(app: Any, partners: list[Any], rng: random.Random) -> dict[str, int]:
    """What the digests report on: per partner, some waiting offers (with their pending
    offer, younger than half the acceptance time), late first contacts (older than the
    clocks' look-back), overdue outcomes, leads being worked, results of the last day, and
    older closed leads."""
    from bench_routing import load_zips
    from seed import _lead_row

    from portal.core.models import Lead, Offer
    from portal.extensions import db

    places = [(code, region) for code, _, region in load_zips()]
    now = datetime.now(UTC)
    sla = timedelta(hours=float(app.config["ACCEPT_SLA_HOURS"]))
    due_days = float(app.config["OUTCOME_DUE_DAYS"])
    counts = {"waiting": 0, "late_contact": 0, "overdue": 0, "working": 0,
              "closed_last_day": 0, "closed_older": 0}
    leads: list[dict[str, Any]] = []
    offers: list[dict[str, Any]] = []
    n = 3_000_000

    def add(kind: str, status: str, partner_id: int, created: datetime, **when: Any) -> None:
        nonlocal n
        n += 1
        row = _lead_row(rng, n, rng.choice(places), status, partner_id, created, now, **when)
        leads.append(row)
        counts[kind] += 1
        if status == "offered":
            offers.append({"lead_id": row["id"], "partner_id": partner_id,
                           "offered_at": row["offered_at"],
                           "expires_at": row["offered_at"] + sla, "method": "rule",
                           "reason": "", "explanation": None, "decline_reason": "",
                           "response": "pending", "responded_at": None})

    def days_ago(low: float, high: float) -> datetime:
        return now - timedelta(days=rng.uniform(low, high))

    for candidate in partners:
        pid = candidate.id
        if rng.random() < 0.35:
            for _ in range(rng.randint(1, 4)):
                add("waiting", "offered", pid, now - timedelta(hours=rng.uniform(0.6, 10.5)))
        if rng.random() < 0.15:
            for _ in range(rng.randint(1, 3)):
                add("late_contact", "accepted", pid, days_ago(10, 40))
        if rng.random() < 0.20:
            for _ in range(rng.randint(1, 5)):
                accepted = days_ago(due_days + 1, due_days * 3)
                add("overdue", rng.choice(("contacted", "appointment", "quoted")), pid,
                    accepted - timedelta(hours=rng.randint(2, 30)), accepted_at=accepted)
        if rng.random() < 0.50:
            for _ in range(rng.randint(1, 6)):
                accepted = days_ago(1, due_days - 1)
                add("working", rng.choice(("contacted", "appointment", "quoted")), pid,
                    accepted - timedelta(hours=rng.randint(2, 30)), accepted_at=accepted)
        if rng.random() < 0.15:
            for _ in range(rng.randint(1, 3)):
                closed = now - timedelta(hours=rng.uniform(0.2, 23))
                add("closed_last_day", rng.choice(("won", "lost", "no_interest")), pid,
                    closed - timedelta(days=rng.uniform(3, 40)), closed_at=closed)
        for _ in range(rng.randint(20, 35)):
            created = days_ago(30, 730)
            closed = min(now - timedelta(days=2), created + timedelta(days=rng.uniform(2, 60)))
            add("closed_older", rng.choice(("won", "lost", "lost", "no_interest")), pid,
                created, closed_at=closed)
    with app.app_context():
        conn = db.session.connection()
        for start in range(0, len(leads), 5000):
            conn.execute(sa.insert(Lead), leads[start:start + 5000])
        for start in range(0, len(offers), 5000):
            conn.execute(sa.insert(Offer), offers[start:start + 5000])
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
        db.session.commit()
    return counts


# --- part 1: the digest run (its own process) --------------------------------------------


def run_digests(config: dict[str, Any], profile: bool, trace: bool) -> None:
    """The digest run's process: one daily run, by hand, timed; JSON on stdout."""
    from portal import create_app
    from portal.extensions import db
    from portal.notify import digests, outbox

    app = create_app(config)
    with app.app_context():
        db.session.execute(sa.select(1))
        db.session.commit()
        rss_start = proc_kb(os.getpid(), "VmRSS")
        statements = {"n": 0}
        sa.event.listen(db.engine, "before_cursor_execute",
                        lambda *args: statements.__setitem__("n", statements["n"] + 1))
        planned = {}
        plan = digests.plan

        def timed_plan(*args: Any, **kwargs: Any) -> int:
            t0 = time.perf_counter()
            result = plan(*args, **kwargs)
            planned["s"] = time.perf_counter() - t0
            planned["statements"] = statements["n"]
            return result

        digests.plan = timed_plan  # type: ignore[assignment]
        if trace:
            import tracemalloc

            tracemalloc.start(10)
        profiler = None
        if profile:
            import cProfile

            profiler = cProfile.Profile()
            profiler.enable()
        t0 = time.perf_counter()
        cpu0 = time.process_time()
        outcomes = outbox.send_digests(frequency="daily", by_hand=True)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu0
        if profiler is not None:
            import pstats

            profiler.disable()
            pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        if trace:
            snapshot = tracemalloc.take_snapshot()
            print(f"traced now {tracemalloc.get_traced_memory()[0] / 1e6:.1f} MB, peak "
                  f"{tracemalloc.get_traced_memory()[1] / 1e6:.1f} MB", file=sys.stderr)
            for stat in snapshot.statistics("traceback")[:8]:
                print(stat, *stat.traceback.format()[-6:], sep="\n  ", file=sys.stderr)
        digests.plan = plan  # type: ignore[assignment]
        again = digests.plan(db.session, frequency="daily", by_hand=True)
        db.session.commit()
    print(json.dumps({
        "outcomes": outcomes, "seconds": elapsed, "cpu_seconds": cpu,
        "plan_seconds": planned.get("s"), "plan_statements": planned.get("statements"),
        "statements": statements["n"], "planned_again": again,
        "rss_start_mb": rss_start / 1024,
        # VmHWM, not getrusage: after fork and exec, ru_maxrss still counts the parent's
        # pages at the fork (Linux keeps the old image's high-water mark across exec).
        "peak_rss_mb": proc_kb(os.getpid(), "VmHWM") / 1024}))


def bench_digests(config: dict[str, Any], recorder: Recorder, app: Any,
                  profile: bool, trace: bool) -> dict[str, Any]:
    from portal.core.models import MailPreference, Partner, User
    from portal.extensions import db
    from portal.notify import services

    with app.app_context():
        rows = db.session.execute(
            sa.select(User, MailPreference, Partner)
            .outerjoin(MailPreference, MailPreference.user_id == User.id)
            .outerjoin(Partner, Partner.id == User.partner_id)).all()
        daily = sum(1 for user, pref, partner in rows
                    if user.role in ("partner", "manager", "admin")
                    and services.merge(user, pref, partner).frequency == "daily")
        db.session.rollback()
    first = len(recorder)
    log(f"digests: a daily run for {daily:,} users who want one (a process of its own)")
    command = [sys.executable, __file__, "--run-digests", json.dumps(config)]
    if profile:
        command.append("--profile")
    if trace:
        command.append("--tracemalloc")
    started = time.monotonic()
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    wall = time.monotonic() - started
    if done.returncode != 0:
        sys.stderr.write(done.stderr[-5000:])
        raise SystemExit("the digest run failed")
    if profile or trace:
        sys.stderr.write(done.stderr)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    time.sleep(0.5)
    received = recorder.since(first)
    per_user: dict[str, int] = {}
    for message in received:
        for address in message["to"]:
            per_user[address] = per_user.get(address, 0) + 1
    sent = result["outcomes"].get("sent", 0)
    sizes = [m["size"] for m in received]
    return {
        "users_wanting_daily": daily, "planned": result["outcomes"].get("planned", 0),
        "sent": sent, "skipped_empty": result["outcomes"].get("skipped", 0),
        "retry": result["outcomes"].get("retry", 0), "failed": result["outcomes"].get("failed", 0),
        "received": len(received), "users_with_more_than_one": sum(
            1 for n in per_user.values() if n > 1),
        "seconds": round(result["seconds"], 1), "process_wall_s": round(wall, 1),
        "plan_s": round(result["plan_seconds"] or 0, 2),
        "send_s": round(result["seconds"] - (result["plan_seconds"] or 0), 1),
        "messages_per_s": round(sent / result["seconds"], 1),
        "digests_per_s": round((result["outcomes"].get("planned", 0)) / result["seconds"], 1),
        "cpu_s": round(result["cpu_seconds"], 1),
        "statements": result["statements"], "plan_statements": result["plan_statements"],
        "statements_per_digest": round((result["statements"] - (result["plan_statements"] or 0))
                                       / max(1, result["outcomes"].get("planned", 1)), 1),
        "planned_again": result["planned_again"],
        "rss_start_mb": round(result["rss_start_mb"], 1),
        "peak_rss_mb": round(result["peak_rss_mb"], 1),
        "size_kb_median": round(statistics.median(sizes) / 1024, 1) if sizes else None,
        "sample_size": int(statistics.median(sizes)) if sizes else 0,
    }


# --- part 2: alerts through the worker ---------------------------------------------------


def start_worker(config: dict[str, Any], tmp: Path, threads: int) -> tuple[Any, Path]:
    """``flask --app portal worker`` as ``make run`` starts it, on this run's settings."""
    env = dict(os.environ)
    env.update({"PYTHONPATH": str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
                **{key: str(value) for key, value in config.items()
                   if key in ("SECRET_KEY", "DATABASE_URL", "HUEY_SQLITE_PATH", "MAIL_SERVER",
                              "MAIL_PORT", "PORTAL_BASE_URL", "MAIL_SINK_DIR")}})
    logfile = tmp / "worker.log"
    handle = open(logfile, "w")  # noqa: SIM115 - the worker's for its life
    worker = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "portal", "worker", "--workers", str(threads)],
        cwd=ROOT, env=env, stdout=handle, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while "Ctrl-C stops it" not in logfile.read_text():
        if worker.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the worker did not start:\n" + logfile.read_text()[-3000:])
        time.sleep(0.1)
    return worker, logfile


def stop_worker(worker: Any) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


class Capturer:
    """POST /api/v1/leads through the test client with a bearer token; hot inquiries."""

    def __init__(self, app: Any, seed_value: int) -> None:
        from bench_routing import load_zips

        self.client = app.test_client()
        self.rng = random.Random(seed_value)
        self.zips = [code for code, _, _ in load_zips()]
        token = self.client.post("/api/v1/tokens", json={
            "email": "admin@bench.test", "password": "bench password 1"}).get_json()["token"]
        self.headers = {"Authorization": f"Bearer {token}"}
        self.n = 0

    def body(self) -> dict[str, Any]:
        self.n += 1
        rng, n = self.rng, self.n
        return {"first_name": rng.choice(["Ann", "Bob", "Cy", "Di", "Ed", "Fay"]),
                "last_name": f"Grower{n}", "company": f"Acres {n}",
                "email": f"grower{n}.{uuid.uuid4().hex[:6]}@farm.example",
                "postal_code": rng.choice(self.zips),
                "product_line": rng.choice(("TRC", "SPR", "HRV")),
                "comments": "Looking to replace an older unit before the season.",
                "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"}}

    def capture(self) -> tuple[str, float, float, int]:
        body = self.body()
        t0 = time.monotonic()
        response = self.client.post("/api/v1/leads", json=body, headers=self.headers)
        t1 = time.monotonic()
        if response.status_code not in (200, 201):
            raise SystemExit(f"capture failed: {response.status_code} {response.get_data()[:300]}")
        return str(response.get_json()["id"]), t0, t1, response.status_code


def max_notification_id(app: Any) -> int:
    from portal.core.models import Notification
    from portal.extensions import db

    with app.app_context():
        value = db.session.scalar(sa.select(sa.func.max(Notification.id))) or 0
        db.session.rollback()
    return int(value)


def wait_drained(app: Any, base_id: int, timeout: float) -> float:
    """Until no notification written after ``base_id`` is pending or sending."""
    from portal.core.models import Notification
    from portal.extensions import db

    deadline = time.monotonic() + timeout
    while True:
        with app.app_context():
            left = db.session.scalar(
                sa.select(sa.func.count()).select_from(Notification)
                .where(Notification.id > base_id,
                       Notification.status.in_(["pending", "sending"]))) or 0
            db.session.rollback()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


def start_digest_run(app: Any) -> int:
    """The digest hour: the day's digest rows written again (the earlier run's deleted)
    and the worker's own ``digest_run`` job queued, as its schedule would at the hour."""
    from portal.core.jobs import enqueue
    from portal.core.models import Notification
    from portal.extensions import db
    from portal.notify import digests

    with app.app_context():
        db.session.execute(sa.delete(Notification).where(Notification.kind == "digest"))
        planned = digests.plan(db.session, frequency="daily", by_hand=True)
        db.session.commit()
        enqueue("digest_run")
    return planned


JOB_LINE = re.compile(r"^(\S+ \S+) INFO huey: (?:Executing )?portal\.notify\.jobs\."
                      r"(notify_sweep|digest_run): (\S+?)(?: executed in ([0-9.]+)s)?$")


def mail_jobs(log_text: str, began: datetime, ended: datetime) -> list[str]:
    """The worker's sweeps and digest runs of a second or more during a pattern, from its
    log: "digest_run at +3.0 s for 115.2 s" (what kept its two threads from the alerts)."""
    starts: dict[str, datetime] = {}
    found = []
    for line in log_text.splitlines():
        match = JOB_LINE.match(line)
        if not match:
            continue
        stamp, task, task_id, seconds = match.groups()
        at = datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f")
        if seconds is None:
            starts[task_id] = at
        elif task_id in starts and float(seconds) >= 1 and starts[task_id] < ended \
                and at > began:
            found.append(f"{task} at {(starts[task_id] - began).total_seconds():+.0f} s "
                         f"for {float(seconds):.1f} s")
    return found


def run_pattern(name: str, app: Any, capturer: Capturer, recorder: Recorder, count: int,
                rate: float | None) -> dict[str, Any]:
    """Capture ``count`` leads (as fast as possible, or ``rate`` a second), wait for their
    alerts, then match every alert row with what arrived."""
    from portal.core.models import Notification, User
    from portal.extensions import db

    base_id = max_notification_id(app)
    first_message = len(recorder)
    captures: dict[str, tuple[float, float]] = {}
    request_s: list[float] = []
    started = time.monotonic()
    for i in range(count):
        if rate:
            delay = started + i / rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        lead_id, t0, t1, _ = capturer.capture()
        captures[lead_id] = (t0, t1)
        request_s.append(t1 - t0)
        if (i + 1) % 250 == 0:
            log(f"  {name}: {i + 1} captured, {len(recorder) - first_message} emails arrived")
    capture_s = time.monotonic() - started
    log(f"  {name}: {count} captured in {capture_s:.1f} s; waiting for the alerts")
    left = wait_drained(app, base_id, timeout=900)
    drained_at = time.monotonic()
    time.sleep(0.5)  # the last message's DATA is answered before its row is marked sent
    with app.app_context():
        rows = db.session.execute(
            sa.select(Notification.kind, Notification.status, Notification.lead_id, User.email)
            .join(User, User.id == Notification.user_id)
            .where(Notification.id > base_id)).all()
        db.session.rollback()
    expected: dict[tuple[str, str], str] = {}
    other_rows: dict[str, int] = {}
    for kind, status, lead_id, address in rows:
        if lead_id is not None and str(lead_id) in captures:
            expected[(address.lower(), str(lead_id))] = status
        else:
            other_rows[kind] = other_rows.get(kind, 0) + 1
    arrived: dict[tuple[str, str], list[float]] = {}
    others, others_last = 0, started
    others_to: dict[str, int] = {}
    for message in recorder.since(first_message):
        lead_id = lead_of(message["raw"]) if message["raw"] else None
        if lead_id is None or lead_id not in captures:
            others, others_last = others + 1, max(others_last, message["at"])
            for address in message["to"]:
                others_to[address] = others_to.get(address, 0) + 1
            continue
        for address in message["to"]:
            arrived.setdefault((address, lead_id), []).append(message["at"])
    latencies, per_capture = [], {}
    for (_, lead_id), times in arrived.items():
        for at in times:
            latency = at - captures[lead_id][0]
            latencies.append(latency)
            per_capture[lead_id] = max(per_capture.get(lead_id, 0.0), latency)
    statuses: dict[str, int] = {}
    for status in expected.values():
        statuses[status] = statuses.get(status, 0) + 1
    missing = [key for key, status in expected.items() if status == "sent" and key not in arrived]
    emails = sum(len(times) for times in arrived.values())
    last = max((t for times in arrived.values() for t in times), default=started)
    alerting = {lead for _, lead in expected}
    result = {
        "captures": count, "capture_s": round(capture_s, 1),
        "captures_per_s": round(count / capture_s, 1),
        "request_p50_ms": round(pct(request_s, 0.50) * 1000, 1),
        "request_p95_ms": round(pct(request_s, 0.95) * 1000, 1),
        "captures_with_alerts": len(alerting), "alert_rows": len(expected),
        "row_statuses": statuses, "emails": emails,
        "missing": len(missing) + sum(1 for k, s in expected.items() if s != "sent"),
        "duplicates": sum(len(t) - 1 for t in arrived.values()),
        "unexpected": sum(1 for key in arrived if key not in expected),
        "other_emails": others, "other_rows": other_rows, "left_unsent": left,
        "other_last_arrived_s": round(others_last - started, 1),
        "other_to_someone_twice": sum(1 for n in others_to.values() if n > 1),
        "drain_s_after_last_capture": round(drained_at - started - capture_s, 1),
        #: emails over the time from the first capture to the last alert's arrival
        "emails_per_s": round(emails / max(0.001, last - started), 1),
    }
    if latencies:
        result.update({
            "email_p50_s": round(pct(latencies, 0.50), 2),
            "email_p95_s": round(pct(latencies, 0.95), 2),
            "email_max_s": round(max(latencies), 2)})
    if per_capture:
        values = list(per_capture.values())
        result.update({
            "capture_p50_s": round(pct(values, 0.50), 2),
            "capture_p95_s": round(pct(values, 0.95), 2),
            "capture_max_s": round(max(values), 2),
            "captures_within_60s": sum(1 for v in values if v <= 60)})
    return result


def bench_alerts(config: dict[str, Any], tmp: Path, app: Any, recorder: Recorder,
                 args: argparse.Namespace) -> dict[str, Any]:
    log(f"alerts: starting the worker ({args.worker_threads} threads)")
    worker, logfile = start_worker(config, tmp, args.worker_threads)
    results: dict[str, Any] = {}
    windows: dict[str, tuple[datetime, datetime]] = {}
    try:
        capturer = Capturer(app, args.seed + 1)
        warm = run_pattern("warm-up", app, capturer, recorder, 20, None)
        log(f"  warm-up: {warm['emails']} alerts, p95 {warm.get('email_p95_s')} s")
        for name in args.patterns.split(","):
            rate = None if name == "burst" else args.rate
            label = f"steady {args.rate:g}/s" if rate else "burst"
            if name == "digest-hour":
                label += " during a daily digest run"
                queued = start_digest_run(app)
                log(f"alerts: {queued:,} daily digests planned again, digest_run queued")
            log(f"alerts: {label}, {args.captures} captures")
            began = datetime.now()
            results[name] = run_pattern(label, app, capturer, recorder, args.captures, rate)
            windows[name] = (began, datetime.now())
            log("  " + json.dumps(results[name]))
        results["worker_peak_rss_mb"] = round(proc_kb(worker.pid, "VmHWM") / 1024, 1)
    finally:
        stop_worker(worker)
    text = logfile.read_text()
    results["worker_errors"] = text.count(" ERROR ") + text.count("Traceback")
    for name, window in windows.items():
        results[name]["mail_jobs"] = mail_jobs(text, *window)
    results["alert_size"] = 0
    for message in reversed(recorder.messages):
        if message["raw"]:
            results["alert_size"] = message["size"]
            break
    return results


# --- part 3: floors ----------------------------------------------------------------------


def bench_floors(app: Any, port: int, recorder: Recorder, sizes: dict[str, int]
                 ) -> dict[str, Any]:
    """/readyz through the test client; raw smtplib sends of same-size messages."""
    client = app.test_client()
    for _ in range(50):
        client.get("/readyz")
    times = []
    t_all = time.perf_counter()
    for _ in range(1000):
        t0 = time.perf_counter()
        assert client.get("/readyz").status_code == 200
        times.append(time.perf_counter() - t0)
    total = time.perf_counter() - t_all
    result: dict[str, Any] = {"readyz_p50_ms": round(pct(times, 0.5) * 1000, 2),
                              "readyz_p95_ms": round(pct(times, 0.95) * 1000, 2),
                              "readyz_per_s": round(1000 / total)}
    first = len(recorder)
    for name, size in sizes.items():
        if not size:
            continue
        body = ("x" * 76 + "\r\n") * max(1, (size - 300) // 78)
        raw = (f"From: leads@portal.bench\r\nTo: floor@bench.test\r\nSubject: floor {name}\r\n"
               f"\r\n{body}").encode()
        count = 300
        t0 = time.perf_counter()
        for _ in range(count):
            with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
                smtp.sendmail("leads@portal.bench", ["floor@bench.test"], raw)
        result[f"smtp_{name}_conn_each_per_s"] = round(count / (time.perf_counter() - t0))
        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            for _ in range(count):
                smtp.sendmail("leads@portal.bench", ["floor@bench.test"], raw)
        result[f"smtp_{name}_one_conn_per_s"] = round(count / (time.perf_counter() - t0))
        result[f"smtp_{name}_bytes"] = len(raw)
    time.sleep(0.3)
    result["smtp_floor_received"] = len(recorder) - first
    return result


# --- driver ------------------------------------------------------------------------------


def run_backend(args: argparse.Namespace) -> dict[str, Any]:
    from aiosmtpd.controller import Controller
    from flask_migrate import upgrade
    from seed import fresh_database, seed_partners

    from portal import create_app
    from portal.extensions import db

    rng = random.Random(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="bench-notify-"))
    url, drop = fresh_database(args.backend, tmp, prefix="bench_notify")
    recorder = Recorder()
    port = free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    result: dict[str, Any] = {"backend": args.backend}
    try:
        config = app_config(url, tmp, port)
        app = create_app(config)
        partners_n = args.users // 5
        t0 = time.perf_counter()
        with app.app_context():
            upgrade(revision="heads")
        partners = seed_partners(app, partners=partners_n, rules=partners_n * 5, seed=args.seed)
        people = seed_people(app, partners, rng)
        leads = seed_leads(app, partners, rng)
        result["seed"] = {"partners": partners_n, **people, **leads,
                          "seconds": round(time.perf_counter() - t0, 1)}
        log(f"{args.backend}: seeded in {result['seed']['seconds']} s: " + json.dumps(people)
            + " " + json.dumps(leads))
        if "digests" in args.parts:
            result["digests"] = bench_digests(config, recorder, app, args.profile,
                                              args.tracemalloc)
            log("  " + json.dumps(result["digests"]))
        if "alerts" in args.parts:
            result["alerts"] = bench_alerts(config, tmp, app, recorder, args)
        sizes = {"alert": result.get("alerts", {}).get("alert_size", 0),
                 "digest": result.get("digests", {}).get("sample_size", 0)}
        result["floor"] = bench_floors(app, port, recorder, sizes)
        log("floor: " + json.dumps(result["floor"]))
        with app.app_context():
            db.engine.dispose()
    finally:
        controller.stop()
        drop()
        if args.keep_workdir:
            log(f"kept {tmp} (the worker's log, the SQLite files)")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return result


def summary(result: dict[str, Any]) -> None:
    """The figures as the README's table rows."""
    backend = result["backend"]
    d, a, f = result.get("digests"), result.get("alerts", {}), result["floor"]
    print(f"\n## {backend}: {os.cpu_count()} CPUs, load average "
          f"{' / '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")
    for name in ("burst", "steady", "digest-hour"):
        r = a.get(name)
        if not r:
            continue
        during = (f"; {r['other_emails']:,} digests arrived meanwhile, the last "
                  f"{r['other_last_arrived_s']} s after the first capture; worker: "
                  + ", ".join(r.get("mail_jobs", [])) if name == "digest-hour" else "")
        print(f"| alerts, {name} ({r['captures']} captures at {r['captures_per_s']}/s) | "
              f"{r['emails']} emails ({r['alert_rows']} rows, {r['missing']} missing, "
              f"{r['duplicates']} twice); per email p50 {r.get('email_p50_s')} s, "
              f"p95 {r.get('email_p95_s')} s, max {r.get('email_max_s')} s; per capture "
              f"(its last alert) p95 {r.get('capture_p95_s')} s, "
              f"{r.get('captures_within_60s')}/{r['captures_with_alerts']} within 60 s; "
              f"{r['emails_per_s']} emails/s{during} |")
    if a:
        print(f"| worker | peak RSS {a.get('worker_peak_rss_mb')} MB (VmHWM); "
              f"{a.get('worker_errors')} errors in its log |")
    if d:
        print(f"| digests, daily run ({d['users_wanting_daily']:,} users want one) | "
              f"{d['seconds']} s (plan {d['plan_s']} s): {d['messages_per_s']} messages/s; "
              f"{d['sent']:,} sent, {d['skipped_empty']:,} empty, {d['failed']} failed, "
              f"{d['users_with_more_than_one']} users with two; "
              f"{d['statements_per_digest']} statements a digest; peak RSS "
              f"{d['peak_rss_mb']} MB (start {d['rss_start_mb']} MB) |")
    print(f"| floor | /readyz p50 {f['readyz_p50_ms']} ms ({f['readyz_per_s']}/s); smtplib "
          + ", ".join(f"{k[5:]} {v}" for k, v in f.items() if k.startswith("smtp_")
                      and k.endswith("_per_s")) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--captures", type=int, default=1000)
    parser.add_argument("--users", type=int, default=10_000, help="partner users (5 a partner)")
    parser.add_argument("--rate", type=float, default=10.0, help="steady captures a second")
    parser.add_argument("--patterns", default="burst,steady",
                        help="burst: as fast as one client goes; steady: --rate a second; "
                        "digest-hour: --rate a second while the worker sends a daily digest run")
    parser.add_argument("--parts", default="digests,alerts")
    parser.add_argument("--worker-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile the digest run")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="the digest run's largest live allocations at its end (slow)")
    parser.add_argument("--keep-workdir", action="store_true",
                        help="keep the temporary folder: the worker's log, SQLite files")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--run-digests", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run_digests:
        run_digests(json.loads(args.run_digests), args.profile, args.tracemalloc)
        return
    if args.backend == "both":
        print(f"# Python {platform.python_version()}, {os.cpu_count()} CPUs", flush=True)
        for backend in ("sqlite", "postgresql"):
            command = [sys.executable, __file__, *sys.argv[1:], "--backend", backend]
            subprocess.run(command, check=True)
        return
    started = time.perf_counter()
    log(f"{args.backend}: {args.users:,} partner users, {args.captures} captures a pattern; "
        f"load average {os.getloadavg()[0]:.2f}")
    result = run_backend(args)
    result["total_s"] = round(time.perf_counter() - started, 1)
    result["load_average_end"] = os.getloadavg()
    summary(result)
    print(f"total {result['total_s']} s", flush=True)
    if args.json:  # one file a backend: results.json -> results-sqlite.json
        path = Path(args.json)
        path.with_name(f"{path.stem}-{args.backend}{path.suffix}").write_text(
            json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
