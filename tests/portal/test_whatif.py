"""The routing what-if page: which recent leads an unsaved partner edit would move."""

from __future__ import annotations

import html
import re
from datetime import timedelta

from sqlalchemy import func, select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import Lead, LeadEvent, Offer, Partner, Territory, utcnow
from portal.dispatch import services as routing_service


def _routed(session, make_lead, **fields):
    lead = make_lead(**fields)
    routing_service.route_lead(session, lead)
    session.flush()
    return lead


def _post(client, partner, **overrides):
    data = {"territories": "\n".join(t.rule for t in partner.territories),
            "product_lines": [line.code for line in partner.product_lines],
            "capacity": "" if partner.capacity is None else str(partner.capacity),
            "active": "y" if partner.active else ""}
    data.update(overrides)
    if not data["active"]:
        del data["active"]  # an unchecked box is simply absent
    return client.post(f"/manage/what-if/{partner.code}", data=data)


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.get_data(as_text=True))


def test_the_form_is_prefilled_with_the_partners_routing_facts(
        client, auth, make_partner, make_product_line):
    make_product_line("MWR")
    partner = make_partner("B1", territories=["zip:50401", "region:US-IA"], capacity=7)
    auth.login("manager")

    response = client.get("/manage/what-if/B1")

    assert response.status_code == 200
    page = _text(response)
    assert "zip:50401\nregion:US-IA" in response.get_data(as_text=True)
    assert 'name="capacity" type="text" value="7"' in page
    assert re.search(r'<input checked id="product_lines-\d" name="product_lines" '
                     r'type="checkbox" value="TRC">', page)
    assert re.search(r'<input id="product_lines-\d" name="product_lines" '
                     r'type="checkbox" value="MWR">', page)
    assert partner.code in page and "Nothing is saved here" in page
    assert "HX-Request" in response.headers["Vary"]
    detail = client.get("/manage/partners/B1").get_data(as_text=True)
    assert 'href="/manage/what-if/B1">What if…</a>' in html.unescape(detail)


def test_gaining_a_zip_takes_a_lead_from_another_partner(
        session, client, auth, make_partner, make_lead):
    make_partner("WIDE", territories=["zip:504*"])
    narrow = make_partner("NARROW", territories=["zip:50999"])
    taken = _routed(session, make_lead, postal_code="50401", last_name="Taken")
    kept = _routed(session, make_lead, postal_code="50402", last_name="Stays")
    assert taken.assigned_partner.code == "WIDE" and kept.assigned_partner.code == "WIDE"
    auth.login("manager")

    response = _post(client, narrow, territories="zip:50999\nzip:50401")

    assert response.status_code == 200
    page = _text(response)
    assert "<strong>1</strong> of 2 routed leads" in page
    assert "<strong>1</strong> would now go to NARROW" in page
    gained = page.split("Would now go to NARROW")[1].split("Would go away")[0]
    assert "Pat Taken" in gained and "Stays" not in gained
    assert '<a href="/manage/partners/WIDE">WIDE</a>' in gained
    assert "Offered to NARROW Partner" in gained and "exact postal code" in gained
    away = page.split("Would go away from NARROW")[1]
    assert "None." in away


def test_losing_a_product_line_sends_leads_away_to_others_or_the_queue(
        session, client, auth, make_partner, make_lead, make_product_line):
    make_product_line("MWR")
    make_partner("BACKUP", territories=["zip:504*"], product_lines=["TRC"])
    dealer = make_partner("DEALER", territories=["zip:50401", "zip:50601"],
                          product_lines=["TRC", "MWR"])
    tractor = _routed(session, make_lead, postal_code="50401", last_name="Tractor")
    mower = _routed(session, make_lead, postal_code="50601", product_line="MWR",
                    last_name="Mower")
    assert tractor.assigned_partner_id == dealer.id and mower.assigned_partner_id == dealer.id
    auth.login("admin")

    response = _post(client, dealer, product_lines=["MWR"])
    assert "<strong>0</strong> of 2 routed leads would change" not in _text(response)
    away = _text(response).split("Would go away from DEALER (1)")[1]
    assert "Pat Tractor" in away and '<a href="/manage/partners/BACKUP">BACKUP</a>' in away
    assert "Mower" not in away

    response = _post(client, dealer, product_lines=[])
    away = _text(response).split("Would go away from DEALER (2)")[1]
    assert "Pat Mower" in away
    mower_row = away.split("Pat Mower")[1].split("</tr>")[0]
    assert "the managers' queue" in mower_row
    assert "none sells product line MWR" in mower_row


