"""Bad input never corrupts (issue 17): text that is not text, numbers and dates that would
be quietly changed, and query strings that broke the pages are refused with a field error,
on the API, the page forms and the CSV imports alike; nothing is half-written."""

from __future__ import annotations

import html
import io
import re
import uuid
from datetime import date, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select

from portal.core.models import Lead, LeadEvent, Partner
from portal.partners import csv as partners_csv
from tests.conftest import PASSWORD

HOT = {
    "first_name": "Dana", "last_name": "Miller", "company": "Miller Farms",
    "email": "dana.miller@example.com", "phone": "(641) 555-0142", "postal_code": "50401",
    "country": "US", "product_line": "TRC",
    "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
}


def token(client, user):
    response = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.json['token']}"}


def leads(session) -> int:
    return session.scalar(select(func.count()).select_from(Lead))


@pytest.fixture
def staff_headers(client, make_user):
    return token(client, make_user("manager"))


@pytest.fixture
def dealer(make_partner):
    return make_partner("D-IA", territories=["zip:504*"])


@pytest.fixture
def worked(client, staff_headers, dealer, make_user):
    """A lead the dealer has accepted: (actions URL, the dealer's API headers, lead id)."""
    lead = client.post("/api/v1/leads", json=HOT, headers=staff_headers).json
    headers = token(client, make_user("partner", partner=dealer))
    url = f"/api/v1/leads/{lead['id']}/actions"
    assert client.post(url, json={"action": "accept"}, headers=headers).status_code == 200
    return url, headers, lead["id"]


# --- 1. text that is not text ------------------------------------------------------------


@pytest.mark.parametrize("field", ["first_name", "comments", "company"])
@pytest.mark.parametrize("bad", ["\ud800", "Dana\x00", "Da\x1bna", "\udfff x"])
def test_api_refuses_text_with_lone_surrogates_or_control_characters(
        client, session, staff_headers, dealer, field, bad):
    response = client.post("/api/v1/leads", json=dict(HOT, **{field: bad}),
                           headers=staff_headers)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert response.json["error"] == "invalid_input"
    assert field in response.json["fields"]
    assert leads(session) == 0


@pytest.mark.parametrize("answers", [
    {"timeline": "now", "acres": "\ud800"},
    {"timeline": "now", "acres": "32\x000"},
    {"timeline": "now", "\ud800": "320"},
    {"timeline": "now", "ac\x00res": "320"},
])
def test_api_refuses_bad_text_in_answers_and_the_lead_page_keeps_working(
        client, session, staff_headers, dealer, answers):
    response = client.post("/api/v1/leads", json=dict(HOT, answers=answers),
                           headers=staff_headers)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert any(name.startswith("answers") for name in response.json["fields"])
    assert leads(session) == 0


def test_api_refuses_bad_text_in_action_arguments(client, session, worked):
    url, headers, lead_id = worked
    for body in ({"action": "note", "text": "call back \ud800"},
                 {"action": "note", "text": "call\x00back"},
                 {"action": "contact", "channel": "phone", "note": "\x07ring"}):
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, (body, response.get_data(as_text=True)[:300])
        assert response.json["fields"]
    assert client.get(f"/api/v1/leads/{lead_id}", headers=headers).json["status"] == "accepted"


def test_page_forms_refuse_control_characters_next_to_the_field(client, auth, session,
                                                                 dealer):
    auth.login("partner", partner=dealer)
    response = client.post("/capture/new", data={
        "first_name": "Pat\x0bQ", "last_name": "Lee", "email": "pat@example.com",
        "postal_code": "50401", "product_line": "TRC", "comments": "fine\x00",
        "token": "t1"})
    assert response.status_code == 422
    page = html.unescape(response.get_data(as_text=True))
    assert page.count("characters that are not text") >= 2
    assert leads(session) == 0


