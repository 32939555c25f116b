"""The partner's open list in Chromium: sorted by a column with htmx (the URL follows and
the filters keep the order), without JavaScript, and its CSV link downloads the list."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import sign_in


def _towns(page: Page) -> list[str]:
    """The towns of the cards on the page, top to bottom (the meta line's "ZIP Town")."""
    towns = []
    for meta in page.locator("article.lead-card .lead-meta").all_inner_texts():
        place = next(part.strip() for part in meta.split("\u00b7")
                     if re.match(r"\s*\d", part))
        towns.append(place.split(" ", 1)[1].strip().lower() if " " in place else "")
    return towns


def _sort_link(page: Page, label: str):
    return page.get_by_role("navigation", name="Sort the list").get_by_role(
        "link", name=re.compile(rf"^{label}"))


def test_the_open_list_sorts_by_town_with_htmx_and_exports_it(
        new_context: Callable[..., BrowserContext]) -> None:
    page = new_context().new_page()
    sign_in(page, "dealer1@demo.test")
    page.goto("/leads/?tab=open")
    page.wait_for_function("() => typeof window.htmx === 'object'")
    page.evaluate("window.__marker = 1")

    _sort_link(page, "Town").click()
    expect(page).to_have_url(re.compile(r"tab=open&sort=town"))
    expect(_sort_link(page, "Town")).to_have_attribute("aria-current", "true")
    towns = _towns(page)
    assert len(towns) >= 2 and towns == sorted(towns)
    _sort_link(page, "Town").click()  # again: the other way
    expect(page).to_have_url(re.compile(r"sort=-town"))
    expect(page.locator("#inbox-sort")).to_have_value("-town")
    assert _towns(page) == sorted(towns, reverse=True)
    assert page.evaluate("window.__marker") == 1, "the page reloaded instead of swapping"

    # A filter keeps the order (the form carries it).
    page.get_by_label("Rank").select_option("hot")
    expect(page).to_have_url(re.compile(r"rank=hot"))
    assert "sort=-town" in page.url
    hot = _towns(page)
    assert hot == sorted(hot, reverse=True)

    with page.expect_download() as download:
        page.get_by_role("link", name="Export CSV").click()
    text = download.value.path().read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) >= len(hot)  # every page of the list, not only the one shown
    assert {row["rank"] for row in rows} == {"hot"}
    towns_csv = [row["town"].lower() for row in rows]
    assert towns_csv == sorted(towns_csv, reverse=True)
    # accepted and being worked: the dealer has the contact details it needs
    assert all(row["email"] or row["phone"] for row in rows)


def test_the_sort_links_work_without_javascript(
        new_context: Callable[..., BrowserContext]) -> None:
    page = new_context(java_script_enabled=False).new_page()
    sign_in(page, "dealer1@demo.test")
    page.goto("/leads/?tab=open")
    _sort_link(page, "Quote").click()
    expect(page).to_have_url(re.compile(r"sort=quote"))
    expect(_sort_link(page, "Quote")).to_have_attribute("aria-current", "true")
    quoted = page.locator("article.lead-card .lead-next").all_inner_texts()
    amounts = [float(m.group(1).replace(",", "")) for text in quoted
               if (m := re.search(r"Quoted \$([\d,.]+)", text))]
    assert amounts == sorted(amounts)
