"""Faults lose no mail: the job worker as a real process on a real SQLite queue, a real
SMTP server (aiosmtpd), killed, stopped, and given a mail server that is down or mute."""

# The worker fixtures are imported from its tests and named as parameters:
# ruff: noqa: F811

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from portal import create_app
from portal.auth.services import request_password_link
from portal.core.models import User
from portal.extensions import db
from tests.portal.test_worker_shutdown import (  # noqa: F401 - fixtures and helpers
    _become_subreaper,
    _capture_lead_wanting_literature,
    _descendants,
    _state,
    _still_running,
    portal_dir,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and prctl")

#: short clocks, so a test sees in seconds what takes minutes in production
FAST = {
    "MAIL_TIMEOUT": "1",
    "MAIL_RETRY_SECONDS": "1",
    "MAIL_RETRY_MAX_SECONDS": "2",
    "MAIL_SENDING_TIMEOUT_SECONDS": "2",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def query(env: dict[str, str], sql: str, *args: Any) -> list[tuple[Any, ...]]:
    """Read the worker's database file straight."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(path, timeout=5)) as connection:
        return connection.execute(sql, args).fetchall()


def start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """`flask --app portal worker` in its own process group, as serve.sh or systemd runs it."""
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", "worker"],
                                env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def kill_group(worker: subprocess.Popen[bytes], signum: int = signal.SIGKILL) -> None:
    try:
        os.killpg(worker.pid, signum)
    except ProcessLookupError:
        pass
    worker.wait(timeout=10)


def wait_for(what: str, check: Any, seconds: float, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {seconds} s\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


def ask_for_password_link(env: dict[str, str]) -> int:
    """A reset asked for (the row written, its nudge on the worker's queue): the row's id."""
    app = create_app({"PORTAL_BASE_URL": "http://portal.test"})
    with app.app_context():
        user = db.session.scalars(select(User).where(User.email == "manager@portal.test")).one()
        request_password_link(db.session, user, "reset")
        db.session.commit()
        link_id = int(query(env, "SELECT max(id) FROM password_links")[0][0])
        db.session.remove()
        db.engine.dispose()
    return link_id


@pytest.fixture
def mail_env(portal_dir: dict[str, str], smtp_server: Any) -> dict[str, str]:
    """The worker's environment: the real SMTP server and the short clocks."""
    smtp_server.handler.messages.clear()
    return {**portal_dir, **FAST, "MAIL_SERVER": "127.0.0.1",
            "MAIL_PORT": str(smtp_server.port)}


def test_a_worker_killed_mid_fulfilment_loses_no_pack_once_restarted(
        mail_env: dict[str, str], smtp_server: Any, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    _become_subreaper()
    log = tmp_path / "worker.log"
    ids = [_capture_lead_wanting_literature(60 + n) for n in range(6)]
    marks = ",".join(map(str, ids))

    def statuses() -> Counter[str]:
        return Counter(s for (s,) in query(
            mail_env, f"SELECT status FROM fulfilments WHERE id IN ({marks})"))

    worker = start_worker(mail_env, log)
    try:
        # Some packs gone and one in the middle of its render or send: then SIGKILL the
        # whole group (worker and render children), as the OOM killer or a power cut would.
        wait_for("one pack sent and the next mid-send", lambda: (
            (now := statuses())["sent"] >= 1 and now["sending"] >= 1), 25, log)
    finally:
        kill_group(worker)
    at_kill = statuses()
    assert at_kill["sent"] < len(ids), at_kill  # the kill came before the end
    time.sleep(2.5)  # past MAIL_SENDING_TIMEOUT_SECONDS: the dead worker's claims are stale

    worker = start_worker(mail_env, log)
    try:
        wait_for("every pack sent", lambda: statuses()["sent"] == len(ids), 20, log)
    finally:
        kill_group(worker, signal.SIGTERM)

    received = Counter(str(m["To"]) for m in smtp_server.handler.messages)
    message_ids: dict[str, set[str]] = {}
    for m in smtp_server.handler.messages:
        message_ids.setdefault(str(m["To"]), set()).add(str(m["Message-ID"]))
    sent_to = [to for (to,) in query(mail_env,
                                     f"SELECT sent_to FROM fulfilments WHERE id IN ({marks})")]
    assert set(received) == set(sent_to) and len(set(sent_to)) == len(ids)  # each got one
    for to in received:
        # At least once: a copy sent twice (a kill between the server's 250 and the
        # commit) must be the same email, by its Message-ID.
        assert len(message_ids[to]) == 1, (to, message_ids[to])
    duplicates = {to: count for to, count in received.items() if count > 1}
    with capsys.disabled():
        print(f"\n  killed with {dict(at_kill)}; duplicates (same Message-ID): "
              f"{duplicates or 'none'}")


def test_mail_down_then_up_goes_by_itself(mail_env: dict[str, str], tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    port = free_port()  # nothing listens yet: the mail server is down
    env = {**mail_env, "MAIL_PORT": str(port)}
    log = tmp_path / "worker.log"
    link_id = ask_for_password_link(env)

    def link() -> tuple[str, int, str]:
        return query(env, "SELECT status, attempts, last_error FROM password_links "
                          "WHERE id = ?", link_id)[0]  # type: ignore[return-value]

    class Collect:
        def __init__(self) -> None:
            self.messages: list[bytes] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            self.messages.append(envelope.original_content)
            return "250 OK"

    worker = start_worker(env, log)
    controller = None
    try:
        wait_for("a failed try", lambda: link()[1] >= 2 and link()[0] == "pending", 15, log)
        assert "Connection refused" in link()[2]
        handler = Collect()
        controller = Controller(handler, hostname="127.0.0.1", port=port)
        controller.start()  # the mail server is back; nobody does anything
        wait_for("the link sent", lambda: link()[0] == "sent", 10, log)
        assert len(handler.messages) == 1
    finally:
        kill_group(worker, signal.SIGTERM)
        if controller is not None:
            controller.stop()




def test_a_mail_server_that_never_answers_times_out_and_is_tried_again(
        mail_env: dict[str, str], mute_server: int, tmp_path: Path) -> None:
    env = {**mail_env, "MAIL_PORT": str(mute_server)}
    log = tmp_path / "worker.log"
    link_id = ask_for_password_link(env)

    def attempts() -> tuple[str, int, str]:
        return query(env, "SELECT status, attempts, last_error FROM password_links "
                          "WHERE id = ?", link_id)[0]  # type: ignore[return-value]

    worker = start_worker(env, log)
    try:
        wait_for("the first try", lambda: attempts()[1] >= 1, 15, log)
        started = time.monotonic()
        # MAIL_TIMEOUT 1 s, then a wait of 1 s: the second try within a few seconds.
        wait_for("a timed-out try, retried", lambda: attempts()[1] >= 2
                 and attempts()[0] != "sending", 6, log)
        assert time.monotonic() - started < 6
        status, _, error = attempts()
        assert status == "pending" and "timed out" in error.lower()
    finally:
        kill_group(worker, signal.SIGTERM)


@pytest.mark.parametrize("when", ["idle", "rendering"])
def test_term_to_the_workers_process_group_stops_it_within_seconds(
        mail_env: dict[str, str], tmp_path: Path, when: str) -> None:
    _become_subreaper()
    log = tmp_path / "worker.log"
    ours_before = _descendants(os.getpid())
    fulfilment_id = _capture_lead_wanting_literature(90 if when == "idle" else 91)

    def status() -> str:
        return str(query(mail_env, "SELECT status FROM fulfilments WHERE id = ?",
                         fulfilment_id)[0][0])

    worker = start_worker(mail_env, log)
    try:
        if when == "rendering":
            wait_for("a render", lambda: status() == "sending", 20, log)
        else:  # a worker that has done some work: its render child waits for the next
            wait_for("a pack sent", lambda: status() == "sent", 20, log)
            time.sleep(0.5)
        children = _descendants(worker.pid)
        stopped_at = time.monotonic()
        os.killpg(worker.pid, signal.SIGTERM)  # what systemd sends: to the whole group
        worker.wait(timeout=15)
        took = time.monotonic() - stopped_at
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = log.read_text()
    assert took < 5, (took, output[-4000:])
    assert worker.returncode == 0, output[-4000:]
    assert status() in {"pending", "sent"}  # sent, or handed back for the sweeper
    children |= _descendants(os.getpid()) - ours_before
    left = _still_running(children, 10)  # a loaded machine: gone, if not at once
    assert not left, {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:200] for pid in left}
