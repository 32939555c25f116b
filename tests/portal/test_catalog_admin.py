"""Product lines, competitors, campaigns and sources: list, add, edit, deactivate."""

from __future__ import annotations

import html
from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from portal.core.models import Campaign, Competitor, ProductLine, Source


def text(response) -> str:
    return response.get_data(as_text=True)


def count(session, model) -> int:
    return session.scalar(select(func.count()).select_from(model))


def one(session, model, **where):
    return session.scalars(select(model).filter_by(**where)).one()


@pytest.fixture
def admin(auth):
    return auth.login("admin")


# --- who may open what -------------------------------------------------------------------

ADMIN_ONLY = ["/manage/product-lines", "/manage/product-lines/new", "/manage/competitors",
              "/manage/sources", "/manage/sources/new"]
STAFF = ["/manage/campaigns", "/manage/campaigns/new"]


@pytest.mark.parametrize("path", ADMIN_ONLY)
def test_managers_cannot_open_admin_only_pages(auth, client, path):
    auth.login("manager")
    assert client.get(path).status_code == 403


@pytest.mark.parametrize(("path", "model"), [("/manage/product-lines/new", ProductLine),
                                             ("/manage/competitors", Competitor),
                                             ("/manage/sources/new", Source)])
def test_managers_cannot_add_to_admin_only_lists(auth, client, session, path, model):
    auth.login("manager")
    response = client.post(path, data={"code": "X", "name": "X", "cost_per_lead": "1"})
    assert response.status_code == 403
    assert count(session, model) == 0


@pytest.mark.parametrize("path", ADMIN_ONLY + STAFF)
def test_partner_users_cannot_open_catalog_pages(auth, client, make_partner, path):
    auth.login("partner", partner=make_partner())
    assert client.get(path).status_code == 403


def test_managers_can_work_on_campaigns(auth, client, session):
    auth.login("manager")
    assert client.get("/manage/campaigns").status_code == 200
    response = client.post("/manage/campaigns/new", data={
        "code": "MGR1", "name": "Manager's", "channel": "email", "cost": "10", "active": "y"})
    assert response.status_code == 303
    assert one(session, Campaign, code="MGR1").channel == "email"


def test_editing_a_row_by_a_manager_is_refused(auth, client, session, make_product_line):
    line = make_product_line("HAY")
    auth.login("manager")
    response = client.post(f"/manage/product-lines/{line.id}/edit",
                           data={"code": "HAY", "name": "Changed", "active": "y"})
    assert response.status_code == 403
    session.refresh(line)
    assert line.name == "HAY line"


def test_unknown_rows_are_404(admin, client):
    for path in ("/manage/product-lines/999999/edit", "/manage/competitors/999999/edit",
                 "/manage/campaigns/999999/edit", "/manage/sources/999999/edit"):
        assert client.get(path).status_code == 404, path


# --- product lines -----------------------------------------------------------------------


def test_product_lines_list_create_edit_deactivate(admin, client, session, make_product_line):
    make_product_line("TRC", name="Tractors")
    session.commit()
    listing = text(client.get("/manage/product-lines"))
    assert "TRC" in listing and "Tractors" in listing

    form = text(client.get("/manage/product-lines/new"))
    assert 'name="code"' in form and "checked" in form  # new lines start active
    response = client.post("/manage/product-lines/new", data={
        "code": " cmb-2 ", "name": "Combines", "description": "Grain harvesting", "active": "y"})
    assert response.status_code == 303
    assert response.headers["Location"] == "/manage/product-lines"
    line = one(session, ProductLine, code="CMB-2")  # codes are kept in capitals
    assert (line.name, line.description, line.active) == ("Combines", "Grain harvesting", True)
    assert "Saved product line CMB-2." in text(client.get("/manage/product-lines"))

    edit = text(client.get(f"/manage/product-lines/{line.id}/edit"))
    assert 'value="CMB-2"' in edit and "Grain harvesting" in edit
    # Deactivate: leave "active" unticked.
    response = client.post(f"/manage/product-lines/{line.id}/edit", data={
        "code": "CMB-2", "name": "Combines & headers", "description": ""})
    assert response.status_code == 303
    session.refresh(line)
    assert line.active is False and line.name == "Combines & headers"
    listing = text(client.get("/manage/product-lines"))
    assert "Inactive" in listing
    assert "Combines &amp; headers" in listing  # escaped, never raw


