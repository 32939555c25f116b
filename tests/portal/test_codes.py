"""Codes are stored and shown as entered and found in any case (issue 12): a source made
on the admin page as ``web-form`` is used by the API, the public form, the CSV import and
the command; campaigns, product lines and partners the same way."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from portal.core.models import Campaign, Lead, Partner, ProductLine, Source
from portal.users import services as users
from tests.conftest import PASSWORD
from tests.portal.test_capture_forms import inquiry, shown_form
from tests.portal.test_lead_import import run

HOT = {
    "first_name": "Dana", "email": "dana@example.com", "postal_code": "50401",
    "product_line": "TRC",
    "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
}


def token(client: Any, user: Any) -> dict[str, str]:
    response = client.post("/api/v1/tokens", json={"email": user.email, "password": PASSWORD})
    assert response.status_code == 201
    return {"Authorization": f"Bearer {response.json['token']}"}


def text(response: Any) -> str:
    return html.unescape(response.get_data(as_text=True))


@pytest.fixture
def web_form(auth: Any, client: Any, session: Any) -> Source:
    """``web-form``, made on the admin page as its own example suggests, beside ``WEB``."""
    auth.login("admin")
    session.add(Source(code="WEB", name="Website"))
    session.commit()  # requests share the test's session; a GET rolls back what is not
    response = client.post("/manage/sources/new", data={
        "code": "web-form", "name": "Web form", "cost_per_lead": "0", "active": "y"})
    assert response.status_code == 303
    auth.logout()
    return session.scalars(select(Source).where(Source.name == "Web form")).one()


@pytest.fixture
def headers(client: Any, make_user: Any) -> dict[str, str]:
    return token(client, make_user("manager"))


# --- the admin pages store codes as entered and refuse one that differs only in case ------


def test_a_source_keeps_its_code_as_entered(web_form: Source, auth: Any, client: Any) -> None:
    assert web_form.code == "web-form"
    auth.login("admin")
    assert "web-form" in text(client.get("/manage/sources"))


@pytest.mark.parametrize(("path", "data", "message"), [
    ("/manage/sources/new", {"code": "WEB-FORM", "name": "Again", "cost_per_lead": "0"},
     "Another source has this code."),
    ("/manage/sources/new", {"code": "web", "name": "Again", "cost_per_lead": "0"},
     "Another source has this code."),
    ("/manage/campaigns/new", {"code": "SPRING-26", "name": "Again", "channel": "web",
                               "cost": "0"}, "Another campaign has this code."),
])
def test_a_code_differing_only_in_case_is_refused_on_its_field(
        web_form: Source, auth: Any, client: Any, session: Any, path: str,
        data: dict[str, str], message: str) -> None:
    session.add(Campaign(code="spring-26", name="Spring"))
    session.commit()
    auth.login("admin")
    response = client.post(path, data=data)
    assert response.status_code == 422
    assert message in text(response)
    assert session.scalar(select(func.count()).select_from(Source)) == 2
    assert session.scalar(select(func.count()).select_from(Campaign)) == 1


@pytest.mark.parametrize(("model", "first", "second"), [
    (Source, "web-form", "WEB-FORM"), (Campaign, "Spring", "spring"),
    (ProductLine, "TRC", "trc"), (Partner, "D-1", "d-1"),
])
def test_the_database_refuses_codes_differing_only_in_case(
        session: Any, model: Any, first: str, second: str) -> None:
    extra = {"kind": "dealer"} if model is Partner else {}
    session.add(model(code=first, name="First", **extra))
    session.flush()
    with pytest.raises(IntegrityError), session.begin_nested():
        session.add(model(code=second, name="Second", **extra))
        session.flush()


# --- the API ----------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["web-form", "WEB-FORM", " Web-Form "])
def test_api_capture_finds_the_source_in_any_case(
        web_form: Source, client: Any, headers: dict[str, str], make_partner: Any,
        typed: str) -> None:
    make_partner("D-IA", territories=["zip:504*"])
    response = client.post("/api/v1/leads", json=dict(HOT, source=typed), headers=headers)
    assert response.status_code == 201, response.json
    assert response.json["source"] == "web-form"


def test_api_capture_finds_campaigns_and_product_lines_in_any_case(
        client: Any, headers: dict[str, str], session: Any, make_partner: Any) -> None:
    make_partner("D-IA", territories=["zip:504*"])
    session.add(Campaign(code="FarmShow26", name="Farm show"))
    session.flush()
    response = client.post("/api/v1/leads", json=dict(
        HOT, campaign="FARMSHOW26", product_line="trc"), headers=headers)
    assert response.status_code == 201, response.json
    assert (response.json["campaign"], response.json["product_line"]) == ("FarmShow26", "TRC")
    assert response.json["status"] == "offered"


def test_an_unknown_source_lists_the_valid_codes_as_entered(
        web_form: Source, client: Any, headers: dict[str, str], session: Any) -> None:
    response = client.post("/api/v1/leads", json=dict(HOT, source="print"), headers=headers)
    assert response.status_code == 422
    assert response.json["fields"]["source"] == (
        "Unknown source 'print'; one of: WEB, web-form.")
    assert session.scalar(select(func.count()).select_from(Lead)) == 0


def test_api_partner_codes_are_found_in_any_case(
        client: Any, headers: dict[str, str], make_partner: Any) -> None:
    dealer = make_partner("D-IA", territories=["zip:504*"])
    other = make_partner("D-MN", territories=["zip:55*"])
    lead = client.post("/api/v1/leads", json=HOT, headers=headers).json
    listed = client.get("/api/v1/leads?partner=d-ia", headers=headers)
    assert [row["id"] for row in listed.json["leads"]] == [lead["id"]]
    moved = client.post(f"/api/v1/leads/{lead['id']}/actions", headers=headers, json={
        "action": "reassign", "partner": "d-mn", "override": True, "reason": "Asked for"})
    assert moved.status_code == 200, moved.json
    assert moved.json["assigned_partner"] == other.code != dealer.code


# --- the public form --------------------------------------------------------------------


@pytest.fixture
def spring(session: Any, make_partner: Any) -> Campaign:
    make_partner("D1", territories=["zip:50401"], product_lines=["TRC"])
    campaign = Campaign(code="spring-days", name="Spring days")
    session.add(campaign)
    session.commit()
    return campaign


def test_public_form_finds_its_campaign_and_source_in_any_case(
        app: Any, client: Any, session: Any, web_form: Source, spring: Campaign) -> None:
    app.config["CAPTURE_MIN_FILL_SECONDS"] = 0
    app.config["CAPTURE_FORM_SOURCE"] = "WEB-FORM"
    assert "Spring days" in text(client.get("/f/SPRING-DAYS"))
    response = client.post("/f/Spring-Days",
                           data=inquiry(**shown_form(client, "spring-days")))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/f/spring-days/thanks")
    lead = session.scalars(select(Lead)).one()
    assert (lead.campaign.code, lead.source.code) == ("spring-days", "web-form")


def test_public_form_default_source_matches_a_lower_case_web(
        app: Any, client: Any, session: Any, spring: Campaign) -> None:
    app.config["CAPTURE_MIN_FILL_SECONDS"] = 0
    session.add(Source(code="web", name="Website"))
    session.commit()
    response = client.post("/f/spring-days", data=inquiry(**shown_form(client, "spring-days")))
    assert response.status_code == 303
    assert session.scalars(select(Lead)).one().source.code == "web"


# --- the CSV import and the command ------------------------------------------------------


def test_csv_import_finds_codes_in_any_case(
        app: Any, auth: Any, client: Any, session: Any, web_form: Source,
        spring: Campaign, tmp_path: Path) -> None:
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    auth.login("manager")
    page = run(client, "email,zip,product,campaign,source,timeline,budget\r\n"
                       "ann@able.example,50401,trc,SPRING-DAYS,WEB-FORM,now,approved\r\n", 7)
    assert "Status:</strong> Done" in text(page)
    lead = session.scalars(select(Lead)).one()
    assert (lead.product_line.code, lead.campaign.code, lead.source.code) == (
        "TRC", "spring-days", "web-form")


def test_import_command_finds_codes_in_any_case(
        app: Any, runner: Any, session: Any, web_form: Source, spring: Campaign,
        tmp_path: Path) -> None:
    app.config["IMPORTS_DIR"] = str(tmp_path / "imports")
    path = tmp_path / "list.csv"
    path.write_text("Email,Zip,Timeline,Budget,Product\r\nkim@k.example,50401,now,approved,TRC\r\n")
    result = runner.invoke(args=["import", "leads", str(path), "--campaign", "Spring-Days",
                                 "--source", "WEB-FORM"])
    assert "1 created" in result.output, result.output
    lead = session.scalars(select(Lead)).one()
    assert (lead.campaign.code, lead.source.code) == ("spring-days", "web-form")


# --- partners ---------------------------------------------------------------------------


def test_a_partner_user_is_created_with_a_code_in_any_case(
        session: Any, make_partner: Any) -> None:
    dealer = make_partner("D-IA")
    user = users.create_user(session, email="pat@d.example", name="Pat", role="partner",
                              partner_code="d-ia")
    assert user.partner is dealer
