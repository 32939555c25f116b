"""A dealer works offers on the demo data in Chromium: accept → contact → quote → won, and
decline → re-routed, once with htmx and once with JavaScript switched off."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.browser.conftest import sign_in
from tests.browser.live import LiveServer

pytestmark = pytest.mark.browser


def open_fold(scope: Locator, name: str) -> Locator:
    """Open an action folded behind its name (a native <details>) and return its form."""
    fold = scope.locator("details.fold").filter(
        has=scope.page.locator("summary", has_text=re.compile(rf"^{re.escape(name)}…$")))
    fold.locator("summary").click()
    form = fold.locator("form")
    expect(form).to_be_visible()
    return form


def timeline(page: Page) -> Locator:
    return page.get_by_role("region", name="Timeline")


def record_outcomes(page: Page, submit: Callable[[Locator, str], None], message: Locator,
                    channel: str) -> list[str]:
    """On an accepted lead's page: contacted, quoted, won, checking what each step shows.

    ``message`` is where the page confirms an action; the timeline's headings come back.
    """
    detail = page.locator(".lead-detail")

    form = open_fold(detail, "Contacted")
    form.get_by_label("How did you reach them?").select_option(channel)
    submit(form, "Contacted")
    expect(message).to_have_text("Contact recorded.")
    expect(timeline(page).locator(".event-contacted")).to_contain_text(
        re.compile(rf"Channel\s*{channel}", re.IGNORECASE))

    form = open_fold(detail, "Quote")
    form.get_by_label("Quoted amount").fill("24,750")
    submit(form, "Quote")
    expect(message).to_have_text("Quote recorded.")
    expect(timeline(page).locator(".event-quoted")).to_contain_text("$24,750.00")

    form = open_fold(detail, "Won")
    form.get_by_label("Amount won").fill("24000")
    submit(form, "Won")
    expect(message).to_have_text("Won: well done. The outcome is recorded.")
    expect(page.locator(".lead-head .badge-status")).to_have_text("Won")
    expect(timeline(page).locator(".event-won")).to_contain_text("$24,000.00")
    # Nothing is left to record on a won lead.
    expect(page.get_by_role("region", name="Record what happened")).to_have_count(0)
    return timeline(page).locator(".event-head strong").all_inner_texts()


def test_offer_to_won_with_htmx(new_context: Callable[..., BrowserContext],
                                capture_inquiry: Callable[..., dict[str, Any]],
                                live: LiveServer) -> None:
    """With JavaScript the inbox card and the lead panel swap in place; no page reloads."""
    # The demo's own new offers come and go with the time of day it was loaded at: a fresh
    # inquiry from Findlay, OH, which the Buckeye distributor passes on to its dealer there.
    name = "Marguerite Castellanos"
    lead = capture_inquiry(*name.split(), "45840")
    assert (lead["status"], lead["assigned_partner"]) == ("offered", "BUCK-OH01")

    page = new_context().new_page()
    sign_in(page, "dealer4@demo.test")
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Leads").click()
    page.get_by_role("navigation", name="Lead tabs").get_by_role(
        "link", name=re.compile(r"^New offers")).click()
    expect(page).to_have_url(re.compile(r"tab=new"))
    # The script is deferred: wait for it rather than for a load event.
    page.wait_for_function("() => typeof window.htmx === 'object'")

    card = page.locator("article.lead-card").filter(has_text=name)
    expect(card.locator(".badge-status")).to_have_text("Offered")
    new_count = page.locator("#lead-tabs .tab-new .count")
    before = int(new_count.inner_text())
    total = page.locator("#lead-total")
    expect(total).to_have_text(str(before))  # "N in all" under the list
    page.evaluate("window.__marker = 1")

    with page.expect_request(lambda r: r.method == "POST") as posted:
        card.get_by_role("button", name="Accept", exact=True).click()
    headers = posted.value.headers
    assert headers.get("hx-request") == "true"
    assert headers.get("x-csrftoken"), "htmx did not send the CSRF token from <body>"

    expect(card.get_by_role("status")).to_have_text(
        f"Accepted {name}: the lead is yours. Contact them soon.")
    expect(card.locator(".badge-status")).to_have_text("Accepted")
    expect(card.get_by_role("button", name="Accept", exact=True)).to_have_count(0)
    expect(new_count).to_have_text(str(before - 1))  # the tab counts follow, out of band
    expect(total).to_have_text(str(before - 1))  # and so does the list's total
    assert page.evaluate("window.__marker") == 1, "the inbox reloaded instead of swapping"

    card.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(re.escape(name)))
    page.evaluate("window.__marker = 2")

    def submit(form: Locator, label: str) -> None:
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            form.get_by_role("button", name=label, exact=True).click()
        assert answer.value.status == 200  # the panel fragment, not a redirect
        assert answer.value.request.headers.get("x-csrftoken")

    kinds = record_outcomes(page, submit, page.locator(".lead-detail > [role=status]"),
                            "email")
    # Newest first: every step is there, in the order it happened.
    assert kinds[:5] == ["Won", "Quoted", "Contacted", "Accepted", "Forwarded"]
    assert page.evaluate("window.__marker") == 2, "the lead page reloaded instead of swapping"
    # What the page says is what was stored.
    lead_id = uuid.UUID(urlsplit(page.url).path.rsplit("/", 1)[-1])
    [(status, quoted, won)] = live.query(
        "SELECT status, quote_amount, won_amount FROM leads WHERE id = ?", (lead_id.hex,))
    assert (status, float(quoted), float(won)) == ("won", 24750, 24000)


@pytest.fixture
def no_js_dealer(new_context: Callable[..., BrowserContext],
                 capture_inquiry: Callable[..., dict[str, Any]]) -> Callable[[str, str], Page]:
    """dealer2 (South Plains Tractor, Lubbock) signed in with JavaScript off, plus a
    fresh inquiry from Lubbock that the Lone Star distributor passes on to it at once."""

    def make(first_name: str, last_name: str) -> Page:
        lead = capture_inquiry(first_name, last_name, "79401")
        assert (lead["status"], lead["assigned_partner"]) == ("offered", "LONE-TX01")
        page = new_context(java_script_enabled=False).new_page()
        sign_in(page, "dealer2@demo.test")
        page.goto("/leads/?tab=new")
        return page

    return make


def test_offer_to_won_without_javascript(no_js_dealer: Callable[[str, str], Page]) -> None:
    """Without JavaScript every action is a plain form post answered by a 303 redirect."""
    page = no_js_dealer("Solveig", "Vestergaard")
    assert page.evaluate("typeof window.htmx") == "undefined"
    card = page.locator("article.lead-card").filter(has_text="Solveig Vestergaard")
    expect(card.locator(".badge-status")).to_have_text("Offered")

    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        card.get_by_role("button", name="Accept", exact=True).click()
    assert answer.value.status == 303
    assert "hx-request" not in answer.value.request.headers
    # Back on the new offers, where the accepted lead no longer waits.
    expect(page).to_have_url(re.compile(r"/leads/\?tab=new"))
    expect(page.locator(".flashes")).to_contain_text(
        "Accepted Solveig Vestergaard: the lead is yours.")
    expect(page.locator("article.lead-card").filter(has_text="Solveig Vestergaard")
           ).to_have_count(0)

    page.get_by_role("link", name=re.compile(r"^To contact")).click()
    page.get_by_role("link", name="Solveig Vestergaard").click()
    expect(page.locator(".lead-head .badge-status")).to_have_text("Accepted")
    lead_url = page.url

    def submit(form: Locator, label: str) -> None:
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            form.get_by_role("button", name=label, exact=True).click()
        assert answer.value.status == 303
        assert urlsplit(answer.value.headers["location"]).path == urlsplit(lead_url).path
        expect(page).to_have_url(lead_url)

    # After a redirect the confirmation is a flash message in the layout.
    kinds = record_outcomes(page, submit, page.locator(".flashes"), "visit")
    assert kinds[:5] == ["Won", "Quoted", "Contacted", "Accepted", "Forwarded"]


def test_decline_reroutes_without_javascript(
        no_js_dealer: Callable[[str, str], Page],
        new_context: Callable[..., BrowserContext]) -> None:
    """A declined offer leaves the dealer's inbox and a manager sees where it went next."""
    page = no_js_dealer("Henrik", "Aasland")
    card = page.locator("article.lead-card").filter(has_text="Henrik Aasland")
    lead_path = card.get_by_role("link", name="Henrik Aasland").get_attribute("href")
    assert lead_path

    # Declining without a reason: the lead page says what is missing, the form open.
    form = open_fold(card, "Decline")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.get_by_role("button", name="Decline", exact=True).click()
    assert answer.value.status == 422
    expect(page.get_by_role("heading", level=1)).to_contain_text("Henrik Aasland")
    form = page.locator("details.fold[open] form.action-decline")
    expect(form).to_contain_text("Pick a reason.")
    form.get_by_label("Why do you decline?").select_option(label="No capacity right now")
    form.get_by_label("Details (optional)").fill("Two techs out until May")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        form.get_by_role("button", name="Decline", exact=True).click()
    assert answer.value.status == 303  # back to the list it came from
    expect(page.locator(".flashes")).to_have_text(
        "Declined Henrik Aasland: the lead goes to another partner.")
    expect(page).to_have_url(re.compile(r"/leads/\?tab=new"))
    # The notice names it; no card of it is left.
    expect(page.locator("article.lead-card").filter(has_text="Henrik Aasland")).to_have_count(0)
    # Not just hidden from the list: the lead is no longer this dealer's to open.
    response = page.goto(lead_path)
    assert response is not None and response.status == 404

    manager = new_context().new_page()
    sign_in(manager, "manager@demo.test")
    manager.goto("/leads/search")
    # By last name: the search matches each field on its own ("first last" finds nothing).
    manager.get_by_role("searchbox", name="Search").fill("Aasland")
    manager.get_by_role("button", name="Search", exact=True).click()
    results = manager.locator("#lead-results tbody tr")
    expect(results).to_have_count(1)
    expect(results.locator(".badge-status")).to_have_text("Offered")
    expect(results.get_by_role("link", name="LONESTAR")).to_be_visible()
    results.get_by_role("link", name="Henrik Aasland").click()

    expect(manager.locator(".lead-head")).to_contain_text(
        "With Lone Star Implement Distributors (LONESTAR)")
    history = manager.get_by_role("region", name="Routing history")
    offers = history.locator("ol.offers > li")
    expect(offers).to_have_count(3)
    declined = offers.filter(has_text="South Plains Tractor (LONE-TX01)")
    expect(declined).to_contain_text("Declined")
    expect(declined).to_contain_text("No capacity right now: Two techs out until May")
    current = offers.filter(has_text="Lone Star Implement Distributors (LONESTAR)").last
    expect(current).to_contain_text("Pending")
    expect(history.locator(".explanation").last).to_contain_text(
        "Offered to LONESTAR Lone Star Implement Distributors")
    expect(timeline(manager).locator(".event-declined")).to_contain_text("LONE-TX01")


