"""The partner's inbox: tabs and their counts, filters, search words, the cards."""


from __future__ import annotations

import functools
import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, NamedTuple

from flask import current_app
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    bindparam,
    case,
    func,
    literal,
    literal_column,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, selectinload

from portal.core.compliance import (
    gate_limit,
    gate_reason,
    overdue_before,
    overdue_counts,
    overdue_cutoff,
    overdue_ranges,
)
from portal.core.models import (
    OPEN_STATUSES,
    WORKING_STATUSES,
    Lead,
    LeadEvent,
    LeadStatus,
    Offer,
    OfferResponse,
    Partner,
    PartnerKind,
    ProductLine,
    Task,
    User,
    display_name,
    utcnow,
)
from portal.core.models.codes import code_is
from portal.core.pagination import Page
from portal.core.tasks import next_task_for

S = LeadStatus

# --- tabs, filters, pages -------------------------------------------------------------------

#: the inbox's tabs in the order a dealer works them
TABS: dict[str, str] = {
    "new": "New offers",
    "contact": "To contact",
    "open": "Open",
    "overdue": "Overdue",
    "closed": "Closed",
}
#: a distributor also follows its dealers' leads
DEALERS_TAB = ("dealers", "Dealers' leads")
OPEN_STAGES = (S.CONTACTED, S.APPOINTMENT, S.QUOTED)
CLOSED_STAGES = (S.WON, S.LOST, S.NO_INTEREST)
#: age filter: value -> (label, newer than N days, or older than N days when negative)
AGES: dict[str, tuple[str, int]] = {
    "1": ("Today", 1),
    "7": ("Last 7 days", 7),
    "30": ("Last 30 days", 30),
    "90": ("Last 90 days", 90),
    "older": ("Older than 90 days", -90),
}
#: literature sent to the prospect is recorded by fulfilment as events of these kinds
LITERATURE_EVENTS = ("literature_sent", "literature_printed")
#: offline sync flags an outcome on a lead that moved meanwhile as a ``conflict`` event
CONFLICT_EVENT = "conflict"
CONFLICT_REVIEWED_EVENT = "conflict_reviewed"
_STATUSES = frozenset(s.value for s in LeadStatus)
#: lead searches count at most this many rows: enough for the pager, cheap at a million
COUNT_CAP = 10_000


@dataclass
class InboxFilters:
    """What a partner's inbox shows: one tab, narrowed by the filters."""

    tab: str = "new"
    stage: str = ""
    product_line: str = ""
    rank: str = ""
    age: str = ""
    q: str = ""
    dealer: str = ""  #: distributors: one dealer's code
    sort: str = ""  #: a key of ``SORTS``, "-" in front for descending; "" the tab's order
    #: whose leads: "" the firm's, "me", "none" (unassigned) or a user's id
    assignee: str = ""
    #: the viewer's user id, for "me"
    me: int | None = None


def assignee_filter(filters: InboxFilters) -> tuple[str, int | None]:
    """The assignee filter as (kind, user id): ("", None) the firm's leads, ("none",
    None) unassigned ones, ("user", id) one person's (the viewer's for "me")."""
    value = filters.assignee
    if value == "none":
        return "none", None
    if value == "me" and filters.me is not None:
        return "user", filters.me
    if value.isdigit() and len(value) <= 9:
        return "user", int(value)
    return "", None


def _assignee_clause(kind: str) -> ColumnElement[bool] | None:
    """The lists' WHERE for an assignee filter kind (the id is the ``assignee_id``
    parameter)."""
    if kind == "user":
        return Lead.assigned_user_id == bindparam("assignee_id")
    if kind == "none":
        return Lead.assigned_user_id.is_(None)
    return None


@dataclass
class SearchFilters:
    """The managers' lead search."""

    status: str = ""
    partner: str = ""  #: a partner's code
    region: str = ""
    product_line: str = ""
    rank: str = ""
    campaign: str = ""
    age: str = ""
    overdue: bool = False
    q: str = ""


#: the text search looks for every word in these columns (the phone as typed and as E.164)
_SEARCH_COLUMNS = (Lead.first_name, Lead.last_name, Lead.company, Lead.email, Lead.phone,
                   Lead.phone_normalized, Lead.postal_code, Lead.city)
_MAX_WORDS = 5
_PHONE_LIKE = re.compile(r"\+?[\d().\-]+")
_ZIP_PLUS_FOUR = re.compile(r"\d{5}-\d{4}")


def _words(term: str) -> list[str]:
    # Control characters (a NUL, say, which PostgreSQL refuses in text) separate words.
    if not term.isprintable():
        term = "".join(char if char.isprintable() else " " for char in term)
    return [_phone_digits(word) for word in term.split()[:_MAX_WORDS]]


