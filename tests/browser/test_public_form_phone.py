"""The public campaign form on a 360 px phone: it fits, every control is a finger's size,
it wears the campaign's look under the Content-Security-Policy, an empty send is answered
field by field, and a browser's autofill quicker than the spam timer loses nothing."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from playwright.sync_api import BrowserContext, Page, expect

pytestmark = pytest.mark.browser

PHONE = {"width": 360, "height": 740}
#: the demo's running campaign, given a logo, a green accent and its own wording
CAMPAIGN = "FINANCE-0"
ACCENT = "rgb(46, 125, 50)"  # #2e7d32
#: the smallest height of anything a finger taps
TAP = 40


def open_form(new_context: Callable[..., BrowserContext], *, javascript: bool
              ) -> tuple[Page, list[str]]:
    """The hosted form on a phone, and the Content-Security-Policy complaints it causes."""
    context = new_context(viewport=PHONE, is_mobile=True, has_touch=True,
                          java_script_enabled=javascript)
    page = context.new_page()
    refused: list[str] = []
    page.on("console", lambda message: refused.append(message.text)
            if "Content Security Policy" in message.text else None)
    response = page.goto(f"/f/{CAMPAIGN}")
    assert response is not None and response.status == 200
    return page, refused


def assert_fits_and_taps(page: Page) -> None:
    """No sideways scrolling; every control (a checkbox by its label) at least TAP high."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    small = page.evaluate(
        """(tap) => [...document.querySelectorAll(
               '.public-form input, .public-form select, .public-form textarea, '
               + '.public-form button')]
           .filter(e => e.type !== 'hidden' && !e.closest('.trap'))
           .map(e => e.type === 'checkbox' ? e.closest('.field-check') : e)
           .filter(e => e.getBoundingClientRect().height < tap)
           .map(e => e.outerHTML.slice(0, 80))""", TAP)
    assert small == []


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
def test_the_form_fits_a_phone_in_the_campaigns_look(
        new_context: Callable[..., BrowserContext], javascript: bool) -> None:
    page, refused = open_form(new_context, javascript=javascript)
    expect(page.get_by_role("heading", level=1)).to_have_text("0 % financing for 48 months")
    expect(page.get_by_text("Tell us what you need and the authorised dealer")).to_be_visible()
    logo = page.locator("img.brand-logo")
    expect(logo).to_be_visible()
    assert logo.evaluate("img => img.complete && img.naturalWidth > 0")  # served, allowed
    send = page.get_by_role("button", name="Send my inquiry")
    expect(send).to_have_css("background-color", ACCENT)
    assert_fits_and_taps(page)

    # Sent empty: each field says what it lacks, right beside it, still on a phone.
    send.click()
    expect(page.get_by_role("alert").first).to_contain_text("Please correct the fields")
    for label, message in (("First name", "Enter your first name."),
                           ("Last name", "Enter your last name."),
                           ("ZIP code", "Enter your ZIP code"),
                           ("Product line", "Choose the product line")):
        field = page.locator(".field.has-error", has=page.get_by_label(label, exact=True))
        expect(field).to_contain_text(message)
        expect(page.get_by_label(label, exact=True)).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field.has-error", has=page.get_by_label("Email", exact=True))
           ).to_contain_text("Give an email address or a phone number")
    assert_fits_and_taps(page)
    assert refused == []


def test_autofill_in_two_seconds_is_confirmed_not_lost(
        new_context: Callable[..., BrowserContext]) -> None:
    """Everything filled at once (as a browser's autofill does) and sent at once: one more
    press, and the person is thanked in the campaign's words."""
    page, refused = open_form(new_context, javascript=True)
    page.get_by_label("First name").fill("Ottilie")
    page.get_by_label("Last name").fill("Brandvold")
    page.get_by_label("Email", exact=True).fill("o.brandvold@example.org")
    page.get_by_label("ZIP code").fill("45840")
    page.get_by_label("Product line", exact=True).select_option(label="Compact tractors")
    page.get_by_label("When do you plan to buy?").select_option(label="Within 3 months")
    page.get_by_label("Budget", exact=True).select_option(label="Approved")
    page.get_by_role("button", name="Send my inquiry").click()

    expect(page.get_by_role("status")).to_contain_text("Almost done: please check your "
                                                       "details below")
    expect(page.get_by_label("Email", exact=True)).to_have_value("o.brandvold@example.org")
    expect(page.get_by_label("Product line", exact=True)).to_have_value("TRC")
    page.get_by_role("button", name="Send my inquiry").click()

    expect(page.get_by_role("heading", level=1)).to_have_text("Thank you!")
    expect(page.get_by_role("status")).to_contain_text(
        "Your dealer will call you within one working day")
    assert refused == []
