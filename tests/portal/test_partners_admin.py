"""Partner administration pages: list, search, create, edit, pause and resume."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import func, select

from portal.core.models import Partner, Territory


def text(response) -> str:
    """The page as a person reads it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def listed(response) -> list[str]:
    """The codes in the list's first column, in order."""
    return re.findall(r'<tr>\s*<td><a href="/manage/partners/([^"]+)">', text(response))


def partner_count(session, code: str | None = None) -> int:
    query = select(func.count(Partner.id))
    if code is not None:
        query = query.where(Partner.code == code)
    return session.scalar(query)


def stored(session, code: str) -> Partner | None:
    session.expire_all()
    return session.scalars(select(Partner).where(Partner.code == code)).first()


VALID = {
    "code": "d-2001",
    "name": "Prairie Dealer",
    "kind": "dealer",
    "parent": "",
    "email": "Sales@Prairie.example",
    "phone": "+1 641 555 0100",
    "address": "1 Main St",
    "city": "Mason City",
    "region": "us-ia",
    "postal_code": "50401",
    "country": "us",
    "latitude": "43.15",
    "longitude": "-93.2",
    "product_lines": ["TRC", "MWR"],
    "capacity": "10",
    "territories": "zip:50401\nzip:504*; zip:50400-50499\nregion:US-IA\ncountry:US\nradius:80",
    "forwarding": "manual",
}


@pytest.fixture
def lines(make_product_line):
    return [make_product_line("TRC", "Tractors"), make_product_line("MWR", "Mowers")]


# --- list -------------------------------------------------------------------------------


def test_list_shows_columns_and_status(auth, client, make_partner, session):
    dist = make_partner("DIST1", kind="distributor", name="Big Distributor", capacity=None,
                        forwarding="auto")
    make_partner("DLR1", parent_id=dist.id, name="Small Dealer", capacity=10, open_leads=3,
                 product_lines=["TRC", "MWR"], city="Ames", region="US-IA")
    make_partner("DLR2", active=False, paused_reason="holiday")
    auth.login("manager")
    page = text(client.get("/manage/partners"))
    assert "Big Distributor" in page and "Small Dealer" in page
    row = page[page.index(">DLR1<"):page.index(">DLR2<")]
    assert ">DIST1<" in row
    assert "Ames, US-IA" in row
    assert "MWR, TRC" in row
    assert "3 / 10" in row
    assert "Active" in row
    assert "0 / unlimited" in page[page.index(">DIST1<"):]
    assert "Paused" in page[page.index(">DLR2<"):]


@pytest.mark.parametrize("query, expected, absent", [
    ("dlr-a", "DLR-A", "DLR-B"),
    ("tractor", "DLR-A", "DLR-B"),
    ("clear lake", "DLR-B", "DLR-A"),
    ("50428", "DLR-B", "DLR-A"),
])
def test_search_by_code_name_city_postal_code(auth, client, make_partner, query, expected,
                                               absent):
    make_partner("DLR-A", name="Tractor Town", city="Ames", postal_code="50010")
    make_partner("DLR-B", name="Green Acres", city="Clear Lake", postal_code="50428")
    auth.login("manager")
    page = text(client.get("/manage/partners", query_string={"q": query}))
    assert f">{expected}<" in page
    assert f">{absent}<" not in page


def test_search_treats_percent_as_text(auth, client, make_partner):
    make_partner("DLR-A", name="100% Farm")
    make_partner("DLR-B", name="Other")
    auth.login("manager")
    page = text(client.get("/manage/partners", query_string={"q": "%"}))
    assert ">DLR-A<" in page and ">DLR-B<" not in page