def _phone_digits(word: str) -> str:
    """A phone number typed any way ("515-555-8577", "(515)555-8577", "+15155558577") as
    its digits, which the E.164 form of every lead's phone holds; other words as typed."""
    if _PHONE_LIKE.fullmatch(word) and not _ZIP_PLUS_FOUR.fullmatch(word):
        digits = re.sub(r"\D", "", word)
        if len(digits) >= 7:
            return digits
    return word


def _like_pattern(word: str) -> str:
    """``%word%`` with LIKE's wildcards in ``word`` escaped (escape character ``/``)."""
    escaped = word.replace("/", "//").replace("%", "/%").replace("_", "/_")
    return f"%{escaped}%"


def _word_params(count: int) -> list[Any]:
    """The bound parameters ``w0`` … a prebuilt statement takes its search words in."""
    return [bindparam(f"w{i}") for i in range(count)]


def _word_values(q: str) -> dict[str, str]:
    """The LIKE patterns of ``q``'s words, by the names ``_word_params`` gives them."""
    return {f"w{i}": _like_pattern(word) for i, word in enumerate(_words(q))}


def _search_text() -> ColumnElement[str]:
    """The searched columns as one text, blank-separated (no word spans two of them).

    PostgreSQL indexes exactly this expression with trigrams (migration 0010,
    ``ix_leads_search_trgm``), so a word anywhere in it is found from the index rather
    than by reading every lead: the SQL must stay the index's, constants written in.
    """
    blank, space = literal_column("''", String), literal_column("' '", String)
    text: ColumnElement[str] = func.coalesce(_SEARCH_COLUMNS[0], blank, type_=String)
    for column in _SEARCH_COLUMNS[1:]:
        text = text + space + func.coalesce(column, blank, type_=String)
    return text


#: what a partner's search may find in a new offer, whose contact details wait for the
#: accept (a search that found a lead by its phone would tell its digits one by one)
_OFFER_COLUMNS = (Lead.first_name, Lead.last_name, Lead.company, Lead.postal_code, Lead.city)


def _words_match(patterns: Iterable[Any], *, partner: bool = False) -> ColumnElement[bool]:
    """Every pattern (a LIKE pattern or a bound parameter holding one) in some column; in
    a ``partner``'s lists, a new offer's email and phone are not searched."""
    text = _search_text()
    found = [_word_in_columns(pattern) if _too_short_for_trigrams(pattern)
             else text.ilike(pattern, escape="/") for pattern in patterns]
    if partner:
        found = [and_(match, or_(Lead.status != S.OFFERED, *(
            column.ilike(pattern, escape="/") for column in _OFFER_COLUMNS)))
            for match, pattern in zip(found, patterns, strict=True)]
    return and_(*found)


def _too_short_for_trigrams(pattern: Any) -> bool:
    """A word of one or two characters (a pattern given as text): no trigram to look up.
    PostgreSQL's generic plan would still read the whole trigram index for it (0.5 s
    against 0.12 s for reading the leads); asked column by column, it is other SQL, with
    a plan of its own that reads the leads."""
    return isinstance(pattern, str) and len(pattern.replace("/", "")) - 2 < 3


def _word_in_columns(pattern: str) -> ColumnElement[bool]:
    return or_(*(column.ilike(pattern, escape="/") for column in _SEARCH_COLUMNS))


def _age_start(age: str, now: datetime) -> datetime:
    """The moment an age filter (a key of ``AGES``) measures from."""
    return now - timedelta(days=abs(AGES[age][1]))


def _narrowing(*, product_line: Any = None, rank: Any = None, age: str = "",
               age_at: Any = None, patterns: Iterable[Any] = (), partner: bool = False
               ) -> list[ColumnElement[bool]]:
    """The filters the inbox and the search share. Each takes a value or a bound
    parameter (the inbox's statements are built once and run with parameters); None or
    empty leaves it out. ``age`` is a key of ``AGES`` measured from ``age_at``;
    ``patterns`` are LIKE patterns (``_like_pattern``), every one of which must match."""
    clauses: list[ColumnElement[bool]] = []
    if product_line is not None:
        clauses.append(Lead.product_line_id == select(ProductLine.id).where(
            code_is(ProductLine.code, product_line)).scalar_subquery())
    if rank is not None:
        clauses.append(Lead.rank == rank)
    if age in AGES:
        # Newer than N days, or (a negative N) older than N days.
        clauses.append(Lead.created_at >= age_at if AGES[age][1] > 0
                       else Lead.created_at < age_at)
    patterns = list(patterns)
    if patterns:
        clauses.append(_words_match(patterns, partner=partner))
    return clauses


def common_filters(query: Select[Any], *, product_line: str, rank: str, age: str, q: str,
                    now: datetime) -> Select[Any]:
    return query.where(*_narrowing(
        product_line=product_line or None, rank=rank or None, age=age,
        age_at=_age_start(age, now) if age in AGES else None,
        patterns=[_like_pattern(word) for word in _words(q)]))


