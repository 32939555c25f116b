"""The job worker (`flask --app portal worker`) as `make run` starts it: a real process on a
real SQLite queue, stopped with TERM or INT while it renders a literature pack."""

from __future__ import annotations

import ctypes
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest
from sqlalchemy import select

from portal import create_app
from portal.core.models import Fulfilment, LiteratureItem, ProductLine, User
from portal.extensions import db
from tests.conftest import PASSWORD

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and prctl")

LEAD = {
    "first_name": "Dana", "last_name": "Miller", "company": "Miller Farms",
    "email": "dana@example.com", "phone": "(641) 555-0142", "postal_code": "50401",
    "address": "12 Elm Street", "city": "Mason City", "country": "US",
    "product_line": "TRC", "wants_literature": True,
    "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
}


def _become_subreaper() -> None:
    # Orphans of the worker (render children, the resource tracker) are then reparented
    # to this process rather than to init, so we can see and reap every one of them.
    pr_set_child_subreaper = 36
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(pr_set_child_subreaper, 1, 0, 0, 0) == 0


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc's children lists)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def _still_running(children: set[int], seconds: float) -> set[int]:
    """Reap the exited among ``children`` (orphans come to us, the subreaper) for up to
    ``seconds``; the ones still running then."""
    deadline = time.monotonic() + seconds
    while True:
        left = {pid for pid in children if _state(pid) not in (None, "Z")}
        for pid in children:
            try:
                os.waitpid(pid, os.WNOHANG)
            except ChildProcessError:
                pass
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def _state(pid: int) -> str | None:
    """A process's state letter (``Z`` for defunct), or None when it is gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return None


@pytest.fixture(scope="module")
def portal_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A migrated SQLite portal with a brochure, shared by the worker processes."""
    from flask_migrate import upgrade
    from weasyprint import HTML

    from portal.fulfilment import library

    instance = tmp_path_factory.mktemp("worker-instance")
    env = {
        "PORTAL_INSTANCE_PATH": str(instance),
        "DATABASE_URL": f"sqlite:///{instance / 'portal.db'}",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "HUEY_SQLITE_PATH": str(instance / "huey.db"),
        "MAIL_SINK_DIR": str(instance / "mail-sink"),
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        app = create_app({"PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
                          "PORTAL_BASE_URL": "http://portal.test"})
        with app.app_context():
            upgrade()
            line = ProductLine(code="TRC", name="Tractors")
            db.session.add(line)
            db.session.flush()
            item = library.save_item(db.session, None, title="Tractor Overview",
                                     product_line_id=line.id, kind="brochure", position=0,
                                     active=True)
            brochure = HTML(string="<p>Tractor Overview</p>").write_pdf()
            library.upload_version(db.session, item, data=brochure, filename="t.pdf",
                                   user=None, activate=True)
            manager = User(email="manager@portal.test", name="Manager", role="manager")
            manager.set_password(PASSWORD)
            db.session.add(manager)
            db.session.commit()
            assert db.session.scalars(select(LiteratureItem)).one()
            db.engine.dispose()
        yield {**os.environ, **env}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _capture_lead_wanting_literature(n: int) -> int:
    """Post a lead through the API; its pack's send job lands on the worker's queue."""
    app = create_app({"PORTAL_BASE_URL": "http://portal.test"})
    with app.app_context():
        client = app.test_client()
        token = client.post("/api/v1/tokens", json={"email": "manager@portal.test",
                                                    "password": PASSWORD}).json["token"]
        # A new person each time, not a repeat inquiry of the last one.
        response = client.post("/api/v1/leads", json={
            **LEAD, "email": f"dana.{n}@example.com", "phone": f"(641) 555-01{n:02d}",
            "last_name": f"Miller-{n}"},
                               headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 201, response.get_data(as_text=True)
        row = db.session.scalars(select(Fulfilment).order_by(Fulfilment.id.desc())).first()
        assert row is not None and row.status == "pending"
        fulfilment_id = row.id
        db.session.remove()
        db.engine.dispose()
    return fulfilment_id


def _status(env: dict[str, str], fulfilment_id: int) -> str:
    """The pack's status, read straight from the worker's database file."""
    path = env["DATABASE_URL"].removeprefix("sqlite:///")
    with closing(sqlite3.connect(path, timeout=5)) as connection:
        row = connection.execute("SELECT status FROM fulfilments WHERE id = ?",
                                 (fulfilment_id,)).fetchone()
    return str(row[0])


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
def test_worker_stops_within_seconds_mid_render_and_loses_no_pack(
        portal_dir: dict[str, str], signum: int, tmp_path: Path) -> None:
    _become_subreaper()
    fulfilment_id = _capture_lead_wanting_literature(int(signum))
    log = tmp_path / "worker.log"
    ours_before = _descendants(os.getpid())
    with open(log, "wb") as out:
        # Its own session, as `make run` in a terminal: INT goes to the whole group,
        # render children included, just as Ctrl-C does.
        worker = subprocess.Popen(
            [sys.executable, "-m", "flask", "--app", "portal", "worker"],
            env=portal_dir, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while _status(portal_dir, fulfilment_id) != "sending":  # claimed: rendering
            assert worker.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        children = _descendants(worker.pid)

        # The render child takes seconds to start: this signal comes mid-render.
        stopped_at = time.monotonic()
        if signum == signal.SIGINT:
            os.killpg(worker.pid, signum)
        else:
            worker.send_signal(signum)
        worker.wait(timeout=10)
        took = time.monotonic() - stopped_at
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    output = log.read_text()
    assert took < 10, output
    # The pack was sent, or handed back for the sweeper; never stranded in "sending".
    assert _status(portal_dir, fulfilment_id) in {"pending", "sent"}, output
    assert worker.returncode == 0, output
    assert "Shutting down gracefully" in output
    assert "KeyboardInterrupt" not in output, output  # no child died of the Ctrl-C

    # No render child or helper outlives the worker, none left defunct. Orphans come to
    # us (the subreaper): give them a moment, reap the exited, and none may still run.
    children |= _descendants(os.getpid()) - ours_before
    with_us = _still_running(children, 3)
    assert not with_us, f"left running: {with_us}"
