"""Browser fixtures: one live portal (gunicorn on the demo data) and one headless Chromium
per test session; a fresh browser context (cookies, JavaScript on or off) per test."""

from __future__ import annotations

import json
import shutil
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.browser.live import CHROMIUM, CHROMIUM_ARGS, PASSWORD, LiveServer, live_server

# Auto-waiting assertions give up after this; a page of ours answers in far less.
expect.set_options(timeout=10_000)


@pytest.fixture(scope="session")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The portal served by gunicorn on a new SQLite file loaded with the demo data."""
    with live_server(Path(tmp_path_factory.mktemp("live"))) as server:
        yield server


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """The Playwright driver for the whole session."""
    if shutil.which(CHROMIUM) is None:
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package "
                    "(scripts/system-deps.sh --browser)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    """One headless Chromium for every test."""
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


@pytest.fixture
def new_context(browser: Browser, live: LiveServer) -> Iterator[Callable[..., BrowserContext]]:
    """Make browser contexts on the live portal (own cookies each); closed after the test."""
    made: list[BrowserContext] = []

    def make(**options: Any) -> BrowserContext:
        options.setdefault("viewport", {"width": 1280, "height": 900})
        context = browser.new_context(base_url=live.base_url, **options)
        made.append(context)
        return context

    yield make
    for context in made:
        context.close()


def sign_in(page: Page, email: str, password: str = PASSWORD) -> None:
    """Sign in through the login page as a person does and land on the dashboard."""
    page.goto("/auth/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def _post_json(url: str, body: dict[str, Any], token: str | None = None) -> dict[str, Any]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


@pytest.fixture(scope="session")
def capture_inquiry(live: LiveServer) -> Callable[..., dict[str, Any]]:
    """Send a sales-ready inquiry through the lead API (as the call centre's system does)."""
    token = _post_json(live.url("/api/v1/tokens"),
                       {"email": "manager@demo.test", "password": PASSWORD})["token"]

    def capture(first_name: str, last_name: str, postal_code: str,
                product_line: str = "TRC") -> dict[str, Any]:
        email = f"{first_name}.{last_name}@example.org".lower()
        return _post_json(live.url("/api/v1/leads"), {
            "first_name": first_name, "last_name": last_name, "email": email,
            "postal_code": postal_code, "country": "US", "product_line": product_line,
            "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
        }, token)

    return capture
