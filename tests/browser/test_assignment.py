"""Assignment within a firm in Chromium on the demo data: North Iowa Implement's
administrator gives a new offer to a salesperson (htmx, then again without JavaScript),
and the salesperson signs in and finds it under "My leads"."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import sign_in
from tests.browser.live import LiveServer

pytestmark = pytest.mark.browser


def first_unassigned_offer(page: Page) -> str:
    """From the inbox, the name of the first new offer nobody of the firm has taken."""
    page.goto("/leads/?tab=new")
    page.get_by_role("navigation", name="Whose leads").get_by_role(
        "link", name="Unassigned").click()
    expect(page).to_have_url(re.compile(r"assignee=none"))
    card = page.locator("article.lead-card").first
    expect(card).to_be_visible()
    expect(card.locator(".assignee")).to_have_count(0)
    return card.locator("h3 a").inner_text()


def test_the_admin_assigns_a_lead_and_the_colleague_finds_it_under_my_leads(
        new_context: Callable[..., BrowserContext], live: LiveServer) -> None:
    admin = new_context().new_page()
    sign_in(admin, "dealer1@demo.test")
    name = first_unassigned_offer(admin)
    admin.get_by_role("link", name=name, exact=True).first.click()
    expect(admin.get_by_role("heading", level=1)).to_contain_text(name)
    admin.wait_for_function("() => typeof window.htmx === 'object'")
    admin.evaluate("window.__marker = 1")
    line = admin.locator(".assign-line")
    expect(line).to_contain_text("Unassigned: nobody of the firm has taken it yet.")

    line.get_by_label("Assigned to").select_option(label="Jordan Miles")
    with admin.expect_response(lambda r: r.request.method == "POST") as answer:
        line.get_by_role("button", name="Assign", exact=True).click()
    assert answer.value.status == 200 and answer.value.request.headers.get("x-csrftoken")
    expect(admin.locator(".lead-detail > [role=status]")).to_have_text(
        "Assigned to Jordan Miles: they get its emails from now on.")
    expect(admin.locator(".assign-line .assignee")).to_have_text("Assigned to Jordan Miles")
    expect(admin.locator(".lead-head .badge-status")).to_have_text("Offered")  # unchanged
    expect(admin.get_by_role("region", name="Timeline").locator(".event-assigned").first
           ).to_contain_text(re.compile(r"Assigned to Jordan Miles by \w+"))
    assert admin.evaluate("window.__marker") == 1, "the lead page reloaded instead of swapping"
    lead_id = admin.url.rsplit("/", 1)[-1]
    [(assignee,)] = live.query(
        "SELECT users.email FROM leads JOIN users ON users.id = leads.assigned_user_id "
        "WHERE leads.id = ?", (lead_id.replace("-", ""),))
    assert assignee == "sales1@demo.test"

    # Jordan signs in: the lead is under My leads, with the firm's beside it.
    colleague = new_context().new_page()
    sign_in(colleague, "sales1@demo.test")
    expect(colleague.locator(".tiles-mine .tile-new .num")).not_to_have_text("0")
    colleague.get_by_role("navigation", name="Main").get_by_role("link", name="Leads").click()
    colleague.get_by_role("navigation", name="Whose leads").get_by_role(
        "link", name="My leads").click()
    colleague.get_by_role("navigation", name="Lead tabs").get_by_role(
        "link", name=re.compile(r"^New offers")).click()
    expect(colleague).to_have_url(re.compile(r"tab=new.*assignee=me|assignee=me.*tab=new"))
    card = colleague.locator("article.lead-card").filter(has_text=name)
    expect(card).to_have_count(1)
    expect(card.locator(".assignee")).to_have_text("assigned to Jordan Miles")
    # Every card on My leads is Jordan's.
    assignees = colleague.locator("article.lead-card .assignee").all_inner_texts()
    assert assignees and set(assignees) == {"assigned to Jordan Miles"}


def test_assigning_without_javascript(new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, "dealer1@demo.test")
    name = first_unassigned_offer(page)
    page.get_by_role("link", name=name, exact=True).first.click()
    line = page.locator(".assign-line")
    line.get_by_label("Assigned to").select_option(label="Casey Brandt")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        line.get_by_role("button", name="Assign", exact=True).click()
    assert answer.value.status == 303
    expect(page.locator(".flashes")).to_contain_text(
        "Assigned to Casey Brandt: they get its emails from now on.")
    expect(page.locator(".assign-line .assignee")).to_have_text("Assigned to Casey Brandt")