def matching_text(q: str) -> list[ColumnElement[bool]]:
    """What the lead search asks of a lead for the words ``q`` (every word in its name,
    company, email, phone, town or ZIP): for other pages that find leads by text."""
    return _narrowing(patterns=[_like_pattern(word) for word in _words(q)])


def list_options(query: Select[Any]) -> Select[Any]:
    return query.options(selectinload(Lead.product_line), selectinload(Lead.assigned_partner))


# --- what the list shows for the next step, and its sort orders ----------------------------

#: the list's sort orders by the query string's ``sort`` (``-`` in front: descending)
SORTS: dict[str, str] = {
    "received": "Received",
    "product": "Product line",
    "town": "Town",
    "next": "Appointment",
    "quote": "Quote",
    "activity": "Last activity",
}
#: a message is shown on a card as its first this many characters
EXCERPT_CHARS = 140


def excerpt(text: str | None) -> str:
    """The start of a prospect's message on one line, "…" where it was cut."""
    words = " ".join((text or "").split())
    if len(words) <= EXCERPT_CHARS:
        return words
    return words[:EXCERPT_CHARS].rsplit(" ", 1)[0] + "\u2026"


class NextStep(NamedTuple):
    """What is planned next with a lead, as a list shows it: its next open follow-up task
    or its latest appointment (``next_steps``)."""

    kind: str  #: "appointment", or the task's kind in words ("call back")
    on: date  #: the day (a task's in UTC, as the list's other days)


def appointment_day() -> Any:
    """The day of the lead's latest recorded appointment (ISO text), a correlated
    subquery on the lead's events (``ix_lead_events_lead_seq``): the list's column and
    its sort key."""
    return (select(LeadEvent.data["date"].as_string())
            .where(LeadEvent.lead_id == Lead.id, LeadEvent.kind == "appointment")
            .order_by(LeadEvent.seq.desc()).limit(1).scalar_subquery())


def next_step_of(day: Any) -> NextStep | None:
    """The next step from the list's appointment column (ISO text, a date or None)."""
    if not day:
        return None
    try:
        return NextStep("appointment", day if isinstance(day, date)
                        else date.fromisoformat(str(day)[:10]))
    except ValueError:
        return None


def _utc() -> tzinfo:
    return UTC


def next_steps(session: Session, cards: list[Card], where: Callable[[], tzinfo] = _utc
               ) -> list[Card]:
    """The one place where what is planned next joins a page of cards (one statement per
    page, never per card). The appointment comes with the cards' own row; a lead's next
    open follow-up task (``tasks.next_task_for``) takes its place unless the appointment
    is still to come and earlier. Days are the viewer's (``where()``, asked only when a
    task is there)."""
    found = next_task_for(session, [card.id for card in cards])
    if not found:
        return cards
    zone = where()
    return [card._replace(next_step=_earlier(card.next_step, found.get(card.id), zone))
            if card.id in found else card for card in cards]


def _earlier(step: NextStep | None, task: Task | None, where: tzinfo) -> NextStep | None:
    if task is None:
        return step
    due = task.due_at if task.due_at.tzinfo else task.due_at.replace(tzinfo=UTC)
    planned = NextStep(task.label.lower(), due.astimezone(where).date())
    if step is None or step.on < utcnow().astimezone(where).date() or planned.on <= step.on:
        return planned
    return step


def next_appointment(session: Session, lead_id: uuid.UUID,
                     where: Callable[[], tzinfo] = _utc) -> NextStep | None:
    """One lead's next step (a card re-rendered after an action)."""
    day = session.scalar(select(appointment_day().label("day")).select_from(Lead)
                         .where(Lead.id == lead_id))
    task = next_task_for(session, [lead_id]).get(lead_id)
    return _earlier(next_step_of(day), task, where()) if task else next_step_of(day)


def _sort_column(key: str) -> Any:
    if key == "received":
        return Lead.created_at
    if key == "product":
        return select(ProductLine.name).where(
            ProductLine.id == Lead.product_line_id).scalar_subquery()
    if key == "town":
        return func.nullif(func.lower(Lead.city), "")
    if key == "next":
        return appointment_day()
    if key == "quote":
        return Lead.quote_amount
    return Lead.updated_at  # "activity"


def sort_order(sort: str) -> list[Any] | None:
    """ORDER BY for a ``sort`` value ("town", "-quote" …); None for the tab's own order.
    Leads without the value come last either way; newest first, then the id, among
    equals, so pages never overlap."""
    key = sort.removeprefix("-")
    if key not in SORTS:
        return None
    column = _sort_column(key)
    first = column.desc() if sort.startswith("-") else column.asc()
    return [first.nulls_last(), Lead.created_at.desc(), Lead.id]