def test_manager_search_applies_filters_at_once_and_keeps_them_on_back(
        new_context: Callable[..., BrowserContext]) -> None:
    """A dropdown filters the results as soon as it changes, and Back from a lead finds
    the search as it was left: the same filters in the form, the same results."""
    page = new_context().new_page()
    sign_in(page, "manager@demo.test")
    page.goto("/leads/search")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    rows = page.locator("#lead-results tbody tr")
    pager = page.locator("#lead-results .pager").first

    def total() -> int:
        found = re.search(r"([\d,]+)\+? in all", pager.inner_text())
        assert found, pager.inner_text()
        return int(found.group(1).replace(",", ""))

    everything = total()
    page.get_by_label("Status").select_option(label="Won")  # no Search button pressed
    expect(page).to_have_url(re.compile(r"status=won"))
    expect(rows.locator(".badge-status").filter(has_text="Won")).to_have_count(rows.count())
    won = total()
    assert 0 < won < everything
    name = rows.first.locator("td").nth(1).get_by_role("link").inner_text()
    last_name = name.split()[-1]
    searches: list[str] = []
    page.on("request", lambda r: searches.append(r.url) if "/leads/search" in r.url else None)
    page.get_by_role("searchbox", name="Search").fill(last_name)
    page.get_by_role("searchbox", name="Search").press("Enter")
    expect(page).to_have_url(re.compile(r"q=" + re.escape(last_name)))
    expect(rows.first).to_contain_text(name)
    assert len(searches) == 1, searches  # Enter searches once (not on change and submit)
    found = rows.count()

    rows.first.locator("td").nth(1).get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(name)
    page.go_back()
    expect(page).to_have_url(re.compile(r"status=won"))
    expect(page.get_by_role("searchbox", name="Search")).to_have_value(last_name)
    expect(page.get_by_label("Status")).to_have_value("won")
    expect(rows).to_have_count(found)
    expect(rows.first).to_contain_text(name)
    # Back within the page (the searches htmx pushed): the status-only search again.
    page.go_back()
    expect(page).not_to_have_url(re.compile(r"q=[^&]"))
    expect(page.get_by_role("searchbox", name="Search")).to_have_value("")
    expect(page.get_by_label("Status")).to_have_value("won")
    assert total() == won