def test_filters_kind_status_and_distributor(auth, client, make_partner):
    d1 = make_partner("D1", kind="distributor")
    d2 = make_partner("D2", kind="distributor")
    make_partner("X1", parent_id=d1.id)
    make_partner("X2", parent_id=d2.id, active=False)
    make_partner("X3")
    auth.login("admin")

    def codes(**args):
        return set(listed(client.get("/manage/partners", query_string=args)))

    assert codes(kind="distributor") == {"D1", "D2"}
    assert codes(kind="dealer") == {"X1", "X2", "X3"}
    assert codes(status="paused") == {"X2"}
    assert codes(status="active") == {"D1", "D2", "X1", "X3"}
    assert codes(distributor="D1") == {"X1"}
    assert codes(kind="dealer", status="active", q="x") == {"X1", "X3"}


def test_pagination(app, auth, client, make_partner):
    app.config["PAGE_SIZE"] = 5
    for n in range(12):
        make_partner(f"P{n:02d}")
    auth.login("manager")
    first = text(client.get("/manage/partners"))
    assert "Page 1 of 3 · 12 in all" in first
    assert ">P00<" in first and ">P04<" in first and ">P05<" not in first
    third = text(client.get("/manage/partners", query_string={"page": 3}))
    assert ">P10<" in third and ">P11<" in third and ">P09<" not in third
    # a page past the end shows the last page rather than an empty list
    beyond = text(client.get("/manage/partners", query_string={"page": 99}))
    assert "Page 3 of 3" in beyond


def test_list_query_count_does_not_grow_with_partners(app, auth, client, session,
                                                      make_partner, count_queries):
    app.config["PAGE_SIZE"] = 100
    dist = make_partner("D0", kind="distributor")
    make_partner("X000", parent_id=dist.id, product_lines=["TRC", "MWR"])
    auth.login("manager")
    with count_queries() as few:
        assert client.get("/manage/partners").status_code == 200
    for n in range(1, 40):
        make_partner(f"X{n:03d}", parent_id=make_partner(f"D{n}", kind="distributor").id,
                     product_lines=["TRC", "MWR", f"L{n}"])
    session.commit()  # the GET above rolled back its own work; keep these for the next GET
    with count_queries() as many:
        page = text(client.get("/manage/partners"))
    assert ">X039<" in page
    assert many.count == few.count, many.statements


def test_partner_user_gets_403_everywhere(auth, client, make_partner):
    partner = make_partner("DLR1")
    auth.login("partner", partner=partner)
    for url in ("/manage/partners", "/manage/partners/DLR1", "/manage/partners/new",
                "/manage/partners/DLR1/edit", "/manage/partners/import",
                "/manage/partners/export.csv"):
        assert client.get(url).status_code == 403, url
    assert client.post("/manage/partners/DLR1/pause").status_code == 403
    assert client.post("/manage/partners/new", data=VALID).status_code == 403


def test_signed_out_is_sent_to_login(client):
    response = client.get("/manage/partners")
    assert response.status_code == 302
    assert "/auth/login" in response.headers["Location"]


def test_unknown_partner_is_404(auth, client):
    auth.login("manager")
    assert client.get("/manage/partners/NOPE").status_code == 404
    assert client.get("/manage/partners/NOPE/edit").status_code == 404
    assert client.post("/manage/partners/NOPE/pause").status_code == 404


# --- partner page -----------------------------------------------------------------------


def test_partner_page_shows_details_territories_users_and_dealers(auth, client, make_partner,
                                                                 make_user):
    dist = make_partner("D1", kind="distributor", name="North Distribution",
                        territories=["region:US-IA", "zip:504*"])
    make_partner("X1", parent_id=dist.id, name="Dealer One")
    make_user("partner", partner=dist, email="boss@north.example")
    auth.login("manager")
    page = text(client.get("/manage/partners/D1"))
    assert "North Distribution" in page
    assert "region:US-IA" in page and "zip:504*" in page
    assert "TRC" in page
    assert "boss@north.example" in page
    assert "Dealers (1)" in page and "Dealer One" in page


# --- create ----------------------------------------------------------------------------