@pytest.mark.parametrize(("data", "message"), [
    ({"code": "", "name": "X"}, "Enter a code."),
    ({"code": "bad code", "name": "X"}, "Use 1–32 capital letters"),
    ({"code": "-LEAD", "name": "X"}, "Use 1–32 capital letters"),
    ({"code": "A" * 33, "name": "X"}, "Use 1–32 capital letters"),
    ({"code": "OK", "name": ""}, "Enter a name."),
    ({"code": "TRC", "name": "Again"}, "Another product line has this code."),
    ({"code": "trc", "name": "Again"}, "Another product line has this code."),
])
def test_product_line_bad_input_is_shown_and_nothing_saved(admin, client, session,
                                                           make_product_line, data, message):
    make_product_line("TRC")
    session.commit()
    before = count(session, ProductLine)
    response = client.post("/manage/product-lines/new", data={**data, "active": "y"})
    assert response.status_code == 422
    assert message in text(response)
    assert count(session, ProductLine) == before


def test_product_line_cannot_take_another_lines_code(admin, client, session, make_product_line):
    make_product_line("TRC")
    other = make_product_line("HAY")
    session.commit()
    response = client.post(f"/manage/product-lines/{other.id}/edit",
                           data={"code": "TRC", "name": "Hay", "active": "y"})
    assert response.status_code == 422
    assert "Another product line has this code." in text(response)
    session.refresh(other)
    assert other.code == "HAY"
    # Keeping its own code is fine.
    response = client.post(f"/manage/product-lines/{other.id}/edit",
                           data={"code": "HAY", "name": "Hay tools", "active": "y"})
    assert response.status_code == 303


def test_product_lines_paginate(app, admin, client, session, make_product_line):
    app.config["PAGE_SIZE"] = 2
    for code in ("AAA", "BBB", "CCC"):
        make_product_line(code)
    session.commit()
    # The codes as the table links them (a page's random CSRF token may hold "AAA").
    first = text(client.get("/manage/product-lines"))
    assert ">AAA</a>" in first and ">BBB</a>" in first and ">CCC</a>" not in first
    assert "Page 1 of 2" in first
    second = text(client.get("/manage/product-lines", query_string={"page": 2}))
    assert ">CCC</a>" in second and ">AAA</a>" not in second


# --- competitors -------------------------------------------------------------------------


def test_competitors_add_rename_deactivate_activate(admin, client, session):
    response = client.post("/manage/competitors", data={"name": "  Green   Machines "})
    assert response.status_code == 303
    competitor = one(session, Competitor, name="Green Machines")
    assert competitor.active
    page = text(client.get("/manage/competitors"))
    assert "Added Green Machines." in page and "Deactivate" in page

    response = client.post(f"/manage/competitors/{competitor.id}/edit",
                           data={"name": "Green Machines Inc."})
    assert response.status_code == 303
    session.refresh(competitor)
    assert competitor.name == "Green Machines Inc."

    response = client.post(f"/manage/competitors/{competitor.id}/active", data={"active": "0"})
    assert response.status_code == 303
    session.refresh(competitor)
    assert not competitor.active
    page = text(client.get("/manage/competitors"))
    assert "Inactive" in page and ">Activate<" in page

    client.post(f"/manage/competitors/{competitor.id}/active", data={"active": "1"})
    session.refresh(competitor)
    assert competitor.active
    assert count(session, Competitor) == 1  # nothing is deleted, only toggled


def test_competitor_names_are_unique_ignoring_case(admin, client, session):
    client.post("/manage/competitors", data={"name": "Red Iron"})
    other = client.post("/manage/competitors", data={"name": "Blue Steel"})
    assert other.status_code == 303
    before = count(session, Competitor)

    response = client.post("/manage/competitors", data={"name": "RED IRON"})
    assert response.status_code == 422
    assert "Another competitor has this name." in text(response)
    assert count(session, Competitor) == before

    blue = one(session, Competitor, name="Blue Steel")
    response = client.post(f"/manage/competitors/{blue.id}/edit", data={"name": "red iron"})
    assert response.status_code == 422
    session.refresh(blue)
    assert blue.name == "Blue Steel"

    response = client.post("/manage/competitors", data={"name": "   "})
    assert response.status_code == 422
    assert "Enter the competitor&#39;s name." in text(response)
    assert count(session, Competitor) == before


def test_competitor_toggle_needs_a_clear_value(admin, client, session):
    client.post("/manage/competitors", data={"name": "Acme"})
    acme = one(session, Competitor, name="Acme")
    assert client.post(f"/manage/competitors/{acme.id}/active",
                       data={"active": "maybe"}).status_code == 400
    assert client.get(f"/manage/competitors/{acme.id}/active").status_code == 405
    session.refresh(acme)
    assert acme.active