def test_a_card_in_a_stale_tab_says_what_became_of_its_lead(
        new_context: Callable[..., BrowserContext],
        capture_inquiry: Callable[..., dict[str, Any]]) -> None:
    """Two tabs on the same inbox: accepted in one, then acted on in the other; then
    declined in one (it leaves the dealer) and accepted in the other."""
    context = new_context()
    first, second = context.new_page(), context.new_page()
    sign_in(first, "dealer4@demo.test")
    kept, lost = "Ottilie Brandvold", "Casimir Oyelaran"
    for name in (kept, lost):
        lead = capture_inquiry(*name.split(), "45840")
        assert lead["assigned_partner"] == "BUCK-OH01"
    for page in (first, second):
        page.goto("/leads/?tab=new")
        page.wait_for_function("() => typeof window.htmx === 'object'")

    def card(page: Page, name: str) -> Locator:
        return page.locator("article.lead-card").filter(has_text=name)

    # Accepted in the first tab; the second still offers Decline: the refusal says why.
    card(first, kept).get_by_role("button", name="Accept", exact=True).click()
    expect(card(first, kept).locator(".badge-status")).to_have_text("Accepted")
    form = open_fold(card(second, kept), "Decline")
    form.get_by_label("Why do you decline?").select_option(label="No capacity right now")
    form.get_by_role("button", name="Decline", exact=True).click()
    expect(card(second, kept).get_by_role("status")).to_have_text(
        "Not done: only an offered lead can be declined. The lead changed since this page "
        "was loaded: it is accepted now.")
    expect(card(second, kept).locator(".badge-status")).to_have_text("Accepted")

    # Declined in the first tab (it goes to another dealer), then accepted in the second.
    form = open_fold(card(first, lost), "Decline")
    form.get_by_label("Why do you decline?").select_option(label="No capacity right now")
    form.get_by_role("button", name="Decline", exact=True).click()
    expect(first.locator("article.lead-card.is-gone").first).to_be_visible()
    card(second, lost).get_by_role("button", name="Accept", exact=True).click()
    expect(second.locator("article.lead-card.is-gone").get_by_role("status")).to_have_text(
        "This lead is no longer in your list: it moved on since the page was loaded.")