def sort_links(sort: str) -> list[tuple[str, str, str]]:
    """The list's sort links: (label, the ``sort`` value the link asks for, the current
    direction "ascending"/"descending" or "" when the list is not sorted by it). A
    link sorts ascending first, then toggles."""
    links = []
    for key, label in SORTS.items():
        current = ("ascending" if sort == key else
                   "descending" if sort == f"-{key}" else "")
        links.append((label, f"-{key}" if current == "ascending" else key, current))
    return links


# --- the partner's inbox --------------------------------------------------------------------
#
# The inbox is the page partners keep open all day, so its reads are built once per shape
# of request (tab, and which filters are set) and run with bound parameters on the
# session's connection, as plain rows: building a statement costs more than running it
# (0.3 ms against 0.05 ms at a million leads), and loading ORM objects for a page of cards
# took four times what the cards need (bench/README.md, "Partner inbox").


def tabs_for(partner: Partner) -> dict[str, str]:
    """The tabs this partner sees (distributors get their dealers' leads too)."""
    tabs = dict(TABS)
    if partner.kind == PartnerKind.DISTRIBUTOR:
        tabs[DEALERS_TAB[0]] = DEALERS_TAB[1]
    return tabs


class Card(NamedTuple):
    """One lead as a list shows it: who, where, which line, how urgent. (A named tuple:
    a page makes 25 of them from plain rows, at a tenth of a dataclass's cost.)"""

    id: uuid.UUID
    key: str  #: the id as text, as URLs and element ids use it (made once per card)
    name: str
    company: str
    postal_code: str
    city: str
    product_line: str  #: the product line's code ("" when none)
    created_at: datetime
    rank: str | None
    status: str
    assigned_partner_id: int | None
    partner_name: str = ""  #: who holds it (a distributor's dealers' tab)
    expires_at: datetime | None = None  #: when the pending offer runs out
    late: bool = False  #: being worked, and its outcome is overdue
    routing_summary: str = ""  #: why no partner fits (the managers' queue)
    contact_due: datetime | None = None  #: accepted, not yet contacted: first contact by
    product_line_name: str = ""  #: what the prospect wants
    excerpt: str = ""  #: the start of the prospect's message, on one line
    next_step: NextStep | None = None  #: the next appointment (or follow-up task)
    quote_amount: Decimal | None = None
    last_activity: datetime | None = None  #: the lead's latest event
    assignee: str = ""  #: the salesperson of the firm working it ("" nobody)

    @classmethod
    def of(cls, lead: Lead, *, expires_at: datetime | None = None, late: bool = False,
           routing: bool = False, next_step: NextStep | None = None) -> Card:
        """The card of a lead already loaded (one card re-rendered after an action; the
        first-contact clock is the To contact tab's, whose cards have no quick actions)."""
        return cls(
            id=lead.id, key=str(lead.id),
            name=_card_name(lead.first_name, lead.last_name, lead.company, lead.email,
                            lead.status),
            company=lead.company,
            postal_code=lead.postal_code, city=lead.city,
            product_line=lead.product_line.code if lead.product_line else "",
            created_at=lead.created_at, rank=lead.rank, status=lead.status,
            assigned_partner_id=lead.assigned_partner_id,
            partner_name=lead.assigned_partner.name if lead.assigned_partner else "",
            expires_at=expires_at, late=late,
            routing_summary=str((lead.routing or {}).get("summary") or "") if routing else "",
            product_line_name=lead.product_line.name if lead.product_line else "",
            excerpt=excerpt(lead.comments), next_step=next_step,
            quote_amount=lead.quote_amount, last_activity=lead.updated_at,
            assignee=(lead.assigned_user.name or lead.assigned_user.email)
            if lead.assigned_user else "")


def first_contact_due(offered_at: datetime | None, sla: timedelta | None = None
                      ) -> datetime | None:
    """When an accepted lead's first contact is due: ``CONTACT_SLA_HOURS`` (``sla``, for
    a list that has read it once) after the offer (DESIGN section 7: a first contact
    later than that is not on time)."""
    if offered_at is None:
        return None
    return offered_at + (sla or _contact_sla())


def _contact_sla() -> timedelta:
    return timedelta(hours=float(current_app.config["CONTACT_SLA_HOURS"]))


def _cutoff_param() -> Any:
    return bindparam("cutoff", type_=Lead.__table__.c.accepted_at.type)


#: the tabs that grow with a partner's whole history count up to this many, then show
#: "1,000+": counting a dealer's 4,700 closed leads took a third of the inbox's time
TAB_COUNT_CAP = 1_000
_CAPPED_TABS = frozenset({"closed", DEALERS_TAB[0]})


def _counted(tab: str, where: ColumnElement[bool]) -> Select[Any]:
    """``count(*)`` of the leads ``where`` holds; for a capped tab counting stops after
    the cap, so the index entries past it are never read."""
    if tab not in _CAPPED_TABS:
        return select(func.count()).select_from(Lead).where(where)
    upto = select(literal_column("1")).select_from(Lead).where(where).limit(
        TAB_COUNT_CAP + 1).subquery()
    return select(func.count()).select_from(upto)


