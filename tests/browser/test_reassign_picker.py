"""A channel manager reassigns a lead from the picker in Chromium: finds partners by name,
sees who may take the lead and why not, is refused an ineligible one with the reason, and
overrides it with a reason that is logged. With htmx and with JavaScript switched off."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, expect

from tests.browser.conftest import sign_in
from tests.browser.live import LiveServer

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("javascript", [True, False], ids=["htmx", "no-js"])
def test_reassign_picker_refuses_an_ineligible_partner_until_overridden(
        javascript: bool, new_context: Callable[..., BrowserContext],
        capture_inquiry: Callable[..., dict[str, Any]], live: LiveServer) -> None:
    name = "Philippa Oyelaran" if javascript else "Terrence Lindqvist"
    lead = capture_inquiry(*name.split(), "45840")  # a compact tractor lead from Ohio
    holder = lead["assigned_partner"]
    [(mower_code,)] = live.query("SELECT code FROM partners WHERE name = ?",
                                 ("Bell County Mower Center",))  # sells mowers only

    page = new_context(java_script_enabled=javascript).new_page()
    sign_in(page, "manager@demo.test")
    page.goto(f"/leads/{lead['id']}")
    if javascript:
        page.wait_for_function("() => typeof window.htmx === 'object'")
    detail = page.locator(".lead-detail")
    detail.locator("details.reassign > summary").click()
    picker = detail.locator("#reassign-choices")

    # Without a search: the nearest partners that sell compact tractors, all eligible.
    expect(picker.locator(".pick").first).to_contain_text("Eligible")
    expect(picker).not_to_contain_text(holder)  # the holder is not offered its own lead

    search = detail.get_by_label("Find a partner")
    if javascript:
        search.press_sequentially("bell county", delay=20)  # found as it is typed
    else:
        search.fill("bell county")
        detail.get_by_role("button", name="Find").click()
        expect(page).to_have_url(re.compile(r"partner_q=bell"))
    mower = picker.locator(".pick").filter(has_text="Bell County Mower Center")
    expect(mower).to_contain_text(
        f"Not eligible: {mower_code} does not sell compact tractors")

    # Picked anyway: refused, with the reason, and nothing moved.
    mower.get_by_role("radio").check()
    form = detail.locator("form.action-reassign")
    form.get_by_role("textbox", name="Reason").fill("the customer asked for this dealer")
    form.get_by_role("button", name="Reassign", exact=True).click()
    refusal = f"{mower_code} does not sell compact tractors"
    expect(page.locator(".lead-detail [role=alert]")).to_contain_text(
        refusal)
    expect(page.locator("#reassign-partner-error")).to_contain_text(refusal)
    expect(page.locator(".pick").filter(has_text="Bell County Mower Center")
           .get_by_role("radio")).to_be_checked()  # the pick is kept
    [(still,)] = live.query("SELECT p.code FROM leads l JOIN partners p "
                            "ON p.id = l.assigned_partner_id WHERE l.email = ?",
                            (lead["email"],))
    assert still == holder

    # Overridden with the reason: moved, and the override is on the timeline.
    form = page.locator("form.action-reassign")
    form.get_by_label(re.compile(r"^Override")).check()
    form.get_by_role("textbox", name="Reason").fill("the customer asked for this dealer")
    form.get_by_role("button", name="Reassign", exact=True).click()
    # in the panel (htmx) or in the page's flash (no JavaScript)
    expect(page.get_by_role("status").filter(has_text="Reassigned")).to_have_text(
        f"Reassigned to Bell County Mower Center ({mower_code}).")
    expect(page.get_by_role("region", name="Timeline")).to_contain_text(
        f"override: {mower_code} does not sell compact tractors")
    [(now_with,)] = live.query("SELECT p.code FROM leads l JOIN partners p "
                               "ON p.id = l.assigned_partner_id WHERE l.email = ?",
                               (lead["email"],))
    assert now_with == mower_code
