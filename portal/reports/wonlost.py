"""Won / lost analysis: why leads are lost, and which competitors win them, where and when.

Over the same offers as the partner league table (``metrics``): offers made in the period
that pass the filters, a distributor's offer it forwarded counted once, for the dealer who
worked it, and the outcome that offer's partner reported by the report's end (the end of
the period, or now if sooner). An outcome is on the offer row of the partner who
reported it, so every figure here is one grouped query over ``offers``, and each count
links to the same offers through the drill-down (``reports.leads`` with ``figure`` won or
lost and the narrowing below).

A competitor is one on the manufacturer's list (by its id) or a name a partner typed
(grouped ignoring case); "lost to a competitor" is a loss with that reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, or_, select
from sqlalchemy.orm import Session
from werkzeug.datastructures import MultiDict

from portal.core.filters import CODE_LABELS
from portal.core.models import Competitor, Offer, ProductLine
from portal.core.transitions import LOST_REASONS
from portal.reports import metrics

#: the competitors a cross table gives a column of their own; the rest share one
TOP_RIVALS = 6
#: a period up to this long is shown week by week, a longer one month by month
WEEKLY_UP_TO = timedelta(days=92)
UNNAMED = "a competitor not named"


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def reason_label(reason: str) -> str:
    """A lost reason in words ("no_budget" → "No budget")."""
    return CODE_LABELS.get(reason, reason)


# --- what counts ---------------------------------------------------------------------------


def _counted(scope: metrics.Scope, now: datetime | None) -> dict[str, ColumnElement[bool]]:
    """won, lost, lost_to_rival (a loss with the reason "competitor") and decided (won or
    lost), by the report's end."""
    cond = metrics.conditions(scope.end(now))
    to_rival = and_(cond["lost"], Offer.lost_reason == "competitor")
    return {"won": cond["won"], "lost": cond["lost"], "no_interest": cond["no_interest"],
            "lost_to_rival": to_rival, "decided": or_(cond["won"], cond["lost"])}


def _where(scope: metrics.Scope) -> list[ColumnElement[bool]]:
    return [*scope.where(), metrics.not_forwarded()]


#: the lost reason of an offer; one closed before reasons were kept counts as "other"
REASON = func.coalesce(Offer.lost_reason, "other")
#: a typed competitor's name, as grouped (ignoring case)
TYPED = func.lower(Offer.competitor_other)


@dataclass(frozen=True)
class Rival:
    """A competitor as these reports know it: ``id:3`` for one on the manufacturer's list,
    ``other:<name in lower case>`` for a name a partner typed."""

    key: str
    name: str


def _rival(competitor_id: int | None, typed: str | None, name: str | None,
           shown: str | None) -> Rival:
    if competitor_id is not None:
        return Rival(f"id:{competitor_id}", name or f"competitor {competitor_id}")
    return Rival(f"other:{typed or ''}", shown or UNNAMED)


def _rival_columns() -> tuple[Any, ...]:
    """The columns that name a rival (group by the first two; the outer join to
    ``competitors`` is the caller's)."""
    return (Offer.competitor_id, TYPED, func.min(Competitor.name), func.min(Offer.competitor_other))


# --- the outcomes at a glance --------------------------------------------------------------


@dataclass
class Outcomes:
    """The scope's reported outcomes."""

    won: int = 0
    lost: int = 0
    no_interest: int = 0
    lost_to_rival: int = 0
    revenue_won: Decimal = Decimal(0)

    @property
    def win_rate(self) -> float | None:
        return _share(self.won, self.won + self.lost)

    @property
    def rival_share(self) -> float | None:
        """Of the losses, the share lost to a competitor."""
        return _share(self.lost_to_rival, self.lost)


def outcomes(session: Session, scope: metrics.Scope, *, now: datetime | None = None
             ) -> Outcomes:
    """Won, lost, no interest and lost to a competitor, one query."""
    counted = _counted(scope, now)
    row = session.execute(select(
        *(func.count().filter(counted[name]) for name in
          ("won", "lost", "no_interest", "lost_to_rival")),
        func.sum(Offer.amount).filter(counted["won"]),
    ).where(*_where(scope))).one()
    return Outcomes(int(row[0]), int(row[1]), int(row[2]), int(row[3]),
                    Decimal(row[4] or 0))