def _tab_count(tab: str, where: ColumnElement[bool]) -> Select[Any]:
    """One tab's part of the counts statement: (tab, n)."""
    return _counted(tab, where).with_only_columns(literal(tab).label("tab"),
                                                  func.count().label("n"))


def _capped_tab_count(tab: str, held: ColumnElement[bool], statuses: Iterable[str]
                      ) -> Select[Any]:
    """A capped tab's part, (tab, n): its statuses' index ranges one after another,
    counting stops after the cap."""
    upto = union_all(*(select(literal_column("1")).select_from(Lead)
                       .where(held, Lead.status == str(status)) for status in statuses)
                     ).limit(TAB_COUNT_CAP + 1).subquery()
    return select(literal(tab).label("tab"), func.count().label("n")).select_from(upto)


@functools.lru_cache(maxsize=6 * (_MAX_WORDS + 1))
def counts_statement(distributor: bool, words: int = 0, assignee: str = "") -> CompoundSelect:
    """Every tab's count in one statement, made of index ranges: one per status (and
    overdue part). An IN list of statuses would do as well for a plan made for the
    partner at hand, but PostgreSQL plans a prepared statement generically after five
    executions, and that plan filtered the list (2 ms rather than 0.4 for 5,000 leads)."""
    mine: ColumnElement[bool] = Lead.assigned_partner_id == bindparam("partner_id")
    if words:  # a search's matches per tab: the same ranges, each word in the lead's text
        mine = and_(mine, _words_match(_word_params(words), partner=True))
    whose = _assignee_clause(assignee)
    if whose is not None:  # "My leads": the same ranges, one person's (or nobody's)
        mine = and_(mine, whose)
    parts = [
        _tab_count("new", and_(mine, Lead.status == S.OFFERED)),
        _tab_count("contact", and_(mine, Lead.status == S.ACCEPTED)),
        *(_tab_count("open", and_(mine, Lead.status == str(stage))) for stage in OPEN_STAGES),
        *(_tab_count("overdue", and_(mine, part)) for part in overdue_ranges(_cutoff_param())),
        _capped_tab_count("closed", mine, CLOSED_STAGES),
    ]
    if distributor:
        dealers: ColumnElement[bool] = Lead.assigned_partner_id.in_(
            _dealer_ids(bindparam("partner_id")))
        if words:
            dealers = and_(dealers, _words_match(_word_params(words), partner=True))
        if whose is not None:
            dealers = and_(dealers, whose)
        parts.append(_capped_tab_count(DEALERS_TAB[0], dealers, OPEN_STATUSES))
    return union_all(*parts)


def search_counts(session: Session, partner: Partner, q: str, *,
                  now: datetime | None = None,
                  assignee: tuple[str, int | None] = ("", None)) -> dict[str, int]:
    """How many leads of each tab a search's words find (counted as ``inbox_counts``
    counts, capped tabs included), so a search on one tab shows where the others are."""
    words = _word_values(q)
    return _tab_counts(session, partner, now, words, assignee) if words else {}


def inbox_counts(session: Session, partner: Partner, *, now: datetime | None = None,
                 assignee: tuple[str, int | None] = ("", None)) -> dict[str, int]:
    """How many leads each tab holds, in one statement. The closed and dealers' tabs
    count up to ``TAB_COUNT_CAP`` + 1, meaning more than the cap (``count_text`` shows
    "1,000+"); the working tabs are bounded by capacity and count exactly (the compliance
    gate compares the overdue count). ``assignee`` (``assignee_filter``) counts one
    person's leads, or the unassigned ones."""
    return _tab_counts(session, partner, now, {}, assignee)


def _tab_counts(session: Session, partner: Partner, now: datetime | None,
                words: dict[str, str], assignee: tuple[str, int | None] = ("", None)
                ) -> dict[str, int]:
    kind, user_id = assignee
    rows = session.connection().execute(
        counts_statement(partner.kind == PartnerKind.DISTRIBUTOR, len(words), kind),
        {"partner_id": partner.id, "cutoff": overdue_cutoff(now), **words,
         **({"assignee_id": user_id} if kind == "user" else {})})
    counts = dict.fromkeys(tabs_for(partner), 0)
    for tab, n in rows:
        counts[tab] += n  # "overdue" comes in parts
    return counts


def count_text(n: int, tab: str) -> str:
    """A tab's count as shown: "1,234", or for a capped tab "1,000+" past the cap."""
    if tab in _CAPPED_TABS and n > TAB_COUNT_CAP:
        return f"{TAB_COUNT_CAP:,}+"
    return f"{n:,}"


def _dealer_ids(partner_id: Any) -> Select[Any]:
    return select(Partner.id).where(Partner.parent_id == partner_id)