@pytest.mark.parametrize(("size", "javascript"), [
    ({"width": 360, "height": 740}, True), ({"width": 1280, "height": 720}, True),
    ({"width": 360, "height": 740}, False)], ids=["phone", "desktop", "phone-no-js"])
def test_the_confirmation_of_an_outcome_is_in_view(
        new_context: Callable[..., BrowserContext],
        capture_inquiry: Callable[..., dict[str, Any]], size: dict[str, int],
        javascript: bool) -> None:
    """The outcome forms sit at the bottom of a long lead page: after recording one, the
    page shows what happened where the dealer is looking, not a screen or two above."""
    first, last = {True: ("Ottoline", f"Brandvold{size['width']}"),
                   False: ("Ottoline", "Brandvold-nojs")}[javascript]
    lead = capture_inquiry(first, last, "45840")  # Findlay, OH: forwarded to dealer4
    assert lead["assigned_partner"] == "BUCK-OH01"
    page = new_context(viewport=size, java_script_enabled=javascript).new_page()
    sign_in(page, "dealer4@demo.test")
    page.goto(f"/leads/{lead['id']}")
    if javascript:
        page.wait_for_function("() => typeof window.htmx === 'object'")
    message = (page.locator(".lead-detail > [role=status]") if javascript
               else page.locator(".flashes"))
    page.locator(".lead-actions").get_by_role("button", name="Accept", exact=True).click()
    expect(message).to_contain_text("the lead is yours")
    expect(message).to_be_in_viewport()

    form = open_fold(page.locator(".lead-detail"), "No interest")
    form.scroll_into_view_if_needed()
    form.get_by_role("button", name="No interest", exact=True).click()
    expect(message).to_contain_text("No interest")
    expect(message).to_be_in_viewport()
    # ... and the outcome it confirms is on screen with it, at the top of the lead.
    expect(page.locator(".lead-head .badge-status")).to_be_in_viewport()
