"""The channel managers' analysis pages: won / lost (who wins against us, where and when)
and campaign and source ROI. Staff only: anyone else gets a 404."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from flask import abort, render_template, request
from flask_login import current_user
from sqlalchemy import ColumnElement, select

from portal.core.models import Campaign, Lead, Partner, Source, display_name
from portal.core.web import staff_only
from portal.extensions import db
from portal.reports import charts, export, forms, roi, wonlost
from portal.reports.views import bp


def _asked() -> forms.Asked:
    return forms.read(db.session, request.args, current_user)


def _wants_csv() -> bool:
    return request.args.get("format") == "csv"


# --- won / lost ----------------------------------------------------------------------------


@bp.get("/won-lost")
@staff_only
def won_lost():  # type: ignore[no-untyped-def]
    """Why leads are lost, to which competitors, in which states and product lines, and
    how wins and losses move over the period; each table also as CSV."""
    asked = _asked()
    scope = asked.scope
    assert scope is not None
    if _wants_csv():
        return _won_lost_csv(asked, request.args.get("table", ""))
    outcomes = wonlost.outcomes(db.session, scope)
    reasons = wonlost.lost_reasons(db.session, scope)
    rivals = wonlost.rivals(db.session, scope)
    states = wonlost.cross(db.session, scope, "region")
    lines = wonlost.cross(db.session, scope, "product_line")
    timeline = wonlost.over_time(db.session, scope)
    weekly = scope.until - scope.since <= wonlost.WEEKLY_UP_TO
    return render_template(
        "reports/won_lost.html", asked=asked, outcomes=outcomes, reasons=reasons,
        rivals=rivals, states=states, lines=lines, timeline=timeline, weekly=weekly,
        end=scope.end(), top=wonlost.TOP_RIVALS,
        reasons_chart=charts.bars([(r.label, r.lost) for r in reasons] if outcomes.lost else [],
                                  title="Leads lost, by reason"),
        rivals_chart=charts.bars([(r.rival.name, r.lost) for r in rivals],
                                 title="Leads lost to each competitor"),
        timeline_chart=_timeline_chart(timeline, weekly),
        options=forms.choices(db.session, current_user))


def _timeline_chart(timeline: list[wonlost.Bucket], weekly: bool) -> Any:
    """Won, lost to a competitor and lost otherwise, per week or month ("No data" when
    nothing was reported)."""
    if not any(b.won or b.lost_to_rival or b.lost_other for b in timeline):
        timeline = []
    return charts.lines(
        [b.label for b in timeline],
        [("Won", [b.won for b in timeline]),
         ("Lost to a competitor", [b.lost_to_rival for b in timeline]),
         ("Lost, other reasons", [b.lost_other for b in timeline])],
        title="Wins and losses " + ("week by week" if weekly else "month by month"))


def _won_lost_csv(asked: forms.Asked, table: str) -> Any:
    scope = asked.scope
    assert scope is not None
    name = f"won-lost-{table}-{asked.start}-{asked.end}.csv"
    if table == "reasons":
        rows = wonlost.lost_reasons(db.session, scope)
        return export.csv_response(name, ["reason", "label", "lost", "share_of_lost"], (
            [r.reason, r.label, r.lost, export.rate(r.share)] for r in rows))
    if table == "competitors":
        rivals = wonlost.rivals(db.session, scope)
        return export.csv_response(
            name, ["competitor", "on_the_list", "lost_to_it", "share_of_losses_to_competitors"],
            ([r.rival.name, "yes" if r.rival.key.startswith("id:") else "no", r.lost,
              export.rate(r.share)] for r in rivals))
    if table in ("states", "product_lines"):
        dimension = "region" if table == "states" else "product_line"
        cross = wonlost.cross(db.session, scope, dimension, top=10**6)  # every competitor
        head = "state" if table == "states" else "product_line"
        return export.csv_response(
            name, [head, "won", "lost", "win_rate", "lost_to_competitors",
                   *(f"lost_to {r.name}" for r in cross.columns)],
            ([row.label, row.won, row.lost, export.rate(row.win_rate), row.lost_to_rival,
              *(row.to(r) for r in cross.columns)] for row in cross.rows))
    if table == "over_time":
        timeline = wonlost.over_time(db.session, scope)
        return export.csv_response(
            name, ["from", "to", "won", "lost_to_competitor", "lost_other_reasons"],
            ([b.start.date().isoformat(), (b.before - timedelta(days=1)).date().isoformat(),
              b.won, b.lost_to_rival, b.lost_other] for b in timeline))
    abort(404)


# --- campaign and source ROI ---------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the ROI tables: heading, value, how it is computed, the figure its
    count drills down to (None: not a count of leads)."""

    name: str
    heading: str
    value: Callable[[roi.Returns], Any]
    how: str
    figure: str | None = None
    kind: str = "count"  #: count, rate, money, hours