def test_page_forms_refuse_bytes_that_are_not_utf8(client, auth, session, dealer):
    """A browser always sends UTF-8; bytes that are not (an encoded surrogate) were quietly
    turned into "�" and stored: they are refused instead."""
    auth.login("partner", partner=dealer)
    body = ("first_name=" + quote(b"Pat" + "\ud800".encode("utf-8", "surrogatepass"))
            + "&last_name=Lee&email=pat%40example.com&postal_code=50401&product_line=TRC"
            "&token=t2")
    response = client.post("/capture/new", data=body,
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 422
    assert "characters that are not text" in html.unescape(response.get_data(as_text=True))
    assert leads(session) == 0


def test_every_form_checks_its_text(app):
    """Every form of the portal inherits the one text rule (so a new form cannot forget)."""
    import importlib
    import pkgutil

    import flask_wtf
    import wtforms

    import portal
    from portal.core.forms import FilterForm, PortalForm

    for module in pkgutil.walk_packages(portal.__path__, "portal."):
        if module.name.endswith(".forms") or module.name.endswith(".views"):
            importlib.import_module(module.name)

    def subclasses(base):
        for sub in base.__subclasses__():
            yield sub
            yield from subclasses(sub)

    ours = [form for form in subclasses(wtforms.Form) if form.__module__.startswith("portal.")]
    assert len(ours) > 20
    for form in ours:
        base = PortalForm if issubclass(form, flask_wtf.FlaskForm) else FilterForm
        assert issubclass(form, base), f"{form.__module__}.{form.__name__} skips the text rule"


PARTNERS_HEADER = ("code,name,kind,parent,email,phone,address,city,region,postal_code,country,"
                   "latitude,longitude,product_lines,capacity,territories,forwarding")


def partner_row(code: str, name: str = "Dealer", address: str = "1 Main St",
                postal_code: str = "50401") -> str:
    return (f"{code},{name},dealer,,{code.lower()}@dealer.example,,{address},Mason City,"
            f"US-IA,{postal_code},US,,,TRC,,,")


def import_partners(session, *rows: str):
    data = "\n".join([PARTNERS_HEADER, *rows]) + "\n"
    return partners_csv.import_partners(session, io.BytesIO(data.encode()))


def test_partner_csv_reports_control_characters_by_line(session, make_product_line):
    make_product_line("TRC")
    report = import_partners(session, partner_row("D-1"),
                             partner_row("D-2", name="Bad\x00Dealer", address="1 Main\x1bSt"))
    assert report.fatal is None
    assert report.created == 1
    assert {(e.line, e.column) for e in report.errors} == {(3, "name"), (3, "address")}
    assert session.scalar(select(func.count()).select_from(Partner).where(
        Partner.code == "D-2")) == 0


# --- 2. query strings and bodies that broke the pages --------------------------------------


@pytest.mark.parametrize("query", [
    "endpoint=x", "_method=POST", "_external=1", "_anchor=x", "_scheme=javascript",
    "values=1", "page=99999999999999999999", "status=won&status=lost",
])
def test_paged_lists_survive_any_query_string(app, client, auth, make_partner, query):
    app.config["PAGE_SIZE"] = 1
    make_partner("D-1")
    make_partner("D-2")
    auth.login("admin")
    response = client.get(f"/manage/partners?{query}")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    links = re.findall(r'href="([^"]*page=[^"]*)"', page)
    assert links and all(link.startswith("/manage/partners?") for link in links)


def test_a_query_argument_named_like_the_path_keeps_the_pager(app, client, auth, make_partner,
                                                              make_lead):
    app.config["PAGE_SIZE"] = 1
    partner = make_partner("D-1", territories=["zip:50401"])
    for _ in range(2):
        lead = make_lead()
        lead.assigned_partner = partner
    auth.login("manager")
    response = client.get("/leads/partners/D-1?code=x&endpoint=y")
    assert response.status_code == 200


@pytest.mark.parametrize("page", ["99999999999999999999", "9223372036854775807", "-5", "0"])
def test_api_page_numbers_never_fail(client, staff_headers, page):
    response = client.get(f"/api/v1/leads?page={page}", headers=staff_headers)
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:300]
    if response.status_code == 400:
        assert response.json["error"] == "bad_request"


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,
    '{"a":' * 50_000 + "1" + "}" * 50_000,
    '{"first_name": NaN, "email": "a@example.com"}',
])
def test_api_refuses_deep_or_non_standard_json(client, session, staff_headers, body):
    response = client.post("/api/v1/leads", data=body, content_type="application/json",
                           headers=staff_headers)
    assert response.status_code in (400, 422)
    assert response.json["error"] in ("bad_request", "invalid_input")
    assert leads(session) == 0


def test_api_takes_brackets_inside_text_and_ordinary_nesting(client, session, staff_headers,
                                                            dealer):
    body = dict(HOT, comments="[[[[[[[[[[{{{{{{{{{{ \\\" quoted",
                answers={"timeline": "now", "budget": "approved", "notes": "[[[["})
    response = client.post("/api/v1/leads", json=body, headers=staff_headers)
    assert response.status_code == 201, response.json
    assert response.json["comments"] == body["comments"]


# --- 3. values quietly changed ----------------------------------------------------------


@pytest.mark.parametrize("amount", ["999999999.999", "0.001", "1,2,3", "12.5.0", "1e3x",
                                    "-5", "NaN", "Infinity", "1000000000", True, [1], "١٢٣"])
