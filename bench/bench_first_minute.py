"""The first minute: a fresh clone to its first sign-in page, a warm `make run`, `make test`.

    python3 bench/bench_first_minute.py [--source .] [--test] [--keep]

Runs with any Python 3.11 (it needs nothing installed): it clones ``--source`` (committed
work only, as a new user would get it) into a temporary folder and, with empty package
caches (pip's and uv's caches point at a new folder, so nothing downloaded earlier on this
machine helps), times

1. ``make run`` from the clone to the first answer of the sign-in page, each step of it
   read off the time stamps of its output: install, front-end assets, migrations and
   rollups, demo data, server start;
2. ``make run`` again in the same clone (a warm checkout), to the first sign-in page, and
   then sign-ins through the real form (CSRF token, password check), timed on loopback;
3. with ``--test``, ``make test`` in a second fresh clone (about ten minutes);

beside the floor measured in the same run: a bare ``python -m venv`` (no packages).
Each ``make run`` gets its own port and its own instance folder (the clone's), so nothing
of a running portal is touched.
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path

#: the lines of `make run`'s output that start each step, in order
STEPS = (
    ("install (venv + packages)", "== Python packages"),
    ("front-end assets (npm)", "== front-end assets"),
    ("migrations + rollups", "== database"),
    ("demo data", "Loading the demo data"),
    ("server start", "== web server and worker"),
)


def floor_venv(tmp: Path) -> float:
    """A bare venv with pip: the least any install can take on this machine."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "bare")], check=True)
    return time.perf_counter() - started


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            return reply.status == 200
    except OSError:
        return False


class _Stay(urllib.request.HTTPRedirectHandler):
    """Do not follow the redirect after signing in: the page it leads to is not sign-in."""

    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def sign_ins(port: int, times: int = 24) -> list[float]:
    """Seconds of each POST of the sign-in form to its answer (the redirect, not followed,
    or the form again): the manager's right password, and every other time an email with
    no account (the same hash check, against a dummy hash; a new one each time, as the
    throttle refuses a sixth failure for one email; 20 for one address)."""
    seconds = []
    for attempt in range(times):
        opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()), _Stay())
        page = opener.open(f"http://127.0.0.1:{port}/auth/login", timeout=10).read().decode()
        token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
        assert token is not None, "no CSRF token on the sign-in page"
        form = urllib.parse.urlencode({
            "csrf_token": token.group(1),
            "email": "manager@demo.test" if attempt % 2 == 0 else f"stranger{attempt}@example.com",
            "password": "demo-password" if attempt % 2 == 0 else "not the password",
        }).encode()
        started = time.perf_counter()
        try:
            with opener.open(urllib.request.Request(
                    f"http://127.0.0.1:{port}/auth/login", data=form), timeout=10) as reply:
                reply.read()  # 200: the form again, "Wrong email or password."
        except urllib.error.HTTPError as answer:  # 303: signed in (not followed)
            assert answer.code == 303, answer.code
        seconds.append(time.perf_counter() - started)
    return seconds


def timed_run(clone: Path, port: int, env: dict[str, str],
              then: Callable[[], None] | None = None) -> tuple[float, list[tuple[float, str]]]:
    """`make run` in ``clone`` until the sign-in page answers, then ``then()`` while it
    serves; (seconds, timed output)."""
    lines: list[tuple[float, str]] = []
    started = time.perf_counter()
    proc = subprocess.Popen(["make", "run"], cwd=clone, env=dict(env, PORT=str(port)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append((time.perf_counter() - started, line.rstrip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/auth/login"
    try:
        while not answers(url):
            if proc.poll() is not None:
                sys.exit("make run stopped:\n" + "\n".join(t for _, t in lines[-30:]))
            time.sleep(0.1)
        seconds = time.perf_counter() - started
        time.sleep(0.5)  # the banner follows the first answer
        if then is not None:
            then()
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    reader.join(timeout=5)
    return seconds, lines


def steps(lines: list[tuple[float, str]], total: float) -> list[tuple[str, float]]:
    """Each step's seconds, from the first output line that marks its start."""
    starts: list[tuple[str, float]] = []
    position = 0
    for name, marker in STEPS:
        for index in range(position, len(lines)):
            if lines[index][1].startswith(marker):
                starts.append((name, lines[index][0]))
                position = index
                break
    if not starts:  # a checkout from before the steps were marked
        return []
    ends = [*(at for _, at in starts[1:]), total]
    return [(name, end - at) for (name, at), end in zip(starts, ends, strict=True)]


def fresh_clone(source: Path, into: Path) -> Path:
    clone = into / "clone"
    subprocess.run(["git", "clone", "-q", str(source), str(clone)], check=True)
    return clone


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(Path(__file__).resolve().parent.parent))
    parser.add_argument("--port", type=int, default=5091)
    parser.add_argument("--test", action="store_true", help="also time `make test`")
    parser.add_argument("--keep", action="store_true", help="keep the clones")
    args = parser.parse_args()
    source = Path(args.source).resolve()
    head = subprocess.run(["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True, check=True).stdout.strip()
    tmp = Path(tempfile.mkdtemp(prefix="first-minute-"))
    caches = tmp / "caches"
    env = dict(os.environ, PIP_CACHE_DIR=str(caches / "pip"), UV_CACHE_DIR=str(caches / "uv"),
               npm_config_cache=str(caches / "npm"))
    env.pop("TEST_DATABASE_URL", None)
    try:
        floor = floor_venv(tmp)
        print(f"commit {head}, {os.cpu_count()} cores; floor: bare `python -m venv` "
              f"{floor:.1f} s", flush=True)
        started = time.perf_counter()
        clone = fresh_clone(source, tmp)
        cloned = time.perf_counter() - started
        cold, lines = timed_run(clone, args.port, env)
        cold += cloned
        print(f"fresh clone -> first sign-in page: {cold:.1f} s "
              f"({cold / floor:.1f}x the bare venv)")
        print(f"  {'git clone':28} {cloned:6.1f} s")
        for name, seconds in steps(lines, cold - cloned):
            print(f"  {name:28} {seconds:6.1f} s")
        banner = next((t for t, text in lines if "Portal on" in text), None)
        print(f"  banner 'Portal on …' at {banner + cloned:.1f} s" if banner is not None
              else "  no banner seen")
        timings: list[float] = []
        warm, _ = timed_run(clone, args.port, env,
                            then=lambda: timings.extend(sign_ins(args.port)))
        print(f"warm `make run` -> first sign-in page: {warm:.1f} s "
              f"({warm / floor:.1f}x the bare venv)")
        timings = timings[4:]  # each of the three web workers' first requests
        right, wrong = timings[0::2], timings[1::2]
        print(f"sign-in POST (password check, answer not followed): median "
              f"{statistics.median(right) * 1000:.0f} ms signed in, "
              f"{statistics.median(wrong) * 1000:.0f} ms refused (unknown email) "
              f"({len(timings)} tries)", flush=True)
        if args.test:
            second = tmp / "test"
            second.mkdir()
            clone = fresh_clone(source, second)
            started = time.perf_counter()
            done = subprocess.run(["make", "test"], cwd=clone, env=env, capture_output=True,
                                  text=True)
            seconds = time.perf_counter() - started
            tail = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
            print(f"fresh clone `make test`: {seconds:.0f} s, exit {done.returncode}: "
                  f"{tail[0]}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