def test_create_partner_with_every_field(auth, client, session, lines):
    auth.login("admin")
    form_page = client.get("/manage/partners/new")
    assert form_page.status_code == 200
    assert "Tractors" in text(form_page)
    response = client.post("/manage/partners/new", data=VALID)
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/manage/partners/D-2001")
    partner = stored(session, "D-2001")
    assert partner is not None
    assert (partner.name, partner.kind, partner.email, partner.region, partner.country) == (
        "Prairie Dealer", "dealer", "sales@prairie.example", "US-IA", "US")
    assert (partner.latitude, partner.longitude, partner.capacity) == (43.15, -93.2, 10)
    assert not partner.location_from_centroid
    assert [line.code for line in partner.product_lines] == ["MWR", "TRC"]
    assert [t.rule for t in partner.territories] == [
        "zip:50401", "zip:504*", "zip:50400-50499", "region:US-IA", "country:US", "radius:80"]
    assert [(t.kind, t.value) for t in partner.territories][1] == ("zip_prefix", "504")
    page = text(client.get(response.headers["Location"]))
    assert "Partner D-2001 created." in page
    assert "zip:50400-50499" in page


def test_create_distributor_with_centroid_location(auth, client, session, lines):
    auth.login("admin")
    data = dict(VALID, code="DIST9", kind="distributor", latitude="", longitude="",
                forwarding="auto", capacity="", territories="radius:50")
    response = client.post("/manage/partners/new", data=data)
    assert response.status_code == 303, text(response)
    partner = stored(session, "DIST9")
    assert partner.location_from_centroid
    assert partner.latitude == pytest.approx(43.15, abs=0.05)
    assert partner.capacity is None
    assert partner.forwarding == "auto"


def test_create_dealer_under_distributor(auth, client, session, make_partner, lines):
    make_partner("D1", kind="distributor")
    auth.login("admin")
    response = client.post("/manage/partners/new", data=dict(VALID, parent="d1"))
    assert response.status_code == 303
    assert stored(session, "D-2001").parent.code == "D1"


INVALID = [
    ({"code": ""}, "code", "Enter a code"),
    ({"code": "bad code!"}, "code", "A code is 1–32 letters"),
    ({"code": "-LEADING"}, "code", "A code is 1–32 letters"),
    ({"code": "A" * 33}, "code", "Field cannot be longer than 32 characters"),
    ({"code": "TAKEN"}, "code", "Code TAKEN is already used by another partner."),
    ({"name": "  "}, "name", "Enter the partner's name."),
    ({"kind": "reseller"}, "kind", "Choose distributor or dealer."),
    ({"parent": "NOPE"}, "parent", "No distributor has the code NOPE."),
    ({"parent": "TAKEN"}, "parent", "TAKEN is a dealer; a parent must be a distributor."),
    ({"kind": "distributor", "parent": "DIST"}, "parent",
     "A distributor cannot have a parent; leave it empty."),
    ({"email": "not-an-email"}, "email", "Enter a valid email address"),
    ({"phone": "call us"}, "phone", "Enter a phone number with digits"),
    ({"country": "XX"}, "country", "Enter a two-letter ISO country code"),
    ({"region": "Iowa"}, "region", "Enter an ISO 3166-2 region code, e.g. US-IA."),
    ({"region": "CA-ON"}, "region", "Region CA-ON is not in country US."),
    ({"region": "US-ZZ"}, "region", "US-ZZ is not a US state or territory."),
    ({"postal_code": "ABCDE"}, "postal_code", "Enter a US ZIP code"),
    ({"latitude": "north"}, "latitude", "Enter the latitude in decimal degrees"),
    ({"latitude": "91"}, "latitude", "The latitude must be between -90 and 90."),
    ({"longitude": "-181"}, "longitude", "The longitude must be between -180 and 180."),
    ({"longitude": ""}, "longitude", "Give both latitude and longitude, or neither."),
    ({"product_lines": ["NOPE"]}, "product_lines", "No product line has the code NOPE."),
    ({"product_lines": ["OLD"]}, "product_lines", "Product line OLD is retired"),
    ({"capacity": "-1"}, "capacity", "Enter a whole number of leads"),
    ({"capacity": "ten"}, "capacity", "Enter a whole number of leads"),
    ({"territories": "zip:504**"}, "territories", "'zip:504**'"),
    ({"territories": "planet:mars"}, "territories", "unknown territory kind 'planet'"),
    ({"territories": "radius:5000"}, "territories", "at most 1000 km"),
    ({"territories": "zip:5020"}, "territories", "a US ZIP code is 5 digits"),
    ({"territories": "zip:ABCDE"}, "territories", "a US ZIP code is 5 digits"),
    ({"territories": "zip:AB*"}, "territories", "a US ZIP code prefix is 1 to 5 digits"),
    ({"territories": "zip:5000-5099"}, "territories", "5 digits on each side"),
    ({"territories": "radius:80", "latitude": "", "longitude": "", "postal_code": ""},
     "territories", "A radius rule needs the partner's location"),
    ({"forwarding": "auto"}, "forwarding", "Only distributors forward leads"),
    ({"forwarding": "sometimes"}, "forwarding", "Choose manual or auto."),
]


