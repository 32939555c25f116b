"""Every route × every role × someone else's object: the answer a person without the right
gets is the expected refusal (sign in, 403, 404, 401), never the data.

The routes come from ``app.url_map``: a route that is not in ``POLICY`` fails the test, so
a new page is classified by whoever adds it. The lead-scoped routes are also enumerated
with another partner's lead in ``test_isolation``; this file covers every other kind.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from portal.dispatch import services as routing_service
from portal.leads import services as lead_services
from tests.conftest import PASSWORD

ROLES = ("anonymous", "dealer", "dealer_admin", "distributor", "manager", "admin")
STAFF = frozenset({"manager", "admin"})
PARTNERS = frozenset({"dealer", "dealer_admin", "distributor"})

#: who may use each endpoint (with its objects, someone else's when it has any):
#: ``public`` anyone; ``link`` anyone holding a valid emailed link (a made-up one is 404);
#: ``signed_in`` any signed-in user; ``partner`` partner users (staff 403);
#: ``partner_admin`` a partner's admins (other partner users 403, staff 403 or 404);
#: ``staff`` managers and admins (partners 403); ``staff_404`` the same, partners 404 as for
#: a lead they may not see; ``admin`` admins (managers and partners 403);
#: ``lead`` whoever may see the lead (another partner's: 404); ``scorecard`` staff, or the
#: partner itself or its distributor (another's: 404); ``api`` a bearer token (none: 401);
#: ``api_lead`` the same, and a lead only whoever may see it (another partner's: 404).
#: Where a partner is let in (its own lists, reports, drill-downs), another partner's
#: lead must not be in the answer.
POLICY: dict[str, str] = {
    "static": "public", "home.health": "public", "home.ready": "public",
    "auth.login": "public", "auth.forgot_password": "public", "api.openapi": "public",
    "api.create_token": "public", "capture.public_form": "public",
    "capture.public_submit": "public", "capture.public_thanks": "public",
    "capture.public_style": "public", "capture.public_logo": "public",
    "auth.accept_invite": "link", "auth.reset_password": "link",
    "notify.unsubscribe": "link", "nurture.click": "link", "nurture.talk": "link",
    "nurture.unsubscribe": "link", "fulfilment.pack_download": "link",
    "home.index": "signed_in", "auth.logout": "signed_in", "auth.account": "signed_in",
    "auth.sign_out_everywhere": "signed_in", "auth.revoke_token": "signed_in",
    "notify.preferences": "signed_in", "notify.save_preferences": "signed_in",
    "notify.preview": "signed_in", "notify.preview_body": "signed_in",
    "notify.save_firm": "partner_admin",
    "capture.partner_new": "partner",
    "leads.inbox": "signed_in", "leads.inbox_csv": "partner",
    "channel.settings": "staff", "channel.save_settings": "staff",
    "leads.settings": "partner", "leads.settings_capacity": "partner_admin",
    "leads.settings_invite": "partner_admin", "leads.settings_resume": "partner_admin",
    "leads.settings_vacation": "partner_admin", "leads.settings_assigning": "partner_admin",
    "leads.lead": "lead", "leads.act": "lead", "leads.act_page": "lead", "leads.assign": "lead",
    "fulfilment.lead_literature": "staff",
    "leads.bulk": "staff_404", "leads.partner": "staff_404", "leads.queue": "staff_404",
    "leads.search": "staff_404", "leads.reassign_partners": "staff_404",
    "reports.overview": "signed_in", "reports.partners": "signed_in",
    "reports.partners_csv": "signed_in", "reports.scorecard": "scorecard",
    "reports.scorecard_pdf": "scorecard",
    "reports.campaigns": "staff_404", "reports.campaign_leads": "staff_404",
    "reports.compliance": "staff", "reports.compliance_remind": "staff",
    "reports.leads": "signed_in", "reports.overview_csv": "staff_404",
    "reports.overview_leads": "staff_404", "reports.speed": "signed_in",
    "reports.speed_csv": "signed_in",
    "reports.won_lost": "staff_404",
    "api.create_lead": "api", "api.list_leads": "api", "api.get_lead": "api_lead",
    "api.lead_action": "api_lead", "api.patch_lead": "api_lead", "api.me": "api",
    "api.report_partners": "api",
    "capture.index": "staff", "capture.embed": "staff", "capture.imports_list": "staff",
    "capture.import_progress": "staff", "capture.import_errors": "staff",
    "capture.import_map": "staff", "capture.brand": "staff",
    "fulfilment.index": "staff", "fulfilment.retry": "staff",
    "fulfilment.literature": "staff", "fulfilment.literature_item": "staff",
    "fulfilment.literature_edit": "staff", "fulfilment.literature_upload": "staff",
    "fulfilment.literature_activate": "staff", "fulfilment.literature_preview": "staff",
    "fulfilment.literature_write": "staff", "fulfilment.print_batches": "staff",
    "fulfilment.print_batch_create": "staff", "fulfilment.print_batch": "staff",
    "fulfilment.print_batch_file": "staff", "fulfilment.print_batch_confirm": "staff",
    "home.manage": "staff",
    "catalog.campaigns": "staff", "catalog.campaign_edit": "staff",
    "catalog.competitors": "staff", "catalog.competitor_active": "staff",
    "catalog.competitor_edit": "staff", "catalog.product_lines": "staff",
    "catalog.product_line_edit": "staff", "catalog.sources": "staff",
    "catalog.source_edit": "staff",
    "notify.outbox": "staff", "notify.retry": "staff", "notify.retry_all": "staff",
    "notify.sunk": "staff", "notify.sunk_body": "staff", "notify.retry_one": "staff",
    "dedup.index": "staff", "dedup.merge": "staff", "dedup.unmerge": "staff",
    "nurture.tracks": "staff", "nurture.track": "staff", "nurture.track_edit": "staff",
    "nurture.step_edit": "staff",
    "partners.partners": "staff", "partners.partner": "staff",
    "partners.partner_edit": "staff", "partners.partner_pause": "staff",
    "partners.partner_resume": "staff", "partners.partners_export": "staff",
    "partners.partners_import": "staff", "partners.partner_new": "staff",
    "rules.edit": "staff", "rules.versions": "staff", "rules.version": "staff",
    "dispatch.preview": "staff",
    "users.users": "admin", "users.user_deactivate": "admin", "users.user_edit": "admin",
    "users.user_reactivate": "admin", "users.user_reset_password": "admin",
    "users.user_new": "admin",
}


@pytest.fixture
def world(session: Any, make_partner: Any, make_lead: Any, make_user: Any) -> dict[str, Any]:
    """Dealer A and its users, distributor X (not A's), staff, and a lead held by dealer B:
    the "someone else's object" every partner role is refused."""
    dealer_a = make_partner("MA", territories=["zip:60601"], postal_code="60601")
    dealer_b = make_partner("MB", territories=["zip:50401"])
    distributor = make_partner("MX", kind="distributor", territories=["zip:70701"])
    lead = make_lead(postal_code="50401", email="matrix-secret@example.com")
    routing_service.route_lead(session, lead)
    users = {
        "dealer": make_user("partner", partner=dealer_a),
        "dealer_admin": make_user("partner", partner=dealer_a, partner_admin=True),
        "distributor": make_user("partner", partner=distributor, partner_admin=True),
        "manager": make_user("manager"),
        "admin": make_user("admin"),
    }
    session.commit()
    assert lead.assigned_partner_id == dealer_b.id
    return {"lead": lead, "b": dealer_b, "users": users}


def _urls(rule: Any, world: dict[str, Any]) -> Iterator[str]:
    """Concrete URLs of ``rule``, with another partner's objects (ids that are not
    there for the staff-only kinds: the role is refused before anything is looked up)."""
    values = {"lead_id": str(world["lead"].id), "code": world["b"].code, "filename": "app.css",
              "token": "made-up-link-token", "part": "letters", "table": "partners",
              "name": "nothing", "action": lead_services.PAGE_ACTIONS[0]}
    url = rule.rule
    for name in rule.arguments:
        value = values.get(name, "999999")
        url = re.sub(rf"<(?:[^<>]*:)?{name}>", value, url)
    yield url


def _expected(policy: str, role: str, method: str) -> set[int] | None:
    """The statuses ``role`` may get, or None when it is allowed (checked: not a 5xx)."""
    anonymous = {401} if policy.startswith("api") else {302}
    if policy == "public":
        return None
    if policy == "link":
        return {404}
    if role == "anonymous":
        return anonymous
    allowed = {
        "signed_in": True, "partner": role in PARTNERS,
        "partner_admin": role in ("dealer_admin", "distributor"),
        "staff": role in STAFF, "staff_404": role in STAFF, "admin": role == "admin",
        "lead": role in STAFF, "scorecard": role in STAFF, "api": True,
        "api_lead": role in STAFF,
    }[policy]
    if allowed:
        return None
    if policy in ("lead", "scorecard", "staff_404", "api_lead"):
        return {404}  # as for something that is not there: no existence leak
    return {403, 404}  # the role may not: a partner page answers staff 404, say


def _sign_in(client: FlaskClient, user: Any) -> None:
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD})
    assert response.status_code == 303


def test_every_route_is_classified(app: Flask) -> None:
    endpoints = {rule.endpoint for rule in app.url_map.iter_rules()}
    assert endpoints - POLICY.keys() == set(), "classify the new routes in POLICY"
    assert POLICY.keys() - endpoints == set(), "routes gone: drop them from POLICY"


@pytest.mark.parametrize("role", ROLES)
def test_every_route_refuses_who_may_not_use_it(app: Flask, client: FlaskClient,
                                                world: dict[str, Any], role: str) -> None:
    app.config["WTF_CSRF_ENABLED"] = False
    headers: dict[str, str] = {}
    if role != "anonymous":
        user = world["users"][role]
        _sign_in(client, user)
        token = client.post("/api/v1/tokens", json={"email": user.email,
                                                    "password": PASSWORD}).get_json()["token"]
        headers = {"Authorization": f"Bearer {token}"}
    secret = b"matrix-secret"
    wrong: list[tuple[str, str, int]] = []
    checked = 0
    for rule in app.url_map.iter_rules():
        policy = POLICY[rule.endpoint]
        for url in _urls(rule, world):
            for method in sorted({"GET", "POST"} & rule.methods):
                expected = _expected(policy, role, method)
                if expected is None and method == "POST":
                    continue  # allowed writes are the areas' own tests; nothing changes here
                body = {"json": {}} if rule.rule.startswith("/api/") else {"data": {}}
                response = client.open(url, method=method, headers=headers, **body)
                checked += 1
                status = response.status_code
                text = response.get_data()
                if status >= 500 or (role in PARTNERS and secret in text):
                    wrong.append((method, url, status))
                elif expected is not None:
                    refused = status in expected and secret not in text
                    if status == 302:
                        refused = refused and "/auth/login" in response.headers["Location"]
                    if not refused:
                        wrong.append((method, url, status))
    assert checked >= 100, "the enumeration is not vacuous"
    assert wrong == [], f"{role}: {wrong}"


#: POSTs that carry no CSRF token on purpose, and why
CSRF_EXEMPT = {
    "notify.unsubscribe": "a mail client's one-click POST (RFC 8058): the signed link is the proof",
    "capture.public_submit": "posted cross-site by the embedded snippet; signed time stamp "
                             "and honeypot instead (PublicCaptureForm)",
}


def test_every_form_post_needs_the_csrf_token(app: Flask, client: FlaskClient,
                                              world: dict[str, Any]) -> None:
    """Signed in, a POST without the token is refused (400) before the view runs, on every
    page route but the exempt ones; the API takes bearer tokens only, never the cookie."""
    app.config["WTF_CSRF_ENABLED"] = True
    _sign_in_with_csrf(client, world["users"]["admin"])
    refused = 0
    for rule in app.url_map.iter_rules():
        if "POST" not in rule.methods or rule.endpoint in CSRF_EXEMPT:
            continue
        for url in _urls(rule, world):
            response = client.post(url, data={"reason": "no token", "text": "x"})
            if rule.rule.startswith("/api/"):
                assert response.status_code in (400, 401, 422), (url, response.status_code)
                continue
            assert response.status_code == 400, (url, response.status_code)
            assert "CSRF" in response.get_data(as_text=True) or "expired" in (
                response.get_data(as_text=True)), url
            refused += 1
    assert refused >= 40, "the enumeration is not vacuous"
    # The API does not read the session cookie: a signed-in browser has no API access.
    assert client.get("/api/v1/me").status_code == 401


def _sign_in_with_csrf(client: FlaskClient, user: Any) -> None:
    page = client.get("/auth/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page)
    assert token is not None
    response = client.post("/auth/login", data={"email": user.email, "password": PASSWORD,
                                                 "csrf_token": token.group(1)})
    assert response.status_code == 303
