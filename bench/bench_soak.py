"""A soak of mixed traffic on the real processes: errors, p95 per endpoint, memory.

    python bench/bench_soak.py [--minutes 10] [--clients 6] [--workers 2]
        [--backend postgresql|sqlite] [--workdir /tmp/bench-soak]

A fresh database (PostgreSQL by default) gets the demo data (``flask prepare --demo``);
then gunicorn (``--workers``) and the job worker run as `make run` runs them, and
``--clients`` threads send, for ``--minutes``, what the portal's users do at once:

- an integrator captures new inquiries (``POST /api/v1/leads``, a manager's token;
  every tenth a repeat of an earlier person, every twentieth with an Idempotency-Key
  sent twice);
- dealers open their inbox and a lead's page (signed-in sessions), and act through the
  API on their own offers: accept, then contact, then an outcome (won / lost / no
  interest); two clients may race for the same lead, so a 409 is a right answer;
- a channel manager opens the overview and the partner league;
- the floor: ``/readyz`` (one ``SELECT 1`` through the same request machinery).

An error is a 5xx, a refused connection, or any answer an action should not get (a 409
is fine, a 422 on a capture built to be valid is not). Reported: per endpoint the count,
errors, p50 and p95 ms, beside the floor; the resident memory of each gunicorn worker and
of the job worker at the start and the end (flat memory: the end within a few MiB of a
warm start).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_inbox import free_port  # noqa: E402
from seed import fresh_database  # noqa: E402

PASSWORD = "demo-password"
DEALERS = ["dealer1@demo.test", "dealer2@demo.test", "dealer3@demo.test", "dealer4@demo.test"]
#: demo dealer ZIPs and the product lines each sells (so a capture routes to a dealer)
PLACES = [("50401", "TRC"), ("79401", "TRC"), ("30601", "MWR"), ("45840", "UTV")]


class Client:
    """One person's browser or program: cookies, and timed requests recorded by name."""

    def __init__(self, base: str, record: Any) -> None:
        self.base = base
        self.record = record
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.token = ""

    def call(self, name: str, path: str, *, body: Any = None, form: dict[str, str] | None = None,
             headers: dict[str, str] | None = None, ok: tuple[int, ...] = (200, 201)
             ) -> tuple[int, Any]:
        data = None
        wanted = dict(headers or {})
        if body is not None:
            data = json.dumps(body).encode()
            wanted["Content-Type"] = "application/json"
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
        if self.token and path.startswith("/api/"):
            wanted["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base + path, data=data, headers=wanted)
        started = time.perf_counter()
        try:
            with self.opener.open(request, timeout=60) as answer:
                status, raw = answer.status, answer.read()
        except urllib.error.HTTPError as error:
            status, raw = error.code, error.read()
        except OSError as error:
            self.record(name, 0, (time.perf_counter() - started) * 1000, str(error))
            return 0, None
        took = (time.perf_counter() - started) * 1000
        self.record(name, status, took, "" if status in ok else raw[:300].decode("replace"))
        if raw[:1] in (b"{", b"["):
            return status, json.loads(raw)
        return status, raw.decode("utf-8", "replace")

    def sign_in(self, email: str) -> None:
        _, page = self.call("sign-in page", "/auth/login")
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token, "no CSRF token on the sign-in page"
        self.call("sign in", "/auth/login", form={"email": email, "password": PASSWORD,
                                                  "csrf_token": token.group(1)})
        status, answer = self.call("API token", "/api/v1/tokens",
                                   body={"email": email, "password": PASSWORD}, ok=(201,))
        assert status == 201, answer
        self.token = answer["token"]


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, list[str]] = defaultdict(list)

    def __call__(self, name: str, status: int, ms: float, problem: str) -> None:
        with self.lock:
            self.times[name].append(ms)
            if problem or status >= 500 or status == 0:
                self.errors[name].append(f"{status}: {problem}")


def person(rng: random.Random, n: int) -> dict[str, Any]:
    postal, line = rng.choice(PLACES)
    return {"first_name": rng.choice(["Ann", "Bo", "Cy", "Di", "Ed", "Flo"]),
            "last_name": f"Soak{n}", "email": f"soak{n}-{rng.randrange(10**9)}@example.com",
            "postal_code": postal, "product_line": line, "wants_literature": n % 3 == 0,
            "answers": {"timeline": rng.choice(["now", "3_months", "researching"]),
                        "budget": "approved"}}


def integrator(client: Client, rng: random.Random, stop: float) -> None:
    client.sign_in("manager@demo.test")
    sent: list[dict[str, Any]] = []
    n = 0
    while time.monotonic() < stop:
        n += 1
        body = rng.choice(sent) if sent and n % 10 == 0 else person(rng, n)
        sent.append(body)
        headers = {"Idempotency-Key": f"soak-{n}-{rng.randrange(10**9)}"} if n % 20 == 0 else {}
        for _ in range(2 if headers else 1):
            client.call("POST /api/v1/leads", "/api/v1/leads", body=body, headers=headers)


