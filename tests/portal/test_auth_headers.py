"""Cookies a browser keeps to itself, and headers that stop framing, sniffing and injected
script on every response."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from portal import ROOT, create_app
from tests.conftest import PASSWORD, base_config


def set_cookie(response, name: str) -> str:
    for header in response.headers.getlist("Set-Cookie"):
        if header.startswith(f"{name}="):
            return header
    raise AssertionError(f"no {name} cookie set")


def sign_in(client, user, **extra):
    return client.post("/auth/login",
                       data={"email": user.email, "password": PASSWORD, **extra})


def test_session_and_remember_cookies_are_httponly_and_samesite_lax(app, client, make_user):
    app.config["WTF_CSRF_ENABLED"] = False
    response = sign_in(client, make_user("manager"), remember="y")
    for name in ("session", "remember_token"):
        cookie = set_cookie(response, name)
        assert "HttpOnly" in cookie, cookie
        assert "SameSite=Lax" in cookie, cookie
        assert "Secure" not in cookie  # the tests' portal is served over plain http


@pytest.mark.parametrize(("base_url", "env", "secure"), [
    ("https://leads.example.com", {}, True),
    ("http://127.0.0.1:5000", {}, False),
    ("https://leads.example.com", {"SESSION_COOKIE_SECURE": "false",
                                   "REMEMBER_COOKIE_SECURE": "0"}, False),
    ("http://10.0.0.5", {"SESSION_COOKIE_SECURE": "true", "REMEMBER_COOKIE_SECURE": "1"},
     True),
])
def test_cookies_are_secure_when_the_portal_is_served_over_https(monkeypatch, tmp_path,
                                                                 base_url, env, secure):
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    config = base_config(f"sqlite:///{tmp_path / 'unused.db'}")
    config["PORTAL_BASE_URL"] = base_url
    app = create_app(config)
    assert app.config["SESSION_COOKIE_SECURE"] is secure
    assert app.config["REMEMBER_COOKIE_SECURE"] is secure


def test_secure_cookies_are_marked_secure(app, client, make_user):
    app.config.update(WTF_CSRF_ENABLED=False, SESSION_COOKIE_SECURE=True,
                      REMEMBER_COOKIE_SECURE=True)
    response = sign_in(client, make_user("manager"), remember="y")
    assert "Secure" in set_cookie(response, "session")
    assert "Secure" in set_cookie(response, "remember_token")


def _policy(response) -> dict[str, str]:
    header = response.headers["Content-Security-Policy"]
    return {part.split()[0]: " ".join(part.split()[1:])
            for part in header.split(";") if part.strip()}


@pytest.mark.parametrize("path", ["/auth/login", "/no/such/page", "/api/v1/openapi.json",
                                  "/static/css/portal.css"])
def test_every_response_carries_the_security_headers(client, path):
    response = client.get(path, buffered=True)  # read and closed (a static file's too)
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["Referrer-Policy"] == "strict-origin-when-cross-origin"
    policy = _policy(response)
    assert policy["frame-ancestors"] == "'none'"
    assert policy["default-src"] == "'self'"
    assert "unsafe-inline" not in policy.get("script-src", policy["default-src"])
    assert "unsafe-eval" not in response.headers["Content-Security-Policy"]


INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.I)
HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)
STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*["']""", re.I)
#: code htmx would evaluate (trigger filters, hx-on, js: values): refused without 'unsafe-eval'
HTMX_CODE = re.compile(r"""hx-on[:-]|hx-vars|["']js:|hx-trigger="[^"]*\[""", re.I)


def _page_templates() -> list[Path]:
    # E-mails and PDFs are not pages: mail clients and WeasyPrint never see our policy.
    # The embed snippet is text to copy onto another site, shown in a textarea.
    skip = {"emails", "pdf"}
    return [path for path in (ROOT / "templates").rglob("*.html")
            if not skip & set(path.relative_to(ROOT / "templates").parts)
            and path.name != "_snippet.html"]


def test_pages_carry_no_inline_script_handler_or_style_the_policy_would_block():
    offenders = []
    for path in _page_templates():
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, HANDLER, STYLE_ATTRIBUTE, HTMX_CODE):
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}"
                          for m in pattern.finditer(text)]
    assert offenders == []


def test_charts_carry_no_style_attribute():
    from portal.reports import charts

    svg = charts.bars([("Won", 3), ("Lost", 1)], title="Outcomes") + charts.lines(
        ["Jan", "Feb"], [("Leads", [1, 2])], title="Leads")
    assert not STYLE_ATTRIBUTE.search(str(svg))