# --- why leads are lost --------------------------------------------------------------------


@dataclass(frozen=True)
class ReasonRow:
    reason: str
    lost: int
    share: float | None  #: of all losses

    @property
    def label(self) -> str:
        return reason_label(self.reason)


def lost_reasons(session: Session, scope: metrics.Scope, *, now: datetime | None = None
                 ) -> list[ReasonRow]:
    """Every lost reason (those with none too) with its losses and its share of them."""
    counted = _counted(scope, now)
    found = {reason: int(n) for reason, n in session.execute(
        select(REASON, func.count()).where(*_where(scope), counted["lost"]).group_by(REASON))}
    total = sum(found.values())
    reasons = [*LOST_REASONS, *sorted(set(found) - set(LOST_REASONS))]
    return [ReasonRow(r, found.get(r, 0), _share(found.get(r, 0), total)) for r in reasons]


# --- who wins them -------------------------------------------------------------------------


@dataclass(frozen=True)
class RivalRow:
    rival: Rival
    lost: int
    share: float | None  #: of the losses to competitors


def rivals(session: Session, scope: metrics.Scope, *, now: datetime | None = None
           ) -> list[RivalRow]:
    """Each competitor with the leads lost to it and its share of the losses to
    competitors, most first."""
    counted = _counted(scope, now)
    rows = [(_rival(cid, typed, name, shown), int(n)) for cid, typed, name, shown, n in
            session.execute(select(*_rival_columns(), func.count())
                            .outerjoin(Competitor, Competitor.id == Offer.competitor_id)
                            .where(*_where(scope), counted["lost_to_rival"])
                            .group_by(Offer.competitor_id, TYPED))]
    total = sum(n for _, n in rows)
    rows.sort(key=lambda r: (-r[1], r[0].name.lower(), r[0].key))
    return [RivalRow(rival, n, _share(n, total)) for rival, n in rows]


# --- which competitors win where -----------------------------------------------------------


@dataclass
class CrossRow:
    """One state or product line: our wins, the losses, and who won them."""

    label: str
    ask: dict[str, str]  #: the filters that narrow a drill-down to this row
    won: int = 0
    lost: int = 0
    lost_to_rival: int = 0
    by_rival: dict[str, int] = field(default_factory=dict)  #: rival key → losses to it

    def to(self, rival: Rival) -> int:
        return self.by_rival.get(rival.key, 0)

    def share(self, rival: Rival) -> float | None:
        """The rival's share of this row's losses to competitors."""
        return _share(self.to(rival), self.lost_to_rival)

    def others(self, columns: Sequence[Rival]) -> int:
        return self.lost_to_rival - sum(self.to(r) for r in columns)

    @property
    def win_rate(self) -> float | None:
        return _share(self.won, self.won + self.lost)


@dataclass
class Cross:
    """A table of states (or product lines) × competitors."""

    dimension: str  #: region or product_line
    columns: list[Rival]  #: the competitors with a column (the most losses overall first)
    rows: list[CrossRow]
    has_others: bool  #: more competitors than columns: the rest share one

    def others_keys(self) -> list[str]:
        return [r.key for r in self.columns]


DIMENSIONS = {"region": Offer.region, "product_line": Offer.product_line_id}


