"""After a reassignment or a pull-back moves a lead away from the dealer its literature
pack named, the prospect hears who looks after it now: once per move, by real SMTP."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.lifecycle import Actor
from portal.core.models import (
    EnrollmentStatus,
    Fulfilment,
    Notification,
    NurtureEnrollment,
    NurtureTrack,
    utcnow,
)
from portal.dispatch import services as routing_service
from tests.conftest import PASSWORD
from tests.portal.test_notify import html_of, subject, text_of

PROSPECT = "prospect.moved@example.com"


def _to_prospect(outbox, address=PROSPECT):
    return [m for m in outbox if m["To"] == address]


def _pack_sent(session, lead, partner, *, status="sent"):
    """The prospect's literature pack went out naming ``partner``."""
    session.add(Fulfilment(lead_id=lead.id, request_key=f"pack:{lead.id}:{partner.id}",
                           channel="email" if status == "sent" else "print", status=status,
                           delivery="attachment" if status == "sent" else "mail",
                           sent_to=lead.email, partner_id=partner.id, sent_at=utcnow(),
                           printed_at=utcnow() if status == "printed" else None))
    session.flush()


@pytest.fixture
def net(session, make_partner, make_user, make_lead, app):
    """Dealer A (ZIP 50401) holds a lead whose pack named it; dealer B elsewhere; a
    distributor X with its dealer C (ZIP 50402); a manager."""
    app.config["WTF_CSRF_ENABLED"] = False
    a = make_partner("DA", name="Prairie Tractors", territories=["zip:50401"])
    b = make_partner("DB", name="Hilltop Implements", territories=["zip:60601"],
                     city="Ames", postal_code="50010", phone="+15155550177",
                     email="sales@hilltop.example")
    x = make_partner("XX", name="Big Distributor", kind="distributor",
                     territories=["zip:50402"], city="Des Moines", phone="+15155550188",
                     email="desk@bigdist.example")
    c = make_partner("DC", name="Creek Dealer", parent_id=x.id, territories=["zip:50499"])
    manager = make_user("manager")
    x_user = make_user("partner", partner=x, partner_admin=True)
    lead = make_lead(email=PROSPECT, first_name="Dana", postal_code="50401")
    routing_service.route_lead(session, lead)
    assert lead.assigned_partner_id == a.id
    _pack_sent(session, lead, a)
    session.commit()
    return {"a": a, "b": b, "x": x, "c": c, "manager": manager, "x_user": x_user,
            "lead": lead}


def _sign_in(client, user):
    client.post("/auth/logout")
    assert client.post("/auth/login", data={"email": user.email,
                                            "password": PASSWORD}).status_code == 303


def _reassign(client, lead, code):
    return client.post(f"/leads/{lead.id}/reassign",
                       data={"partner": code, "reason": "closer to the farm"})


def test_a_reassignment_tells_the_prospect_the_new_dealer_once(client, session, net,
                                                                outbox):
    lead = net["lead"]
    outbox.clear()
    _sign_in(client, net["manager"])
    assert _reassign(client, lead, "DB").status_code == 303

    (note,) = _to_prospect(outbox)
    assert subject(note) == "Your contact for TRC line: Hilltop Implements"
    text = text_of(note)
    assert "Dear Dana" in text and "Hilltop Implements will now look after you" in text
    assert "Ames, IA 50010" in text and "sales@hilltop.example" in text
    assert "555-0177" in text and "Prairie Tractors" not in text
    assert "Hilltop Implements" in html_of(note)
    assert note["Reply-To"] == "sales@hilltop.example"

    # once per move: sending again or the sweeper finds nothing more
    session.expire_all()
    rows = session.scalars(select(Notification).where(
        Notification.kind == "prospect_moved")).all()
    assert [(row.status, row.user_id) for row in rows] == [("sent", None)]

    # a second move, from the dealer our note named, is news again
    outbox.clear()
    assert _reassign(client, lead, "DA").status_code == 303
    (back,) = _to_prospect(outbox)
    assert "Prairie Tractors will now look after you" in text_of(back)


def test_a_pull_back_tells_the_prospect_who_has_it_now(client, session, net, make_lead,
                                                       make_partner, outbox):
    x, c = net["x"], net["c"]
    lead = make_lead(first_name="Fay", email="fay@example.com", postal_code="50402")
    routing_service.route_lead(session, lead)
    assert lead.assigned_partner_id == x.id
    lifecycle.forward(session, lead, c, Actor.of(net["x_user"]), reason="nearest")
    _pack_sent(session, lead, c)  # the pack named the dealer the distributor chose
    session.commit()
    outbox.clear()
    _sign_in(client, net["x_user"])
    response = client.post(f"/leads/{lead.id}/pull_back", data={"reason": "no answer"})
    assert response.status_code == 303
    (note,) = _to_prospect(outbox, lead.email)
    assert f"{x.name} will now look after you" in text_of(note)
    assert "desk@bigdist.example" in text_of(note) and "Des Moines" in text_of(note)

    # The distributor passes it on to another of its dealers: the prospect, told to wait
    # for the distributor, hears who has it now.
    other = make_partner("DE", name="Elm Street Equipment", parent_id=x.id,
                         territories=["zip:50498"], email="elm@dealer.example")
    session.commit()
    outbox.clear()
    assert client.post(f"/leads/{lead.id}/forward",
                       data={"partner": other.code}).status_code == 303
    (onward,) = _to_prospect(outbox, lead.email)
    assert "Elm Street Equipment will now look after you" in text_of(onward)


def test_no_note_without_a_pack_naming_the_old_dealer(client, session, net, make_lead,
                                                      outbox):
    # no pack went out at all
    quiet = make_lead(email="quiet@example.com", postal_code="50401")
    routing_service.route_lead(session, quiet)
    # a pack that named the partner the lead goes to
    same = make_lead(email="same@example.com", postal_code="50401")
    routing_service.route_lead(session, same)
    _pack_sent(session, same, net["b"])
    # a printed pack counts as gone out; but this prospect has no email address
    no_email = make_lead(email="", phone="+15155550155", postal_code="50401")
    routing_service.route_lead(session, no_email)
    _pack_sent(session, no_email, net["a"], status="printed")
    session.commit()
    outbox.clear()
    _sign_in(client, net["manager"])
    for lead in (quiet, same, no_email):
        assert _reassign(client, lead, "DB").status_code == 303
    assert not [m for m in outbox if m["To"] in ("quiet@example.com", "same@example.com")]
    assert session.scalars(select(Notification).where(
        Notification.kind == "prospect_moved")).all() == []


def test_no_note_to_a_prospect_who_unsubscribed(client, session, net, outbox):
    lead = net["lead"]
    track = NurtureTrack(name="Later", product_line_id=lead.product_line_id)
    session.add(track)
    session.flush()
    session.add(NurtureEnrollment(lead_id=lead.id, track_id=track.id,
                                  status=EnrollmentStatus.UNSUBSCRIBED))
    session.commit()
    outbox.clear()
    _sign_in(client, net["manager"])
    assert _reassign(client, lead, "DB").status_code == 303
    assert _to_prospect(outbox) == []


def test_a_refused_move_writes_no_note(client, session, net, outbox):
    outbox.clear()
    _sign_in(client, net["manager"])
    response = client.post(f"/leads/{net['lead'].id}/reassign",
                           data={"partner": "NOPE", "reason": "typo"})
    assert response.status_code == 422
    assert _to_prospect(outbox) == []
    assert session.scalars(select(Notification).where(
        Notification.kind == "prospect_moved")).all() == []
