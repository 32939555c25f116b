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

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app
from sqlalchemy import ColumnElement, Float, Integer, and_, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import FunctionElement

from portal.core.models import Competitor, Offer, OfferResponse, Partner, utcnow

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
    return (f"(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - "
            f"{compiler.process(start, **kw)})) / 3600.0)")


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
    return (f"CAST(FLOOR(EXTRACT(EPOCH FROM ({compiler.process(end, **kw)} - "
            f"{compiler.process(start, **kw)}))) AS BIGINT)")


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

    def end(self, now: datetime | None = None) -> datetime:
        """The report's end: what happened by then counts."""
        return min(self.until, now or utcnow())

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


@dataclass
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
        for name in self.COUNTS:
            setattr(self, name, getattr(self, name) + getattr(other, name))
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


def figures_by(session: Session, scope: Scope, by: str = BY_PARTNER, *,
               now: datetime | None = None) -> dict[Any, Figures]:
    """Figures per partner (``BY_PARTNER``), per distributor with its dealers and per
    partner on its own (``BY_ROLLUP``), or for everyone at once (``BY_NOTHING``, key 1):
    four grouped queries whatever the number of partners."""
    key = _key(by, scope)
    end = scope.end(now)
    where = [*scope.where(), not_forwarded()]
    counted, columns = _counted(end)
    query = select(key.label("k"), *columns).where(*where).group_by(key)
    if by == BY_ROLLUP:
        query = query.join(Partner, Partner.id == Offer.partner_id)
    found: dict[Any, Figures] = {}
    for row in session.execute(query):
        found[row._mapping["k"]] = _figures(row._mapping, counted)
    for k, median in medians(session, scope, by, now=now).items():
        if k in found:
            found[k].median_hours_to_accept = median
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


def medians(session: Session, scope: Scope, by: str, *, now: datetime | None = None
            ) -> dict[Any, float]:
    """The median hours from offer to accept per ``key``: a window over the accepted
    offers, the middle one (or the mean of the middle two), on either database."""
    end = scope.end(now)
    key = _key(by, scope)
    hours = hours_between(Offer.offered_at, Offer.accepted_at)
    ranked = (select(key.label("k"), hours.label("h"),
                     func.row_number().over(partition_by=key, order_by=hours).label("rn"),
                     func.count().over(partition_by=key).label("n"))
              .where(*scope.where(), not_forwarded(), Offer.accepted_at < end))
    if by == BY_ROLLUP:
        ranked = ranked.join(Partner, Partner.id == Offer.partner_id)
    inner = ranked.subquery()
    middle = or_(inner.c.rn == (inner.c.n + 1) // 2, inner.c.rn == (inner.c.n + 2) // 2)
    return {k: round(float(h), 2) for k, h in session.execute(
        select(inner.c.k, func.avg(inner.c.h)).where(middle).group_by(inner.c.k))}


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


def channel(session: Session, scope: Scope, *, now: datetime | None = None) -> Figures:
    """The whole scope's figures as one (every offer counted once)."""
    return figures_by(session, scope, BY_NOTHING, now=now).get(1, Figures())


# --- the league table ----------------------------------------------------------------------


@dataclass
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
                     now: datetime | None = None) -> tuple[list[Row], Figures]:
    """The league table and the whole scope's figures: the per-partner figures are read
    once (four grouped queries); a distributor's roll-up and the total are their sums,
    with only their medians read again (a median is not a sum)."""
    chosen = list(partners)
    own = figures_by(session, scope, BY_PARTNER, now=now)
    parent_of = dict(session.execute(
        select(Partner.id, Partner.parent_id).where(Partner.parent_id.is_not(None))).all())
    rolled: dict[int, Figures] = {}
    total = Figures()
    for partner_id, figures in own.items():
        total.add(figures)
        for key in {partner_id, parent_of.get(partner_id) or partner_id}:
            rolled.setdefault(key, Figures()).add(figures)
    for key, median in medians(session, scope, BY_ROLLUP, now=now).items():
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


def weekly(session: Session, scope: Scope, weeks: int = 12, *, now: datetime | None = None
           ) -> list[tuple[datetime, Figures]]:
    """The last ``weeks`` weeks up to the scope's end, each with the figures of the offers
    made in it (what came of them by the scope's end): one grouped read for all weeks."""
    from dataclasses import replace

    start = scope.until - timedelta(weeks=weeks)
    found = figures_by(session, replace(scope, since=start), BY_WEEK, now=now)
    return [(start + timedelta(weeks=i), found.get(i) or Figures()) for i in range(weeks)]


def median_of(values: Iterable[float | None]) -> float | None:
    """The median of the values that are defined (the channel median of a rate)."""
    ordered = sorted(v for v in values if v is not None)
    if not ordered:
        return None
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2
