"""Pages people use on a phone fit its width, and the login works from the keyboard."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 780}


def page_width(page: Page) -> int:
    """How wide the document is; more than the viewport means sideways scrolling."""
    return int(page.evaluate("document.documentElement.scrollWidth"))


def test_inbox_and_lead_page_fit_a_phone(new_context: Callable[..., BrowserContext]) -> None:
    """At 360 px nothing scrolls sideways and the main actions are on the first screen."""
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    # dealer1 (North Iowa Implement) has a full inbox of open leads in the demo.
    sign_in(page, "dealer1@demo.test")
    page.goto("/leads/?tab=open")
    cards = page.locator("article.lead-card")
    expect(cards.first).to_be_visible()
    assert page_width(page) <= PHONE["width"]
    tabs = page.get_by_role("navigation", name="Lead tabs")
    expect(tabs.get_by_role("link", name=re.compile(r"^New offers"))).to_be_in_viewport()
    expect(page.get_by_role("button", name="Filter")).to_be_visible()

    # An open lead: the page leads with what to record next.
    cards.first.get_by_role("heading").get_by_role("link").click()
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    actions = page.get_by_role("region", name="Record what happened")
    for name in ("Quote…", "Won…", "Lost…"):
        expect(actions.locator("summary", has_text=name)).to_be_in_viewport()
    assert page_width(page) <= PHONE["width"]
    # An action opened on a phone still fits.
    actions.locator("summary", has_text="Lost…").click()
    expect(actions.get_by_label("Why was it lost?")).to_be_visible()
    assert page_width(page) <= PHONE["width"]
    # The phone number is a link that dials.
    expect(page.get_by_role("region", name="Prospect").locator("a[href^='tel:']")).to_be_visible()


def test_login_by_keyboard(new_context: Callable[..., BrowserContext]) -> None:
    """Tab walks email → password → remember me → Sign in, each with its label."""
    page = new_context().new_page()
    page.goto("/auth/login")
    email = page.get_by_label("Email")
    password = page.get_by_label("Password")
    remember = page.get_by_label("Keep me signed in on this device")
    submit = page.get_by_role("button", name="Sign in")
    expect(email).to_be_focused()  # autofocus: typing can start at once

    page.keyboard.type("dealer4@demo.test")
    page.keyboard.press("Tab")
    expect(password).to_be_focused()
    page.keyboard.type("demo-password")
    page.keyboard.press("Tab")
    expect(remember).to_be_focused()
    page.keyboard.press("Space")
    expect(remember).to_be_checked()
    page.keyboard.press("Tab")
    expect(submit).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(remember).to_be_focused()
    page.keyboard.press("Tab")

    page.keyboard.press("Enter")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.get_by_role("banner")).to_contain_text("Hancock County Implement")
    # "Keep me signed in" left a lasting cookie behind.
    assert any(cookie["name"] == "remember_token" and cookie["expires"] > 0
               for cookie in page.context.cookies())


def test_skip_link_is_the_first_stop(new_context: Callable[..., BrowserContext]) -> None:
    """From the top of any page the first Tab offers to skip to the content."""
    page = new_context().new_page()
    sign_in(page, "manager@demo.test")
    page.goto("/leads/search")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    expect(page.locator("main")).to_be_focused()


def test_cards_stacked_on_a_page_keep_their_gap(new_context: Callable[..., BrowserContext]
                                                ) -> None:
    """The users card under the settings' two cards stands apart from them, as the two
    cards stand apart from each other (it touched them)."""
    page = new_context().new_page()
    sign_in(page, "dealer1@demo.test")
    page.goto("/leads/settings")
    upper = page.get_by_role("region", name="Availability").bounding_box()
    beside = page.get_by_role("region", name="Email alerts and digests").bounding_box()
    users = page.get_by_role("region", name=re.compile(r"^Users of")).bounding_box()
    assert upper and beside and users
    gap_across = beside["x"] - (upper["x"] + upper["width"])
    gap_below = users["y"] - (upper["y"] + upper["height"])
    assert gap_across >= 12 and abs(gap_below - gap_across) <= 2, (gap_across, gap_below)


def test_a_managers_lead_page_with_its_routing_history_fits_a_phone(
        new_context: Callable[..., BrowserContext]) -> None:
    """The routing history's tables (partners considered) scroll inside their card; the
    page does not scroll sideways (it was 515 px wide at 360)."""
    page = new_context(viewport=PHONE, is_mobile=True, has_touch=True).new_page()
    sign_in(page, "manager@demo.test")
    page.goto("/leads/search?status=offered")
    page.locator("main a[href^='/leads/'][href*='-']").first.click()  # a lead's page
    history = page.get_by_role("region", name="Routing history")
    expect(history).to_be_visible()
    for summary in history.locator("summary").all():
        summary.click()
    expect(history.locator("table").first).to_be_visible()
    assert page_width(page) <= PHONE["width"]
