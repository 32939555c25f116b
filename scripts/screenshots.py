"""Regenerate the README screenshots in docs/ from a live portal on the demo data.

    .venv/bin/python scripts/screenshots.py [--out docs]

Starts its own server exactly as the browser tests do (a new SQLite file, ``flask db
upgrade``, ``flask demo``, gunicorn; see tests/browser/live.py), sends a few fresh
inquiries through the lead API so the inboxes show new offers, and photographs the pages
with Debian's headless Chromium. Nothing outside a temporary folder and ``--out`` is
written.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright  # noqa: E402

from tests.browser.live import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    PASSWORD,
    LiveServer,
    live_server,
)

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 360, "height": 780}

#: fresh inquiries from around Lubbock, TX: the Lone Star distributor passes them on to
#: South Plains Tractor (dealer2@demo.test, compact tractors only) at once, so its inbox
#: has new offers to show
INQUIRIES = (
    ("Rosalind", "Achterberg", "Achterberg Cattle Co.", "79401", "TRC", "now", "approved",
     "Need a 45 hp tractor with a loader before calving season."),
    ("Teodoro", "Villanueva", "", "79403", "TRC", "3_months", "approved",
     "Small tractor with a box blade for the ranch roads; would like a demo."),
    ("Imogen", "Faulkner", "Faulkner Pecan Orchard", "79407", "TRC", "now", "planned",
     "Compact tractor with a flail mower for the orchard rows."),
)


def _post_json(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def _token(live: LiveServer, email: str) -> str:
    return str(_post_json(live.url("/api/v1/tokens"),
                          {"email": email, "password": PASSWORD})["token"])


def send_inquiries(live: LiveServer) -> list[dict[str, Any]]:
    """Capture the fresh inquiries through the API, as the call centre's system would."""
    token = _token(live, "manager@demo.test")
    leads = []
    for first, last, company, postal, line, timeline, budget, comments in INQUIRIES:
        lead = _post_json(live.url("/api/v1/leads"), {
            "first_name": first, "last_name": last, "company": company,
            "email": f"{first}.{last}@example.org".lower(), "postal_code": postal,
            "country": "US", "product_line": line, "comments": comments,
            "answers": {"timeline": timeline, "budget": budget, "role": "decision_maker"},
        }, token)
        if lead["assigned_partner"] != "LONE-TX01":
            raise SystemExit(f"{first} {last} went to {lead['assigned_partner']}, not "
                             f"LONE-TX01: {lead['routing']}")
        leads.append(lead)
    return leads


def decline(live: LiveServer, lead_id: str, email: str, reason: str) -> None:
    """A dealer declines an offer through the API (the re-routing is what we show)."""
    _post_json(live.url(f"/api/v1/leads/{lead_id}/actions"),
               {"action": "decline", "reason": reason}, _token(live, email))


def signed_in(browser: Browser, live: LiveServer, email: str, viewport: dict[str, int],
              **options: Any) -> Page:
    """A new page in its own context, signed in as ``email``."""
    context = browser.new_context(base_url=live.base_url, viewport=viewport,
                                  device_scale_factor=1, **options)
    page = context.new_page()
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    return page


