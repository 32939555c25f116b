"""Redis down with ``REDIS_URL`` set: captures still succeed (the rows are the truth), and
once Redis is back a real worker on it sends what waited, each pack once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import pytest
import redis
from sqlalchemy import select

from portal import create_app
from portal.core import jobs as job_queue
from portal.core.models import Fulfilment, Lead
from portal.extensions import db
from tests.conftest import PASSWORD
from tests.portal.test_worker_shutdown import LEAD, _status, portal_dir  # noqa: F401

REDIS = "redis://127.0.0.1:6379/13"  # a database of the machine's Redis for this test
NOBODY = "redis://127.0.0.1:9/0"  # the discard port: nothing listens


def _redis_answers() -> bool:
    try:
        return bool(redis.Redis.from_url(REDIS, socket_connect_timeout=1).ping())
    except redis.exceptions.RedisError:
        return False


pytestmark = pytest.mark.skipif(not _redis_answers(),
                                reason="needs the Redis server at 127.0.0.1:6379")


def _capture(redis_url: str, n: int) -> tuple[int, float, int]:
    """Capture one lead wanting literature with ``REDIS_URL`` set: the answer's status, its
    time in seconds, and the pack's row id."""
    app = create_app({"PORTAL_BASE_URL": "http://portal.test", "REDIS_URL": redis_url})
    with app.app_context():
        client = app.test_client()
        token = client.post("/api/v1/tokens", json={"email": "manager@portal.test",
                                                    "password": PASSWORD}).json["token"]
        started = time.monotonic()
        response = client.post("/api/v1/leads", json={
            **LEAD, "email": f"down.{n}@example.com", "phone": f"(641) 555-02{n:02d}",
            "last_name": f"Down-{n}"}, headers={"Authorization": f"Bearer {token}"})
        took = time.monotonic() - started
        lead_id = uuid.UUID(response.json["id"])
        assert db.session.get(Lead, lead_id) is not None
        row = db.session.scalars(select(Fulfilment).where(Fulfilment.lead_id == lead_id)).one()
        db.session.remove()
        db.engine.dispose()
    return response.status_code, took, row.id


def test_captures_succeed_while_redis_is_down_and_the_worker_catches_up(
        portal_dir: dict[str, str], smtp_server: Any) -> None:  # noqa: F811 - the fixture
    queue = redis.Redis.from_url(REDIS)
    queue.flushdb()
    job_queue._queue_down_until = 0.0
    answers = [_capture(NOBODY, n) for n in range(3)]
    assert [status for status, _, _ in answers] == [201, 201, 201]
    assert max(took for _, took, _ in answers) < 5, answers
    packs = [row_id for _, _, row_id in answers]
    assert {_status(portal_dir, row_id) for row_id in packs} == {"pending"}
    job_queue._queue_down_until = 0.0

    # Redis is back: the sweeper the worker runs every minute, queued now, and the worker.
    env = {**portal_dir, "REDIS_URL": REDIS, "MAIL_SERVER": "127.0.0.1",
           "MAIL_PORT": str(smtp_server.port)}
    app = create_app({"REDIS_URL": REDIS})
    with app.app_context():
        job_queue.enqueue("fulfilment_sweep")
    smtp_server.handler.messages.clear()
    worker = subprocess.Popen([sys.executable, "-m", "flask", "--app", "portal", "worker"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while {_status(portal_dir, row_id) for row_id in packs} != {"sent"}:
            assert worker.poll() is None, worker.stdout.read().decode()  # type: ignore[union-attr]
            assert time.monotonic() < deadline, [_status(portal_dir, r) for r in packs]
            time.sleep(0.2)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.communicate(timeout=20)  # reads and closes its output
        queue.flushdb()
    sent_to = sorted(message["To"] for message in smtp_server.handler.messages)
    assert sent_to == sorted(f"down.{n}@example.com" for n in range(3)), "each pack once"