@pytest.mark.parametrize("changes, field, message", INVALID,
                         ids=[f"{case[1]}-{n}" for n, case in enumerate(INVALID)])
def test_create_rejects_bad_input_field_by_field(auth, client, session, make_partner,
                                                 make_product_line, lines, changes, field,
                                                 message):
    make_partner("TAKEN")
    make_partner("DIST", kind="distributor")
    make_product_line("OLD", active=False)
    auth.login("admin")
    before = partner_count(session)
    response = client.post("/manage/partners/new", data=dict(VALID, **changes))
    assert response.status_code == 422
    page = text(response)
    assert message in page
    # the message sits under its own field
    error_block = page[page.index(f'id="{field}-error"'):]
    assert message in error_block[:error_block.index("</p>")]
    assert partner_count(session) == before
    assert session.scalar(select(func.count(Territory.id)).join(Partner).where(
        Partner.code == "D-2001")) == 0


def test_create_reports_several_problems_at_once(auth, client, session, lines):
    auth.login("admin")
    response = client.post("/manage/partners/new",
                           data=dict(VALID, code="", email="x@", capacity="lots"))
    page = text(response)
    assert response.status_code == 422
    assert "Enter a code" in page
    assert "Enter a valid email address" in page
    assert "Enter a whole number of leads" in page
    assert partner_count(session) == 0


def test_create_needs_csrf_token(app, auth, client, session, lines):
    auth.login("admin")
    app.config["WTF_CSRF_ENABLED"] = True
    response = client.post("/manage/partners/new", data=VALID)
    assert response.status_code == 400
    assert partner_count(session, "D-2001") == 0


# --- edit -------------------------------------------------------------------------------


def test_edit_form_shows_current_values(auth, client, make_partner):
    make_partner("X1", name="Dealer One", territories=["zip:50401", "zip:504*"],
                 capacity=7)
    auth.login("manager")
    page = text(client.get("/manage/partners/X1/edit"))
    assert 'value="Dealer One"' in page
    assert "zip:50401\nzip:504*" in page
    assert 'value="7"' in page
    assert ('<input checked id="product_lines-0" name="product_lines" type="checkbox" '
            'value="TRC">') in page


def test_edit_replaces_territories_and_product_lines(auth, client, session, make_partner,
                                                    lines):
    make_partner("X1", territories=["zip:50401", "region:US-IA"], product_lines=["TRC"])
    auth.login("manager")
    response = client.post("/manage/partners/X1/edit", data=dict(
        VALID, code="X1", name="Renamed", product_lines=["MWR"], territories="zip:50402",
        capacity=""))
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/manage/partners/X1")
    partner = stored(session, "X1")
    assert partner.name == "Renamed"
    assert partner.capacity is None
    assert [t.rule for t in partner.territories] == ["zip:50402"]
    assert [line.code for line in partner.product_lines] == ["MWR"]
    assert session.scalar(select(func.count(Territory.id))) == 1