def test_capacity_and_pausing_are_previewed_with_todays_loads(
        session, client, auth, make_partner, make_lead):
    make_partner("OTHER", territories=["zip:504*"])
    dealer = make_partner("DEALER", territories=["zip:50401"])
    _routed(session, make_lead, postal_code="50401", last_name="One")
    assert dealer.open_leads == 1
    auth.login("admin")

    # Capacity 1 is already used by today's open lead, so the lead would go elsewhere.
    page = _text(_post(client, dealer, capacity="1"))
    assert "Would go away from DEALER (1)" in page
    page = _text(_post(client, dealer, capacity="2"))
    assert "Would go away from DEALER (0)" in page
    page = _text(_post(client, dealer, active=""))
    assert "Would go away from DEALER (1)" in page


def test_the_preview_writes_nothing(session, client, auth, make_partner, make_lead):
    make_partner("WIDE", territories=["zip:504*"])
    narrow = make_partner("NARROW", territories=["zip:50999"], capacity=5)
    _routed(session, make_lead, postal_code="50401")
    stamp = narrow.updated_at
    counts = (session.scalar(select(func.count()).select_from(LeadEvent)),
              session.scalar(select(func.count()).select_from(Offer)))
    auth.login("manager")

    response = _post(client, narrow, territories="zip:50401\ncountry:US", capacity="",
                     product_lines=[], active="")

    assert response.status_code == 200 and "Would now go to NARROW" in _text(response)
    session.expire_all()
    assert (session.scalar(select(func.count()).select_from(LeadEvent)),
            session.scalar(select(func.count()).select_from(Offer))) == counts
    partner = session.get(Partner, narrow.id)
    assert [t.rule for t in partner.territories] == ["zip:50999"]
    assert [line.code for line in partner.product_lines] == ["TRC"]
    assert (partner.capacity, partner.active, partner.updated_at) == (5, True, stamp)
    assert session.scalar(select(func.count()).select_from(Territory)
                          .where(Territory.partner_id == narrow.id)) == 1


def test_bad_rule_text_shows_the_rule_error(session, client, auth, make_partner):
    partner = make_partner("B1", territories=["zip:50401"])
    auth.login("manager")

    response = _post(client, partner, territories="zip:50401\nzip:50499-50400", capacity="-2")

    assert response.status_code == 422
    page = _text(response)
    assert "Line 2: rule 1 (&#39;zip:50499-50400&#39;): zip range 50499-50400: low is above " \
           "high" in page
    assert "Capacity is a whole number" in page
    assert "Result" not in page


def test_htmx_gets_the_component_alone_with_errors_in_a_422(
        session, client, auth, make_partner, make_lead):
    partner = make_partner("B1", territories=["zip:50401"])
    auth.login("manager")
    data = {"territories": "postcode:1", "product_lines": ["TRC"], "active": "y"}

    response = client.post("/manage/what-if/B1", data=data, headers={"HX-Request": "true"})

    assert response.status_code == 422  # htmx swaps it in (base.html)
    body = response.get_data(as_text=True)
    assert "<html" not in body
    assert 'hx-target="this"' in body
    assert "unknown territory kind &#39;postcode&#39;" in body
    assert "HX-Request" in response.headers["Vary"]
    assert partner.territories[0].rule == "zip:50401"


def test_placed_by_hand_old_and_unrouted_leads_are_left_out(
        session, client, auth, make_partner, make_lead, make_user):
    make_partner("WIDE", territories=["zip:504*"])
    narrow = make_partner("NARROW", territories=["zip:50999"])
    _routed(session, make_lead, postal_code="50401", last_name="Counted")
    by_hand = make_lead(postal_code="50401", last_name="ByHand")
    lifecycle.reassign(session, by_hand, narrow, Actor.of(make_user("manager")),
                       reason="customer asked")
    own = _routed(session, make_lead, postal_code="50401", last_name="OwnLead")
    own.owner_partner_id = narrow.id
    _routed(session, make_lead, postal_code="50401", last_name="Ancient",
            created_at=utcnow() - timedelta(days=120))
    make_lead(postal_code="50401", status="nurture", last_name="Nurtured")
    session.flush()
    auth.login("manager")

    page = _text(_post(client, narrow, territories="zip:50401"))

    assert "of 1 routed leads" in page
    assert "2 leads placed by hand" in page
    gained = page.split("Would now go to NARROW (1)")[1]
    assert "Counted" in gained
    for name in ("ByHand", "OwnLead", "Ancient", "Nurtured"):
        assert name not in gained


