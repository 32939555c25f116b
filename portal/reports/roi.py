"""Campaign and source ROI (DESIGN §7, "Per campaign and source"): what the leads captured
in the period brought, set against what they cost.

The leads are those captured in the period (``leads.created_at`` in [since, until)) that
pass the filters, with what has become of them to date: a campaign's leads keep being
qualified, contacted and won after the period ends, and its return is all of it. Each
table is a handful of grouped queries over ``leads`` (the figures and the medians by a
window, per row and for the total; the campaigns' leads before the filters when a cost is
shared), whatever the number of leads.

Costs: a campaign's is its recorded cost, the whole of it, even when the campaign runs
beyond the period; when a filter narrows its leads (state, product line, rank, source,
distributor) it is shared out by leads: the cost × the leads that pass ÷ all its leads
captured in the period. A source's is its cost per lead × its leads. A cost of 0 is no
cost recorded: no cost per lead and no ROI.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, and_, func, literal, or_, select, true
from sqlalchemy.orm import Session

from portal.core.models import Campaign, Lead, LeadStatus, Rank, Source
from portal.reports import overview
from portal.reports.metrics import Scope, hours_between

S = LeadStatus
CENT = Decimal("0.01")
#: not (or no longer) sales-ready: every other status has been qualified
NOT_QUALIFIED = (S.CAPTURED, S.NURTURE, S.DISQUALIFIED)

#: each counted figure as a condition on one lead, to date; also the drill-down's filter
FIGURES: dict[str, ColumnElement[bool]] = {
    "leads": true(),
    "qualified": Lead.status.not_in([str(s) for s in NOT_QUALIFIED]),
    "hot": Lead.rank == Rank.HOT.value,
    "contacted": Lead.first_contact_at.is_not(None),
    "won": Lead.status == S.WON.value,
}


def lead_where(scope: Scope) -> list[ColumnElement[bool]]:
    """The leads a scope asks for: the overview's (captured in the period, the filters as
    the lead has them), and for a distributor filter, leads now with it or its dealers."""
    clauses = overview.lead_where(scope)
    if scope.partner_ids is not None:
        clauses.append(Lead.assigned_partner_id.in_(sorted(scope.partner_ids) or [0]))
    return clauses


def narrows_campaigns(scope: Scope) -> bool:
    """A filter that leaves out some of a campaign's leads (its cost is then shared)."""
    return bool(scope.partner_ids is not None or scope.region or scope.rank
                or scope.product_line_id is not None or scope.source_id is not None)


@dataclass
class Returns:
    """One campaign's or source's leads, results and cost (or a table's total)."""

    code: str  #: "" for the leads with no campaign (source) and for the total
    name: str
    leads: int = 0
    qualified: int = 0
    hot: int = 0
    contacted: int = 0
    won: int = 0
    revenue: Decimal = Decimal(0)
    cost: Decimal | None = None  #: None: no cost recorded
    median_hours_to_contact: float | None = None
    starts_on: date | None = None
    ends_on: date | None = None
    beyond: bool = False  #: the campaign runs beyond the period (or its dates are unknown)
    shared: bool = False  #: the cost is shared out by the leads the filters let through

    @property
    def qualified_share(self) -> float | None:
        return self.qualified / self.leads if self.leads else None

    @property
    def hot_share(self) -> float | None:
        return self.hot / self.leads if self.leads else None

    @property
    def cost_per_lead(self) -> Decimal | None:
        return _money(self.cost / self.leads) if self.cost and self.leads else None

    @property
    def cost_per_qualified(self) -> Decimal | None:
        return _money(self.cost / self.qualified) if self.cost and self.qualified else None

    @property
    def roi(self) -> float | None:
        """(revenue − cost) ÷ cost; None with no cost."""
        if not self.cost:
            return None
        return float((self.revenue - self.cost) / self.cost)