def dealer(client: Client, rng: random.Random, stop: float, email: str) -> None:
    client.sign_in(email)
    steps = {"offered": {"action": "accept"}, "accepted": {"action": "contact",
                                                           "channel": "phone"}}
    outcomes = [{"action": "won", "amount": "25000"},
                {"action": "lost", "reason": "price"}, {"action": "no_interest"}]
    while time.monotonic() < stop:
        client.call("GET /leads/ (inbox)", "/leads/?tab=new")
        status, page = client.call("GET /api/v1/leads", "/api/v1/leads?per_page=20")
        leads = page.get("leads", []) if status == 200 else []
        if not leads:
            time.sleep(0.2)
            continue
        lead = rng.choice(leads)
        client.call("GET /leads/<id>", f"/leads/{lead['id']}")
        action = steps.get(lead["status"]) or (
            rng.choice(outcomes) if lead["status"] == "contacted" else None)
        if action is not None:
            client.call("POST /api/v1/leads/<id>/actions", f"/api/v1/leads/{lead['id']}/actions",
                        body=action, ok=(200, 409, 404))


def manager(client: Client, rng: random.Random, stop: float) -> None:
    client.sign_in("manager@demo.test")
    while time.monotonic() < stop:
        client.call("GET /reports/ (overview)", "/reports/")
        client.call("GET /reports/partners (league)", "/reports/partners")
        time.sleep(rng.uniform(0.5, 1.5))


def floor(client: Client, stop: float) -> None:
    while time.monotonic() < stop:
        client.call("GET /readyz (floor)", "/readyz")
        time.sleep(0.05)


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--workdir", default="/tmp/bench-soak")
    args = parser.parse_args()
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    url, drop = fresh_database(args.backend, workdir, prefix="portal_bench_soak")
    env = dict(os.environ, DATABASE_URL=url, SECRET_KEY="bench-soak",
               PORTAL_INSTANCE_PATH=str(workdir), HUEY_SQLITE_PATH=str(workdir / "huey.db"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    flask = [str(ROOT / ".venv/bin/flask"), "--app", "portal"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        print(f"demo data into {args.backend} ...", flush=True)
        log = (workdir / "processes.log").open("w")
        subprocess.run([*flask, "prepare", "--demo", "--quiet"], env=env, cwd=ROOT, check=True,
                       stdout=log, stderr=subprocess.STDOUT)
        port = free_port()
        web = subprocess.Popen(
            [str(ROOT / ".venv/bin/gunicorn"), "--workers", str(args.workers), "--bind",
             f"127.0.0.1:{port}", "--log-level", "warning", "wsgi:app"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        worker = subprocess.Popen([*flask, "worker"], cwd=ROOT, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        processes += [web, worker]
        base = f"http://127.0.0.1:{port}"
        for _ in range(150):
            try:
                urllib.request.urlopen(base + "/readyz", timeout=2).read()
                break
            except OSError:
                time.sleep(0.2)
        recorder = Recorder()
        warm_stop = time.monotonic() + 20  # a warm start: caches and pools filled
        run(base, recorder, args.clients, warm_stop)
        watched = {f"gunicorn worker {n + 1}": pid for n, pid in enumerate(children(web.pid))}
        watched["job worker"] = worker.pid
        memory = {name: [rss_mib(pid)] for name, pid in watched.items()}
        recorder = Recorder()
        started = time.monotonic()
        stop = started + args.minutes * 60
        sampler = threading.Thread(target=sample, args=(watched, memory, stop), daemon=True)
        sampler.start()
        run(base, recorder, args.clients, stop)
        report(recorder, memory, time.monotonic() - started, args)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        drop()


def sample(watched: dict[str, int], memory: dict[str, list[float]], stop: float) -> None:
    while time.monotonic() < stop:
        time.sleep(30)
        for name, pid in watched.items():
            memory[name].append(rss_mib(pid))


def run(base: str, recorder: Recorder, clients: int, stop: float) -> None:
    rng = random.Random(7)
    jobs: list[Any] = [lambda c, r: integrator(c, r, stop), lambda c, r: manager(c, r, stop),
                       lambda c, r: floor(c, stop)]
    for n in range(max(1, clients - len(jobs))):
        email = DEALERS[n % len(DEALERS)]
        jobs.append(lambda c, r, email=email: dealer(c, r, stop, email))
    threads = [threading.Thread(target=job, args=(Client(base, recorder),
                                                  random.Random(rng.random())))
               for job in jobs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def report(recorder: Recorder, memory: dict[str, list[float]], seconds: float,
           args: argparse.Namespace) -> None:
    floor_p95 = percentile(recorder.times["GET /readyz (floor)"], 0.95) or 1.0
    total = sum(len(v) for v in recorder.times.values())
    errors = sum(len(v) for v in recorder.errors.values())
    print(f"\n{args.minutes:g} min on {args.backend}, {args.clients} clients, "
          f"{args.workers} gunicorn workers: {total:,} requests ({total / seconds:,.1f}/s), "
          f"errors {errors}")
    print(f"{'endpoint':42} {'count':>7} {'errors':>6} {'p50 ms':>8} {'p95 ms':>8} "
          f"{'p95/floor':>9}")
    for name in sorted(recorder.times):
        values = recorder.times[name]
        p95 = percentile(values, 0.95)
        print(f"{name:42} {len(values):7,} {len(recorder.errors[name]):6} "
              f"{percentile(values, 0.5):8.1f} {p95:8.1f} {p95 / floor_p95:9.1f}")
    print("\nresident memory, MiB (warm start → every 30 s → end):")
    for name, values in memory.items():
        print(f"  {name:20} {values[0]:6.1f} → {values[-1]:6.1f} "
              f"(max {max(values):.1f}; {' '.join(f'{v:.0f}' for v in values)})")
    for name, problems in recorder.errors.items():
        for problem in problems[:3]:
            print(f"  error {name}: {problem}")


if __name__ == "__main__":
    main()