@dataclass(frozen=True)
class _InboxShape:
    """Which statement an inbox request needs: its tab and which filters are set."""

    tab: str
    stage: str
    product_line: bool
    rank: bool
    age: str
    words: int
    dealer: bool
    sort: str = ""
    assignee: str = ""  #: "", "user" or "none" (``assignee_filter``)

    @classmethod
    def of(cls, filters: InboxFilters) -> _InboxShape:
        return cls(tab=filters.tab, stage=filters.stage if filters.stage in _STATUSES else "",
                   product_line=bool(filters.product_line), rank=bool(filters.rank),
                   age=filters.age if filters.age in AGES else "",
                   words=len(_words(filters.q)), dealer=bool(filters.dealer),
                   sort=filters.sort if sort_order(filters.sort) is not None else "",
                   assignee=assignee_filter(filters)[0])

    @property
    def narrowed(self) -> bool:
        """Some filter is set: the tab's count is not the list's. (The assignee filter
        counts its tabs itself: the tabs show one person's leads then.)"""
        return bool(self.stage or self.product_line or self.rank or self.age or self.words
                    or self.dealer)


def _inbox_params(filters: InboxFilters, shape: _InboxShape, now: datetime) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if shape.product_line:
        params["product_line"] = filters.product_line
    if shape.rank:
        params["rank"] = filters.rank
    if shape.age:
        params["age_at"] = _age_start(shape.age, now)
    params.update(_word_values(filters.q))
    if shape.dealer:
        params["dealer"] = filters.dealer
    kind, user_id = assignee_filter(filters)
    if kind == "user":
        params["assignee_id"] = user_id
    return params


@functools.lru_cache(maxsize=256)
def _inbox_statements(shape: _InboxShape) -> tuple[Select[Any], Select[Any]]:
    """One shape's page of cards (in working order, overdue pinned first) and its count."""
    partner_id = bindparam("partner_id")
    cutoff = _cutoff_param()
    tab, stage = shape.tab, shape.stage
    # Offered leads are not being worked yet: on the new tab none is late.
    late: Any = literal(0) if tab == "new" else case((overdue_before(cutoff), 1), else_=0)
    mine = Lead.assigned_partner_id == partner_id
    where: list[ColumnElement[bool]] = []
    order: list[Any]
    if tab == "new":
        # The oldest offer expires first: it heads the list.
        where += [mine, Lead.status == S.OFFERED]
        order = [Lead.offered_at, Lead.id]
    elif tab == "contact":
        where += [mine, Lead.status == S.ACCEPTED]
        order = [late.desc(), Lead.accepted_at, Lead.id]
    elif tab == "open":
        stages = [stage] if stage in OPEN_STAGES else [str(s) for s in OPEN_STAGES]
        stage_order = case({str(s): i for i, s in enumerate(OPEN_STAGES)}, value=Lead.status)
        where += [mine, Lead.status.in_(stages)]
        order = [late.desc(), stage_order.desc(), Lead.accepted_at, Lead.id]
    elif tab == "overdue":
        where += [mine, overdue_before(cutoff)]
        if stage in WORKING_STATUSES:
            where.append(Lead.status == stage)
        order = [Lead.accepted_at, Lead.id]
    elif tab == "closed":
        stages = [stage] if stage in CLOSED_STAGES else [str(s) for s in CLOSED_STAGES]
        where += [mine, Lead.status.in_(stages)]
        order = [Lead.closed_at.desc(), Lead.id]
    else:  # the distributor's dealers' leads (tabs_for offers it to distributors only)
        dealers = _dealer_ids(partner_id)
        if shape.dealer:
            dealers = dealers.where(code_is(Partner.code, bindparam("dealer")))
        where.append(Lead.assigned_partner_id.in_(dealers))
        where.append(Lead.status == stage if stage
                     else Lead.status.in_([str(s) for s in OPEN_STATUSES]))
        order = [late.desc(), Lead.updated_at.desc(), Lead.id]
    where += _narrowing(
        product_line=bindparam("product_line") if shape.product_line else None,
        rank=bindparam("rank") if shape.rank else None,
        age=shape.age, age_at=bindparam("age_at", type_=Lead.__table__.c.created_at.type),
        patterns=_word_params(shape.words), partner=True)
    whose = _assignee_clause(shape.assignee)
    if whose is not None:
        where.append(whose)

    expires: Any = null()
    if tab in ("new", DEALERS_TAB[0]):  # the tabs that list offered leads
        # By lead id (ix_offers_lead): the page's few offers, the pending one among them.
        expires = (select(Offer.expires_at)
                   .where(Offer.lead_id == Lead.id, Offer.response == OfferResponse.PENDING)
                   .order_by(Offer.id.desc()).limit(1).scalar_subquery())
    holder: Any = literal("")
    if tab == DEALERS_TAB[0]:
        holder = select(Partner.name).where(
            Partner.id == Lead.assigned_partner_id).scalar_subquery()
    # The contact tab lists accepted leads not yet contacted: each with its contact clock
    # (none once a try that got no answer counted as the first contact).
    contact_from: Any = (case((Lead.first_contact_at.is_(None), Lead.offered_at), else_=null())
                         if tab == "contact" else null())
    # Who of the firm works it (by primary key: a page's few users).
    assignee = (select(func.coalesce(func.nullif(User.name, ""), User.email))
                .where(User.id == Lead.assigned_user_id).scalar_subquery())
    order = sort_order(shape.sort) or order  # a column the user sorts by, else the tab's
    page = (select(Lead.id, Lead.first_name, Lead.last_name, Lead.company, Lead.email,
                   Lead.postal_code, Lead.city, Lead.product_line_id, Lead.created_at,
                   Lead.rank, Lead.status, Lead.assigned_partner_id,
                   holder.label("partner_name"), expires.label("expires_at"),
                   late.label("late"), contact_from.label("contact_from"),
                   # what the next step needs: the message's start (cut in Python)
                   func.substr(Lead.comments, 1, EXCERPT_CHARS * 2).label("comments"),
                   appointment_day().label("appointment"), Lead.quote_amount,
                   Lead.updated_at, assignee.label("assignee"))
            .where(*where).order_by(*order)
            .limit(bindparam("limit")).offset(bindparam("offset")))
    count = _counted(tab, and_(*where))
    return page, count


