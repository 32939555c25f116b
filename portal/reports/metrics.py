"""The channel's figures per partner, exactly as DESIGN §7 defines them.

Every figure is over the offers made to a partner in the period (``offered_at`` in
[since, until)), and counts what that partner did with its own offer by the report's end
(``until``, or now if sooner): the lifecycle keeps accepted / first contact / outcome on
the offer row in each event's transaction, so one grouped query over ``offers`` answers
for every partner with no join and no replay of events, and a lead that changes after a
report was made changes the next one. A distributor's offer it passed on to a dealer
(``forwarded``) is the dealer's to work: it counts for the dealer, and the distributor's
rolled-up row adds its dealers' offers to its own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from operator import attrgetter
from typing import Any

from flask import current_app
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Float,
    Integer,
    Select,
    and_,
    case,
    cast,
    func,
    literal,
    or_,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from portal.core import rollups
from portal.core.models import (
    Competitor,
    DurationMonth,
    Offer,
    OfferDay,
    OfferMonth,
    OfferResponse,
    Partner,
    utcnow,
)

R = OfferResponse


# --- time between two stamps, in hours, on either database ---------------------------------


class hours_between(FunctionElement[float]):  # noqa: N801 - reads as a SQL function
    """``hours_between(a, b)``: the hours from a to b (fractional)."""

    type = Float()
    inherit_cache = True


@compiles(hours_between)
def _hours_sqlite(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return (f"((julianday({compiler.process(end, **kw)}) - "
            f"julianday({compiler.process(start, **kw)})) * 24.0)")


@compiles(hours_between, "postgresql")
def _hours_postgresql(element: hours_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    # date_part is double precision; EXTRACT is numeric since PostgreSQL 14, 2-3× slower
    # over a million rows
    return (f"(date_part('epoch', {compiler.process(end, **kw)} - "
            f"{compiler.process(start, **kw)}) / 3600.0)")


class seconds_between(FunctionElement[int]):  # noqa: N801 - reads as a SQL function
    """``seconds_between(a, b)``: whole seconds from a to b (rounded on SQLite, whose
    julianday() arithmetic is floating point: a week boundary must not fall a hair short)."""

    type = Integer()
    inherit_cache = True


@compiles(seconds_between)
def _seconds_sqlite(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return (f"CAST(ROUND((julianday({compiler.process(end, **kw)}) - "
            f"julianday({compiler.process(start, **kw)})) * 86400.0) AS INTEGER)")


@compiles(seconds_between, "postgresql")
def _seconds_postgresql(element: seconds_between, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return (f"CAST(FLOOR(date_part('epoch', {compiler.process(end, **kw)} - "
            f"{compiler.process(start, **kw)})) AS BIGINT)")


class elapsed_seconds(FunctionElement[int]):  # noqa: N801 - reads as a SQL function
    """``elapsed_seconds(a, b)``: whole seconds from a to b, rounded down (as the rollups
    count durations, ``portal.core.rollups.duration_seconds``)."""

    type = Integer()
    inherit_cache = True


def _sqlite_micros(start: str, end: str) -> str:
    """Microseconds from ``start`` to ``end`` in SQLite, exactly: whole seconds by
    strftime('%s') of the text to the second, the fractions from the rest of the stored
    text (SQLite's date functions round to the millisecond, so 59.9997 s would read as 60).
    SQLAlchemy stores 'YYYY-MM-DD HH:MM:SS.ffffff'."""
    def fraction(x: str) -> str:
        return f"CAST(substr({x} || '.000000', 21, 6) AS INTEGER)"

    def whole(x: str) -> str:  # the text to the second: strftime would round .9995 up
        return f"CAST(strftime('%s', substr({x}, 1, 19)) AS INTEGER)"

    return f"(({whole(end)} - {whole(start)}) * 1000000 + {fraction(end)} - {fraction(start)})"


@compiles(elapsed_seconds)
def _elapsed_sqlite(element: elapsed_seconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"({_sqlite_micros(start, end)} / 1000000)"


class rounded_seconds(FunctionElement[int]):  # noqa: N801 - reads as a SQL function
    """``rounded_seconds(a, b)``: seconds from a to b to the nearest, halves up (as the
    rollups count "routed within a minute" and the speed buckets,
    ``portal.core.rollups.whole_seconds``)."""

    type = Integer()
    inherit_cache = True


@compiles(rounded_seconds)
def _rounded_sqlite(element: rounded_seconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"(({_sqlite_micros(start, end)} + 500000) / 1000000)"


@compiles(rounded_seconds, "postgresql")
def _rounded_postgresql(element: rounded_seconds, compiler: Any, **kw: Any) -> str:
    start, end = (compiler.process(c, **kw) for c in element.clauses)
    return f"CAST(FLOOR(date_part('epoch', {end} - {start}) + 0.5) AS BIGINT)"


@compiles(elapsed_seconds, "postgresql")
def _elapsed_postgresql(element: elapsed_seconds, compiler: Any, **kw: Any) -> str:
    start, end = list(element.clauses)
    return (f"CAST(FLOOR(date_part('epoch', {compiler.process(end, **kw)} - "
            f"{compiler.process(start, **kw)})) AS BIGINT)")


def duration(start: Any, end: Any) -> ColumnElement[int]:
    """A duration as the medians count it, in seconds: whole seconds to an hour, whole
    minutes to two days, whole hours beyond, never negative
    (``rollups.duration_seconds`` in SQL)."""
    return _bucket(elapsed_seconds(start, end))


def _bucket(seconds: Any) -> ColumnElement[int]:
    return case((seconds < 0, 0), (seconds < rollups.SECONDS_UP_TO, seconds),
                (seconds < rollups.MINUTES_UP_TO, (seconds // 60) * 60),
                else_=(seconds // 3600) * 3600)


def durations(session: Session, key: Any, start: Any, end: Any, where: Sequence[Any],
              join: Callable[[Select[Any]], Select[Any]] | None = None) -> list[Any]:
    """(key, duration, how many) of the rows ``where`` holds: each row's elapsed time
    computed once (on SQLite a subquery it does not flatten: its exact seconds parse the
    stored text, too dear to repeat in each branch of the bucket's CASE)."""
    inner = select(key.label("k"), elapsed_seconds(start, end).label("s")).where(*where)
    if join is not None:
        inner = join(inner)
    if session.get_bind().dialect.name == "sqlite":
        inner = inner.limit(-1)  # a subquery with a LIMIT is not flattened into a GROUP BY
    rows = inner.subquery()
    took = _bucket(rows.c.s)
    return session.connection().execute(
        select(rows.c.k, took, func.count()).group_by(rows.c.k, took)).all()


def median_of_counts(counts: Iterable[tuple[int, int]]) -> float | None:
    """The median of a histogram of (seconds, how many): the middle value, or the mean of
    the middle two, in hours."""
    ordered = sorted((int(v), int(n)) for v, n in counts if n > 0)
    total = sum(n for _, n in ordered)
    if not total:
        return None
    low, high = (total + 1) // 2, (total + 2) // 2  # 1-based positions of the middle
    seen, found = 0, []
    for value, n in ordered:
        while len(found) < 2 and seen + n >= (low, high)[len(found)]:
            found.append(value)
        seen += n
        if len(found) == 2:
            break
    return (found[0] + found[1]) / 2 / 3600


# --- what is asked -------------------------------------------------------------------------


@dataclass(frozen=True)
class Scope:
    """Which offers a report is over: the period and the filters."""

    since: datetime
    until: datetime
    partner_ids: frozenset[int] | None = None  #: only these partners' offers
    region: str = ""  #: ISO 3166-2, e.g. US-IA
    product_line_id: int | None = None
    campaign_id: int | None = None
    source_id: int | None = None
    rank: str = ""
    live: bool = False  #: read every offer, never the rollups (tests compare the two)

    def end(self, now: datetime | None = None) -> datetime:
        """The report's end: what happened by then counts."""
        return min(self.until, now or utcnow())

    @property
    def filters_leads(self) -> bool:
        """Does it filter on the lead's attributes (the rollups count every lead)?"""
        return bool(self.region or self.rank) or any(
            v is not None for v in (self.product_line_id, self.campaign_id, self.source_id))

    def where(self) -> list[ColumnElement[bool]]:
        clauses = [Offer.offered_at >= self.since, Offer.offered_at < self.until]
        if self.partner_ids is not None:
            clauses.append(Offer.partner_id.in_(sorted(self.partner_ids) or [0]))
        if self.region:
            clauses.append(Offer.region == self.region)
        if self.product_line_id is not None:
            clauses.append(Offer.product_line_id == self.product_line_id)
        if self.campaign_id is not None:
            clauses.append(Offer.campaign_id == self.campaign_id)
        if self.source_id is not None:
            clauses.append(Offer.source_id == self.source_id)
        if self.rank:
            clauses.append(Offer.rank == self.rank)
        return clauses


def contact_sla() -> timedelta:
    return timedelta(hours=float(current_app.config["CONTACT_SLA_HOURS"]))


def outcome_due() -> timedelta:
    return timedelta(days=float(current_app.config["OUTCOME_DUE_DAYS"]))


# --- the figures ---------------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(slots=True)
class Figures:
    """One partner's (or a roll-up's, or the channel's) figures for a scope."""

    offered: int = 0
    accepted: int = 0
    declined: int = 0
    expired: int = 0
    followed_up: int = 0
    on_time: int = 0
    overdue: int = 0
    accepted_past_due: int = 0
    won: int = 0
    lost: int = 0
    no_interest: int = 0
    untouched: int = 0
    revenue_won: Decimal = Decimal(0)
    median_hours_to_accept: float | None = None
    declined_by: dict[str, int] = field(default_factory=dict)
    lost_to: dict[str, int] = field(default_factory=dict)

    COUNTS = ("offered", "accepted", "declined", "expired", "followed_up", "on_time",
              "overdue", "accepted_past_due", "won", "lost", "no_interest", "untouched")

    @property
    def acceptance_rate(self) -> float | None:
        return _rate(self.accepted, self.offered)

    @property
    def follow_up_rate(self) -> float | None:
        return _rate(self.followed_up, self.offered)

    @property
    def on_time_follow_up_rate(self) -> float | None:
        return _rate(self.on_time, self.offered)

    @property
    def outcome_compliance(self) -> float | None:
        if not self.accepted_past_due:
            return None
        return 1 - self.overdue / self.accepted_past_due

    @property
    def win_rate(self) -> float | None:
        return _rate(self.won, self.won + self.lost)

    def add(self, other: Figures) -> None:
        """Add ``other``'s counts (a roll-up); the median is recomputed, not added."""
        for name, mine_n, theirs_n in zip(self.COUNTS, counts_of(self), counts_of(other),
                                          strict=True):
            setattr(self, name, mine_n + theirs_n)
        self.revenue_won += other.revenue_won
        for mine, theirs in ((self.declined_by, other.declined_by),
                             (self.lost_to, other.lost_to)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    def as_json(self) -> dict[str, Any]:
        """Each metric by its DESIGN §7 name (rates as fractions, None when undefined)."""
        return {
            "offered": self.offered, "accepted": self.accepted, "declined": self.declined,
            "declined_by_reason": dict(sorted(self.declined_by.items())),
            "expired": self.expired, "acceptance_rate": self.acceptance_rate,
            "median_hours_to_accept": self.median_hours_to_accept,
            "followed_up": self.followed_up, "follow_up_rate": self.follow_up_rate,
            "on_time_follow_up_rate": self.on_time_follow_up_rate,
            "overdue": self.overdue, "accepted_past_due": self.accepted_past_due,
            "outcome_compliance": self.outcome_compliance,
            "won": self.won, "lost": self.lost, "no_interest": self.no_interest,
            "win_rate": self.win_rate,
            "lost_to": dict(sorted(self.lost_to.items(), key=lambda kv: (-kv[1], kv[0]))),
            "revenue_won": str(self.revenue_won.quantize(Decimal("0.01"))),
            "untouched": self.untouched,
        }


#: a Figures' counts as a tuple, in ``Figures.COUNTS`` order
counts_of = attrgetter(*Figures.COUNTS)


def conditions(end: datetime) -> dict[str, ColumnElement[bool]]:
    """Each counted figure as a condition on one offer row, by the report's end. Also what
    the drill-down from a number to its leads filters on."""
    sla_hours = contact_sla().total_seconds() / 3600
    due_before = end - outcome_due()
    accepted = Offer.accepted_at < end
    contacted = Offer.contacted_at < end
    closed = Offer.closed_at < end
    held = and_(accepted, Offer.response == R.ACCEPTED)  # accepted and not taken back since
    return {
        "offered": Offer.id.is_not(None),
        "accepted": accepted,
        "declined": and_(Offer.response == R.DECLINED, Offer.responded_at < end),
        "expired": and_(Offer.response == R.EXPIRED, Offer.responded_at < end),
        "followed_up": or_(contacted, closed),
        "on_time": or_(
            and_(contacted, hours_between(Offer.offered_at, Offer.contacted_at) <= sla_hours),
            and_(closed, hours_between(Offer.offered_at, Offer.closed_at) <= sla_hours)),
        "overdue": and_(held, Offer.offered_at < due_before,
                        or_(Offer.closed_at.is_(None), Offer.closed_at >= end)),
        "accepted_past_due": and_(held, Offer.offered_at < due_before),
        "won": and_(Offer.outcome == "won", closed),
        "lost": and_(Offer.outcome == "lost", closed),
        "no_interest": and_(Offer.outcome == "no_interest", closed),
        # Spelt out, not NOT(accepted OR …): a NOT over NULLs would count nothing.
        "untouched": and_(or_(Offer.accepted_at.is_(None), Offer.accepted_at >= end),
                          or_(Offer.contacted_at.is_(None), Offer.contacted_at >= end),
                          or_(Offer.closed_at.is_(None), Offer.closed_at >= end)),
    }


def not_forwarded() -> ColumnElement[bool]:
    """A distributor's offer it passed on is its dealer's to work, not its own."""
    return Offer.response != R.FORWARDED


#: what figures_by groups on: each partner, each distributor with its dealers, everyone
#: ... or each week of the scope (key 0 for the week from ``since``, 1 for the next …)
BY_PARTNER, BY_ROLLUP, BY_NOTHING, BY_WEEK = "partner", "rollup", "all", "week"


def _key(by: str, scope: Scope | None = None) -> Any:
    if by == BY_PARTNER:
        return Offer.partner_id
    if by == BY_ROLLUP:  # the distributor a partner rolls up to: its parent, or itself
        return func.coalesce(Partner.parent_id, Partner.id)
    if by == BY_WEEK:
        assert scope is not None
        start = literal(scope.since, Offer.offered_at.type)
        return seconds_between(start, Offer.offered_at) // (7 * 86400)
    return literal(1)


def _counted(end: datetime) -> tuple[dict[str, ColumnElement[bool]], list[Any]]:
    """Each counted figure's condition and, for a grouped select, its filtered count (and
    the won revenue)."""
    counted = conditions(end)
    columns = [func.count().filter(cond).label(name) for name, cond in counted.items()]
    columns.append(func.sum(Offer.amount).filter(counted["won"]).label("revenue_won"))
    return counted, columns


def _figures(values: Any, counted: Iterable[str]) -> Figures:
    fig = Figures(**{name: int(values[name] or 0) for name in counted})
    fig.revenue_won = Decimal(values["revenue_won"] or 0)
    return fig


# --- the rollups: whole months counted as they happen, the rest read live -----------------


def _month_start(day: date) -> datetime:
    return datetime(day.year, day.month, 1, tzinfo=UTC)


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


@dataclass(frozen=True)
class Piece:
    """A stretch read live, added to the rollups' months (``sign`` 1) or taken from them
    (-1), in ``month``."""

    since: datetime
    until: datetime
    sign: int
    month: date


@dataclass(frozen=True)
class Cover:
    """A period as whole ``months`` of the rollups and live ``pieces``: a month the period
    covers in part is read from the rollups less the days outside the period, or as its
    days inside it, whichever reads fewer offers (days after now hold none)."""

    months: tuple[date, ...]
    pieces: tuple[Piece, ...]


def cover(since: datetime, until: datetime, now: datetime) -> Cover:
    def cost(a: datetime, b: datetime) -> float:
        return max(0.0, (min(b, now) - a).total_seconds())

    months, pieces = [], []
    month = since.astimezone(UTC).date().replace(day=1)
    while _month_start(month) < until:
        start, end = _month_start(month), _month_start(_next_month(month))
        outside = [(a, b) for a, b in ((start, since), (until, end)) if a < b]
        inside = (max(since, start), min(until, end))
        if outside and cost(*inside) <= sum(cost(a, b) for a, b in outside):
            pieces.append(Piece(*inside, 1, month))
        else:
            months.append(month)
            pieces += [Piece(a, b, -1, month) for a, b in outside]
        month = _next_month(month)
    return Cover(tuple(months), tuple(pieces))


@dataclass(frozen=True)
class Plan:
    """How a scope is read from the rollups: its ``cover``, and the month in which
    outcomes fall due now (``due_month``: now − outcome due days) with the stretch of it
    before the cutoff that the period holds (``due``).

    Only "overdue" and "due" depend on the day: ``offer_months`` counts ``held`` (accepted
    and still the partner's) as due and ``held_open`` as overdue in the months before the
    due month, nothing in the months after it, and the due month's offers made before the
    cutoff are counted live for those two figures."""

    cover: Cover
    due_month: date
    due: tuple[datetime, datetime] | None


def plan(session: Session, scope: Scope, *, now: datetime | None = None) -> Plan | None:
    """The rollups' plan for ``scope``, or None when it must be read live: a period that
    ended (the rollups count what happened by now), a filter on the lead's attributes, a
    report "as of" another time (``now``), or rollups not built."""
    if scope.live or now is not None or scope.filters_leads:
        return None
    current = utcnow()
    if scope.until < current or not rollups.readable(session):
        return None
    cutoff = current - outcome_due()
    due_month = rollups.month_of(cutoff.astimezone(UTC))
    due = (max(scope.since, _month_start(due_month)), min(scope.until, cutoff))
    return Plan(cover(scope.since, scope.until, current), due_month,
                due if due[0] < due[1] else None)


def _rolled_key(by: str) -> Any:
    if by == BY_PARTNER:
        return OfferMonth.partner_id
    if by == BY_ROLLUP:
        return func.coalesce(Partner.parent_id, Partner.id)
    return literal(1)


def _zero() -> Any:
    return literal(0, Integer())


def _summed(table: Any, due: ColumnElement[bool]) -> list[Any]:
    """A rollup table's counts summed (its ``held`` as due and ``held_open`` as overdue
    where ``due`` holds), and the won revenue, labelled as ``Figures`` names them."""

    def total(name: str) -> Any:
        if name == "accepted_past_due":
            return func.sum(case((due, table.held), else_=0))
        if name == "overdue":
            return func.sum(case((due, table.held_open), else_=0))
        return func.sum(getattr(table, name))

    # int4, as the live parts' counts are: PostgreSQL adds up int4 in a bigint, but a
    # bigint (a sum's or count's own type) in a numeric, 30 % slower over 10,000 partners
    return [*[cast(total(n), Integer).label(n) for n in Figures.COUNTS],
            func.sum(table.revenue_won).label("revenue_won")]


def _rolled(scope: Scope, by: str, the_plan: Plan) -> Select[Any]:
    """The whole months' counts per key, from ``offer_months``."""
    key = _rolled_key(by)
    m = OfferMonth
    query = (select(key.label("k"), *_summed(m, m.month < the_plan.due_month))
             .where(m.month.in_(the_plan.cover.months or [date.min])).group_by(key))
    if scope.partner_ids is not None:
        query = query.where(m.partner_id.in_(sorted(scope.partner_ids) or [0]))
    if by == BY_ROLLUP:
        query = query.join(Partner, Partner.id == m.partner_id)
    return query


def _live(scope: Scope, by: str, end: datetime, only: Sequence[str] = (),
          sign: int = 1) -> Select[Any]:
    """The counts per key read from the offers of ``scope`` (just ``only``, when given:
    the others are 0), negative with ``sign`` -1 (a stretch taken from the rollups)."""
    key = _key(by, scope)
    counted = conditions(end)

    def column(name: str) -> Any:
        if only and name not in only:
            return _zero()
        found = cast(func.count().filter(counted[name]), Integer)
        return found if sign > 0 else -found

    revenue: Any = func.sum(Offer.amount).filter(counted["won"])
    if only and "revenue_won" not in only:
        revenue = literal(0, Offer.amount.type)
    elif sign < 0:
        revenue = -revenue
    query = (select(key.label("k"), *[column(n).label(n) for n in Figures.COUNTS],
                    revenue.label("revenue_won"))
             .where(*scope.where(), not_forwarded()).group_by(key))
    if by == BY_ROLLUP:
        query = query.join(Partner, Partner.id == Offer.partner_id)
    return query


def _whole_days(scope: Scope) -> bool:
    return all(moment.astimezone(UTC).time() == time(0) for moment in (scope.since, scope.until))


def _channel_days(scope: Scope, end: datetime) -> list[Select[Any]]:
    """The channel's counts of a whole-day scope from ``offer_days``, and the offers of the
    day in which outcomes fall due that were made before the cutoff (read live)."""
    d = OfferDay
    cutoff = end - outcome_due()
    due_day = cutoff.astimezone(UTC).date()
    parts: list[Select[Any]] = [
        select(literal(1).label("k"), *_summed(d, d.day < due_day))
        .where(d.day >= scope.since.astimezone(UTC).date(),
               d.day < scope.until.astimezone(UTC).date())]
    start = datetime(due_day.year, due_day.month, due_day.day, tzinfo=UTC)
    if scope.since <= start < scope.until:
        parts.append(_live(replace(scope, since=start, until=cutoff), BY_NOTHING, end,
                           only=("accepted_past_due", "overdue")))
    return parts


def tune(session: Session) -> None:
    """For a report's transaction on PostgreSQL: sums of 10,000 partners in memory, not
    in batches on disk; and a plan for each statement's own period, never the generic plan
    psycopg's prepared statements (after five runs) would settle on for any dates."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL work_mem = '32MB'"))
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


def counts_by(session: Session, scope: Scope, by: str = BY_PARTNER, *,
              now: datetime | None = None) -> dict[Any, Figures]:
    """The counted figures per key (no medians, reasons or competitors) in one statement:
    the whole months from the rollups where ``plan`` allows, with the stretches around
    them read from the offers, all summed by the database; else every offer read."""
    end = scope.end(now)
    the_plan = plan(session, scope, now=now) if by != BY_WEEK else None
    if the_plan is None:
        query = _live(scope, by, end)
    else:
        if by == BY_NOTHING and scope.partner_ids is None and _whole_days(scope):
            parts = _channel_days(scope, end)
        else:
            parts = [_rolled(scope, by, the_plan)]
            due_figures = ("accepted_past_due", "overdue")
            others = tuple(n for n in (*Figures.COUNTS, "revenue_won") if n not in due_figures)
            for piece in the_plan.cover.pieces:
                # the due month's due figures are the due stretch's, below
                parts.append(_live(replace(scope, since=piece.since, until=piece.until), by,
                                   end, sign=piece.sign,
                                   only=others if piece.month == the_plan.due_month else ()))
            if the_plan.due is not None:  # the due month's offers made before the cutoff
                since, until = the_plan.due
                parts.append(_live(replace(scope, since=since, until=until), by, end,
                                   only=due_figures))
        every = union_all(*parts).subquery()
        # bigint, not numeric: 130,000 Decimals would cost more than the sums
        query = select(every.c.k,
                       *[cast(func.sum(every.c[n]), BigInteger).label(n)
                         for n in Figures.COUNTS],
                       func.sum(every.c.revenue_won).label("revenue_won")).group_by(every.c.k)
    found = {}
    # Core, not the ORM's result machinery: 10,000 plain rows (key, the counts, revenue),
    # fetched at once (iterating a Core result fetches them one by one)
    for k, *counts, revenue in session.connection().execute(query).all():
        if counts[0]:  # a month less its days outside the period may leave nothing offered
            found[k] = Figures(*counts, revenue_won=Decimal(revenue or 0)) \
                if None not in counts else Figures(*[n or 0 for n in counts],
                                                   revenue_won=Decimal(revenue or 0))
    return found


#: medians for every key (the default) or only these
ALL = None


def figures_by(session: Session, scope: Scope, by: str = BY_PARTNER, *,
               now: datetime | None = None, medians_of: Iterable[Any] | None = ALL,
               details: bool = True) -> dict[Any, Figures]:
    """Figures per partner (``BY_PARTNER``), per distributor with its dealers and per
    partner on its own (``BY_ROLLUP``), or for everyone at once (``BY_NOTHING``, key 1).
    The medians only for ``medians_of`` when given (a page's partners); the declines by
    reason and the competitors only with ``details``."""
    found = counts_by(session, scope, by, now=now)
    wanted = None if medians_of is None else [k for k in medians_of if k in found]
    if wanted is None or wanted:
        for k, median in medians(session, scope, by, now=now, keys=wanted).items():
            if k in found:
                found[k].median_hours_to_accept = median
    if not details:
        return found
    end = scope.end(now)
    where = [*scope.where(), not_forwarded()]
    counted = conditions(end)
    for k, reason, count in _grouped(session, where, by, scope, Offer.decline_reason,
                                     counted["declined"]):
        if k in found:
            found[k].declined_by[reason or "other"] = count
    competitor = func.coalesce(Competitor.name, func.nullif(Offer.competitor_other, ""))
    for k, name, count in _grouped(session, where, by, scope, competitor,
                                   and_(counted["lost"], Offer.lost_reason == "competitor"),
                                   competitors=True):
        if k in found:
            found[k].lost_to[name or "another competitor"] = count
    return found


def _grouped(session: Session, where: Sequence[Any], by: str, scope: Scope, what: Any,
             cond: Any, *, competitors: bool = False) -> list[tuple[Any, Any, int]]:
    key = _key(by, scope)
    query = select(key, what, func.count()).select_from(Offer).where(*where, cond)
    if competitors:
        query = query.outerjoin(Competitor, Competitor.id == Offer.competitor_id)
    if by == BY_ROLLUP:
        query = query.join(Partner, Partner.id == Offer.partner_id)
    return [(k, value, int(n)) for k, value, n in session.execute(query.group_by(key, what))]


def medians(session: Session, scope: Scope, by: str, *, now: datetime | None = None,
            keys: Iterable[Any] | None = None) -> dict[Any, float]:
    """The median hours from offer to accept per key (of ``keys`` only, when given): the
    offers accepted, counted by how long they took (``duration``: one grouped read), the
    middle found in the counts. The channel's (``BY_NOTHING``) reads the whole months from
    ``duration_months``."""
    end = scope.end(now)
    histograms: dict[Any, dict[int, int]] = {}

    def count(k: Any, seconds: int, n: int) -> None:
        h = histograms.setdefault(k, {})
        h[int(seconds)] = h.get(int(seconds), 0) + int(n)

    pieces = [Piece(scope.since, scope.until, 1, date.min)]
    the_plan = plan(session, scope, now=now) \
        if by == BY_NOTHING and scope.partner_ids is None else None
    if the_plan is not None:
        for seconds, n in session.execute(
                select(DurationMonth.seconds, func.sum(DurationMonth.n))
                .where(DurationMonth.kind == "accept",
                       DurationMonth.month.in_(the_plan.cover.months or [date.min]))
                .group_by(DurationMonth.seconds)):
            count(1, seconds, n)
        pieces = list(the_plan.cover.pieces)
    key = _key(by, scope)

    def join(query: Select[Any]) -> Select[Any]:
        if by == BY_ROLLUP:
            query = query.join(Partner, Partner.id == Offer.partner_id)
        if keys is not None and by != BY_NOTHING:
            chosen = sorted(set(keys)) or [0]
            query = query.where(Offer.partner_id.in_(chosen) if by == BY_PARTNER else or_(
                Partner.id.in_(chosen), Partner.parent_id.in_(chosen)))
        return query

    for piece in pieces:
        part = replace(scope, since=piece.since, until=piece.until)
        for k, seconds, n in durations(session, key, Offer.offered_at, Offer.accepted_at,
                                       [*part.where(), not_forwarded(),
                                        Offer.accepted_at < end], join):
            count(k, seconds, piece.sign * n)
    found = {}
    for k, histogram in histograms.items():
        median = median_of_counts(histogram.items())
        if median is not None:
            found[k] = median
    return found


def counts_for(session: Session, scope: Scope, partners: Iterable[Partner], *,
               now: datetime | None = None) -> dict[int, Figures]:
    """The counted figures (no median, declines by reason or competitors) of just these
    partners, each distributor with its dealers as the league table shows it, in one
    grouped query: what a page listing some partners shows beside each. ``scope``'s own
    partner filter is replaced by these partners and their dealers."""
    chosen = list(partners)
    if not chosen:
        return {}
    ids = sorted({p.id for p in chosen})
    distributors = sorted({p.id for p in chosen if p.kind == "distributor"})
    family = or_(Partner.id.in_(ids), Partner.parent_id.in_(distributors)) \
        if distributors else Partner.id.in_(ids)
    counted, columns = _counted(scope.end(now))
    query = (select(Offer.partner_id.label("k"), Partner.parent_id.label("parent"), *columns)
             .join(Partner, Partner.id == Offer.partner_id)
             .where(*replace(scope, partner_ids=None).where(), not_forwarded(),
                    Offer.partner_id.in_(select(Partner.id).where(family)))
             .group_by(Offer.partner_id, Partner.parent_id))
    found = {pid: Figures() for pid in ids}
    rolled = set(distributors)
    for row in session.execute(query):
        values = row._mapping
        fig = _figures(values, counted)
        if values["k"] in found:
            found[values["k"]].add(fig)
        if values["parent"] in rolled:
            found[values["parent"]].add(fig)
    return found


def last_days(days: int, now: datetime | None = None) -> Scope:
    """The last ``days`` days to the end of today (UTC), as the reports' "Last N days"
    preset asks for them: a link to the reports finds the same offers."""
    today = (now or utcnow()).astimezone(UTC).date()
    start = datetime(today.year, today.month, today.day, tzinfo=UTC) - timedelta(days=days - 1)
    return Scope(since=start, until=start + timedelta(days=days))


def channel(session: Session, scope: Scope, *, now: datetime | None = None,
            details: bool = True) -> Figures:
    """The whole scope's figures as one (every offer counted once); the declines by
    reason and the competitors only with ``details``."""
    return figures_by(session, scope, BY_NOTHING, now=now, details=details).get(1, Figures())


# --- the league table ----------------------------------------------------------------------


@dataclass(slots=True)
class Row:
    """One partner in the league table: its own figures and, for a distributor, with its
    dealers rolled up."""

    partner: Partner
    own: Figures
    rolled: Figures | None = None  #: distributors only
    dealers: int = 0

    @property
    def shown(self) -> Figures:
        return self.rolled if self.rolled is not None else self.own


def league(session: Session, scope: Scope, partners: Iterable[Partner], *,
           now: datetime | None = None) -> list[Row]:
    """Every partner in ``partners`` with its figures (no offers: all zero, rates —)."""
    return league_and_total(session, scope, partners, now=now)[0]


def league_and_total(session: Session, scope: Scope, partners: Iterable[Partner], *,
                     now: datetime | None = None, medians_of: Iterable[int] | None = ALL,
                     details: bool = True) -> tuple[list[Row], Figures]:
    """The league table and the whole scope's figures: the per-partner figures are read
    once; a distributor's roll-up and the total are their sums, with only their medians
    read again (a median is not a sum). Medians only for the partners in ``medians_of``
    when given (the rest: ``fill_medians`` for the rows a page shows)."""
    chosen = list(partners)
    own = figures_by(session, scope, BY_PARTNER, now=now, details=details,
                     medians_of=medians_of)
    parent_of = dict(session.execute(
        select(Partner.id, Partner.parent_id).where(Partner.parent_id.is_not(None))).all())
    total = sum_of(own.values())
    # A distributor's roll-up: its own offers and its dealers' (only distributors have
    # one), each family summed a column at a time (4,500 dealers: adding them one by one
    # cost 40 ms).
    family: dict[int, list[Figures]] = {}
    for partner_id, figures in own.items():
        parent = parent_of.get(partner_id)
        if parent is not None:
            family.setdefault(parent, []).append(figures)
    distributors = {p.id for p in chosen if p.kind == "distributor"}
    for partner_id in distributors & set(own) - set(family):
        family[partner_id] = []
    rolled = {partner_id: sum_of([*dealers, own[partner_id]] if partner_id in own else dealers)
              for partner_id, dealers in family.items()}
    wanted = None if medians_of is None else list(medians_of)
    if wanted is None or wanted:
        for key, median in medians(session, scope, BY_ROLLUP, now=now, keys=wanted).items():
            if key in rolled:
                rolled[key].median_hours_to_accept = median
    total.median_hours_to_accept = medians(session, scope, BY_NOTHING, now=now).get(1)
    dealers: dict[int, int] = {}
    for partner in chosen:
        if partner.parent_id is not None:
            dealers[partner.parent_id] = dealers.get(partner.parent_id, 0) + 1
    rows = []
    for partner in chosen:
        row = Row(partner, own.get(partner.id) or Figures())
        if partner.kind == "distributor":
            row.rolled = rolled.get(partner.id) or Figures()
            row.dealers = dealers.get(partner.id, 0)
        rows.append(row)
    return rows, total


def fill_medians(session: Session, scope: Scope, rows: Sequence[Row], *,
                 now: datetime | None = None) -> None:
    """The median hours to accept of just these rows (a page of the league table): each
    partner's own, and each distributor's with its dealers'."""
    ids = [r.partner.id for r in rows]
    if not ids:
        return
    own = medians(session, scope, BY_PARTNER, now=now, keys=ids)
    distributors = [r.partner.id for r in rows if r.rolled is not None]
    rolled = medians(session, scope, BY_ROLLUP, now=now, keys=distributors) \
        if distributors else {}
    for row in rows:
        row.own.median_hours_to_accept = own.get(row.partner.id)
        if row.rolled is not None:
            row.rolled.median_hours_to_accept = rolled.get(row.partner.id)


def weekly(session: Session, scope: Scope, weeks: int = 12, *, now: datetime | None = None
           ) -> list[tuple[datetime, Figures]]:
    """The last ``weeks`` weeks up to the scope's end, each with the figures of the offers
    made in it (what came of them by the scope's end): one grouped read for all weeks."""
    from dataclasses import replace

    start = scope.until - timedelta(weeks=weeks)
    found = figures_by(session, replace(scope, since=start), BY_WEEK, now=now)
    return [(start + timedelta(weeks=i), found.get(i) or Figures()) for i in range(weeks)]


def sum_of(figures: Iterable[Figures]) -> Figures:
    """The figures added up, a column at a time (the channel total of 10,000 partners)."""
    chosen = list(figures)
    columns = list(zip(*map(counts_of, chosen), strict=True)) or [()] * len(Figures.COUNTS)
    total = Figures(*map(sum, columns))
    total.revenue_won = sum((f.revenue_won for f in chosen), Decimal(0))
    for f in chosen:
        if f.declined_by or f.lost_to:
            for mine, theirs in ((total.declined_by, f.declined_by),
                                 (total.lost_to, f.lost_to)):
                for key, count in theirs.items():
                    mine[key] = mine.get(key, 0) + count
    return total


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the values that are defined (the channel median of a rate)."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
