"""The lead's transition table: every action, the states it applies to, where it leads, who
may take it and what it needs.

The lifecycle's guards, the lead page's buttons, the API's 409 answers, the OpenAPI file's
action list and offline sync's checks of pushed mutations all read this one table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from portal.core.models import (
    CLOSED_STATUSES,
    OPEN_STATUSES,
    WORKING_STATUSES,
    LeadStatus,
)

S = LeadStatus

#: who may take an action, seen from the lead:
HOLDER = "holder"  #: a user of the partner the lead is assigned to
STAFF = "staff"  #: admins and channel managers
SYSTEM = "system"  #: the portal itself: routing, expiry, imports, the CLI
PARENT = "parent"  #: a user of the distributor above the dealer holding the lead
DISTRIBUTOR = "distributor"  #: the holder, when it is a distributor (forwarding)
PARTNER = "partner"  #: any partner user, holder or not
#: the portal's own steps: the service calling them has decided who may (routing, a
#: manager, a partner capturing its own lead, a distributor pulling one back)
ANYONE = frozenset({HOLDER, STAFF, SYSTEM, PARENT, PARTNER})

LOST_REASONS = ("competitor", "price", "timing", "no_budget", "no_response", "other")
DECLINE_REASONS = {
    "out_of_area": "Out of our area",
    "no_capacity": "No capacity right now",
    "not_our_product": "Not our product",
    "duplicate": "Duplicate of a lead we have",
    "other": "Other",
}
CONTACT_CHANNELS = ("phone", "email", "visit", "text", "other")
#: a contact attempt that reached nobody, by channel, in words (the timeline's)
ATTEMPT_CHANNELS = {"phone": "Called, no answer", "email": "Emailed, no reply",
                    "text": "Texted, no reply"}

_ANY = frozenset(S)
_ROUTABLE = frozenset({S.QUALIFIED, S.UNASSIGNED})
_WORKING = frozenset(WORKING_STATUSES)
_ENDED = frozenset(CLOSED_STATUSES | {S.DISQUALIFIED})


@dataclass(frozen=True)
class Required:
    """A field an action cannot do without, and what to tell whoever left it out."""

    name: str
    message: str  #: the error's sentence
    hint: str  #: beside the field


@dataclass(frozen=True)
class Transition:
    """One row of the table."""

    action: str
    label: str
    #: the states the action applies to
    sources: frozenset[str]
    #: the state it leads to; None: the state stays (a note) or the call decides among
    #: ``targets`` (qualify, reopen, unmerge)
    target: str | None
    who: frozenset[str]
    required: tuple[Required, ...] = ()
    #: taken through ``POST /api/v1/leads/{id}/actions`` (and offline sync)
    api: bool = False
    #: the lead page offers it to these (none: a step the portal takes itself)
    shown_to: frozenset[str] = frozenset()
    #: the states a call may choose among when ``target`` is None
    targets: frozenset[str] = frozenset()
    #: said when the lead is in another state: "only an offered lead can be accepted"
    refusal: str = ""

    def allows(self, status: str) -> bool:
        """The action applies to a lead in ``status``."""
        return status in self.sources

    def missing(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The required fields left empty in ``values``, each with its hint."""
        return {r.name: r.hint for r in self.required
                if not str(values.get(r.name) or "").strip()}

    def first_missing(self, values: Mapping[str, Any]) -> Required | None:
        """The first required field left empty, for its message."""
        for r in self.required:
            if not str(values.get(r.name) or "").strip():
                return r
        return None


def _reason(verb: str) -> Required:
    return Required("reason", f"Say why you {verb}.", "A reason is required.")


_PARTNER_WORK = frozenset({HOLDER, STAFF})
_HOLDER_ONLY = frozenset({HOLDER})

