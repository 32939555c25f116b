"""Pages work under the Content-Security-Policy: htmx swaps, forms, charts and PDFs, with
not one violation reported by the browser."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

#: every violation the page reports, recorded by a script the browser runs before the
#: page's own (Playwright injects it: the policy does not apply to it)
LISTEN = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__violations.push(`${event.violatedDirective} ${event.blockedURI} ${event.sample}`);
});
"""


def violations(page: Page) -> list[str]:
    return page.evaluate("window.__violations")  # type: ignore[no-any-return]


def watched(new_context: Callable[..., BrowserContext]) -> Page:
    context = new_context()
    context.add_init_script(LISTEN)
    return context.new_page()


def test_manager_pages_charts_htmx_and_pdf_work_under_the_policy(
        new_context: Callable[..., BrowserContext]) -> None:
    page = watched(new_context)
    sign_in(page, "manager@demo.test")
    response = page.goto("/reports/")
    assert response is not None
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
    chart = page.locator("svg.chart").first
    expect(chart).to_be_visible()
    box = chart.bounding_box()
    assert box is not None and 100 < box["width"] <= 640
    assert violations(page) == []

    page.goto("/reports/won-lost")
    expect(page.locator("svg.chart").first).to_be_visible()
    assert violations(page) == []

    # An htmx swap: the search filters at once when a dropdown changes.
    page.goto("/leads/search")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    page.get_by_label("Status").select_option(label="Won")
    expect(page).to_have_url(re.compile(r"status=won"))
    expect(page.locator("#lead-results .badge-status").first).to_have_text("Won")
    assert violations(page) == []

    # A partner's scorecard and its PDF.
    page.goto("/reports/partners")
    page.locator("main table a[href^='/reports/partners/']").first.click()
    pdf_link = page.get_by_role("link", name="Download PDF")
    expect(pdf_link).to_be_visible()
    pdf = page.request.get(pdf_link.get_attribute("href") or "")
    assert pdf.status == 200
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.body().startswith(b"%PDF")
    assert violations(page) == []


def test_a_dealer_works_a_lead_with_htmx_under_the_policy(
        new_context: Callable[..., BrowserContext]) -> None:
    page = watched(new_context)
    sign_in(page, "dealer1@demo.test")
    page.goto("/leads/?tab=open")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    page.locator("article.lead-card").first.get_by_role("heading").get_by_role("link").click()
    notes = page.get_by_role("region", name="Notes")
    notes.get_by_role("textbox").first.fill("Called, left a message (CSP check).")
    notes.get_by_role("button", name="Add note").click()  # htmx posts and swaps the card
    expect(page.get_by_role("region", name="Notes")).to_contain_text(
        "Called, left a message (CSP check).")
    assert violations(page) == []

    # The inbox's search, typed and sent with Enter: htmx swaps the list and settles the
    # elements it kept (settling a style attribute is an inline style the policy refuses).
    # The inbox list swapped again with the same cards, as a search or a filter does: htmx
    # settles the elements it finds in both (settling a style attribute is an inline style
    # the policy refuses, one per card's decline field).
    page.goto("/leads/?tab=new")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    expect(page.locator("input[id^='detail-decline-']").first).to_be_attached()
    page.evaluate("""() => new Promise((done) => {
        document.body.addEventListener("htmx:afterSettle", () => done(), {once: true});
        window.htmx.ajax("GET", location.pathname + location.search,
                         {target: "#lead-list", swap: "outerHTML"});
    })""")
    assert violations(page) == []

    page.goto("/auth/account")
    expect(page.get_by_role("heading", name="API tokens")).to_be_visible()
    assert violations(page) == []
