"""A channel manager imports a dealer's list: headers and values mapped, a dry run, then the
import, and the leads are there with the right product line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import sign_in
from tests.browser.live import ROOT, LiveServer

pytestmark = pytest.mark.browser

#: a list as a dealer's spreadsheet exports it: its own headers and words
DEALER_LIST = (
    "Name,Farm / Company,E-mail,Zip,Interested in,Timeframe,Budget\r\n"
    "Odalys Vantongeren,Vantongeren Dairy,odalys.vantongeren@example.org,50401,"
    "Compact tractors,this month,approved\r\n"
    'Torvald Quennell,Quennell Acres,torvald.quennell@example.org,50401,"Tractors, compact",'
    "3 months,approved\r\n"
    "Nobody Atall,,not-an-email,50401,Compact tractors,now,approved\r\n"
)


def run_import_jobs(live: LiveServer) -> None:
    """What the worker does when a nudge arrives (the live portal runs none): the import
    jobs' sweeper (dry runs, then imports waiting), against the live portal's database."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("REDIS_URL", "MAIL_SERVER")}
    env.update({"SECRET_KEY": "browser-test", "DATABASE_URL": f"sqlite:///{live.database}",
                "HUEY_SQLITE_PATH": str(live.database.parent / "huey.db"),
                "PORTAL_BASE_URL": live.base_url})
    code = ("from portal import create_app\n"
            "app = create_app()\n"
            "with app.app_context():\n"
            "    from portal.capture.jobs import import_sweep\n"
            "    assert import_sweep() == 1, 'nothing was waiting'\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_import_with_value_mapping_and_dry_run(new_context: Callable[..., BrowserContext],
                                               live: LiveServer) -> None:
    page = new_context().new_page()
    sign_in(page, "manager@demo.test")
    page.goto("/capture/imports")
    page.get_by_label("CSV file").set_input_files(files=[{
        "name": "dealer-list.csv", "mimeType": "text/csv", "buffer": DEALER_LIST.encode()}])
    page.get_by_role("button", name="Upload and preview").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Map the columns of dealer-list.csv")
    # Common headers are recognised and named in words.
    company = page.get_by_label("Column 2: “Farm / Company”")
    expect(company.locator("option:checked")).to_have_text("Company or farm")
    expect(page.get_by_label("Column 5: “Interested in”").locator("option:checked")
           ).to_have_text("Product line")
    expect(page.get_by_label("Column 1: “Name”").locator("option:checked")
           ).to_have_text("Full name (split into first and last)")
    # Values: the catalog's name is matched; the dealer's own wording is flagged.
    expect(page.get_by_label("“Compact tractors”").locator("option:checked")
           ).to_have_text("Compact tractors (TRC)")
    expect(page.get_by_label("“this month”").locator("option:checked")).to_have_text(
        "Right away")
    values = page.locator("#values-4")
    flagged = values.get_by_role("row").filter(has_text="Tractors, compact")
    expect(flagged).to_contain_text("Not recognised")
    page.get_by_label("“Tractors, compact”").select_option(label="Compact tractors (TRC)")

    page.get_by_role("button", name="Check (dry run)").click()
    dry = page.locator("#dry-run")
    expect(dry).to_contain_text("Checking the 3 rows")
    run_import_jobs(live)
    # The page polls for the dry run's result (htmx) and shows it without a reload.
    expect(dry).to_contain_text("Nothing has been written yet.")
    expect(dry.locator(".tile").nth(0)).to_have_text("2would be created")
    expect(dry.locator(".tile").nth(1)).to_have_text("0would join an existing lead (duplicates)")
    expect(dry.locator(".tile").nth(2)).to_have_text("1would be refused")
    expect(dry).to_contain_text("Not a valid email address")
    # The pick is remembered for this import.
    expect(page.get_by_label("“Tractors, compact”").locator("option:checked")).to_have_text(
        "Compact tractors (TRC)")
    assert live.query("SELECT count(*) FROM leads WHERE last_name IN (?, ?)",
                      ("Vantongeren", "Quennell")) == [(0,)]

    page.get_by_role("button", name="Import 2 rows").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Import of dealer-list.csv")
    run_import_jobs(live)
    # The page polls its progress (htmx) and shows the end without a reload.
    progress = page.locator("#import-progress")
    expect(progress).to_contain_text("Status: Done")
    expect(progress.locator(".tile").nth(0)).to_have_text("2created")
    expect(progress.locator(".tile").nth(2)).to_have_text("1refused")

    page.goto("/leads/search")
    page.get_by_role("searchbox", name="Search").fill("Quennell")
    page.get_by_role("button", name="Search", exact=True).click()
    row = page.locator("#lead-results tbody tr")
    expect(row).to_have_count(1)
    row.get_by_role("link", name="Torvald Quennell").click()
    expect(page.locator("main")).to_contain_text("Quennell Acres")
    expect(page.get_by_text("Compact tractors (TRC)")).to_be_visible()