def test_a_dealer_under_a_distributor_is_previewed_among_its_siblings(
        session, client, auth, make_partner, make_lead):
    distributor = make_partner("DIST", kind="distributor", territories=["region:US-IA"],
                               forwarding="auto")
    make_partner("SIB", parent_id=distributor.id, territories=["zip:504*"])
    dealer = make_partner("DLR", parent_id=distributor.id, territories=["zip:50999"])
    lead = _routed(session, make_lead, postal_code="50401", last_name="Forwarded")
    assert lead.assigned_partner.code == "SIB"
    auth.login("manager")

    page = _text(_post(client, dealer, territories="zip:50401"))

    assert "decides among the distributor's dealers" in page
    gained = page.split("Would now go to DLR (1)")[1]
    assert "Pat Forwarded" in gained and ">SIB</a>" in gained


def test_csrf_is_required_and_partners_get_403(
        app, session, client, auth, make_partner):
    partner = make_partner("B1", territories=["zip:50401"])
    auth.login("partner", partner=partner)
    assert client.get("/manage/what-if/B1").status_code == 403
    assert _post(client, partner).status_code == 403
    auth.logout()

    auth.login("manager")
    assert client.get("/manage/what-if/NOPE").status_code == 404
    app.config["WTF_CSRF_ENABLED"] = True
    response = _post(client, partner, territories="zip:50402")
    assert response.status_code in (400, 422)
    assert "Result" not in _text(response)


def test_no_lead_in_the_window(session, client, auth, make_partner):
    partner = make_partner("B1", territories=["zip:50401"])
    auth.login("manager")
    page = _text(_post(client, partner, territories="country:US"))
    assert "<strong>0</strong> of 0 routed leads" in page
    assert session.scalar(select(func.count()).select_from(Lead)) == 0


def test_every_spelling_of_a_reachable_lead_is_examined(
        session, client, auth, make_partner, make_lead):
    # The database pre-filters the leads; it must keep each one the engine would match.
    make_partner("WIDE", territories=["country:US"])
    narrow = make_partner("NARROW", territories=["zip:59999"], latitude=43.15,
                          longitude=-93.2)
    for postal, region, name in [("50401-1234", "US-IA", "ZipPlusFour"),
                                 ("50464", "US-IA", "InRange"),
                                 ("55101", "MN", "BareRegion"),
                                 ("50428", "US-IA", "NearbyTown"),
                                 ("90210", "US-CA", "FarAway")]:
        lead = _routed(session, make_lead, postal_code=postal, region=region, last_name=name)
        assert lead.assigned_partner.code == "WIDE"
    auth.login("manager")

    page = _text(_post(client, narrow, territories="zip:50401\nzip:50460-50470\n"
                                                   "region:US-MN\nradius:40"))

    gained = page.split("Would now go to NARROW (4)")[1]
    for name in ("ZipPlusFour", "InRange", "BareRegion", "NearbyTown"):
        assert name in gained
    assert "FarAway" not in gained


def test_an_edit_concerning_too_many_leads_is_refused_with_the_reason(
        app, session, client, auth, make_partner, make_lead):
    make_partner("WIDE", territories=["country:US"])
    narrow = make_partner("NARROW", territories=["zip:59999"])
    for postal in ("50401", "50402", "50403"):
        _routed(session, make_lead, postal_code=postal)
    app.config["WHATIF_MAX_AFFECTED"] = 2
    auth.login("manager")

    response = _post(client, narrow, territories="country:US")

    assert response.status_code == 422
    page = _text(response)
    assert "concerns more than 2 of the last 90 days&#39; leads" in page
    assert "Result" not in page