def cross(session: Session, scope: metrics.Scope, dimension: str, *,
          now: datetime | None = None, top: int | None = None) -> Cross:
    """Per state (``region``) or per product line: wins, losses, losses to competitors, and
    per competitor; two grouped queries."""
    top = TOP_RIVALS if top is None else top
    dim = DIMENSIONS[dimension]
    counted = _counted(scope, now)
    totals = session.execute(
        select(dim, *(func.count().filter(counted[n]) for n in ("won", "lost", "lost_to_rival")))
        .where(*_where(scope), counted["decided"]).group_by(dim)).all()
    per_rival = session.execute(
        select(dim, *_rival_columns(), func.count())
        .outerjoin(Competitor, Competitor.id == Offer.competitor_id)
        .where(*_where(scope), counted["lost_to_rival"])
        .group_by(dim, Offer.competitor_id, TYPED)).all()
    labels = _labels(session, dimension, [t[0] for t in totals])
    rows: dict[Any, CrossRow] = {}
    for value, won, lost, to_rival in totals:
        label, ask = labels[value]
        rows[value] = CrossRow(label, ask, int(won), int(lost), int(to_rival))
    totals_by: dict[str, int] = {}
    names: dict[str, str] = {}
    for value, cid, typed, name, shown, n in per_rival:
        rival = _rival(cid, typed, name, shown)
        rows[value].by_rival[rival.key] = int(n)
        totals_by[rival.key] = totals_by.get(rival.key, 0) + int(n)
        # one name for a typed rival in every row (each row's min() may pick a spelling)
        names[rival.key] = min(names.get(rival.key, rival.name), rival.name)
    ranked = sorted((Rival(k, names[k]) for k in totals_by),
                    key=lambda r: (-totals_by[r.key], r.name.lower(), r.key))
    ordered = sorted(rows.values(), key=lambda r: (-r.lost_to_rival, -r.lost, r.label.lower()))
    return Cross(dimension, ranked[:top], ordered, len(ranked) > top)


def _labels(session: Session, dimension: str, values: Sequence[Any]
            ) -> dict[Any, tuple[str, dict[str, str]]]:
    """Each row's label and the filter that asks for it (a blank one: ``unset``)."""
    if dimension == "region":
        return {v: (v, {"region": v}) if v else ("No state", {"unset": "region"})
                for v in values}
    lines = {pid: (code, name) for pid, code, name in session.execute(
        select(ProductLine.id, ProductLine.code, ProductLine.name)
        .where(ProductLine.id.in_([v for v in values if v is not None] or [0])))}
    found: dict[Any, tuple[str, dict[str, str]]] = {}
    for v in values:
        if v is None or v not in lines:
            found[v] = ("No product line", {"unset": "product_line"})
        else:
            code, name = lines[v]
            found[v] = (name, {"product_line": code})
    return found


# --- over time -----------------------------------------------------------------------------


@dataclass
class Bucket:
    """A week or month of the period: the outcomes reported in it."""

    start: datetime
    before: datetime  #: the bucket's end (exclusive)
    label: str
    won: int = 0
    lost_to_rival: int = 0
    lost_other: int = 0  #: lost for another reason

    def ask(self) -> dict[str, str]:
        """The drill-down's narrowing to this bucket."""
        return {"closed_from": self.start.date().isoformat(),
                "closed_before": self.before.date().isoformat()}


def _month_after(moment: datetime) -> datetime:
    year, month = (moment.year + 1, 1) if moment.month == 12 else (moment.year, moment.month + 1)
    return moment.replace(year=year, month=month, day=1)


def buckets(scope: metrics.Scope, *, now: datetime | None = None) -> list[Bucket]:
    """The period's weeks (from its first day, seven days each) when it is up to 92 days
    long, else its calendar months; only those begun by the report's end."""
    end = scope.end(now)
    weekly = scope.until - scope.since <= WEEKLY_UP_TO
    found, start = [], scope.since
    while start < scope.until and start < end:
        after = start + timedelta(days=7) if weekly else _month_after(start)
        after = min(after, scope.until)
        label = f"{start:%d %b}" if weekly else f"{start:%b %Y}"
        found.append(Bucket(start, after, label))
        start = after
    return found


def over_time(session: Session, scope: metrics.Scope, *, now: datetime | None = None
              ) -> list[Bucket]:
    """Wins and losses by when they were reported, week by week or month by month: one
    query grouping on the bucket each outcome falls in."""
    found = buckets(scope, now=now)
    if not found:
        return found
    counted = _counted(scope, now)
    which = case(*((Offer.closed_at < b.before, i) for i, b in enumerate(found)),
                 else_=len(found) - 1)
    kind = case((counted["won"], "won"), (counted["lost_to_rival"], "rival"), else_="other")
    rows = (select(which.label("b"), kind.label("kind"))
            .where(*_where(scope), counted["decided"]).subquery())
    # Grouped outside: PostgreSQL would not see two renderings of the CASE's parameters
    # as the same expression.
    for i, what, n in session.execute(
            select(rows.c.b, rows.c.kind, func.count()).group_by(rows.c.b, rows.c.kind)):
        bucket = found[int(i)]
        if what == "won":
            bucket.won = int(n)
        elif what == "rival":
            bucket.lost_to_rival = int(n)
        else:
            bucket.lost_other = int(n)
    return found