TABLE: tuple[Transition, ...] = (
    # --- capture and qualification (the portal's own steps) ---
    Transition("capture", "Capture", frozenset(), S.CAPTURED, ANYONE),
    Transition("qualify", "Qualify", frozenset({S.CAPTURED, S.NURTURE}), None,
               ANYONE, targets=frozenset({S.QUALIFIED, S.NURTURE, S.DISQUALIFIED}),
               refusal="cannot be qualified again"),
    Transition("rescore", "Re-score", _ANY, None, ANYONE),
    Transition("inquiry", "Repeat inquiry", _ANY, None, ANYONE),
    # --- routing ---
    Transition("offer", "Offer", _ROUTABLE, S.OFFERED, ANYONE,
               refusal="cannot be offered"),
    Transition("unassign", "Leave unassigned", _ROUTABLE, S.UNASSIGNED, ANYONE,
               refusal="cannot be unassigned"),
    Transition("route", "Route again", _ROUTABLE, S.OFFERED, frozenset({SYSTEM, STAFF}),
               shown_to=frozenset({STAFF}),
               refusal="is not waiting for routing"),
    Transition("expire", "Expire", frozenset({S.OFFERED}), S.QUALIFIED, frozenset({SYSTEM}),
               refusal="only an offered lead can expire"),
    Transition("withdraw", "Take back", frozenset(OPEN_STATUSES), S.QUALIFIED,
               frozenset({SYSTEM, STAFF, PARENT}),
               refusal="only an open lead can be taken back"),
    Transition("pull_back", "Pull back", frozenset(OPEN_STATUSES), S.OFFERED,
               frozenset({PARENT}), (_reason("take the lead back"),),
               shown_to=frozenset({PARENT}),
               refusal="only an open lead can be pulled back"),
    Transition("reassign", "Reassign", frozenset(OPEN_STATUSES) | _ROUTABLE
               | {S.NURTURE, S.CAPTURED}, S.OFFERED, frozenset({STAFF}),
               (Required("partner", "Pick the partner.", "Pick a partner."),
                _reason("reassign this lead")), api=True, shown_to=frozenset({STAFF}),
               refusal="cannot be reassigned"),
    Transition("forward", "Forward to a dealer", frozenset({S.OFFERED, S.ACCEPTED}), S.OFFERED,
               frozenset({HOLDER, STAFF}),
               (Required("partner", "Pick one of your dealers.", "Pick one of your own dealers."),),
               api=True, shown_to=frozenset({DISTRIBUTOR}),
               refusal="only an offered or accepted lead can be forwarded"),
    # --- the partner's answer and its work ---
    Transition("accept", "Accept", frozenset({S.OFFERED}), S.ACCEPTED, _PARTNER_WORK,
               api=True, shown_to=_HOLDER_ONLY, refusal="only an offered lead can be accepted"),
    Transition("decline", "Decline", frozenset({S.OFFERED}), S.QUALIFIED, _PARTNER_WORK,
               (_reason("decline this lead"),), api=True, shown_to=_HOLDER_ONLY,
               refusal="only an offered lead can be declined"),
    Transition("contact", "Contacted", frozenset({S.ACCEPTED, S.CONTACTED}), S.CONTACTED,
               _PARTNER_WORK, api=True, shown_to=_HOLDER_ONLY,
               refusal="cannot move to contacted"),
    Transition("appointment", "Appointment", frozenset({S.ACCEPTED, S.CONTACTED, S.APPOINTMENT}),
               S.APPOINTMENT, _PARTNER_WORK,
               (Required("date", "An appointment needs a date.", "Enter the date."),),
               api=True, shown_to=_HOLDER_ONLY, refusal="cannot move to appointment"),
    # A try that reached nobody: follow-up all the same (DESIGN §7), the stage stays.
    Transition("attempt", "No answer", _WORKING, None, _PARTNER_WORK, api=True,
               shown_to=_HOLDER_ONLY, refusal="takes no contact attempt"),
    Transition("quote", "Quote", _WORKING, S.QUOTED, _PARTNER_WORK,
               (Required("amount", "An amount is required.", "Enter the amount."),),
               api=True, shown_to=_HOLDER_ONLY, refusal="cannot move to quoted"),
    Transition("won", "Won", _WORKING, S.WON, _PARTNER_WORK, api=True, shown_to=_HOLDER_ONLY,
               refusal="cannot be closed as won"),
    Transition("lost", "Lost", _WORKING, S.LOST, _PARTNER_WORK,
               (Required("reason", "Say why the lead was lost.",
                         f"Pick one of: {', '.join(LOST_REASONS)}."),),
               api=True, shown_to=_HOLDER_ONLY, refusal="cannot be closed as lost"),
    Transition("no_interest", "No interest", _WORKING, S.NO_INTEREST, _PARTNER_WORK, api=True,
               shown_to=_HOLDER_ONLY, refusal="cannot be closed as no_interest"),
    Transition("note", "Note", _ANY, None, _PARTNER_WORK,
               (Required("text", "The note is empty.", "Write the note."),), api=True,
               shown_to=frozenset({HOLDER, STAFF})),
    # Follow-up tasks (add, tick off, delete): the firm holding an open lead, and staff.
    Transition("task", "Follow-up task", frozenset(OPEN_STATUSES), None, _PARTNER_WORK,
               refusal="takes no follow-up tasks"),
    # --- the managers' corrections ---
    Transition("reopen", "Re-open", _ENDED, None, frozenset({STAFF}),
               (_reason("re-open this lead"),), api=True, shown_to=frozenset({STAFF}),
               targets=frozenset({S.ACCEPTED, S.QUALIFIED}),
               refusal="only a closed or disqualified lead can be re-opened"),
    Transition("disqualify", "Disqualify", _ANY - _ENDED, S.DISQUALIFIED, frozenset({STAFF}),
               (Required("reason", "Say why.", "A reason is required."),), api=True,
               refusal="cannot be disqualified"),
    Transition("merge", "Merge into another lead", _ANY - _ENDED, S.DISQUALIFIED,
               frozenset({STAFF}), refusal="cannot be merged away"),
    Transition("unmerge", "Unmerge", frozenset({S.DISQUALIFIED}), None, frozenset({STAFF}),
               (_reason("unmerge this lead"),),
               targets=_ANY - _ENDED, refusal="only a merged lead can be unmerged"),
    Transition("review_conflict", "Mark reviewed", _ANY, None, frozenset({STAFF})),
)

TRANSITIONS: dict[str, Transition] = {t.action: t for t in TABLE}
#: the actions ``POST /api/v1/leads/{id}/actions`` takes, in the table's order
API_ACTIONS: tuple[str, ...] = tuple(t.action for t in TABLE if t.api)


def transition(action: str) -> Transition:
    """The table's row for ``action``; KeyError for an unknown one."""
    return TRANSITIONS[action]


def actions_for(status: str, roles: Iterable[str]) -> list[str]:
    """What the lead page offers someone in ``roles`` for a lead in ``status``, in order."""
    held = frozenset(roles)
    return [t.action for t in TABLE if t.shown_to & held and t.allows(status)]
