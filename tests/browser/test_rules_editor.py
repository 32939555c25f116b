"""The qualification rules editor fits on a laptop's screen and names every choice in full."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser

LAPTOP = {"width": 1280, "height": 800}
#: at most a screen and a half of a 1280×800 window (it was 3,500 px of number boxes)
MOST_HEIGHT = int(LAPTOP["height"] * 1.5)


def test_rules_editor_fits_a_screen_and_a_half(new_context: Callable[..., BrowserContext]) -> None:
    """Every points box of the editor within 1.5 screens, no choice cut off, and the folded
    lists and the preview still work."""
    page = new_context(viewport=LAPTOP).new_page()
    sign_in(page, "admin@demo.test")
    page.goto("/manage/rules/")
    expect(page.get_by_role("heading", level=1)).to_have_text("Qualification and ranking rules")

    height = page.evaluate("document.documentElement.scrollHeight")
    assert height <= MOST_HEIGHT, f"the editor is {height} px tall"
    assert page.evaluate("document.documentElement.scrollWidth") <= LAPTOP["width"]
    # Every points box is on the page, named in full for a screen reader.
    for label in ("Timeline: researching", "Budget: not answered", "Role: decision maker",
                  "Hot from score", "Nurture clicks, at most"):
        expect(page.get_by_label(label, exact=True)).to_be_visible()
    # Every not-ready choice is a checkbox whose label shows whole: not clipped by its
    # box and not beyond the window ("researching" was cut off in a multi-select).
    checks = page.locator(".field-checks label.check")
    assert checks.count() == 9  # five timelines, four budgets
    for index in range(checks.count()):
        label = checks.nth(index)
        expect(label).to_be_visible()
        box = label.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= LAPTOP["width"]
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), label.inner_text()
    expect(page.get_by_label("researching", exact=True)).to_be_checked()

    # The long lists are folded, one click away; the preview too, and it answers.
    expect(page.get_by_label("Test or spam domains")).to_be_hidden()
    page.locator("summary", has_text="Disqualify").click()
    expect(page.get_by_label("Test or spam domains")).to_contain_text("mailinator.com")
    page.locator("summary", has_text="Try it before you save").click()
    page.get_by_role("button", name="Try it").click()
    expect(page.locator("#rules-preview")).to_contain_text("Verdict for the answers typed above")


def test_a_wrong_rule_in_a_folded_list_is_shown_open(
        new_context: Callable[..., BrowserContext]) -> None:
    """A refused save opens the fold holding the wrong list, so its message is in sight."""
    page = new_context(viewport=LAPTOP).new_page()
    sign_in(page, "admin@demo.test")
    page.goto("/manage/rules/")
    page.locator("summary", has_text="Disqualify").click()
    page.get_by_label("Competitor domains").fill("not a domain")
    page.get_by_label("What changed, and why").fill("rivals")
    page.get_by_role("button", name="Save as a new version").click()
    expect(page.get_by_role("alert").first).to_contain_text("Please correct")
    wrong = page.locator(".has-error", has=page.get_by_label("Competitor domains"))
    expect(wrong).to_contain_text("Not a domain: not a domain")
    expect(wrong).to_be_visible()
