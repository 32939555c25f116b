"""The channel overview: what became of the leads captured in a period.

Where the league table counts offers (DESIGN §7, per partner), the overview counts leads:
each lead captured in the period (``leads.created_at`` in [since, until)) once, with what
any partner did with it by the report's end. One grouped query makes a row of facts per
lead from its offers (first offer, accepted, first contact, outcome) and counts those rows
per day of capture: the funnel, the seeds' three questions and the weekly trend are sums of
those days. Two window queries give the medians. Nothing loops over leads in Python.

With a distributor chosen, only the leads offered to it or its dealers count, and only
their offers: what the distributor's family did with them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Subquery,
    and_,
    case,
    exists,
    func,
    literal,
    select,
)
from sqlalchemy.orm import Session, selectinload

from portal.core import rollups
from portal.core.models import (
    DurationMonth,
    Lead,
    LeadDay,
    LeadEvent,
    LeadFacts,
    LeadStatus,
    Offer,
    utcnow,
)
from portal.reports.metrics import (
    Scope,
    cover,
    durations,
    median_of_counts,
    rounded_seconds,
)

#: a lead reached a partner "at once" when its first offer came within this many seconds
ROUTED_WITHIN_SECONDS = rollups.ROUTED_WITHIN_SECONDS


def seconds_between(start: Any, end: Any) -> ColumnElement[int]:
    """Seconds from ``start`` to ``end`` to the nearest: compared at a boundary (60 s, 1 h)
    the same way on both databases and in the rollups."""
    return rounded_seconds(start, end)


def lead_where(scope: Scope) -> list[ColumnElement[bool]]:
    """The scope's period and filters, on the lead (captured in the period)."""
    clauses = [Lead.created_at >= scope.since, Lead.created_at < scope.until]
    if scope.region:
        clauses.append(Lead.region == scope.region)
    if scope.product_line_id is not None:
        clauses.append(Lead.product_line_id == scope.product_line_id)
    if scope.campaign_id is not None:
        clauses.append(Lead.campaign_id == scope.campaign_id)
    if scope.source_id is not None:
        clauses.append(Lead.source_id == scope.source_id)
    if scope.rank:
        clauses.append(Lead.rank == scope.rank)
    return clauses


def lead_facts(scope: Scope, end: datetime) -> Subquery:
    """One row per lead captured in the scope: when it was captured, whether it was ever
    qualified, when a partner first had it, and what partners did with it by ``end``.

    Columns: ``id``, ``created_at``, ``qualified``, ``offered``, ``routed_at`` (the first
    offer the portal made, by rule or by a manager, not a partner's own capture),
    ``accepted``, ``touched_at`` (first contact, or the outcome if none was logged), ``won``,
    ``lost``, ``lost_to_competitor``.
    """
    o = Offer
    offered = o.offered_at < end
    touched = case((o.contacted_at < end, o.contacted_at), (o.closed_at < end, o.closed_at))
    closed_as = {outcome: and_(o.outcome == outcome, o.closed_at < end)
                 for outcome in ("won", "lost")}
    ever_qualified = exists().where(LeadEvent.lead_id == Lead.id,
                                    LeadEvent.to_status == LeadStatus.QUALIFIED,
                                    LeadEvent.at < end)

    def flag(condition: ColumnElement[bool]) -> Any:
        return func.max(case((condition, 1), else_=0))

    query = (select(
        Lead.id.label("id"),
        Lead.created_at.label("created_at"),
        ever_qualified.label("qualified"),
        flag(offered).label("offered"),
        func.min(case((and_(offered, o.method != "self"), o.offered_at))).label("routed_at"),
        flag(o.accepted_at < end).label("accepted"),
        func.min(touched).label("touched_at"),
        flag(closed_as["won"]).label("won"),
        flag(closed_as["lost"]).label("lost"),
        flag(and_(closed_as["lost"], o.lost_reason == "competitor")).label("lost_to_competitor"),
    ).where(*lead_where(scope)).group_by(Lead.id, Lead.created_at))
    if scope.partner_ids is None:
        query = query.outerjoin(o, o.lead_id == Lead.id)
    else:  # only the leads the family was offered, and only its own offers of them
        query = query.join(o, and_(o.lead_id == Lead.id,
                                   o.partner_id.in_(sorted(scope.partner_ids) or [0])))
    return query.subquery("lead_facts")