def shoot(page: Page, path: Path, *, full_page: bool = False) -> None:
    """Save a screenshot once the page's fonts and deferred scripts have settled."""
    page.wait_for_load_state("load")
    page.evaluate("document.fonts.ready")
    page.screenshot(path=str(path), full_page=full_page, animations="disabled")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def shoot_region(page: Page, region: Locator, path: Path, margin: int = 16) -> None:
    """Save one part of a full-page screenshot, with some page around it."""
    box = region.bounding_box()  # relative to the viewport, which may have scrolled
    assert box is not None, "the region is not on the page"
    scroll_x, scroll_y, width = page.evaluate(
        "[window.scrollX, window.scrollY, document.documentElement.scrollWidth]")
    clip = {"x": max(0, box["x"] + scroll_x - margin), "y": max(0, box["y"] + scroll_y - margin),
            "width": min(width, box["width"] + 2 * margin),
            "height": box["height"] + 2 * margin}
    page.screenshot(path=str(path), full_page=True, clip=clip, animations="disabled")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def take(browser: Browser, live: LiveServer, out: Path) -> None:
    """Every screenshot the README shows."""
    leads = send_inquiries(live)
    dealer = "dealer2@demo.test"

    page = browser.new_page(base_url=live.base_url, viewport=DESKTOP, device_scale_factor=1)
    page.goto("/auth/login")
    shoot(page, out / "login.png")
    page.context.close()

    page = signed_in(browser, live, dealer, DESKTOP)
    page.goto("/leads/?tab=new")
    # The demo gives each dealer fresh offers of its own; ours join them.
    for first, last, *_ in INQUIRIES:
        expect(page.get_by_role("link", name=f"{first} {last}")).to_be_visible()
    shoot(page, out / "inbox-desktop.png")
    page.goto("/leads/?tab=open")
    # A quoted lead has the longest story to tell; any open one will do otherwise.
    cards = page.locator("article.lead-card")
    quoted = cards.filter(has=page.locator(".badge-quoted"))
    (quoted if quoted.count() else cards).first.get_by_role("heading").get_by_role("link").click()
    expect(page.get_by_role("region", name="Timeline")).to_be_visible()
    shoot(page, out / "lead-desktop.png", full_page=True)
    page.context.close()

    # North Iowa Implement's administrator: the firm's leads, those assigned to them, and
    # today's follow-up tasks
    page = signed_in(browser, live, "dealer1@demo.test", DESKTOP)
    page.goto("/")
    expect(page.get_by_role("heading", name="Assigned to you")).to_be_visible()
    shoot(page, out / "dashboard-dealer.png", full_page=True)
    page.context.close()

    page = signed_in(browser, live, dealer, PHONE, is_mobile=True, has_touch=True)
    page.goto("/leads/?tab=new")
    shoot(page, out / "inbox-phone.png")
    page.get_by_role("link", name="Rosalind Achterberg").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Rosalind Achterberg")
    shoot(page, out / "lead-phone.png")
    page.context.close()

    declined = leads[2]
    decline(live, declined["id"], dealer, "no_capacity")
    page = signed_in(browser, live, "manager@demo.test", DESKTOP)
    page.goto("/leads/search?status=offered")
    shoot(page, out / "manager-search.png")
    page.goto(f"/leads/{declined['id']}")
    history = page.get_by_role("region", name="Routing history")
    for summary in history.locator("summary").all():
        summary.click()
    shoot_region(page, history, out / "routing-history.png")
    page.goto(f"/leads/{declined['id']}?partner_q=mower")  # the reassign picker, a search
    picker = page.locator("details.reassign")
    picker.scroll_into_view_if_needed()
    shoot_region(page, picker, out / "reassign-picker.png")
    page.goto("/manage/partners")
    shoot(page, out / "partners.png")
    page.goto("/manage/mail")
    shoot(page, out / "mail.png")
    reports(page, out)
    page.context.close()

    page = signed_in(browser, live, "dealer1@demo.test", DESKTOP)
    page.goto("/auth/account")
    shoot(page, out / "account.png")
    page.context.close()

    page = signed_in(browser, live, "distributor1@demo.test", DESKTOP)
    page.goto("/reports/partners?sort=overdue&dir=desc")
    shoot(page, out / "reports-distributor.png", full_page=True)
    page.context.close()


def reports(page: Page, out: Path) -> None:
    """The channel reports as a manager sees them, and a sample scorecard PDF. The three
    clicks of "which dealers in Iowa ignore their leads, and who do we lose to there"."""
    page.goto("/reports/")
    shoot(page, out / "reports-overview.png", full_page=True)
    page.goto("/reports/partners")
    page.get_by_label("State").fill("IA")
    page.get_by_role("button", name="Show").click()
    page.get_by_role("link", name="Follow-up").click()  # worst first after a second click
    page.get_by_role("link", name="Follow-up ▼").click()
    shoot(page, out / "reports-partners-iowa.png", full_page=True)
    page.get_by_role("link", name="Won / lost").click()
    shoot(page, out / "reports-won-lost-iowa.png", full_page=True)
    page.goto("/reports/campaigns")
    shoot(page, out / "reports-campaigns.png", full_page=True)
    page.goto("/reports/speed")
    shoot(page, out / "reports-speed.png", full_page=True)
    page.goto("/reports/compliance")
    shoot(page, out / "reports-compliance.png", full_page=True)
    page.goto("/reports/partners")
    page.locator("table.league tbody th a").first.click()
    shoot(page, out / "reports-scorecard.png", full_page=True)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download PDF").click()
    download.value.save_as(out / "sample-scorecard.pdf")
    print(f"wrote {(out / 'sample-scorecard.pdf').relative_to(ROOT)}")


def main() -> None:
    """Start a live portal, take the screenshots, stop it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs",
                        help="folder for the PNG files (default: docs/)")
    out = parser.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="portal-shots-") as workdir:
        with live_server(Path(workdir)) as live, sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                take(browser, live, out)
            finally:
                browser.close()


if __name__ == "__main__":
    main()