def test_quote_amounts_are_taken_as_written_or_refused(client, session, worked, amount):
    url, headers, lead_id = worked
    response = client.post(url, json={"action": "quote", "amount": amount}, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "amount" in response.json["fields"]
    assert session.get(Lead, uuid.UUID(lead_id)).quote_amount is None


@pytest.mark.parametrize("amount,stored", [("24,500", "24500.00"), ("$1,250.5", "1250.50"),
                                           (0.1, "0.10"), (999999999.99, "999999999.99"),
                                           ("0", "0.00")])
def test_quote_amounts_as_people_write_them(client, worked, amount, stored):
    url, headers, _lead_id = worked
    response = client.post(url, json={"action": "quote", "amount": amount}, headers=headers)
    assert response.status_code == 200, response.json
    assert response.json["quote_amount"] == stored


def test_money_field_on_pages_is_strict(app, client, auth, session):
    auth.login("admin")
    for cost, ok in (("1,2,3", False), ("12.345", False), ("$1,250.50", True)):
        response = client.post("/manage/campaigns/new", data={
            "code": "C1" if ok else "C0", "name": "Spring show", "cost": cost})
        if ok:
            assert response.status_code == 303, response.get_data(as_text=True)[:500]
        else:
            assert response.status_code == 422, (cost, response.status_code)


@pytest.mark.parametrize("day", ["2026-12-01 garbage", "2026-1-1", "0001-01-01",
                                 "9999-12-31", "1999-12-31", "２０２６-１２-０１", 20261201,
                                 ["2026-12-01"]])
def test_appointment_dates_are_strict_and_sensible(client, session, worked, day):
    url, headers, lead_id = worked
    response = client.post(url, json={"action": "appointment", "date": day}, headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "date" in response.json["fields"]
    assert session.get(Lead, uuid.UUID(lead_id)).status == "accepted"


def test_appointment_date_in_the_window_is_kept(client, worked):
    url, headers, _lead_id = worked
    day = (date.today() + timedelta(days=30)).isoformat()
    response = client.post(url, json={"action": "appointment", "date": day}, headers=headers)
    assert response.status_code == 200
    assert response.json["events"][-1]["data"]["date"] == day


@pytest.mark.parametrize("day", ["1900-01-01", "2001-05-05",
                                 (date.today() + timedelta(days=3)).isoformat()])
def test_won_date_is_between_the_capture_and_tomorrow(client, session, worked, day):
    url, headers, lead_id = worked
    response = client.post(url, json={"action": "won", "amount": "100", "date": day},
                           headers=headers)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert "date" in response.json["fields"]
    assert session.get(Lead, uuid.UUID(lead_id)).status == "accepted"


def test_vacation_cannot_end_in_the_past_or_far_away(client, auth, session, dealer, make_user):
    auth.login_as(make_user("partner", partner=dealer, partner_admin=True))
    for until in ("1900-01-01", "9999-12-31", "2026-12-01 garbage"):
        response = client.post("/leads/settings/vacation", data={"until": until})
        assert response.status_code == 422, (until, response.status_code)
        session.refresh(dealer)
        assert dealer.active


@pytest.mark.parametrize("field,value", [
    ("first_name", 1e308), ("first_name", 12), ("last_name", ["a"]),
    ("comments", {"a": 1}), ("comments", True), ("postal_code", 50401),
])
def test_api_text_fields_must_be_json_strings(client, session, staff_headers, dealer, field,
                                              value):
    response = client.post("/api/v1/leads", json=dict(HOT, **{field: value}),
                           headers=staff_headers)
    assert response.status_code == 422, response.get_data(as_text=True)[:300]
    assert field in response.json["fields"]
    assert leads(session) == 0


def test_api_answers_and_notes_must_be_json_strings(client, session, staff_headers, worked):
    url, headers, lead_id = worked
    response = client.post("/api/v1/leads", json=dict(HOT, email="x@example.com",
                                                      answers={"acres": ["a"]}),
                           headers=staff_headers)
    assert response.status_code == 422
    assert "answers.acres" in response.json["fields"]
    for body in ({"action": "note", "text": ["a"]}, {"action": "note", "text": 1e308},
                 {"action": "lost", "reason": "competitor", "competitor": ["Acme"]}):
        response = client.post(url, json=body, headers=headers)
        assert response.status_code == 422, (body, response.get_data(as_text=True)[:300])
    assert session.scalar(select(func.count()).select_from(LeadEvent).where(
        LeadEvent.lead_id == uuid.UUID(lead_id), LeadEvent.kind == "note")) == 0


@pytest.mark.parametrize("zip_code", ["00000", "99999", "５０４０１", "00000-0000"])
def test_us_zip_codes_must_be_real_and_ascii(client, session, staff_headers, dealer, zip_code):
    response = client.post("/api/v1/leads", json=dict(HOT, postal_code=zip_code),
                           headers=staff_headers)
    assert response.status_code == 422
    assert "postal_code" in response.json["fields"]
    assert leads(session) == 0


def test_partner_csv_refuses_zip_codes_that_do_not_exist(session, make_product_line):
    make_product_line("TRC")
    report = import_partners(session, partner_row("D-8", postal_code="00000"),
                             partner_row("D-9", postal_code="５０４０１"))
    assert [(e.line, e.column) for e in report.errors] == [(2, "postal_code"),
                                                           (3, "postal_code")]
    assert report.created == 0
