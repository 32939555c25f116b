"""`make run` (scripts/serve.sh) as a person runs it: the web server and the job worker.
A worker that dies is started again (and says so); the web server stays up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.portal.test_mail_faults import free_port
from tests.portal.test_worker_shutdown import _descendants, _state

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc")

ROOT = Path(__file__).resolve().parents[2]


def workers_under(pid: int) -> set[int]:
    """The running `flask … worker` processes below ``pid``."""
    found = set()
    for child in _descendants(pid):
        try:
            command = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"worker" in command and any(b"flask" in part for part in command):
            found.add(child)
    return {pid for pid in found if _state(pid) not in (None, "Z")}


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def test_a_dead_worker_is_restarted_and_the_web_server_stays_up(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "PORTAL_INSTANCE_PATH": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path / 'portal.db'}",
           "SECRET_KEY": "test-secret-key-not-for-production",
           "HUEY_SQLITE_PATH": str(tmp_path / "huey.db"),
           "MAIL_SINK_DIR": str(tmp_path / "mail-sink"),
           "HOST": "127.0.0.1", "PORT": str(port), "WEB_WORKERS": "1"}
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        serve = subprocess.Popen([str(ROOT / "scripts" / "serve.sh")], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    ready = f"http://127.0.0.1:{port}/readyz"
    try:
        deadline = time.monotonic() + 60
        while not ("Portal on" in log.read_text() and workers_under(serve.pid)):
            assert serve.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        (first,) = workers_under(serve.pid)
        render_children = _descendants(first)
        assert render_children  # the worker's PDF render pool

        os.kill(first, signal.SIGKILL)  # the OOM killer, say
        deadline = time.monotonic() + 10
        while not (workers_under(serve.pid) - {first}):
            assert serve.poll() is None, log.read_text()  # serve.sh, the web too, still up
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert answers(ready), log.read_text()
        assert "worker exited" in log.read_text() and "restarting it" in log.read_text()
        # The dead worker's render children leave too: none lingers beside the new one.
        while any(_state(pid) not in (None, "Z") for pid in render_children):
            assert time.monotonic() < deadline, render_children
            time.sleep(0.1)
        while log.read_text().count("Huey consumer started") < 2:  # the new one is at work
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        stopped_at = time.monotonic()
        serve.send_signal(signal.SIGTERM)
        try:
            serve.wait(timeout=20)
        finally:
            if serve.poll() is None:
                os.killpg(serve.pid, signal.SIGKILL)
                serve.wait()
    assert time.monotonic() - stopped_at < 15, log.read_text()
    output = log.read_text()
    assert "stopped web and worker" in output and "Shutting down gracefully" in output
    time.sleep(0.5)
    assert not answers(ready)