# --- campaigns ---------------------------------------------------------------------------


def campaign_data(**overrides):
    data = {"code": "FARM25", "name": "Farm show 2025", "channel": "trade_show",
            "cost": "12,500.50", "starts_on": "2025-03-01", "ends_on": "2025-03-03",
            "active": "y"}
    data.update(overrides)
    return data


def test_campaigns_list_create_edit_deactivate(admin, client, session):
    response = client.post("/manage/campaigns/new", data=campaign_data())
    assert response.status_code == 303
    campaign = one(session, Campaign, code="FARM25")
    assert campaign.cost == Decimal("12500.50")
    assert (campaign.starts_on, campaign.ends_on) == (date(2025, 3, 1), date(2025, 3, 3))
    assert campaign.channel == "trade_show" and campaign.active

    listing = text(client.get("/manage/campaigns"))
    assert "FARM25" in listing and "Trade show" in listing and "$12,500.50" in listing
    assert "2025-03-01 – 2025-03-03" in html.unescape(listing)

    edit = text(client.get(f"/manage/campaigns/{campaign.id}/edit"))
    assert 'value="12500.50"' in edit and 'value="2025-03-01"' in edit

    # Deactivate (the box unticked: browsers then send no "active" at all).
    unticked = campaign_data(cost="0", ends_on="")
    del unticked["active"]
    response = client.post(f"/manage/campaigns/{campaign.id}/edit", data=unticked)
    assert response.status_code == 303
    session.refresh(campaign)
    assert not campaign.active and campaign.cost == 0 and campaign.ends_on is None
    assert "Inactive" in text(client.get("/manage/campaigns"))


@pytest.mark.parametrize(("overrides", "message"), [
    ({"cost": "-5"}, "Enter 0 or more."),
    ({"cost": "lots"}, "Enter an amount such as 1500.00"),
    ({"cost": ""}, "Enter the cost (0 if none)."),
    ({"cost": "1.005"}, "Use at most two decimals."),
    ({"cost": "NaN"}, "Enter an amount such as 1500.00"),
    ({"cost": "1,2,3"}, "commas only between thousands"),
    ({"cost": "99999999999"}, "Enter a smaller amount: at most 9,999,999,999.99."),
    ({"ends_on": "2025-02-28"}, "Pick a day on or after the start."),
    ({"starts_on": "03/01/2025"}, "Enter a date as YYYY-MM-DD"),
    ({"starts_on": "1900-01-01"}, "Enter a date from 2000-01-01 on."),
    ({"channel": "carrier_pigeon"}, "Not a valid choice"),
    ({"code": "has space"}, "Use 1–32 letters, digits"),
    ({"name": ""}, "Enter a name."),
    ({"code": "farm25"}, "Another campaign has this code."),
])
def test_campaign_bad_input_is_shown_and_nothing_saved(admin, client, session, overrides,
                                                       message):
    assert client.post("/manage/campaigns/new", data=campaign_data()).status_code == 303
    before = count(session, Campaign)
    response = client.post("/manage/campaigns/new",
                           data=campaign_data(**{"code": "OTHER", **overrides}))
    assert response.status_code == 422
    assert message in text(response)
    assert count(session, Campaign) == before


def test_campaign_edit_with_bad_input_changes_nothing(admin, client, session):
    client.post("/manage/campaigns/new", data=campaign_data())
    campaign = one(session, Campaign, code="FARM25")
    response = client.post(f"/manage/campaigns/{campaign.id}/edit",
                           data=campaign_data(name="Renamed", cost="-1"))
    assert response.status_code == 422
    session.refresh(campaign)
    assert campaign.name == "Farm show 2025" and campaign.cost == Decimal("12500.50")


def test_campaigns_paginate(app, admin, client, session):
    app.config["PAGE_SIZE"] = 2
    for code in ("C1", "C2", "C3"):
        client.post("/manage/campaigns/new", data=campaign_data(code=code, name=f"Campaign {code}"))
    first = text(client.get("/manage/campaigns"))
    assert "Campaign C1" in first and "Campaign C2" in first and "Campaign C3" not in first
    assert "Page 1 of 2 · 3 in all" in html.unescape(first)
    second = text(client.get("/manage/campaigns", query_string={"page": "2"}))
    assert "Campaign C3" in second and "Campaign C1" not in second


# --- sources -----------------------------------------------------------------------------


