"""`flask --app portal digests send` killed (SIGKILL) in the middle of its run: run again,
it hands back the send the dead run left and sends the rest; every manager gets the
period's digest once (a copy only with the same Message-ID, at least once)."""

# The worker fixtures are imported from its tests and named as parameters:
# ruff: noqa: F811

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from portal import create_app
from portal.core.models import MailPreference, User
from portal.extensions import db
from tests.portal.test_mail_faults import mail_env, query, wait_for  # noqa: F401
from tests.portal.test_worker_shutdown import (  # noqa: F401
    _capture_lead_wanting_literature,
    portal_dir,
)

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="runs real processes")

MANAGERS = 40


def _managers_wanting_daily_digests(env: dict[str, str]) -> list[str]:
    app = create_app({"PORTAL_BASE_URL": "http://portal.test"})
    emails = [f"digest{n}@portal.test" for n in range(MANAGERS)]
    with app.app_context():
        for email in emails:
            user = User(email=email, name=email, role="manager")
            db.session.add(user)
            db.session.flush()
            db.session.add(MailPreference(user_id=user.id, frequency="daily"))
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    return emails


def _digests(env: dict[str, str]) -> Counter[str]:
    return Counter(status for (status,) in query(
        env, "SELECT status FROM notifications WHERE kind = 'digest'"))


def test_a_digest_run_killed_midway_is_finished_by_the_next_run_once_each(
        mail_env: dict[str, str], smtp_server: Any, tmp_path: Path) -> None:
    _capture_lead_wanting_literature(90)  # something to report: a lead nobody holds
    emails = _managers_wanting_daily_digests(mail_env)
    log = tmp_path / "digests.log"
    command = [sys.executable, "-m", "flask", "--app", "portal", "digests", "send",
               "--period", "daily"]
    # A mail server slow enough that the run is caught in the middle of it.
    smtp_server.handler.delay = 0.1
    try:
        with open(log, "ab") as out:
            run = subprocess.Popen(command, env=mail_env, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for("some digests sent, one being sent", lambda: (
                (now := _digests(mail_env))["sent"] >= 3 and now["sending"] >= 1), 60, log)
        finally:
            run.send_signal(signal.SIGKILL)
            run.wait(timeout=10)
    finally:
        smtp_server.handler.delay = 0
    at_kill = _digests(mail_env)
    assert at_kill["sent"] < len(emails), at_kill
    time.sleep(2.5)  # past MAIL_SENDING_TIMEOUT_SECONDS: the dead run's claim is stale

    again = subprocess.run(command, env=mail_env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert _digests(mail_env) == Counter({"sent": len(emails)}), (
        _digests(mail_env), again.stdout)

    received = Counter(str(m["To"]) for m in smtp_server.handler.messages
                       if "digest" in str(m["Subject"]).lower())
    assert set(emails) <= set(received), "every manager got the digest"
    doubled = {to for to, n in received.items() if n > 1}
    for to in doubled:  # at least once: a copy only of the one the kill cut short
        ids = {m["Message-ID"] for m in smtp_server.handler.messages if str(m["To"]) == to}
        assert len(ids) == 1, (to, ids)
    assert len(doubled) <= 1