def conditions(facts: Subquery) -> dict[str, ColumnElement[bool]]:
    """Each counted figure as a condition on one lead's facts (also what the list of the
    leads behind a number filters on)."""
    c = facts.c
    routed = c.routed_at.is_not(None)
    return {
        "captured": c.id.is_not(None),
        "qualified": c.qualified == True,  # noqa: E712 - a SQL comparison
        "offered": c.offered == 1,
        "routed": routed,
        "routed_fast": and_(routed, seconds_between(c.created_at, c.routed_at)
                            <= ROUTED_WITHIN_SECONDS),
        "accepted": c.accepted == 1,
        "contacted": c.touched_at.is_not(None),
        "won": c.won == 1,
        "lost": c.lost == 1,
        "lost_to_competitor": c.lost_to_competitor == 1,
        "untouched": and_(c.offered == 1, c.accepted == 0, c.touched_at.is_(None)),
    }


# --- the figures ---------------------------------------------------------------------------


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass
class Counts:
    """Leads counted for one stretch of capture days (a day, a week, the whole period)."""

    captured: int = 0
    qualified: int = 0
    offered: int = 0
    routed: int = 0
    routed_fast: int = 0
    accepted: int = 0
    contacted: int = 0
    won: int = 0
    lost: int = 0
    lost_to_competitor: int = 0
    untouched: int = 0

    def add(self, other: Counts) -> None:
        for f in fields(self):
            setattr(self, f.name, getattr(self, f.name) + getattr(other, f.name))

    @property
    def qualified_share(self) -> float | None:
        return _share(self.qualified, self.captured)

    @property
    def routed_fast_share(self) -> float | None:
        return _share(self.routed_fast, self.routed)

    @property
    def win_rate(self) -> float | None:
        return _share(self.won, self.won + self.lost)


#: the funnel's stages in order: figure, label
FUNNEL = (("captured", "Captured"), ("qualified", "Qualified"), ("offered", "Offered"),
          ("accepted", "Accepted"), ("contacted", "Contacted"), ("won", "Won"))


@dataclass
class Week:
    """One week of the trend: the seven days of capture from ``start``."""

    start: date
    counts: Counts = field(default_factory=Counts)


@dataclass
class Overview:
    """What became of the leads captured in a scope."""

    total: Counts
    weeks: list[Week]
    median_hours_to_offer: float | None = None
    median_hours_to_contact: float | None = None

    def add_day(self, scope: Scope, day: date, counts: Counts) -> None:
        """Add one day of capture's counts to the total and to its week."""
        self.total.add(counts)
        index = (day - scope.since.astimezone(UTC).date()).days // 7
        if 0 <= index < len(self.weeks):
            self.weeks[index].counts.add(counts)

    def funnel(self) -> list[tuple[str, str, int, float | None, float | None]]:
        """Each stage: figure, label, leads, share of captured, share of the stage before."""
        stages = []
        before: int | None = None
        for name, label in FUNNEL:
            n = getattr(self.total, name)
            stages.append((name, label, n, _share(n, self.total.captured),
                           None if before is None else _share(n, before)))
            before = n
        return stages


def weeks_of(scope: Scope) -> list[date]:
    """The first day of each week of the period (the last one may be shorter)."""
    starts, day = [], scope.since.date()
    while day < scope.until.date():
        starts.append(day)
        day += timedelta(days=7)
    return starts


def _day(value: Any) -> date:
    # A date from PostgreSQL; SQLite's DATE() hands back its ISO text.
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def overview(session: Session, scope: Scope, *, now: datetime | None = None) -> Overview:
    """The overview's figures: counts per day of capture summed into the period and its
    weeks, and the two medians. From the rollups when ``rolled_up`` allows (the days from
    ``lead_days``, the medians from ``duration_months`` and ``lead_facts``), else read
    live (one grouped query for the counts, one for each median)."""
    if rolled_up(session, scope, now=now):
        return _from_rollups(session, scope)
    end = scope.end(now)
    facts = lead_facts(scope, end)
    counted = conditions(facts)
    day = func.date(facts.c.created_at, type_=Date).label("day")
    query = (select(day, *[func.count().filter(cond).label(name)
                           for name, cond in counted.items() if name != "captured"],
                    func.count().label("captured"))
             .group_by(day))
    ov = Overview(total=Counts(), weeks=[Week(start) for start in weeks_of(scope)])
    for row in session.execute(query):
        values = row._mapping
        ov.add_day(scope, _day(values["day"]),
                   Counts(**{f.name: int(values[f.name] or 0) for f in fields(Counts)}))
    routed = counted["routed"]
    ov.median_hours_to_offer = median(session, facts.c.created_at, facts.c.routed_at, routed)
    ov.median_hours_to_contact = median(session, facts.c.created_at, facts.c.touched_at,
                                        and_(routed, counted["contacted"]))
    return ov