def test_sources_list_create_edit_deactivate(admin, client, session):
    response = client.post("/manage/sources/new", data={
        "code": "web-form", "name": "Website form", "cost_per_lead": "$4.25", "active": "y"})
    assert response.status_code == 303
    source = one(session, Source, code="web-form")
    assert source.cost_per_lead == Decimal("4.25") and source.active
    listing = text(client.get("/manage/sources"))
    assert "web-form" in listing and "$4.25" in listing

    response = client.post(f"/manage/sources/{source.id}/edit", data={
        "code": "web-form", "name": "Website form (old)", "cost_per_lead": "0"})
    assert response.status_code == 303
    session.refresh(source)
    assert not source.active and source.name == "Website form (old)"
    assert "Inactive" in text(client.get("/manage/sources"))


@pytest.mark.parametrize(("data", "message"), [
    ({"code": "", "name": "X", "cost_per_lead": "1"}, "Enter a code."),
    ({"code": "a b", "name": "X", "cost_per_lead": "1"}, "Use 1–32 letters, digits"),
    ({"code": "ok", "name": "", "cost_per_lead": "1"}, "Enter a name."),
    ({"code": "ok", "name": "X", "cost_per_lead": "-0.01"}, "Enter 0 or more."),
    ({"code": "ok", "name": "X", "cost_per_lead": "abc"}, "Enter an amount such as 1500.00"),
    ({"code": "TRADE", "name": "X", "cost_per_lead": "1"}, "Another source has this code."),
])
def test_source_bad_input_is_shown_and_nothing_saved(admin, client, session, data, message):
    client.post("/manage/sources/new",
                data={"code": "trade", "name": "Trade show", "cost_per_lead": "10"})
    before = count(session, Source)
    response = client.post("/manage/sources/new", data={**data, "active": "y"})
    assert response.status_code == 422
    assert message in text(response)
    assert count(session, Source) == before


def test_catalog_forms_need_the_csrf_token(app, admin, client, session):
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/manage/sources/new",
                           data={"code": "x", "name": "X", "cost_per_lead": "1", "active": "y"})
    assert response.status_code == 400
    assert count(session, Source) == 0


def test_a_partner_admin_still_cannot_edit_the_catalog(auth, client, make_partner, session):
    # "Partner administrator" is about the partner's own firm, not the manufacturer's lists.
    auth.login("partner", partner=make_partner(), partner_admin=True)
    assert client.get("/manage/product-lines").status_code == 403
    assert client.post("/manage/competitors", data={"name": "Sneaky"}).status_code == 403
    assert count(session, Competitor) == 0


def test_campaign_form_shows_every_problem_at_once(admin, client, session):
    response = client.post("/manage/campaigns/new", data=campaign_data(
        name="", cost="-1", starts_on="2025-05-02", ends_on="2025-05-01"))
    assert response.status_code == 422
    page = text(response)
    for message in ("Enter a name.", "Enter 0 or more.", "Pick a day on or after the start."):
        assert message in page
    assert count(session, Campaign) == 0


# --- the services on their own (the commands and imports call them too) ------------------


def test_services_validate_before_writing(session, make_product_line):
    from portal.catalog import services
    from portal.core.errors import InvalidInput

    make_product_line("TRC")
    cases = [
        (lambda: services.save_campaign(session, None, code="C", name="C", channel="web",
                                        cost="-1", starts_on=None, ends_on=None), "cost"),
        (lambda: services.save_campaign(session, None, code="C", name="C", channel="web",
                                        cost="1", starts_on=date(2025, 2, 2),
                                        ends_on=date(2025, 2, 1)), "ends_on"),
        (lambda: services.save_campaign(session, None, code="C", name="C", channel="fax",
                                        cost="1", starts_on=None, ends_on=None), "channel"),
        (lambda: services.save_source(session, None, code="S", name="S",
                                      cost_per_lead="Infinity"), "cost_per_lead"),
        (lambda: services.save_product_line(session, None, code="trc", name="Again"), "code"),
        (lambda: services.save_product_line(session, None, code="NEW", name="  "), "name"),
    ]
    for call, field in cases:
        with pytest.raises(InvalidInput) as caught:
            call()
        assert field in caught.value.fields
    assert count(session, Campaign) == count(session, Source) == 0
    assert count(session, ProductLine) == 1

    services.save_competitor(session, None, name="Deere & Co")
    with pytest.raises(InvalidInput, match="already on the list"):
        services.save_competitor(session, None, name="deere & co")
    assert count(session, Competitor) == 1
