"""A live portal for the browser tests and the README screenshots.

A fresh SQLite file, migrated and loaded with the real demo data by the same commands a
person runs, then served by gunicorn exactly as in production. Shared by
``tests/browser/conftest.py`` and ``scripts/screenshots.py`` so both see the same thing.
"""

from __future__ import annotations

import os
import secrets
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent  # the virtualenv running us has flask and gunicorn
HTMX = ROOT / "static" / "vendor" / "htmx.min.js"

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright's own download is never used
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
]

PASSWORD = "demo-password"  # portal.demo.PASSWORD; not imported so no app code loads here

#: settings that would send mail or jobs somewhere real if the caller's shell had them
_SCRUBBED = ("REDIS_URL", "MAIL_SERVER", "MAIL_USERNAME", "MAIL_PASSWORD")


@dataclass(frozen=True)
class LiveServer:
    """A running portal: where it answers and which database file it uses."""

    base_url: str
    database: Path

    def url(self, path: str) -> str:
        """The absolute URL of ``path`` on this server."""
        return self.base_url + path

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Rows of a read-only SQL query against the server's database file."""
        uri = f"file:{self.database}?mode=ro"
        with closing(sqlite3.connect(uri, uri=True, timeout=10)) as connection:
            return connection.execute(sql, params).fetchall()


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _environment(workdir: Path, base_url: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED}
    env.update({
        "SECRET_KEY": secrets.token_hex(32),
        "DATABASE_URL": f"sqlite:///{workdir / 'portal.db'}",
        # Jobs go to a queue of their own that no worker reads: nothing is mailed.
        "HUEY_SQLITE_PATH": str(workdir / "huey.db"),
        # portal.config does not read MAIL_SINK_DIR from the environment (yet); with no
        # worker nothing is mailed anyway, and this keeps it out of instance/ if it ever is.
        "MAIL_SINK_DIR": str(workdir / "mail-sink"),
        "PORTAL_BASE_URL": base_url,
        "PYTHONUNBUFFERED": "1",
    })
    return env


def _run(args: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}):\n"
                           f"{done.stdout}\n{done.stderr}")


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path,
                        timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        # Polling a port that is not open yet: a short pause between tries, not a guess
        # at how long start-up takes.
        time.sleep(0.05)
    raise RuntimeError(f"gunicorn did not answer {url} within {timeout:.0f} s:\n"
                       f"{log.read_text()}")


@contextmanager
def live_server(workdir: Path, *, workers: int = 2) -> Iterator[LiveServer]:
    """Migrate a new database in ``workdir``, load the demo, serve it; stop it afterwards."""
    if not HTMX.exists():
        raise RuntimeError(f"{HTMX.relative_to(ROOT)} is missing: run "
                           "`make static/vendor/htmx.min.js` (it is fetched, not committed)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = _environment(workdir, base_url)
    flask = [str(BIN / "flask"), "--app", "portal"]
    _run([*flask, "db", "upgrade"], env)
    _run([*flask, "demo", "--quiet"], env)
    log = workdir / "gunicorn.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
             "--graceful-timeout", "5", "wsgi:app"],
            cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
    try:
        _wait_until_healthy(process, base_url + "/healthz", log)
        yield LiveServer(base_url=base_url, database=workdir / "portal.db")
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