def test_edit_rejects_bad_input_and_keeps_the_partner(auth, client, session, make_partner,
                                                      lines):
    make_partner("X1", name="Keep Me", territories=["zip:50401"])
    auth.login("manager")
    response = client.post("/manage/partners/X1/edit", data=dict(
        VALID, code="X1", name="Changed", territories="zip:50401\nzip:5*0"))
    assert response.status_code == 422
    assert "'zip:5*0'" in text(response)
    partner = stored(session, "X1")
    assert partner.name == "Keep Me"
    assert [t.rule for t in partner.territories] == ["zip:50401"]


def test_edit_cannot_take_another_partners_code(auth, client, session, make_partner, lines):
    make_partner("X1")
    make_partner("X2")
    auth.login("manager")
    response = client.post("/manage/partners/X1/edit", data=dict(VALID, code="X2"))
    assert response.status_code == 422
    assert "Code X2 is already used by another partner." in text(response)


def test_distributor_with_dealers_cannot_become_a_dealer(auth, client, session, make_partner,
                                                         lines):
    dist = make_partner("D1", kind="distributor")
    make_partner("X1", parent_id=dist.id)
    auth.login("manager")
    response = client.post("/manage/partners/D1/edit", data=dict(VALID, code="D1",
                                                                  kind="dealer"))
    assert response.status_code == 422
    assert "This distributor has 1 dealers" in text(response)
    assert stored(session, "D1").kind == "distributor"


def test_retired_line_already_held_may_stay(auth, client, session, make_partner,
                                            make_product_line, lines):
    make_product_line("OLD", active=False)
    make_partner("X1", product_lines=["OLD", "TRC"])
    auth.login("manager")
    assert "OLD" in text(client.get("/manage/partners/X1/edit"))
    response = client.post("/manage/partners/X1/edit", data=dict(
        VALID, code="X1", product_lines=["OLD", "TRC"]))
    assert response.status_code == 303
    assert [line.code for line in stored(session, "X1").product_lines] == ["OLD", "TRC"]


# --- pause / resume ---------------------------------------------------------------------


def test_pause_and_resume(auth, client, session, make_partner):
    make_partner("X1")
    auth.login("manager")
    response = client.post("/manage/partners/X1/pause", data={"reason": "On holiday <b>"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/manage/partners/X1")
    partner = stored(session, "X1")
    assert (partner.active, partner.paused_reason) == (False, "On holiday <b>")
    raw = client.get("/manage/partners/X1").get_data(as_text=True)
    assert "On holiday &lt;b&gt;" in raw  # the reason is shown, escaped
    assert "gets no new offers" in raw
    assert "Paused" in text(client.get("/manage/partners", query_string={"q": "X1"}))

    response = client.post("/manage/partners/X1/resume")
    assert response.status_code == 303
    partner = stored(session, "X1")
    assert (partner.active, partner.paused_reason) == (True, "")
    assert "is active again" in text(client.get("/manage/partners/X1"))


def test_pause_reason_too_long_is_refused(auth, client, session, make_partner):
    make_partner("X1")
    auth.login("manager")
    response = client.post("/manage/partners/X1/pause", data={"reason": "x" * 201})
    assert response.status_code == 422
    assert stored(session, "X1").active


def test_pause_is_post_only(auth, client, make_partner):
    make_partner("X1")
    auth.login("manager")
    assert client.get("/manage/partners/X1/pause").status_code == 405


def test_edit_keeps_a_location_taken_from_the_postal_code(auth, client, session, lines):
    auth.login("admin")
    data = dict(VALID, latitude="", longitude="", territories="radius:40")
    assert client.post("/manage/partners/new", data=data).status_code == 303
    page = text(client.get("/manage/partners/D-2001/edit"))
    assert "The location now comes from postal code 50401" in page
    response = client.post("/manage/partners/D-2001/edit",
                           data=dict(data, code="D-2001", postal_code="50010"))
    assert response.status_code == 303
    partner = stored(session, "D-2001")
    assert partner.location_from_centroid
    assert partner.latitude == pytest.approx(42.03, abs=0.05)  # Ames, the new postal code
