"""A dealer sets a follow-up task in Chromium, finds it in "Tasks due today" and gets its
reminder email: the minute's sweep runs as in the notify tests, against the live portal's
database, and mails the real SMTP server of the tests."""

from __future__ import annotations

import re
import zoneinfo
from collections.abc import Callable
from datetime import timedelta
from email.header import decode_header, make_header
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import sign_in
from tests.browser.live import LiveServer
from tests.browser.test_lead_flow import open_fold

pytestmark = pytest.mark.browser
DEALER = "dealer4@demo.test"


def _subject(message: Any) -> str:
    return str(make_header(decode_header(message["Subject"]))).replace("\r\n", "")


def _sweep(live: LiveServer, smtp_port: int, minutes_ahead: int) -> None:
    """The minute's sweep (portal.notify.jobs.sweep), run on the live portal's database
    with the tests' mail server, a few minutes on as the clock would be."""
    from portal import create_app
    from portal.core.models import utcnow
    from portal.notify import jobs as notify_jobs

    app = create_app({"DATABASE_URL": f"sqlite:///{live.database}",
                      "SECRET_KEY": "browser-sweep", "PORTAL_BASE_URL": live.base_url,
                      "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_port,
                      "HUEY_IMMEDIATE": True})
    with app.app_context():
        notify_jobs.sweep(now=utcnow() + timedelta(minutes=minutes_ahead))
        from portal.extensions import db

        db.session.remove()
        db.engine.dispose()


def test_a_task_due_now_shows_in_tasks_due_today_and_its_reminder_arrives(
        new_context: Callable[..., BrowserContext],
        capture_inquiry: Callable[..., dict[str, Any]], live: LiveServer,
        smtp_server: Any) -> None:
    # A fresh inquiry from Findlay, OH, which the Buckeye distributor passes on at once
    # to its dealer there (demo dealer 4).
    name = "Rosalind Okafor"
    lead = capture_inquiry(*name.split(), "45840")
    assert (lead["status"], lead["assigned_partner"]) == ("offered", "BUCK-OH01")
    page = new_context().new_page()
    sign_in(page, DEALER)
    page.goto(f"/leads/{lead['id']}")
    page.locator(".lead-actions").get_by_role("button", name="Accept").click()
    expect(page.locator(".lead-head .badge-status")).to_have_text("Accepted")

    # Due a minute ago in the dealer's zone (the portal's: the demo user chose none).
    zone = zoneinfo.ZoneInfo(live.query(
        "SELECT coalesce((SELECT time_zone FROM mail_preferences WHERE user_id = u.id), "
        "nullif(p.time_zone, ''), 'America/Chicago') FROM users u JOIN partners p "
        "ON p.id = u.partner_id WHERE u.email = ?", (DEALER,))[0][0])
    from datetime import UTC, datetime

    due = (datetime.now(UTC) - timedelta(minutes=1)).astimezone(zone)
    tasks = page.get_by_role("region", name="Follow-up tasks")
    form = open_fold(tasks, "Add a task")
    form.get_by_label("To do").select_option("call_back")
    form.get_by_label("Due on").fill(due.date().isoformat())
    form.get_by_label("at (HH:MM)").fill(due.strftime("%H:%M"))
    form.get_by_label("Note (optional)").fill("Ask about the 45 hp loader package")
    form.get_by_role("button", name="Add task").click()
    shown = f"{due:%a} {due.day} {due:%b}, {due:%H:%M}"
    card = page.get_by_role("region", name="Follow-up tasks")
    expect(card.get_by_role("status")).to_have_text(f"Task added: Call back, due {shown}.")
    expect(card.locator(".task").first).to_contain_text("Overdue")
    expect(page.get_by_role("region", name="Timeline")).to_contain_text("Follow-up task added")

    page.get_by_role("navigation", name="Main").get_by_role("link", name="Tasks").click()
    expect(page.get_by_role("heading", name="Tasks due today")).to_be_visible()
    row = page.locator(".due-tasks .task").filter(has_text=name)
    expect(row).to_contain_text(f"Call back · due {shown}")
    expect(row).to_contain_text("Overdue")
    expect(row).to_contain_text("Findlay")
    row.get_by_role("link", name=name).click()
    expect(page).to_have_url(re.compile(rf"/leads/{lead['id']}$"))

    smtp_server.handler.messages.clear()
    _sweep(live, smtp_server.port, minutes_ahead=1)
    mine = [m for m in smtp_server.handler.messages
            if m["To"] == DEALER and name in _subject(m)]
    assert [_subject(m) for m in mine] == [f"Task due: Call back · {name} (due {shown})"]
    _sweep(live, smtp_server.port, minutes_ahead=2)  # exactly once
    assert len([m for m in smtp_server.handler.messages if name in _subject(m)]) == 1
