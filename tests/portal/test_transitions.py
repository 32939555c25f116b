"""The transition table is the one source of a lead's rules: the lead page offers exactly
the actions the API then carries out, and the API refuses every other one with 409 and the
lead's state, for every stage a lead can be in. The OpenAPI file lists the same actions."""

from __future__ import annotations

from typing import Any

import pytest

from portal.core import lifecycle
from portal.core.errors import NotFound
from portal.core.lifecycle import Actor
from portal.core.transitions import API_ACTIONS, TABLE
from portal.leads.services import available_actions

#: a valid body for each API action (the partner codes exist in the fixture below)
ARGS: dict[str, dict[str, Any]] = {
    "accept": {}, "decline": {"reason": "other"}, "contact": {"channel": "phone"},
    "appointment": {"date": "2026-03-10"}, "quote": {"amount": "9000"},
    "won": {"amount": "9000"}, "lost": {"reason": "price"}, "no_interest": {},
    "note": {"text": "hello"}, "attempt": {"channel": "phone"}, "forward": {"partner": "TDLR"},
    "reassign": {"partner": "TSPARE", "reason": "mine now"}, "reopen": {"reason": "oops"},
    "disqualify": {"reason": "spam"},
}

#: how to bring a lead offered to the distributor into each stage
STAGES: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "offered": [],
    "accepted": [("accept", {})],
    "contacted": [("accept", {}), ("contact", {"channel": "phone"})],
    "appointment": [("accept", {}), ("appointment", {"date": "2026-03-10"})],
    "quoted": [("accept", {}), ("quote", {"amount": "100"})],
    "won": [("accept", {}), ("won", {"amount": "100"})],
    "lost": [("accept", {}), ("lost", {"reason": "price"})],
    "no_interest": [("accept", {}), ("no_interest", {})],
}


@pytest.fixture
def world(session, make_partner, make_user):
    distributor = make_partner("TDIST", kind="distributor", territories=["zip:50401"])
    make_partner("TDLR", parent_id=distributor.id, territories=["zip:50401"])
    make_partner("TSPARE", territories=["zip:50402"])
    return {"holder": make_user("partner", partner=distributor),
            "manager": make_user("manager"), "distributor": distributor}


def _lead_in(session, make_lead, world, stage: str):
    lead = make_lead()
    lifecycle.offer(session, lead, world["distributor"], Actor.system(), force=True)
    for action, args in STAGES[stage]:
        lifecycle.apply_action(session, lead, action, args, Actor.of(world["holder"]))
    session.flush()
    assert lead.status == stage
    return lead


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_page_offers_exactly_what_the_api_allows(session, make_lead, world, stage):
    for who in ("holder", "manager"):
        user = world[who]
        lead = _lead_in(session, make_lead, world, stage)
        shown = set(available_actions(lead, user)) & set(API_ACTIONS)
        for action in API_ACTIONS:
            savepoint = session.begin_nested()
            try:
                lifecycle.apply_action(session, lead, action, ARGS[action], Actor.of(user))
                allowed = True
            except lifecycle.InvalidTransition as refused:
                assert refused.current_status == stage
                allowed = False
            except NotFound:
                allowed = False
            finally:
                savepoint.rollback()
            if action in shown:
                assert allowed, f"{who} is shown {action!r} on a {stage} lead, then refused"
            elif allowed:
                # Staff may act for a partner through the API; the page keeps its buttons
                # to the partner's own people (the table's shown_to).
                assert who == "manager" and action in {
                    t.action for t in TABLE if "staff" in t.who}, (who, action, stage)


def test_the_openapi_file_lists_the_tables_actions(client):
    schema = client.get("/api/v1/openapi.json").get_json()
    actions = schema["components"]["schemas"]["Action"]["properties"]["action"]["enum"]
    assert actions == list(API_ACTIONS)


def test_an_unknown_action_is_refused_with_the_list(session, make_lead, world):
    lead = _lead_in(session, make_lead, world, "offered")
    with pytest.raises(lifecycle.InvalidInput) as refused:
        lifecycle.apply_action(session, lead, "teleport", {}, Actor.of(world["holder"]))
    assert refused.value.fields["action"] == f"One of: {', '.join(API_ACTIONS)}."
