"""Managers merge duplicate leads by hand and undo it: events, counters, the partner's hold."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from portal.core import lifecycle
from portal.core.models import LeadEvent, Offer, OfferResponse
from portal.dispatch.services import route_lead


@pytest.fixture
def manager(auth):
    return auth.login("manager")


def kinds(session, lead) -> list[str]:
    return list(session.scalars(select(LeadEvent.kind).where(LeadEvent.lead_id == lead.id)
                                .order_by(LeadEvent.seq)))


def last_event(session, lead, kind: str) -> LeadEvent:
    return session.scalars(select(LeadEvent).where(LeadEvent.lead_id == lead.id,
                                                   LeadEvent.kind == kind)
                           .order_by(LeadEvent.seq.desc())).first()


@pytest.fixture
def pair(session, make_partner, make_lead):
    """A lead to keep (in nurture) and its duplicate, offered to dealer D-IA."""
    dealer = make_partner("D-IA", territories=["zip:504*"], capacity=5)
    keep = make_lead(status="nurture", first_name="Dana", last_name="Miller",
                     email="dana@millerfarms.com", email_normalized="dana@millerfarms.com")
    duplicate = make_lead(first_name="Dana", last_name="Miller", email="d.miller@farm.com",
                          email_normalized="d.miller@farm.com")
    route_lead(session, duplicate)
    assert duplicate.status == "offered" and duplicate.assigned_partner_id == dealer.id
    session.commit()
    session.refresh(dealer)
    assert dealer.open_leads == 1
    return keep, duplicate, dealer


def test_merge_and_unmerge_round_trip(client, manager, session, pair):
    keep, duplicate, dealer = pair
    page = client.get(f"/manage/merge/?keep={keep.id}&duplicate={duplicate.id}")
    text = page.get_data(as_text=True)
    assert "Likely duplicates of Dana Miller" in text  # same name and postal code
    assert "held by Partner" in text

    response = client.post("/manage/merge/", data={"keep": str(keep.id),
                                                   "duplicate": str(duplicate.id),
                                                   "reason": "same farm, two emails"})
    assert response.status_code == 303
    assert response.headers["Location"].endswith("/manage/merge/")
    session.expire_all()
    assert duplicate.status == "disqualified"
    assert duplicate.qualification_reason == f"merged into Dana Miller (lead {keep.id})"
    assert duplicate.assigned_partner_id is None
    assert dealer.open_leads == 0  # the dealer lost it
    offer = session.scalars(select(Offer).where(Offer.lead_id == duplicate.id)).one()
    assert offer.response == OfferResponse.WITHDRAWN
    assert keep.inquiries == 2
    merged = last_event(session, duplicate, "merged")
    assert merged.actor_id == manager.id and merged.partner_id == dealer.id
    assert merged.data["into"] == str(keep.id)
    assert merged.data["previous"]["status"] == "offered"
    assert last_event(session, keep, "merged_in").data["from"] == str(duplicate.id)
    assert last_event(session, keep, "rescored").data["reason"] == "merged a duplicate lead"
    merged_score = keep.score

    listing = client.get("/manage/merge/").get_data(as_text=True)
    assert "same farm, two emails" in listing and "Unmerge" in listing

    response = client.post(f"/manage/merge/{duplicate.id}/unmerge",
                           data={"reason": "two different people after all"})
    assert response.status_code == 303
    session.expire_all()
    assert duplicate.status == "offered"
    assert duplicate.assigned_partner_id == dealer.id
    assert dealer.open_leads == 1
    assert offer.response == OfferResponse.PENDING
    assert offer.expires_at > merged.at
    assert keep.inquiries == 1
    unmerged = last_event(session, duplicate, "unmerged")
    assert unmerged.data["reason"] == "two different people after all"
    assert unmerged.from_status == "disqualified" and unmerged.to_status == "offered"
    assert unmerged.data["merge_event"] == str(merged.id)
    assert last_event(session, keep, "unmerged_out").data["lead"] == str(duplicate.id)
    assert merged_score - keep.score == 5  # the earlier inquiry's points are gone again
    # The dealer can act on it again: the restored offer is a real one.
    lifecycle.accept(session, duplicate, lifecycle.Actor.system("test"))
    assert duplicate.status == "accepted"


def test_a_worked_lead_goes_back_to_its_stage(client, manager, session, pair):
    keep, duplicate, dealer = pair
    lifecycle.accept(session, duplicate, lifecycle.Actor.system("test"))
    lifecycle.advance(session, duplicate, "contacted", lifecycle.Actor.system("test"))
    session.commit()
    client.post("/manage/merge/", data={"keep": str(keep.id), "duplicate": str(duplicate.id)})
    session.expire_all()
    assert duplicate.status == "disqualified" and dealer.open_leads == 0
    client.post(f"/manage/merge/{duplicate.id}/unmerge", data={"reason": "wrong merge"})
    session.expire_all()
    assert duplicate.status == "contacted" and duplicate.accepted_at is not None
    assert dealer.open_leads == 1
    offer = session.scalars(select(Offer).where(Offer.lead_id == duplicate.id)).one()
    assert offer.response == OfferResponse.ACCEPTED


def test_bad_merges_are_refused_and_change_nothing(client, manager, session, pair):
    keep, duplicate, dealer = pair
    response = client.post("/manage/merge/", data={"keep": str(keep.id),
                                                   "duplicate": str(keep.id)})
    assert response.status_code == 422
    assert "A lead cannot be merged into itself." in response.get_data(as_text=True)
    response = client.post("/manage/merge/", data={"keep": "nonsense",
                                                   "duplicate": str(duplicate.id)})
    assert response.status_code == 422
    assert "No lead with this id." in response.get_data(as_text=True)
    response = client.post("/manage/merge/", data={"keep": "", "duplicate": ""})
    assert "Enter the lead&#39;s id." in response.get_data(as_text=True)

    response = client.post(f"/manage/merge/{duplicate.id}/unmerge", data={"reason": "why"})
    assert response.status_code == 303
    follow = client.get("/manage/merge/").get_data(as_text=True)
    assert "only a merged lead can be unmerged" in follow
    session.expire_all()
    assert duplicate.status == "offered" and dealer.open_leads == 1
    assert kinds(session, keep) == ["captured", "nurture"]

    client.post("/manage/merge/", data={"keep": str(keep.id), "duplicate": str(duplicate.id)})
    response = client.post(f"/manage/merge/{duplicate.id}/unmerge", data={"reason": ""})
    assert response.status_code == 303
    session.expire_all()
    assert duplicate.status == "disqualified"  # no reason, no unmerge
    assert client.post("/manage/merge/not-a-lead/unmerge",
                       data={"reason": "x"}).status_code == 404


def test_search_finds_leads_by_email(client, manager, pair):
    keep, duplicate, _dealer = pair
    page = client.get("/manage/merge/?q=D.Miller@farm.com").get_data(as_text=True)
    assert str(duplicate.id) in page and str(keep.id) not in page.split("<h2>Merge</h2>")[0]


def test_search_finds_what_the_lead_search_finds(client, manager, pair):
    # A first name, part of an email, "first last" and the id: what a manager types in
    # the lead search works here too, and each result shows the id the form asks for.
    keep, duplicate, _dealer = pair

    def found(q: str) -> set:
        page = client.get("/manage/merge/", query_string={"q": q}).get_data(as_text=True)
        results = page.split("<h2>Merge</h2>")[0]
        return {lead for lead in (keep, duplicate) if str(lead.id) in results}

    assert found("dana") == {keep, duplicate}
    assert found("millerfarms") == {keep}
    assert found("Dana Miller") == {keep, duplicate}
    assert found(str(duplicate.id)) == {duplicate}
    assert found("nobody here") == set()
    searched = client.get("/leads/search", query_string={"q": "millerfarms"}).get_data(
        as_text=True)
    assert "Dana Miller" in searched  # the lead search agrees


def test_the_lead_page_leads_a_manager_to_its_duplicates(client, manager, pair):
    keep, _duplicate, _dealer = pair
    page = client.get(f"/leads/{keep.id}").get_data(as_text=True)
    assert f'href="/manage/merge/?keep={keep.id}"' in page and str(keep.id) in page


def test_partners_cannot_merge(client, auth, make_partner, pair):
    keep, duplicate, dealer = pair
    auth.login("partner", partner=dealer)
    assert client.get("/manage/merge/").status_code == 403
    assert client.post("/manage/merge/", data={"keep": str(keep.id),
                                               "duplicate": str(duplicate.id)}
                       ).status_code == 403