def median(session: Session, start: Any, end: Any, where: ColumnElement[bool]
           ) -> float | None:
    """The median time from ``start`` to ``end`` in hours over the rows ``where`` holds:
    the rows counted by how long they took (``duration``), the middle found in the counts
    (as the rollups keep them)."""
    return median_of_counts((seconds, n) for _, seconds, n in durations(
        session, literal(1), start, end, [where]))


# --- from the rollups ----------------------------------------------------------------------


def _midnight(moment: datetime) -> bool:
    return moment.astimezone(UTC).time() == time(0)


def rolled_up(session: Session, scope: Scope, *, now: datetime | None = None) -> bool:
    """May the overview be read from the rollups: whole days, by now (a period that has
    not ended), no filter (they count every lead) and the rollups built."""
    return (not scope.live and now is None and not scope.filters_leads
            and scope.partner_ids is None and scope.until >= utcnow()
            and _midnight(scope.since) and _midnight(scope.until)
            and rollups.readable(session))


def days(session: Session, scope: Scope) -> list[LeadDay]:
    """The rollup rows of the scope's days of capture."""
    return list(session.scalars(select(LeadDay).where(
        LeadDay.day >= scope.since.astimezone(UTC).date(),
        LeadDay.day < scope.until.astimezone(UTC).date()).order_by(LeadDay.day)))


def _from_rollups(session: Session, scope: Scope) -> Overview:
    ov = Overview(total=Counts(), weeks=[Week(start) for start in weeks_of(scope)])
    for row in days(session, scope):
        ov.add_day(scope, row.day, Counts(**{f.name: getattr(row, f.name)
                                             for f in fields(Counts)}))
    ov.median_hours_to_offer = rolled_median(session, scope, "offer")
    ov.median_hours_to_contact = rolled_median(session, scope, "contact")
    return ov


def rolled_median(session: Session, scope: Scope, kind: str) -> float | None:
    """The median capture → first offer (``offer``) or → first contact (``contact``) of
    the leads captured in the scope: the months from ``duration_months``, with the days
    of a month the period holds in part added from ``lead_facts`` or taken away
    (``metrics.cover``)."""
    found: dict[int, int] = {}

    def count(rows: Any, sign: int = 1) -> None:
        for seconds, n in rows:
            found[int(seconds)] = found.get(int(seconds), 0) + sign * int(n)

    the_cover = cover(scope.since, scope.until, utcnow())
    if the_cover.months:
        count(session.execute(
            select(DurationMonth.seconds, func.sum(DurationMonth.n))
            .where(DurationMonth.kind == kind, DurationMonth.month.in_(the_cover.months))
            .group_by(DurationMonth.seconds)))
    f = LeadFacts
    to = f.routed_at if kind == "offer" else f.touched_at
    for piece in the_cover.pieces:
        count(((seconds, n) for _, seconds, n in durations(
            session, literal(1), f.created_at, to,
            [f.created_at >= piece.since, f.created_at < piece.until,
             f.routed_at.is_not(None), to.is_not(None)])), piece.sign)
    return median_of_counts(found.items())


# --- from a number to its leads ------------------------------------------------------------


def leads_behind(scope: Scope, figure: str, *, now: datetime | None = None,
                 limit: int = 500) -> Select[Any] | None:
    """The leads counted in ``figure`` (newest first, at most ``limit``) with their facts,
    or None for a figure the overview does not count."""
    facts = lead_facts(scope, scope.end(now))
    cond = conditions(facts).get(figure)
    if cond is None:
        return None
    return (select(Lead, facts.c.routed_at, facts.c.touched_at)
            .join(facts, facts.c.id == Lead.id).where(cond)
            .options(selectinload(Lead.assigned_partner), selectinload(Lead.lost_competitor))
            .order_by(Lead.created_at.desc(), Lead.id).limit(limit))