#: product lines for the filters and the cards' codes (a few dozen rows at most)
_PRODUCT_LINES = select(ProductLine.id, ProductLine.code, ProductLine.name).order_by(
    ProductLine.code)


def list_total(session: Session, partner: Partner, filters: InboxFilters,
               counts: dict[str, int], *, now: datetime | None = None) -> Page[Card]:
    """How many leads an inbox list holds (an empty page with its total), as ``inbox``
    counts them: the tab's count, or with a filter set, the filtered count."""
    now = now or utcnow()
    if filters.tab not in counts:  # a tab this partner does not have
        filters.tab = "new"
    shape = _InboxShape.of(filters)
    return _counted_page(session, shape, _list_params(partner, filters, shape, now),
                         counts[filters.tab])


def _list_params(partner: Partner, filters: InboxFilters, shape: _InboxShape,
                 now: datetime) -> dict[str, Any]:
    return {"partner_id": partner.id, "cutoff": overdue_cutoff(now),
            **_inbox_params(filters, shape, now)}


def _counted_page(session: Session, shape: _InboxShape, params: dict[str, Any],
                  tab_count: int) -> Page[Card]:
    """The list's total: the tab's count, unless a filter narrows it (one more count)."""
    total = tab_count
    if shape.narrowed:
        total = session.connection().execute(_inbox_statements(shape)[1],
                                             params).scalar_one()
    capped = shape.tab in _CAPPED_TABS and total > TAB_COUNT_CAP
    return Page(items=[], number=1, pages=1, total=TAB_COUNT_CAP if capped else total,
                capped=capped)


def product_lines(session: Session) -> list[tuple[int, str, str]]:
    """Every product line as (id, code, name), by code."""
    return [(line_id, code, name) for line_id, code, name in
            session.connection().execute(_PRODUCT_LINES)]


@dataclass
class Inbox:
    """What the inbox page shows."""

    partner: Partner
    filters: InboxFilters
    tabs: dict[str, str]
    counts: dict[str, int]
    page: Page[Card]
    #: (code, name) of every product line, for the filter
    product_lines: list[tuple[str, str]]
    gate: str | None
    now: datetime
    #: with search words: how many leads each tab holds that match them
    matches: dict[str, int] = field(default_factory=dict)

    @property
    def elsewhere(self) -> list[tuple[str, int]]:
        """The other tabs this search finds leads in (``matches_elsewhere``)."""
        return matches_elsewhere(self.matches, self.filters.tab)


def matches_elsewhere(matches: dict[str, int], tab: str) -> list[tuple[str, int]]:
    """The tabs other than ``tab`` a search finds leads in, with how many (in tab order).
    Overdue leads also sit in To contact or Open, so the overdue tab is never named, and
    the overdue tab names neither: every lead named is one the list does not show."""
    hidden = {tab, "overdue"}
    if tab == "overdue":
        hidden |= {"contact", "open"}
    return [(other, n) for other, n in matches.items() if other not in hidden and n]


