"""The lifecycle service: every state change, its event, the offers and the capacity counts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from portal.core import lifecycle
from portal.core.errors import NotFound
from portal.core.lifecycle import (
    Actor,
    AtCapacity,
    InvalidInput,
    InvalidTransition,
)
from portal.core.models import Competitor, Lead, LeadEvent, Offer, Partner, utcnow

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SYSTEM = Actor.system()


def at(hours: float) -> datetime:
    """A moment ``hours`` after T0 (events get explicit, increasing times)."""
    return T0 + timedelta(hours=hours)


def events_of(session: Any, lead: Lead) -> list[LeadEvent]:
    return list(session.scalars(
        select(LeadEvent).where(LeadEvent.lead_id == lead.id).order_by(LeadEvent.seq)
    ))


def offers_of(session: Any, lead: Lead) -> list[Offer]:
    return list(session.scalars(select(Offer).where(Offer.lead_id == lead.id).order_by(Offer.id)))


def open_count(session: Any, partner: Partner) -> int:
    """The counter as stored in the database (not the session's copy)."""
    return session.scalar(select(Partner.open_leads).where(Partner.id == partner.id))


@pytest.fixture
def make_lead(session: Any, make_product_line: Callable[..., Any]) -> Callable[..., Lead]:
    """``make_lead(**fields)``: a lead captured and qualified (hot, 80) at T0."""
    counter = iter(range(1, 10_000))

    def make(**fields: Any) -> Lead:
        n = next(counter)
        values: dict[str, Any] = dict(
            first_name="Jordan", last_name=f"Miller{n}", email=f"jordan{n}@example.com",
            email_normalized=f"jordan{n}@example.com", postal_code="50401", region="US-IA",
            country="US", product_line=make_product_line("TRC"),
            answers={"timeline": "now", "budget": "approved", "role": "decision_maker"},
        )
        values.update(fields)
        lead = lifecycle.capture(session, Lead(**values), SYSTEM, now=T0)
        lifecycle.qualify(session, lead, "qualified", reason="sales-ready", score=80,
                          rank="hot", actor=SYSTEM, now=T0 + timedelta(seconds=5))
        session.flush()
        return lead

    return make


@pytest.fixture
def dealer(make_partner: Callable[..., Any]) -> Partner:
    return make_partner("DLR1", name="Mason City Implement", territories=["zip:504*"])


@pytest.fixture
def dealer_user(make_user: Callable[..., Any], dealer: Partner) -> Any:
    return make_user("partner", partner=dealer)


@pytest.fixture
def manager(make_user: Callable[..., Any]) -> Any:
    return make_user("manager")


@pytest.fixture
def offered(session: Any, make_lead: Callable[..., Lead], dealer: Partner) -> Lead:
    """A lead offered to ``dealer`` by the rules at T0 + 1 h."""
    lead = make_lead()
    lifecycle.offer(session, lead, dealer, SYSTEM, explanation={"summary": "zip:504*"},
                    now=at(1))
    session.flush()
    return lead


@pytest.fixture
def accepted(session: Any, offered: Lead, dealer_user: Any) -> Lead:
    lifecycle.accept(session, offered, Actor.of(dealer_user), now=at(2))
    session.flush()
    return offered


# --- capture and qualification -----------------------------------------------------------


def test_capture_writes_captured_event_and_bumps_version(session, make_product_line):
    lead = Lead(first_name="Ana", email="ana@example.com", postal_code="50401",
                product_line=make_product_line("TRC"))
    lifecycle.capture(session, lead, Actor.system("api"), now=T0, data={"source": "web"})
    session.flush()

    assert lead.status == "captured"
    assert lead.version == 1
    assert lead.created_at == T0
    [event] = events_of(session, lead)
    assert (event.kind, event.from_status, event.to_status) == ("captured", None, "captured")
    assert event.device == "api"
    assert event.actor_id is None
    assert event.at == T0
    assert event.data == {"source": "web"}


@pytest.mark.parametrize("outcome, rank", [("qualified", "hot"), ("nurture", "cold"),
                                           ("disqualified", None)])
def test_qualify_records_the_verdict(session, make_product_line, outcome, rank):
    lead = lifecycle.capture(session, Lead(email="x@example.com",
                                           product_line=make_product_line("TRC")),
                             SYSTEM, now=T0)
    lifecycle.qualify(session, lead, outcome, reason="rule 3: timeline", score=42, rank=rank,
                      actor=SYSTEM, now=at(0.01))
    session.flush()

    assert (lead.status, lead.score, lead.rank) == (outcome, 42, rank)
    assert lead.qualification_reason == "rule 3: timeline"
    assert lead.version == 2
    event = events_of(session, lead)[-1]
    assert (event.kind, event.from_status, event.to_status) == (outcome, "captured", outcome)
    assert event.data == {"reason": "rule 3: timeline", "score": 42, "rank": rank}


def test_nurture_lead_can_be_qualified_later(session, make_product_line):
    lead = lifecycle.capture(session, Lead(email="x@example.com"), SYSTEM, now=T0)
    lifecycle.qualify(session, lead, "nurture", reason="researching", score=20, rank="cold",
                      actor=SYSTEM, now=at(0))
    lifecycle.qualify(session, lead, "qualified", reason="hand-raise", score=75, rank="warm",
                      actor=SYSTEM, now=at(24 * 30))
    assert lead.status == "qualified"
    assert [e.kind for e in events_of(session, lead)] == ["captured", "nurture", "qualified"]


def test_qualify_refuses_unknown_outcome_and_a_routed_lead(session, offered):
    with pytest.raises(InvalidInput):
        lifecycle.qualify(session, offered, "maybe", reason="", score=0, rank=None,
                          actor=SYSTEM, now=at(3))
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.qualify(session, offered, "qualified", reason="", score=0, rank=None,
                          actor=SYSTEM, now=at(3))
    assert refused.value.current_status == "offered"
    assert offered.status == "offered"


# --- the happy path ----------------------------------------------------------------------


def test_offer_to_won_records_one_event_per_step(session, make_lead, dealer, dealer_user):
    lead = make_lead()
    actor = Actor.of(dealer_user, device="sync:phone-1")
    versions = [lead.version]

    item = lifecycle.offer(session, lead, dealer, SYSTEM, explanation={"summary": "zip:504*"},
                           now=at(1))
    versions.append(lead.version)
    session.flush()
    assert (item.method, item.response, item.partner_id) == ("rule", "pending", dealer.id)
    assert item.expires_at == at(1) + timedelta(hours=24)
    assert lead.routing == {"summary": "zip:504*"}
    assert open_count(session, dealer) == 1

    lifecycle.accept(session, lead, actor, now=at(2))
    versions.append(lead.version)
    lifecycle.advance(session, lead, "contacted", actor, data={"channel": "email"}, now=at(3))
    versions.append(lead.version)
    lifecycle.advance(session, lead, "appointment", actor, data={"date": "2026-03-09"},
                      now=at(4))
    versions.append(lead.version)
    lifecycle.advance(session, lead, "quoted", actor, data={"amount": "12,500.50"}, now=at(5))
    versions.append(lead.version)
    lifecycle.close(session, lead, "won", actor, data={"amount": "11900"}, now=at(6))
    versions.append(lead.version)
    session.flush()

    assert versions == list(range(2, 9))
    steps = [(e.kind, e.from_status, e.to_status) for e in events_of(session, lead)]
    assert steps == [
        ("captured", None, "captured"),
        ("qualified", "captured", "qualified"),
        ("offered", "qualified", "offered"),
        ("accepted", "offered", "accepted"),
        ("contacted", "accepted", "contacted"),
        ("appointment", "contacted", "appointment"),
        ("quoted", "appointment", "quoted"),
        ("won", "quoted", "won"),
    ]
    partner_events = events_of(session, lead)[3:]
    assert {e.actor_id for e in partner_events} == {dealer_user.id}
    assert {e.partner_id for e in partner_events} == {dealer.id}
    assert {e.device for e in partner_events} == {"sync:phone-1"}
    assert [e.at for e in partner_events] == [at(2), at(3), at(4), at(5), at(6)]
    assert [e.data.get("channel") for e in partner_events][1] == "email"
    assert partner_events[2].data["date"] == "2026-03-09"
    assert partner_events[3].data["amount"] == "12500.50"
    assert partner_events[4].data["amount"] == "11900.00"

    session.expire_all()
    lead = session.get(Lead, lead.id)
    assert lead.status == "won"
    assert lead.quote_amount == Decimal("12500.50")
    assert lead.won_amount == Decimal("11900.00")
    assert lead.accepted_at == at(2)
    assert lead.first_contact_at == at(3)
    assert lead.closed_at == at(6)
    assert offers_of(session, lead)[0].response == "accepted"
    assert offers_of(session, lead)[0].responded_at == at(2)
    assert open_count(session, dealer) == 0


def test_a_lead_worked_in_the_transaction_that_captured_it_keeps_every_offer_right(
        session, make_product_line, make_partner, make_user):
    # The demo's history (and any writer that works a lead before writing it): captured,
    # offered, declined, offered again, accepted and closed before anything is written (no
    # alert listener flushes meanwhile). The lifecycle finds each offer in hand, with no
    # flush and no query, and every response lands on the right row.
    first = make_partner("DLR-A", territories=["zip:504*"])
    second = make_partner("DLR-B", territories=["zip:504*"])
    a_user, b_user = make_user("partner", partner=first), make_user("partner", partner=second)
    session.flush()
    with session.no_autoflush, lifecycle.loading_history(session):
        lead = lifecycle.capture(session, Lead(
            first_name="Walk", last_name="In", email="walk.in@example.com",
            email_normalized="walk.in@example.com", postal_code="50401", region="US-IA",
            country="US", product_line=make_product_line("TRC"), answers={}), SYSTEM, now=T0)
        lifecycle.qualify(session, lead, "qualified", reason="r", score=80, rank="hot",
                          actor=SYSTEM, now=at(0.1))
        lifecycle.offer(session, lead, first, SYSTEM, now=at(1))
        lifecycle.decline(session, lead, Actor.of(a_user), reason="out_of_area", now=at(2))
        lifecycle.offer(session, lead, second, SYSTEM, now=at(3))
        lifecycle.accept(session, lead, Actor.of(b_user), now=at(4))
        lifecycle.close(session, lead, "lost", Actor.of(b_user),
                        data={"reason": "price"}, now=at(5))
    session.flush()
    session.expire_all()
    declined, worked = offers_of(session, lead)
    assert (declined.partner_id, declined.response, declined.responded_at) == (
        first.id, "declined", at(2))
    assert (worked.partner_id, worked.response, worked.accepted_at) == (
        second.id, "accepted", at(4))
    assert (worked.outcome, worked.closed_at, worked.lost_reason) == ("lost", at(5), "price")
    assert open_count(session, first) == 0 and open_count(session, second) == 0


def test_a_merge_in_the_transaction_that_made_the_offer_can_be_undone(
        session, make_lead, dealer, manager):
    # The offer in hand has no id until it is written: the merge must still remember it,
    # or unmerge cannot give the dealer its offer back (found by a review).
    keep, duplicate = make_lead(), make_lead()
    with session.no_autoflush, lifecycle.loading_history(session):
        lifecycle.offer(session, duplicate, dealer, SYSTEM, now=at(1))
        merged = lifecycle.merge(session, duplicate, keep, Actor.of(manager), reason="same",
                                 now=at(2))
    assert merged.data["previous"]["offer_id"] is not None
    lifecycle.unmerge(session, duplicate, Actor.of(manager), reason="not the same",
                      now=at(3))
    session.flush()
    [offer] = offers_of(session, duplicate)
    assert (duplicate.status, offer.response) == ("offered", "pending")


def test_stages_never_go_backwards(session, accepted, dealer_user):
    actor = Actor.of(dealer_user)
    lifecycle.advance(session, accepted, "quoted", actor, data={"amount": "9000"}, now=at(3))
    before = len(events_of(session, accepted))

    with pytest.raises(InvalidTransition) as refused:
        lifecycle.advance(session, accepted, "appointment", actor, data={"date": "2026-03-10"},
                          now=at(4))
    assert refused.value.current_status == "quoted"
    with pytest.raises(InvalidTransition):
        lifecycle.advance(session, accepted, "contacted", actor, now=at(4))
    assert accepted.status == "quoted"
    assert len(events_of(session, accepted)) == before


def test_contact_before_accept_says_accept_it_first(session, offered, dealer_user):
    with pytest.raises(InvalidTransition, match="accept it first") as refused:
        lifecycle.advance(session, offered, "contacted", Actor.of(dealer_user), now=at(2))
    assert refused.value.current_status == "offered"
    with pytest.raises(InvalidTransition, match="accept it first"):
        lifecycle.close(session, offered, "won", Actor.of(dealer_user), now=at(2))
    assert offered.status == "offered"


@pytest.mark.parametrize("stage, data, field", [
    ("contacted", {"channel": "pigeon"}, "channel"),
    ("appointment", {}, "date"),
    ("appointment", {"date": "next tuesday"}, "date"),
    ("quoted", {}, "amount"),
])
def test_stage_details_are_validated(session, accepted, dealer_user, stage, data, field):
    with pytest.raises(InvalidInput) as refused:
        lifecycle.advance(session, accepted, stage, Actor.of(dealer_user), data=data, now=at(3))
    assert field in refused.value.fields
    assert accepted.status == "accepted"


@pytest.mark.parametrize("data", [{"channel": 5}, {"channel": ["phone"]}])
def test_odd_json_types_are_invalid_input_not_a_crash(session, accepted, dealer_user, data):
    with pytest.raises(InvalidInput):
        lifecycle.advance(session, accepted, "contacted", Actor.of(dealer_user), data=data,
                          now=at(3))
    with pytest.raises(InvalidInput):
        lifecycle.close(session, accepted, "lost", Actor.of(dealer_user),
                        data={"reason": 7}, now=at(3))


def test_appointment_takes_a_date_object_too(session, accepted, dealer_user):
    lifecycle.advance(session, accepted, "appointment", Actor.of(dealer_user),
                      data={"date": date(2026, 4, 1), "note": "at the farm"}, now=at(3))
    event = events_of(session, accepted)[-1]
    assert event.data == {"date": "2026-04-01", "note": "at the farm"}


# --- giving a lead back ------------------------------------------------------------------


def test_decline_requires_a_reason(session, offered, dealer_user, dealer):
    with pytest.raises(InvalidInput) as refused:
        lifecycle.decline(session, offered, Actor.of(dealer_user), reason="  ", now=at(2))
    assert "reason" in refused.value.fields
    assert offered.status == "offered"
    assert open_count(session, dealer) == 1


def test_decline_returns_the_lead_to_routing(session, offered, dealer_user, dealer):
    lifecycle.decline(session, offered, Actor.of(dealer_user), reason="out_of_area", now=at(2))
    session.flush()

    assert offered.status == "qualified"
    assert offered.assigned_partner_id is None
    assert offered.assigned_partner is None
    assert offered.offered_at is None
    [row] = offers_of(session, offered)
    assert (row.response, row.responded_at) == ("declined", at(2))
    assert row.decline_reason == "Out of our area"
    event = events_of(session, offered)[-1]
    assert (event.kind, event.from_status, event.to_status) == ("declined", "offered",
                                                                "qualified")
    assert event.partner_id == dealer.id
    assert event.actor_id == dealer_user.id
    assert event.data == {"reason": "Out of our area"}
    assert open_count(session, dealer) == 0
    assert dealer.open_leads == 0  # the session's copy is not stale either


def test_decline_keeps_a_free_text_reason_and_the_client_event_id(session, offered,
                                                                    dealer_user):
    event_id = uuid.uuid4()
    lifecycle.decline(session, offered, Actor.of(dealer_user), reason="Customer is in MN",
                      now=at(2), event_id=event_id)
    session.flush()
    assert events_of(session, offered)[-1].id == event_id
    assert offers_of(session, offered)[0].decline_reason == "Customer is in MN"


def test_only_an_offered_lead_can_be_declined(session, accepted, dealer_user):
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.decline(session, accepted, Actor.of(dealer_user), reason="other", now=at(3))
    assert refused.value.current_status == "accepted"


def test_expire_marks_the_offer_expired(session, offered, dealer):
    lifecycle.expire(session, offered, now=at(25))
    session.flush()

    assert offered.status == "qualified"
    assert offered.assigned_partner_id is None
    [row] = offers_of(session, offered)
    assert (row.response, row.responded_at) == ("expired", at(25))
    event = events_of(session, offered)[-1]
    assert (event.kind, event.device, event.actor_id) == ("expired", "job", None)
    assert event.partner_id == dealer.id
    assert open_count(session, dealer) == 0
    with pytest.raises(InvalidTransition):
        lifecycle.expire(session, offered, now=at(26))


def test_declined_lead_can_be_offered_to_the_next_partner(session, offered, dealer_user,
                                                          make_partner):
    other = make_partner("DLR2")
    lifecycle.decline(session, offered, Actor.of(dealer_user), reason="no_capacity", now=at(2))
    lifecycle.offer(session, offered, other, SYSTEM, now=at(2.01))
    session.flush()
    assert [(o.partner_id, o.response) for o in offers_of(session, offered)] == [
        (offered.offers[0].partner_id, "declined"), (other.id, "pending")]
    assert offered.offers_count == 2
    assert offered.assigned_partner is other


def test_lead_with_no_fitting_partner_waits_unassigned(session, make_lead, dealer):
    lead = make_lead()
    lifecycle.mark_unassigned(session, lead, SYSTEM, explanation={"summary": "nobody sells UTV"},
                              now=at(1))
    assert (lead.status, lead.routing) == ("unassigned", {"summary": "nobody sells UTV"})
    assert events_of(session, lead)[-1].data == {"summary": "nobody sells UTV"}
    lifecycle.offer(session, lead, dealer, SYSTEM, now=at(2))
    assert lead.status == "offered"


# --- outcomes ----------------------------------------------------------------------------


@pytest.mark.parametrize("data", [{}, {"reason": "weather"}, {"reason": ""}])
def test_lost_needs_a_known_reason(session, accepted, dealer_user, dealer, data):
    with pytest.raises(InvalidInput) as refused:
        lifecycle.close(session, accepted, "lost", Actor.of(dealer_user), data=data, now=at(3))
    assert "reason" in refused.value.fields
    assert accepted.status == "accepted"
    assert open_count(session, dealer) == 1


def test_lost_to_competitor_needs_its_name(session, accepted, dealer_user):
    with pytest.raises(InvalidInput) as refused:
        lifecycle.close(session, accepted, "lost", Actor.of(dealer_user),
                        data={"reason": "competitor", "competitor": " "}, now=at(3))
    assert "competitor" in refused.value.fields
    assert accepted.status == "accepted"


def test_lost_to_a_known_competitor_matches_case_insensitively(session, accepted, dealer_user,
                                                               dealer):
    known = Competitor(name="Blue Furrow Tractors")
    session.add(known)
    session.flush()
    lifecycle.close(session, accepted, "lost", Actor.of(dealer_user),
                    data={"reason": "competitor", "competitor": "blue furrow TRACTORS"},
                    now=at(3))
    session.flush()
    session.expire_all()
    lead = session.get(Lead, accepted.id)
    assert (lead.status, lead.lost_reason) == ("lost", "competitor")
    assert lead.lost_competitor_id == known.id
    assert lead.lost_competitor_other == ""
    assert lead.competitor_name == "Blue Furrow Tractors"
    assert events_of(session, lead)[-1].data == {"reason": "competitor",
                                                 "competitor": "Blue Furrow Tractors"}
    assert open_count(session, dealer) == 0


def test_lost_to_an_unknown_competitor_keeps_the_typed_name(session, accepted, dealer_user):
    lifecycle.close(session, accepted, "lost", Actor.of(dealer_user),
                    data={"reason": "competitor", "competitor": "Hilltop Used Equipment"},
                    now=at(3))
    session.flush()
    assert accepted.lost_competitor_id is None
    assert accepted.lost_competitor_other == "Hilltop Used Equipment"
    assert accepted.competitor_name == "Hilltop Used Equipment"


def test_lost_for_price_names_no_competitor(session, accepted, dealer_user):
    lifecycle.close(session, accepted, "lost", Actor.of(dealer_user),
                    data={"reason": "price", "competitor": "ignored"}, now=at(3))
    assert (accepted.lost_reason, accepted.lost_competitor_other) == ("price", "")
    assert events_of(session, accepted)[-1].data == {"reason": "price"}


def test_no_interest_closes_the_lead(session, accepted, dealer_user, dealer):
    lifecycle.close(session, accepted, "no_interest", Actor.of(dealer_user),
                    data={"note": "bought used"}, now=at(3))
    session.flush()
    assert (accepted.status, accepted.closed_at) == ("no_interest", at(3))
    assert events_of(session, accepted)[-1].data == {"note": "bought used"}
    assert open_count(session, dealer) == 0
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.close(session, accepted, "won", Actor.of(dealer_user), now=at(4))
    assert refused.value.current_status == "no_interest"


def test_won_without_amount_is_allowed(session, accepted, dealer_user):
    lifecycle.close(session, accepted, "won", Actor.of(dealer_user), data={"date": "2026-03-01"},
                    now=at(3))
    assert accepted.won_amount is None
    assert events_of(session, accepted)[-1].data == {"amount": None, "date": "2026-03-01"}


def test_unknown_outcome_is_invalid(session, accepted, dealer_user):
    with pytest.raises(InvalidInput):
        lifecycle.close(session, accepted, "maybe", Actor.of(dealer_user), now=at(3))


def test_note_needs_text_and_keeps_the_status(session, accepted, dealer_user):
    actor = Actor.of(dealer_user, device="api")
    version = accepted.version
    with pytest.raises(InvalidInput) as refused:
        lifecycle.add_note(session, accepted, actor, text="   ", now=at(3))
    assert "text" in refused.value.fields

    event = lifecycle.add_note(session, accepted, actor, text="  Call after harvest  ",
                               now=at(3))
    session.flush()
    assert accepted.status == "accepted"
    assert accepted.version == version + 1
    assert (event.kind, event.from_status, event.to_status) == ("note", None, None)
    assert event.data == {"text": "Call after harvest"}
    assert (event.device, event.partner_id) == ("api", accepted.assigned_partner_id)


# --- who may act -------------------------------------------------------------------------


ACTION_ARGS: dict[str, dict[str, Any]] = {
    "accept": {}, "decline": {"reason": "other"}, "contact": {"channel": "phone"},
    "appointment": {"date": "2026-03-10"}, "quote": {"amount": "9000"},
    "won": {"amount": "9000"}, "lost": {"reason": "price"}, "no_interest": {},
    "note": {"text": "hello"}, "forward": {"partner": "DLR1"},
    "reassign": {"partner": "DLR1", "reason": "mine now"}, "reopen": {"reason": "oops"},
    "disqualify": {"reason": "spam"},
}


@pytest.mark.parametrize("action", list(ACTION_ARGS))
def test_another_partners_user_may_do_nothing(session, offered, make_partner, make_user,
                                              action):
    intruder = make_user("partner", partner=make_partner("OTHER"))
    before = (offered.status, offered.version, len(events_of(session, offered)))

    with pytest.raises(NotFound):
        lifecycle.apply_action(session, offered, action, ACTION_ARGS[action],
                               Actor.of(intruder), now=at(2))
    assert (offered.status, offered.version, len(events_of(session, offered))) == before


def test_staff_may_act_for_the_partner(session, offered, manager, dealer):
    actor = Actor.of(manager)
    lifecycle.accept(session, offered, actor, now=at(2))
    lifecycle.advance(session, offered, "contacted", actor, data={"channel": "visit"},
                      now=at(3))
    lifecycle.add_note(session, offered, actor, text="Dealer asked us to log this", now=at(4))
    session.flush()
    for event in events_of(session, offered)[-3:]:
        assert event.actor_id == manager.id
        assert event.partner_id == dealer.id  # the partner concerned, not the manager's
    assert offered.status == "contacted"


# --- capacity ----------------------------------------------------------------------------


def test_offer_refuses_a_full_partner_and_force_exceeds(session, make_lead, make_partner,
                                                        manager):
    small = make_partner("SMALL", capacity=1)
    first, second = make_lead(), make_lead()
    lifecycle.offer(session, first, small, SYSTEM, now=at(1))

    with pytest.raises(AtCapacity):
        lifecycle.offer(session, second, small, SYSTEM, now=at(1))
    session.flush()
    assert second.status == "qualified"
    assert second.assigned_partner_id is None
    assert offers_of(session, second) == []
    assert open_count(session, small) == 1

    # A manager's reassign is refused too, unless overridden (with the override logged).
    with pytest.raises(InvalidInput, match="SMALL is full"):
        lifecycle.reassign(session, second, small, Actor.of(manager), reason="VIP customer",
                           now=at(2))
    lifecycle.reassign(session, second, small, Actor.of(manager), reason="VIP customer",
                       override=True, now=at(2))
    session.flush()
    assert second.status == "offered"
    assert offers_of(session, second)[0].reason.startswith("override: SMALL is full")
    assert offers_of(session, second)[0].method == "manual"
    assert open_count(session, small) == 2
    assert small.open_leads == 2


def test_unlimited_partner_is_never_full(session, make_lead, dealer):
    for _ in range(5):
        lifecycle.offer(session, make_lead(), dealer, SYSTEM, now=at(1))
    assert open_count(session, dealer) == 5


def test_paused_partner_takes_no_offers_unless_forced(session, make_lead, make_partner,
                                                      manager):
    paused = make_partner("PAUSED", active=False, paused_reason="owner on leave")
    lead = make_lead()
    with pytest.raises(InvalidInput, match="paused"):
        lifecycle.offer(session, lead, paused, SYSTEM, now=at(1))
    assert open_count(session, paused) == 0
    with pytest.raises(InvalidInput, match="PAUSED is paused: owner on leave"):
        lifecycle.reassign(session, lead, paused, Actor.of(manager), reason="covering",
                           now=at(2))
    lifecycle.reassign(session, lead, paused, Actor.of(manager), reason="covering",
                       override=True, now=at(2))
    assert lead.assigned_partner_id == paused.id


def test_open_leads_follow_the_lifecycle(session, make_lead, dealer, dealer_user, manager,
                                         make_partner):
    partner_actor, staff = Actor.of(dealer_user), Actor.of(manager)
    lead = make_lead()
    counts = []

    lifecycle.offer(session, lead, dealer, SYSTEM, now=at(1))
    counts.append(open_count(session, dealer))  # offered: +1
    lifecycle.decline(session, lead, partner_actor, reason="other", now=at(2))
    counts.append(open_count(session, dealer))  # declined: -1
    lifecycle.offer(session, lead, dealer, SYSTEM, now=at(3))
    counts.append(open_count(session, dealer))
    lifecycle.expire(session, lead, now=at(30))
    counts.append(open_count(session, dealer))  # expired: -1
    lifecycle.offer(session, lead, dealer, SYSTEM, now=at(31))
    lifecycle.accept(session, lead, partner_actor, now=at(32))
    counts.append(open_count(session, dealer))  # accepted: still open
    lifecycle.close(session, lead, "no_interest", partner_actor, now=at(33))
    counts.append(open_count(session, dealer))  # closed: -1
    lifecycle.reopen(session, lead, staff, reason="customer called back", now=at(34))
    counts.append(open_count(session, dealer))  # reopened: +1
    other = make_partner("DLR9")
    lifecycle.reassign(session, lead, other, staff, reason="closer dealer", now=at(35))
    counts.append(open_count(session, dealer))  # withdrawn: -1

    assert counts == [1, 0, 1, 0, 1, 0, 1, 0]
    assert open_count(session, other) == 1
    assert lifecycle.recount_open_leads(session) == 0


def test_counter_never_goes_negative(session, offered, dealer, dealer_user):
    session.execute(Partner.__table__.update().where(Partner.id == dealer.id)
                    .values(open_leads=0))
    lifecycle.decline(session, offered, Actor.of(dealer_user), reason="other", now=at(2))
    assert open_count(session, dealer) == 0


def test_recount_repairs_a_wrong_counter(session, offered, dealer, make_partner):
    idle = make_partner("IDLE")
    session.execute(Partner.__table__.update().where(Partner.id == dealer.id)
                    .values(open_leads=7))
    session.execute(Partner.__table__.update().where(Partner.id == idle.id)
                    .values(open_leads=3))
    session.expire_all()

    assert lifecycle.recount_open_leads(session) == 2
    session.flush()
    assert open_count(session, dealer) == 1
    assert open_count(session, idle) == 0
    assert lifecycle.recount_open_leads(session) == 0


# --- forwarding and manager corrections ----------------------------------------------------


@pytest.fixture
def distributor(make_partner: Callable[..., Any]) -> Partner:
    return make_partner("DIST", kind="distributor", territories=["region:US-IA"])


def test_distributor_forwards_to_its_own_dealer(session, make_lead, make_partner, make_user,
                                                distributor):
    own = make_partner("OWN", parent_id=distributor.id)
    user = make_user("partner", partner=distributor)
    lead = make_lead()
    lifecycle.offer(session, lead, distributor, SYSTEM, now=at(1))

    item = lifecycle.forward(session, lead, own, Actor.of(user), reason="closest to the farm",
                             now=at(2))
    session.flush()

    assert (lead.status, lead.assigned_partner_id, lead.offers_count) == ("offered", own.id, 2)
    first, second = offers_of(session, lead)
    assert (first.partner_id, first.response) == (distributor.id, "forwarded")
    assert (second.id, second.partner_id, second.method) == (item.id, own.id, "forward")
    assert (second.response, second.reason) == ("pending", "closest to the farm")
    event = events_of(session, lead)[-1]
    assert (event.kind, event.from_status, event.to_status) == ("forwarded", "offered",
                                                                "offered")
    assert (event.partner_id, event.actor_id) == (own.id, user.id)
    assert event.data["from_partner_id"] == distributor.id
    assert open_count(session, distributor) == 0
    assert open_count(session, own) == 1


def test_distributor_may_forward_after_accepting(session, make_lead, make_partner, distributor):
    own = make_partner("OWN", parent_id=distributor.id)
    lead = make_lead()
    lifecycle.offer(session, lead, distributor, SYSTEM, now=at(1))
    lifecycle.accept(session, lead, SYSTEM, now=at(2))
    lifecycle.forward(session, lead, own, SYSTEM, now=at(3))
    assert (lead.status, lead.accepted_at) == ("offered", None)
    assert events_of(session, lead)[-1].from_status == "accepted"


def test_forward_to_another_distributors_dealer_is_invalid(session, make_lead, make_partner,
                                                           make_user, distributor):
    rival = make_partner("RIVAL", kind="distributor")
    foreign = make_partner("FOREIGN", parent_id=rival.id)
    user = make_user("partner", partner=distributor)
    lead = make_lead()
    lifecycle.offer(session, lead, distributor, SYSTEM, now=at(1))

    with pytest.raises(InvalidInput) as refused:
        lifecycle.forward(session, lead, foreign, Actor.of(user), now=at(2))
    assert "partner" in refused.value.fields
    assert lead.assigned_partner_id == distributor.id
    assert open_count(session, foreign) == 0
    assert open_count(session, distributor) == 1


def test_a_distributors_forward_respects_the_compliance_gate(
        app, session, make_lead, make_partner, make_user, distributor):
    app.config["COMPLIANCE_GATE_MAX_OVERDUE"] = 0
    late_dealer = make_partner("LATE", parent_id=distributor.id)
    overdue = make_lead()
    lifecycle.offer(session, overdue, late_dealer, SYSTEM, now=at(1))
    lifecycle.accept(session, overdue, SYSTEM, now=at(1))
    overdue.accepted_at = at(0) - timedelta(days=60)  # outcome long past due
    lead = make_lead()
    lifecycle.offer(session, lead, distributor, SYSTEM, now=at(2))
    session.flush()

    with pytest.raises(InvalidInput) as refused:
        lifecycle.forward(session, lead, late_dealer,
                          Actor.of(make_user("partner", partner=distributor)), now=at(3))
    assert "compliance gate" in refused.value.fields["partner"]
    assert lead.assigned_partner_id == distributor.id
    # A channel manager may still place it there by hand.
    lifecycle.forward(session, lead, late_dealer, Actor.of(make_user("manager")), now=at(4))
    assert lead.assigned_partner_id == late_dealer.id


def test_forward_refuses_a_full_dealer(session, make_lead, make_partner, distributor):
    full = make_partner("FULL", parent_id=distributor.id, capacity=0)
    lead = make_lead()
    lifecycle.offer(session, lead, distributor, SYSTEM, now=at(1))
    with pytest.raises(AtCapacity):
        lifecycle.forward(session, lead, full, SYSTEM, now=at(2))
    assert lead.assigned_partner_id == distributor.id


@pytest.mark.parametrize(("dealer", "refusal"), [
    ({"active": False}, "paused"),
    ({"product_lines": ["MWR"]}, "does not sell"),  # the lead asks for compact tractors
], ids=["paused", "other-line"])
def test_forward_refuses_a_dealer_that_cannot_take_the_lead(
        session, make_lead, make_partner, distributor, dealer, refusal):
    unfit = make_partner("UNFIT", parent_id=distributor.id, **dealer)
    lead = make_lead()
    lifecycle.offer(session, lead, distributor, SYSTEM, now=at(1))
    with pytest.raises(InvalidInput, match=refusal) as refused:
        lifecycle.forward(session, lead, unfit, SYSTEM, now=at(2))
    assert "partner" in refused.value.fields
    assert open_count(session, unfit) == 0
    assert lead.assigned_partner_id == distributor.id


def test_dealer_cannot_forward_a_lead_it_does_not_hold(session, offered, make_partner,
                                                      make_user, distributor):
    own = make_partner("OWN", parent_id=distributor.id)
    outsider = make_user("partner", partner=own)
    with pytest.raises(NotFound):
        lifecycle.forward(session, offered, own, Actor.of(outsider), now=at(2))


def test_reassign_needs_a_reason_and_moves_the_lead(session, accepted, dealer, manager,
                                                    make_partner, dealer_user):
    other = make_partner("DLR2")
    with pytest.raises(InvalidInput) as refused:
        lifecycle.reassign(session, accepted, other, Actor.of(manager), reason="", now=at(3))
    assert "reason" in refused.value.fields
    with pytest.raises(NotFound):
        lifecycle.reassign(session, accepted, other, Actor.of(dealer_user), reason="x",
                           now=at(3))
    assert accepted.assigned_partner_id == dealer.id

    lifecycle.reassign(session, accepted, other, Actor.of(manager), reason="customer asked",
                       now=at(3))
    session.flush()
    old, new = offers_of(session, accepted)
    assert (old.response, old.decline_reason) == ("withdrawn", "customer asked")
    assert (new.partner_id, new.method, new.reason, new.by_user_id) == (
        other.id, "manual", "customer asked", manager.id)
    assert (accepted.status, accepted.assigned_partner) == ("offered", other)
    kinds = [e.kind for e in events_of(session, accepted)][-2:]
    assert kinds == ["withdrawn", "offered"]
    assert (open_count(session, dealer), open_count(session, other)) == (0, 1)


def test_reassign_of_a_nurture_lead_qualifies_it(session, make_product_line, dealer, manager):
    lead = lifecycle.capture(session, Lead(email="n@example.com"), SYSTEM, now=T0)
    lifecycle.qualify(session, lead, "nurture", reason="later", score=10, rank="cold",
                      actor=SYSTEM, now=at(0))
    lifecycle.reassign(session, lead, dealer, Actor.of(manager), reason="hand-raise by phone",
                       now=at(1))
    assert [e.kind for e in events_of(session, lead)] == [
        "captured", "nurture", "qualified", "offered"]


def test_reassign_of_a_closed_lead_is_refused(session, accepted, dealer_user, manager, dealer):
    lifecycle.close(session, accepted, "won", Actor.of(dealer_user), now=at(3))
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.reassign(session, accepted, dealer, Actor.of(manager), reason="x", now=at(4))
    assert refused.value.current_status == "won"


def test_reopen_is_for_staff_with_a_reason(session, accepted, dealer_user, manager, dealer):
    known = Competitor(name="Ironbark Equipment")
    session.add(known)
    session.flush()
    lifecycle.close(session, accepted, "lost", Actor.of(dealer_user),
                    data={"reason": "competitor", "competitor": "Ironbark Equipment"},
                    now=at(3))
    with pytest.raises(NotFound):
        lifecycle.reopen(session, accepted, Actor.of(dealer_user), reason="mine", now=at(4))
    with pytest.raises(InvalidInput) as refused:
        lifecycle.reopen(session, accepted, Actor.of(manager), reason=" ", now=at(4))
    assert "reason" in refused.value.fields

    lifecycle.reopen(session, accepted, Actor.of(manager), reason="reported by mistake",
                     now=at(4))
    session.flush()
    assert (accepted.status, accepted.closed_at, accepted.lost_reason) == ("accepted", None,
                                                                           None)
    assert accepted.lost_competitor is None
    assert accepted.competitor_name == ""
    session.expire_all()
    assert session.get(Lead, accepted.id).lost_competitor_id is None
    event = events_of(session, accepted)[-1]
    assert (event.kind, event.from_status, event.to_status) == ("reopened", "lost", "accepted")
    assert (event.actor_id, event.data) == (manager.id, {"reason": "reported by mistake"})
    assert open_count(session, dealer) == 1


def test_reopen_of_an_open_lead_is_refused(session, accepted, manager):
    with pytest.raises(InvalidTransition) as refused:
        lifecycle.reopen(session, accepted, Actor.of(manager), reason="x", now=at(3))
    assert refused.value.current_status == "accepted"


def test_disqualify_and_reopen_a_disqualified_lead(session, offered, manager, dealer):
    with pytest.raises(InvalidInput):
        lifecycle.disqualify(session, offered, Actor.of(manager), reason="", now=at(2))
    lifecycle.disqualify(session, offered, Actor.of(manager), reason="test submission",
                         now=at(2))
    session.flush()
    assert (offered.status, offered.qualification_reason) == ("disqualified", "test submission")
    assert offers_of(session, offered)[0].response == "withdrawn"
    assert open_count(session, dealer) == 0
    with pytest.raises(InvalidTransition):
        lifecycle.disqualify(session, offered, Actor.of(manager), reason="again", now=at(3))

    lifecycle.reopen(session, offered, Actor.of(manager), reason="real customer", now=at(4))
    assert (offered.status, offered.assigned_partner_id) == ("qualified", None)
    assert open_count(session, dealer) == 0


# --- the single entry point --------------------------------------------------------------


def test_apply_action_dispatches_every_design_action(session, make_lead, make_partner,
                                                     make_user, manager, distributor):
    own = make_partner("OWN", parent_id=distributor.id)
    spare = make_partner("SPARE")
    dist_actor = Actor.of(make_user("partner", partner=distributor), device="api")
    own_actor = Actor.of(make_user("partner", partner=own), device="api")
    staff = Actor.of(manager, device="api")

    first = make_lead()
    lifecycle.offer(session, first, distributor, SYSTEM, now=at(1))
    script: list[tuple[Actor, str, dict[str, Any], str]] = [
        (dist_actor, "forward", {"partner": "OWN", "reason": "near"}, "offered"),
        (own_actor, "accept", {}, "accepted"),
        (own_actor, "contact", {"channel": "text"}, "contacted"),
        (own_actor, "appointment", {"date": "2026-03-12"}, "appointment"),
        (own_actor, "quote", {"amount": "21,000"}, "quoted"),
        (own_actor, "note", {"text": "sent the brochure"}, "quoted"),
        (own_actor, "won", {"amount": "20500"}, "won"),
        (staff, "reopen", {"reason": "won by the other store"}, "accepted"),
        (own_actor, "lost", {"reason": "timing"}, "lost"),
    ]
    for hour, (actor, action, args, status) in enumerate(script, start=2):
        lifecycle.apply_action(session, first, action, args, actor, now=at(hour))
        assert first.status == status, action

    second = make_lead()
    lifecycle.offer(session, second, own, SYSTEM, now=at(1))
    lifecycle.apply_action(session, second, "decline", {"reason": "duplicate"}, own_actor,
                           now=at(2))
    assert second.status == "qualified"
    lifecycle.apply_action(session, second, "reassign", {"partner": "SPARE", "reason": "x"},
                           staff, now=at(3))
    assert second.assigned_partner_id == spare.id
    lifecycle.apply_action(session, second, "disqualify", {"reason": "spam"}, staff, now=at(4))
    assert second.status == "disqualified"

    third = make_lead()
    lifecycle.offer(session, third, own, SYSTEM, now=at(1))
    lifecycle.apply_action(session, third, "accept", {}, own_actor, now=at(2))
    lifecycle.apply_action(session, third, "no_interest", {}, own_actor, now=at(3))
    assert third.status == "no_interest"

    kinds = [e.kind for e in events_of(session, first)]
    assert kinds[2:] == ["offered", "forwarded", "accepted", "contacted", "appointment",
                         "quoted", "note", "won", "reopened", "lost"]
    assert {e.device for e in events_of(session, first)[3:]} == {"api"}
    assert lifecycle.recount_open_leads(session) == 0


def test_apply_action_passes_the_client_event_id(session, offered, dealer_user):
    event_id = uuid.uuid4()
    lifecycle.apply_action(session, offered, "accept", {}, Actor.of(dealer_user), now=at(2),
                           event_id=event_id)
    session.flush()
    assert events_of(session, offered)[-1].id == event_id


def test_apply_action_rejects_unknown_actions_and_partners(session, offered, dealer_user,
                                                           manager):
    with pytest.raises(InvalidInput) as refused:
        lifecycle.apply_action(session, offered, "teleport", {}, Actor.of(dealer_user),
                               now=at(2))
    assert "action" in refused.value.fields
    with pytest.raises(InvalidInput) as refused:
        lifecycle.apply_action(session, offered, "reassign",
                               {"partner": "NOPE", "reason": "x"}, Actor.of(manager), now=at(2))
    assert "partner" in refused.value.fields
    assert offered.status == "offered"


# --- amounts -----------------------------------------------------------------------------


@pytest.mark.parametrize("raw, expected", [
    ("12,500.50", Decimal("12500.50")), ("$8,000", Decimal("8000.00")), (" 0 ", Decimal("0")),
    (42, Decimal("42.00")), (19999.99, Decimal("19999.99")), ("999999999.99",
                                                                Decimal("999999999.99")),
])
def test_amounts_parse(raw, expected):
    assert lifecycle.parse_amount(raw, required=True) == expected


@pytest.mark.parametrize("raw", ["-1", "-0.01", "1000000000", "1e30", "abc", "NaN", "Infinity",
                                 "12 500", "1.2.3", 19999.999, "0.001", "1,2,3"])
def test_bad_amounts_are_invalid_input(session, accepted, dealer_user, raw):
    with pytest.raises(InvalidInput) as refused:
        lifecycle.advance(session, accepted, "quoted", Actor.of(dealer_user),
                          data={"amount": raw}, now=at(3))
    assert "amount" in refused.value.fields
    with pytest.raises(InvalidInput):
        lifecycle.close(session, accepted, "won", Actor.of(dealer_user), data={"amount": raw},
                        now=at(3))
    assert accepted.status == "accepted"
    assert accepted.quote_amount is None


def test_missing_amount_is_allowed_only_when_optional():
    assert lifecycle.parse_amount("", required=False) is None
    with pytest.raises(InvalidInput):
        lifecycle.parse_amount(None, required=True)


# --- the audit trail ---------------------------------------------------------------------


def test_events_are_only_ever_added(session, make_lead, dealer, dealer_user, manager,
                                    count_queries):
    lead = make_lead()
    actor = Actor.of(dealer_user)
    snapshots: list[list[tuple[Any, ...]]] = []

    def snapshot() -> None:
        session.flush()
        session.expire_all()
        rows = [(e.seq, e.id, e.kind, e.from_status, e.to_status, e.at, e.data)
                for e in events_of(session, lead)]
        snapshots.append(rows)

    with count_queries() as counter:
        steps: list[Callable[[], Any]] = [
            lambda: lifecycle.offer(session, lead, dealer, SYSTEM, now=at(1)),
            lambda: lifecycle.accept(session, lead, actor, now=at(2)),
            lambda: lifecycle.advance(session, lead, "contacted", actor, now=at(3)),
            lambda: lifecycle.add_note(session, lead, actor, text="n", now=at(4)),
            lambda: lifecycle.close(session, lead, "won", actor, data={"amount": 1}, now=at(5)),
            lambda: lifecycle.reopen(session, lead, Actor.of(manager), reason="r", now=at(6)),
            lambda: lifecycle.close(session, lead, "lost", actor, data={"reason": "price"},
                                    now=at(7)),
        ]
        snapshot()
        for step in steps:
            lead = session.get(Lead, lead.id)
            step()
            snapshot()

    for before, after in zip(snapshots, snapshots[1:], strict=False):
        assert len(after) == len(before) + 1
        assert after[: len(before)] == before
    writes = [s.split()[0:3] for s in counter.statements
              if "lead_events" in s and not s.lstrip().upper().startswith(("SELECT", "INSERT"))]
    assert writes == []
    total = session.scalar(select(func.count()).select_from(LeadEvent)
                           .where(LeadEvent.lead_id == lead.id))
    assert total == 9


def test_event_times_are_the_given_moments_not_the_clock(session, offered):
    assert [e.at for e in events_of(session, offered)] == [T0, T0 + timedelta(seconds=5), at(1)]
    assert all(e.at < utcnow() for e in events_of(session, offered))


def test_a_lead_is_locked_again_after_a_rolled_back_savepoint(session, offered, dealer_user,
                                                              count_queries):
    """A savepoint rolled back gives its row locks back: the next action takes the lead's
    row again instead of trusting a lock it no longer holds."""
    session.commit()  # a fresh transaction: nothing held yet

    def lead_reads() -> int:
        with count_queries() as counter:
            lifecycle.add_note(session, offered, Actor.of(dealer_user), text="n", now=at(2))
            session.flush()
        # the lead's own row read (the rollups' facts read joins leads to offers: not that)
        return sum(1 for s in counter.statements
                   if s.lstrip().upper().startswith("SELECT")
                   and "FROM leads WHERE leads.id =" in " ".join(s.split()))

    assert lead_reads() == 1  # the first action locks the row
    assert lead_reads() == 0  # held for the rest of the transaction
    savepoint = session.begin_nested()
    with pytest.raises(InvalidInput):
        lifecycle.add_note(session, offered, Actor.of(dealer_user), text=" ", now=at(3))
    savepoint.rollback()
    assert lead_reads() == 1  # taken again after the rollback