ROI_COLUMNS = (
    Column("leads", "Leads", lambda r: r.leads,
           "Leads captured in the period (by their capture time) that pass the filters.",
           "leads"),
    Column("qualified", "Qualified", lambda r: r.qualified,
           "Of those, sales-ready now: qualified by the rules or a manager and not since "
           "sent to nurture or disqualified (any stage from qualified on).", "qualified"),
    Column("qualified_share", "Qualified %", lambda r: r.qualified_share,
           "qualified ÷ leads.", kind="rate"),
    Column("hot", "Hot", lambda r: r.hot, "Of the leads, ranked hot now.", "hot"),
    Column("hot_share", "Hot %", lambda r: r.hot_share, "hot ÷ leads.", kind="rate"),
    Column("cost", "Cost", lambda r: r.cost,
           "A campaign's recorded cost, the whole of it even when the campaign runs beyond "
           "the period (shared out by leads when a filter narrows them); a source's cost per "
           "lead × its leads. — when none is recorded.", kind="money"),
    Column("cost_per_lead", "Per lead", lambda r: r.cost_per_lead, "cost ÷ leads.",
           kind="money"),
    Column("cost_per_qualified", "Per qualified lead", lambda r: r.cost_per_qualified,
           "Cost per qualified lead: cost ÷ qualified.", kind="money"),
    Column("won", "Won", lambda r: r.won, "Of the leads, won to date.", "won"),
    Column("revenue", "Revenue", lambda r: r.revenue, "Sum of the won amounts.",
           kind="money"),
    Column("roi", "ROI", lambda r: r.roi,
           "(revenue − cost) ÷ cost; — with no cost recorded.", kind="rate"),
    Column("contacted", "Contacted", lambda r: r.contacted,
           "Of the leads, contacted by a partner to date.", "contacted"),
    Column("median_hours_to_contact", "To first contact",
           lambda r: r.median_hours_to_contact,
           "The median time from capture to first contact: the middle of the hours, over "
           "the leads contacted.", kind="hours"),
)
ROI_BY_NAME = {c.name: c for c in ROI_COLUMNS}


def _sorted(rows: list[roi.Returns], sort: str, descending: bool) -> list[roi.Returns]:
    column = ROI_BY_NAME.get(sort)
    if column is None:
        return rows
    defined = [r for r in rows if column.value(r) is not None]
    undefined = [r for r in rows if column.value(r) is None]
    defined.sort(key=lambda r: (column.value(r), r.name.lower()), reverse=descending)
    return defined + undefined


@bp.get("/campaigns")
@staff_only
def campaigns():  # type: ignore[no-untyped-def]
    """Per campaign and per source: leads captured in the period, how good they were, what
    they cost and brought; sortable; each table also as CSV."""
    asked = _asked()
    scope = asked.scope
    assert scope is not None
    by_campaign = roi.campaigns(db.session, scope)
    by_source = roi.sources(db.session, scope)
    if _wants_csv():
        table = request.args.get("table", "")
        if table not in ("campaigns", "sources"):
            abort(404)
        return _roi_csv(asked, table, by_campaign if table == "campaigns" else by_source)
    sort = request.args.get("sort", "")
    descending = request.args.get("dir", "desc") != "asc"
    tables = [("campaigns", "Campaigns", "campaign", *by_campaign),
              ("sources", "Sources", "source", *by_source)]
    tables = [(key, title, by, _sorted(rows, sort, descending), none, total)
              for key, title, by, rows, none, total in tables]
    return render_template(
        "reports/campaigns.html", asked=asked, tables=tables, columns=ROI_COLUMNS, sort=sort,
        descending=descending, shared=roi.narrows_campaigns(scope),
        options=forms.choices(db.session, current_user))


def _roi_csv(asked: forms.Asked, table: str,
             found: tuple[list[roi.Returns], roi.Returns | None, roi.Returns]) -> Any:
    rows, none, total = found
    header = ["code", "name", "starts_on", "ends_on", "cost_counted",
              *(c.name for c in ROI_COLUMNS)]

    def cells(row: roi.Returns) -> list[Any]:
        counted = ("" if row.cost is None else "shared by leads" if row.shared
                   else "whole, runs beyond the period" if row.beyond and table == "campaigns"
                   else "whole" if table == "campaigns" else "cost per lead × leads")
        values = [export.rate(c.value(row)) if c.kind == "rate" else c.value(row)
                  for c in ROI_COLUMNS]
        return [row.code, row.name, row.starts_on.isoformat() if row.starts_on else "",
                row.ends_on.isoformat() if row.ends_on else "", counted, *values]

    everything = [*rows, *([none] if none else []), total]
    return export.csv_response(f"{table}-{asked.start}-{asked.end}.csv", header,
                               (cells(r) for r in everything))


DRILL_MAX = 500


@bp.get("/campaigns/leads")
@staff_only
def campaign_leads():  # type: ignore[no-untyped-def]
    """The leads behind one count of the ROI tables: a campaign's (or source's) leads
    captured in the period that count for ``figure``; code ``-`` is the leads with none,
    ``*`` those with any."""
    asked = _asked()
    scope = asked.scope
    assert scope is not None
    figure = request.args.get("figure", "leads")
    by = request.args.get("by", "campaign")
    code = request.args.get("code", "*")
    if figure not in roi.FIGURES or by not in ("campaign", "source"):
        abort(404)
    key = Lead.campaign_id if by == "campaign" else Lead.source_id
    named: Campaign | Source | None = None
    which: ColumnElement[bool]
    if code == "-":
        which = key.is_(None)
    elif code == "*":
        which = key.is_not(None)
    else:
        named = (db.session.scalars(select(Campaign).where(Campaign.code == code)).first()
                 if by == "campaign" else
                 db.session.scalars(select(Source).where(Source.code == code)).first())
        if named is None:
            abort(404)
        which = key == named.id
    found = db.session.execute(
        select(Lead, Partner).outerjoin(Partner, Partner.id == Lead.assigned_partner_id)
        .where(*roi.lead_where(scope), which, roi.FIGURES[figure])
        .order_by(Lead.created_at.desc(), Lead.id).limit(DRILL_MAX + 1)).all()
    label = ROI_BY_NAME[figure].heading
    whose = (named.name if named is not None
             else f"No {by}" if code == "-" else f"All {by}s")
    return render_template(
        "reports/captured_leads.html", asked=asked, label=label, whose=whose, by=by,
        code=code, figure=figure, rows=found[:DRILL_MAX], more=len(found) > DRILL_MAX,
        display_name=display_name, options=forms.choices(db.session, current_user))