# --- from a count to its leads -------------------------------------------------------------


@dataclass(frozen=True)
class Narrowing:
    """The drill-down's extra conditions for a won / lost count: a lost reason (or any
    but one), a competitor (or every competitor but some), when the outcome was reported,
    a blank state or product line."""

    where: tuple[ColumnElement[bool], ...] = ()
    said: tuple[str, ...] = ()  #: in words, for the heading
    args: tuple[tuple[str, str], ...] = ()  #: to ask again

    def __bool__(self) -> bool:
        return bool(self.args)


def _is_rival(key: str) -> ColumnElement[bool] | None:
    kind, _, value = key.partition(":")
    if kind == "id" and value.isdigit():
        return Offer.competitor_id == int(value)
    if kind == "other":
        return and_(Offer.competitor_id.is_(None), TYPED == value)
    return None


def _is_not_rival(key: str) -> ColumnElement[bool] | None:
    # Spelt out, not NOT(…): a NOT over a NULL competitor id would drop the typed ones.
    kind, _, value = key.partition(":")
    if kind == "id" and value.isdigit():
        return or_(Offer.competitor_id.is_(None), Offer.competitor_id != int(value))
    if kind == "other":
        return or_(Offer.competitor_id.is_not(None), TYPED != value)
    return None


def _day(raw: str) -> datetime | None:
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def narrowing(session: Session, args: MultiDict[str, str]) -> Narrowing | None:
    """The narrowing asked for in ``args``; None when a value is not one we know (the
    caller answers 404, as for any other address that names nothing)."""
    where: list[ColumnElement[bool]] = []
    said: list[str] = []
    kept: list[tuple[str, str]] = []
    reason = args.get("reason", "")
    if reason:
        if reason not in LOST_REASONS:
            return None
        where.append(REASON == reason)
        said.append(reason_label(reason).lower() if reason != "competitor"
                    else "to a competitor")
        kept.append(("reason", reason))
    other_than = args.get("reason_not", "")
    if other_than:
        if other_than not in LOST_REASONS:
            return None
        where.append(REASON != other_than)
        said.append("for another reason than a competitor" if other_than == "competitor"
                    else f"for another reason than {reason_label(other_than).lower()}")
        kept.append(("reason_not", other_than))
    key = args.get("competitor", "")
    if key:
        cond = _is_rival(key)
        if cond is None:
            return None
        name = key.partition(":")[2] or UNNAMED
        if key.startswith("id:"):
            competitor = session.get(Competitor, int(key[3:]))
            if competitor is None:
                return None
            name = competitor.name
        where += [Offer.lost_reason == "competitor", cond]
        said.append(f"to {name}")
        kept.append(("competitor", key))
    excepted = args.getlist("except")
    for key in excepted:
        cond = _is_not_rival(key)
        if cond is None:
            return None
        where.append(cond)
        kept.append(("except", key))
    if excepted:
        where.append(Offer.lost_reason == "competitor")
        said.append(f"to other competitors than the {len(excepted)} with a column")
    for name, op, words in (("closed_from", "ge", "reported from"),
                            ("closed_before", "lt", "reported before")):
        raw = args.get(name, "")
        if raw:
            moment = _day(raw)
            if moment is None:
                return None
            where.append(Offer.closed_at >= moment if op == "ge" else Offer.closed_at < moment)
            said.append(f"{words} {moment:%d %b %Y}")
            kept.append((name, raw))
    unset = args.get("unset", "")
    if unset:
        if unset == "region":
            where.append(Offer.region == "")
            said.append("with no state")
        elif unset == "product_line":
            where.append(Offer.product_line_id.is_(None))
            said.append("with no product line")
        else:
            return None
        kept.append(("unset", unset))
    return Narrowing(tuple(where), tuple(said), tuple(kept))