def _money(value: Decimal) -> Decimal:
    """To the cent, half up (as an accountant rounds)."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _grouped(session: Session, key: Any, where: list[Any]) -> dict[Any, Returns]:
    """The counts per ``key`` (one query) and the median hours to first contact (one)."""
    columns = [func.count().filter(cond).label(name) for name, cond in FIGURES.items()]
    query = (select(key.label("k"), *columns,
                    func.sum(Lead.won_amount).filter(FIGURES["won"]).label("revenue"))
             .where(*where).group_by(key))
    found: dict[Any, Returns] = {}
    for row in session.execute(query):
        values = row._mapping
        found[values["k"]] = Returns(
            "", "", **{name: int(values[name] or 0) for name in FIGURES},
            revenue=Decimal(values["revenue"] or 0))
    for k, median in medians(session, key, where).items():
        if k in found:
            found[k].median_hours_to_contact = median
    return found


def medians(session: Session, key: Any, where: list[Any]) -> dict[Any, float]:
    """The median hours from capture to first contact per ``key``, over the leads
    contacted: a window over them, the middle one (or the mean of the middle two)."""
    hours = hours_between(Lead.created_at, Lead.first_contact_at)
    ranked = (select(key.label("k"), hours.label("h"),
                     func.row_number().over(partition_by=key, order_by=hours).label("rn"),
                     func.count().over(partition_by=key).label("n"))
              .where(*where, FIGURES["contacted"])).subquery()
    middle = or_(ranked.c.rn == (ranked.c.n + 1) // 2, ranked.c.rn == (ranked.c.n + 2) // 2)
    return {k: round(float(h), 2) for k, h in session.execute(
        select(ranked.c.k, func.avg(ranked.c.h)).where(middle).group_by(ranked.c.k))}


def _total(session: Session, where: list[Any], name: str) -> Returns:
    total = _grouped(session, literal(1), where).get(1) or Returns("", name)
    total.name = name
    return total


def _overlaps(since: date, last: date) -> ColumnElement[bool]:
    """A campaign that ran on some day of [since, last] by its dates (a start is needed)."""
    return and_(Campaign.starts_on.is_not(None), Campaign.starts_on <= last,
                or_(Campaign.ends_on.is_(None), Campaign.ends_on >= since))


def campaigns(session: Session, scope: Scope) -> tuple[list[Returns], Returns | None, Returns]:
    """Each campaign with leads in the period, or (no filter narrowing its leads) that ran
    in it by its dates; the leads with no campaign (None if there are none); and every
    campaign together."""
    where = lead_where(scope)
    found = _grouped(session, Lead.campaign_id, where)
    shared = narrows_campaigns(scope)
    wanted: ColumnElement[bool] = Campaign.id.in_(sorted(k for k in found if k is not None) or [0])
    since = scope.since.date()
    last = date.fromordinal(scope.until.date().toordinal() - 1)  # the period's last day
    if not shared:
        wanted = or_(wanted, _overlaps(since, last))
    if scope.campaign_id is not None:
        wanted = and_(wanted, Campaign.id == scope.campaign_id)
    chosen = list(session.scalars(select(Campaign).where(wanted)))
    everyone: dict[Any, int] = {}
    if shared:  # all each campaign's leads in the period, to share its cost by
        everyone = {k: int(n) for k, n in session.execute(
            select(Lead.campaign_id, func.count())
            .where(Lead.created_at >= scope.since, Lead.created_at < scope.until,
                   Lead.campaign_id.in_([c.id for c in chosen] or [0]))
            .group_by(Lead.campaign_id))}
    rows = []
    for campaign in chosen:
        row = found.get(campaign.id) or Returns("", "")
        row.code, row.name = campaign.code, campaign.name
        row.starts_on, row.ends_on = campaign.starts_on, campaign.ends_on
        row.beyond = (campaign.starts_on is None or campaign.starts_on < since
                      or campaign.ends_on is None or campaign.ends_on > last)
        cost = _money(Decimal(campaign.cost or 0))
        if shared and cost:
            row.shared = True
            whole = everyone.get(campaign.id, 0)
            cost = _money(cost * row.leads / whole) if whole else Decimal(0)
        row.cost = cost if cost else None
        rows.append(row)
    rows.sort(key=lambda r: r.name.lower())
    none = found.get(None)
    if none is not None:
        none.name = "No campaign"
    total = _total(session, [*where, Lead.campaign_id.is_not(None)], "All campaigns")
    costs = [r.cost for r in rows if r.cost]
    total.cost = sum(costs, Decimal(0)) if costs else None
    total.shared = any(r.shared for r in rows)
    return rows, none, total


def sources(session: Session, scope: Scope) -> tuple[list[Returns], Returns | None, Returns]:
    """Each source with leads in the period (its cost: cost per lead × leads), the leads
    with no source (None if there are none), and every source together."""
    where = lead_where(scope)
    found = _grouped(session, Lead.source_id, where)
    chosen = list(session.scalars(select(Source).where(
        Source.id.in_(sorted(k for k in found if k is not None) or [0]))))
    rows = []
    for source in chosen:
        row = found[source.id]
        row.code, row.name = source.code, source.name
        cost = _money(Decimal(source.cost_per_lead or 0) * row.leads)
        row.cost = cost if cost else None
        rows.append(row)
    rows.sort(key=lambda r: r.name.lower())
    none = found.get(None)
    if none is not None:
        none.name = "No source"
    total = _total(session, [*where, Lead.source_id.is_not(None)], "All sources")
    costs = [r.cost for r in rows if r.cost]
    total.cost = sum(costs, Decimal(0)) if costs else None
    return rows, none, total