def inbox(session: Session, partner: Partner, filters: InboxFilters, *, page: int,
          per_page: int, now: datetime | None = None, where: Callable[[], tzinfo] = _utc
          ) -> Inbox:
    """One inbox tab: counts, the page of cards with offer deadlines and overdue marks.

    Four statements whatever the number of leads (the user with its partner comes
    first, from the login), five when a filter narrows the tab, six with search words
    (their matches on the other tabs); the query-count test guards it.
    """
    now = now or utcnow()
    tabs = tabs_for(partner)
    if filters.tab not in tabs:
        filters.tab = "new"
    whose = assignee_filter(filters)
    counts = inbox_counts(session, partner, now=now, assignee=whose)
    conn = session.connection()
    lines = product_lines(session)
    shape = _InboxShape.of(filters)
    page_statement = _inbox_statements(shape)[0]
    params = _list_params(partner, filters, shape, now)
    counted = _counted_page(session, shape, params, counts[filters.tab])
    total, capped = counted.total, counted.capped
    pages = max(1, math.ceil(total / per_page))
    number = min(max(1, page), pages)
    rows = conn.execute(page_statement, {**params, "limit": per_page,
                                         "offset": (number - 1) * per_page})
    cards = next_steps(session, cards_of(rows, lines), where)
    return Inbox(partner=partner, filters=filters, tabs=tabs, counts=counts,
                 page=Page(items=cards, number=number, pages=pages, total=total,
                           capped=capped),
                 product_lines=[(code, name) for _, code, name in lines],
                 gate=gate_reason(counts["overdue"], gate_limit()), now=now,
                 matches=search_counts(session, partner, filters.q, now=now,
                                       assignee=whose))


#: an export holds at most this many leads (filters and search narrow it)
EXPORT_CAP = 10_000


def export_rows(session: Session, partner: Partner, filters: InboxFilters, *,
                now: datetime | None = None, where: Callable[[], tzinfo] = _utc
                ) -> list[tuple[Card, Any]]:
    """The leads of one inbox list as filtered and sorted, up to ``EXPORT_CAP``, each with
    its row, which also holds ``email``, ``phone``, ``address``, ``region`` and
    ``owner_partner_id``: the list's own statement with those columns added."""
    now = now or utcnow()
    if filters.tab not in tabs_for(partner):
        filters.tab = "new"
    shape = _InboxShape.of(filters)
    statement = _inbox_statements(shape)[0].add_columns(Lead.phone, Lead.address,
                                                        Lead.region, Lead.owner_partner_id)
    rows = session.connection().execute(
        statement, {**_list_params(partner, filters, shape, now), "limit": EXPORT_CAP,
                    "offset": 0}).all()
    cards = next_steps(session, cards_of(rows, product_lines(session)), where)
    return list(zip(cards, rows, strict=True))


def cards_of(rows: Iterable[Any], lines: list[tuple[int, str, str]]) -> list[Card]:
    """The cards of a page's rows (``_inbox_statements``' columns in order)."""
    codes = {line_id: code for line_id, code, _ in lines}
    names = {line_id: name for line_id, _, name in lines}
    sla = _contact_sla()
    return [
        Card(lead_id, str(lead_id), _card_name(first, last, company, email, status),
             company, postal_code, city,
             codes.get(line_id, ""), created_at, rank, status, holder_id, holder or "",
             expires_at, bool(late), "", first_contact_due(contact_from, sla),
             names.get(line_id, ""), excerpt(comments), next_step_of(appointment),
             quote_amount, updated_at, assignee or "")
        for (lead_id, first, last, company, email, postal_code, city, line_id, created_at,
             rank, status, holder_id, holder, expires_at, late, contact_from, comments,
             appointment, quote_amount, updated_at, assignee, *_more) in rows
    ]


def _card_name(first: str, last: str, company: str, email: str, status: str) -> str:
    # A new offer is never called by its address: contact details wait for the accept.
    return display_name(first, last, company, "" if status == S.OFFERED else email)


def time_left(expires_at: datetime | None, now: datetime) -> str:
    """"5 h 20 min left", "expired": how long a partner has to accept."""
    if expires_at is None:
        return ""
    seconds = int((expires_at - now).total_seconds())
    if seconds <= 0:
        return "expired"
    hours, minutes = divmod(seconds // 60, 60)
    if hours >= 48:
        return f"{hours // 24} days left"
    if hours:
        return f"{hours} h {minutes:02d} min left"
    return f"{max(minutes, 1)} min left"


def is_overdue(lead: Lead, now: datetime | None = None) -> bool:
    """The lead is being worked and its outcome is past due (in Python, for one lead)."""
    if lead.status not in WORKING_STATUSES:
        return False
    started = lead.accepted_at or lead.offered_at
    days = float(current_app.config["OUTCOME_DUE_DAYS"])
    return started is not None and started < (now or utcnow()) - timedelta(days=days)


def due_on(lead: Lead) -> datetime | None:
    """When the lead's outcome is due."""
    started = lead.accepted_at or lead.offered_at
    if started is None or lead.status not in WORKING_STATUSES:
        return None
    return started + timedelta(days=float(current_app.config["OUTCOME_DUE_DAYS"]))


def partner_gate(session: Session, partner: Partner) -> str | None:
    """Why the compliance gate holds back this partner's offers, or None."""
    limit = gate_limit()
    if limit is None:
        return None
    return gate_reason(overdue_counts(session, [partner.id]).get(partner.id, 0), limit)


