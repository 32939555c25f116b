"""The channel reports' pages: the partner league table, its drill-down to the leads
behind each number, and a partner's scorecard. Staff see every partner, a distributor
itself and its dealers, a dealer its own scorecard; anyone else's is 404."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, NamedTuple
from urllib.parse import urlencode

from flask import Blueprint, Response, abort, current_app, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import func, select
from sqlalchemy.orm import aliased

from portal.core.models import Lead, Offer, Partner, PartnerKind, display_name, utcnow
from portal.core.pagination import Page
from portal.extensions import db
from portal.fulfilment import library, pdf
from portal.reports import charts, export, forms, metrics, speed, wonlost

bp = Blueprint("reports", __name__, url_prefix="/reports")

#: the reports' tabs: endpoint, text, for staff only (shown once the page exists)
TABS = (
    ("reports.overview", "Overview", True),
    ("reports.partners", "Partners", False),
    ("reports.won_lost", "Won / lost", True),
    ("reports.campaigns", "Campaigns and sources", True),
    ("reports.speed", "Speed to lead", False),
    ("reports.compliance", "Compliance", True),
)


@bp.app_context_processor
def _report_tabs() -> dict[str, Any]:
    def tabs(user: Any) -> list[tuple[str, str]]:
        return [(endpoint, text) for endpoint, text, staff in TABS
                if endpoint in current_app.view_functions
                and (not staff or getattr(user, "is_staff", False))]

    return {"report_tabs": tabs}


@bp.before_request
def _tune() -> None:
    metrics.tune(db.session)


@bp.app_template_filter("rate")
def rate_filter(value: float | None, digits: int = 0) -> str:
    """A rate as a percentage; "—" when it is undefined (nothing to divide by)."""
    return "—" if value is None else f"{value * 100:.{digits}f}%"


@bp.app_template_filter("hours")
def hours_filter(value: float | None) -> str:
    """Hours as "3.5 h" (or days past 48 h); "—" when undefined."""
    if value is None:
        return "—"
    return f"{value / 24:.1f} d" if value >= 48 else f"{value:.1f} h"


# --- the league table ----------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """One column of the league table: its heading, value, how it is computed, and the
    figure its number drills down to (None: not a count of leads)."""

    name: str
    heading: str
    value: Callable[[metrics.Figures], Any]
    how: str
    figure: str | None = None
    kind: str = "count"  #: count, rate, hours, money


def _money(value: Any) -> str:
    return f"${value:,.0f}"


COLUMNS = (
    Column("offered", "Offered", lambda f: f.offered,
           "Offers made to the partner in the period (a distributor's offer it forwarded "
           "counts for the dealer).", "offered"),
    Column("accepted", "Accepted", lambda f: f.accepted,
           "Of those, accepted by the report's end.", "accepted"),
    Column("declined", "Declined", lambda f: f.declined, "Declined, with a reason.",
           "declined"),
    Column("expired", "Expired", lambda f: f.expired,
           "Not answered within the acceptance time.", "expired"),
    Column("acceptance_rate", "Accept rate", lambda f: f.acceptance_rate,
           "accepted ÷ offered.", kind="rate"),
    Column("median_hours_to_accept", "Median to accept", lambda f: f.median_hours_to_accept,
           "The middle of the hours from offer to accept (to the second under an hour, "
           "the minute under two days, the hour beyond).", kind="hours"),
    Column("follow_up_rate", "Follow-up", lambda f: f.follow_up_rate,
           "Offered leads with a contact, a later stage or an outcome ÷ offered.",
           "followed_up", kind="rate"),
    Column("on_time_follow_up_rate", "On time", lambda f: f.on_time_follow_up_rate,
           "First contact (or outcome) within the contact time of the offer ÷ offered.",
           "on_time", kind="rate"),
    Column("overdue", "Overdue", lambda f: f.overdue,
           "Accepted, no outcome, offered longer ago than the outcome is due.", "overdue"),
    Column("untouched", "Untouched", lambda f: f.untouched,
           "Offered, never accepted, contacted or closed by the report's end.", "untouched"),
    Column("won", "Won", lambda f: f.won, "Closed as won by this partner.", "won"),
    Column("lost", "Lost", lambda f: f.lost, "Closed as lost by this partner.", "lost"),
    Column("win_rate", "Win rate", lambda f: f.win_rate, "won ÷ (won + lost).", kind="rate"),
    Column("revenue_won", "Revenue", lambda f: f.revenue_won, "Sum of the won amounts.",
           kind="money"),
)
BY_NAME = {c.name: c for c in COLUMNS}


#: partners a page of the league table shows (all of them are counted and sorted)
PER_PAGE = 100


class Listed(NamedTuple):
    """A partner as the reports list it: what a row shows, read as plain rows (the league
    table of 10,000 partners loads no ORM object)."""

    id: int
    code: str
    name: str
    kind: str
    active: bool
    parent_id: int | None
    parent_code: str


def _visible_partners(asked: forms.Asked) -> list[Listed]:
    assert asked.scope is not None
    parent = aliased(Partner)
    query = (select(Partner.id, Partner.code, Partner.name, Partner.kind, Partner.active,
                    Partner.parent_id, func.coalesce(parent.code, ""))
             .outerjoin(parent, parent.id == Partner.parent_id).order_by(Partner.name))
    if asked.scope.partner_ids is not None:
        query = query.where(Partner.id.in_(sorted(asked.scope.partner_ids) or [0]))
    return [Listed._make(row) for row in db.session.connection().execute(query).all()]


def _sorted(rows: list[metrics.Row], sort: str, descending: bool) -> list[metrics.Row]:
    column = BY_NAME.get(sort)
    if column is None:
        return sorted(rows, key=lambda r: r.partner.name.lower())
    defined = [r for r in rows if column.value(r.shown) is not None]
    undefined = [r for r in rows if column.value(r.shown) is None]
    defined.sort(key=lambda r: (column.value(r.shown), r.partner.name.lower()),
                 reverse=descending)
    return defined + sorted(undefined, key=lambda r: r.partner.name.lower())


def drill_links(asked: forms.Asked) -> Callable[[str, str, bool], str]:
    """The link from one number of a partner's row to the leads behind it: the page's
    query encoded once, not once per number (a league page has 800 of them)."""
    path = url_for("reports.leads")
    rest = urlencode(asked.query())

    def link(figure: str, code: str, rolled: bool) -> str:
        mine = urlencode({"figure": figure, "partner": code, "rolled": 1 if rolled else 0})
        return f"{path}?{mine}&{rest}" if rest else f"{path}?{mine}"

    return link


def _asked() -> forms.Asked:
    return forms.read(db.session, request.args, current_user)


def _league(asked: forms.Asked, *, medians: bool = True, details: bool = True
            ) -> tuple[list[metrics.Row], metrics.Figures]:
    """Every visible partner's row and the total: with every median and the declines by
    reason and competitors (the CSV, the API), or without (the page reads the medians of
    the rows it shows, and shows no reasons)."""
    assert asked.scope is not None
    return metrics.league_and_total(db.session, asked.scope, _visible_partners(asked),
                                    medians_of=metrics.ALL if medians else (),
                                    details=details)


@bp.get("/partners")
@login_required
def partners():  # type: ignore[no-untyped-def]
    """Every partner's figures for the period, sortable; each number opens its leads."""
    if not current_user.is_staff and current_user.partner is not None \
            and current_user.partner.kind != PartnerKind.DISTRIBUTOR:
        return scorecard(current_user.partner.code)
    asked = _asked()
    sort = request.args.get("sort", "")
    # The medians of the rows shown only, unless the table is sorted by them.
    by_median = sort == "median_hours_to_accept"
    rows, total = _league(asked, medians=by_median, details=False)
    everyone = request.args.get("show") == "all"
    if not everyone:  # partners the period gave nothing to say nothing
        rows = [r for r in rows if r.shown.offered]
    descending = request.args.get("dir", "desc") != "asc"
    rows = _sorted(rows, sort, descending)
    try:
        number = max(1, int(request.args.get("page", 1)))
    except ValueError:
        number = 1
    pages = max(1, math.ceil(len(rows) / PER_PAGE))
    number = min(number, pages)
    page = Page(items=rows[(number - 1) * PER_PAGE:number * PER_PAGE], number=number,
                pages=pages, total=len(rows))
    if not by_median:
        assert asked.scope is not None
        metrics.fill_medians(db.session, asked.scope, page.items)
    return render_template("reports/partners.html", asked=asked, page=page, total=total,
                           columns=COLUMNS, drill=drill_links(asked), sort=sort,
                           descending=descending, everyone=everyone,
                           options=forms.choices(db.session, current_user))


@bp.get("/partners.csv")
@login_required
def partners_csv():  # type: ignore[no-untyped-def]
    asked = _asked()
    rows, _ = _league(asked)
    header = ["code", "name", "kind", "distributor", "dealers_rolled_up",
              *[c.name for c in COLUMNS], "no_interest", "accepted_past_due",
              "outcome_compliance", "declined_by_reason", "lost_to"]

    def cells(row: metrics.Row) -> list[Any]:
        f = row.shown
        values = [export.rate(c.value(f)) if c.kind == "rate" else c.value(f)
                  for c in COLUMNS]
        return [row.partner.code, row.partner.name, row.partner.kind, row.partner.parent_code,
                row.dealers,
                *values, f.no_interest, f.accepted_past_due, export.rate(f.outcome_compliance),
                "; ".join(f"{k}: {v}" for k, v in sorted(f.declined_by.items())),
                "; ".join(f"{k}: {v}" for k, v in sorted(f.lost_to.items()))]

    return export.csv_response(f"partners-{asked.start}-{asked.end}.csv", header,
                               (cells(r) for r in _sorted(rows, "", False)))


# --- from a number to its leads ------------------------------------------------------------

DRILL_MAX = 500


@bp.get("/leads")
@login_required
def leads():  # type: ignore[no-untyped-def]
    """The leads behind one number of a report: one partner's (or a distributor's with
    its dealers', ``rolled=1``) offers in the scope that count for ``figure``."""
    asked = _asked()
    assert asked.scope is not None
    figure = request.args.get("figure", "offered")
    end = asked.scope.end()
    conditions = metrics.conditions(end)
    if figure not in conditions:
        abort(404)
    partner = None
    ids = asked.scope.partner_ids
    code = request.args.get("partner", "")
    if code:
        partner = db.session.scalars(select(Partner).where(Partner.code == code)).first()
        if partner is None or (ids is not None and partner.id not in ids):
            abort(404)
        family = {partner.id}
        if request.args.get("rolled") == "1":
            family |= set(db.session.scalars(
                select(Partner.id).where(Partner.parent_id == partner.id)))
        ids = family if ids is None else ids & family
    narrowed = wonlost.narrowing(db.session, request.args)  # the won / lost page's counts
    if narrowed is None:
        abort(404)
    query = (select(Offer, Lead, Partner).join(Lead, Lead.id == Offer.lead_id)
             .join(Partner, Partner.id == Offer.partner_id)
             .where(*asked.scope.where(), metrics.not_forwarded(), conditions[figure],
                    *narrowed.where)
             .order_by(Offer.offered_at.desc()).limit(DRILL_MAX + 1))
    if ids is not None:
        query = query.where(Offer.partner_id.in_(sorted(ids) or [0]))
    found = db.session.execute(query).all()
    label = {c.figure: c.heading for c in COLUMNS if c.figure}.get(figure, figure)
    if narrowed.said:
        label = f"{label} {', '.join(narrowed.said)}"
    back = ("reports.won_lost" if request.args.get("via") == "won_lost" and current_user.is_staff
            else "reports.partners")
    return render_template("reports/leads.html", asked=asked, partner=partner, figure=figure,
                           label=label, rows=found[:DRILL_MAX], more=len(found) > DRILL_MAX,
                           narrowed=narrowed, back=back,
                           display_name=display_name,
                           options=forms.choices(db.session, current_user))


# --- a partner's scorecard -----------------------------------------------------------------

#: the scorecard's rows: the league table's columns, with outcome compliance after overdue
_AFTER_OVERDUE = COLUMNS.index(BY_NAME["overdue"]) + 1
SCORECARD_COLUMNS = (
    *COLUMNS[:_AFTER_OVERDUE],
    Column("outcome_compliance", "Outcome compliance", lambda f: f.outcome_compliance,
           "1 − overdue ÷ accepted offers whose outcome is due (— when none is due yet).",
           kind="rate"),
    *COLUMNS[_AFTER_OVERDUE:],
)


def _visible_partner(code: str) -> Partner:
    """The partner called ``code`` if the user may see its figures, else 404."""
    partner = db.session.scalars(select(Partner).where(Partner.code == code)).first()
    visible = forms.visible_partner_ids(db.session, current_user)
    if partner is None or (visible is not None and partner.id not in visible):
        abort(404)
    return partner


def _scorecard(partner: Partner, asked: forms.Asked) -> dict[str, Any]:
    """What the scorecard page and its PDF show: the partner's figures (a distributor's
    with its dealers'), the channel's median partner, the weekly trend and its chart."""
    assert asked.scope is not None
    everyone = metrics.figures_by(db.session, replace(asked.scope, partner_ids=None),
                                  details=False)
    mine_scope = replace(asked.scope, partner_ids=frozenset({partner.id}))
    if partner.kind == PartnerKind.DISTRIBUTOR:
        mine_scope = replace(mine_scope, partner_ids=frozenset(
            {partner.id, *db.session.scalars(
                select(Partner.id).where(Partner.parent_id == partner.id))}))
    mine = metrics.channel(db.session, mine_scope)
    medians = {c.name: metrics.median_of(c.value(f) for f in everyone.values() if f.offered)
               for c in SCORECARD_COLUMNS if c.kind in ("rate", "hours")}
    weekly = metrics.weekly(db.session, mine_scope)
    chart = charts.lines(
        [f"{start:%d %b}" for start, _ in weekly],
        [("Follow-up rate", [f.follow_up_rate for _, f in weekly]),
         ("Acceptance rate", [f.acceptance_rate for _, f in weekly]),
         ("Win rate", [f.win_rate for _, f in weekly])],
        title=f"{partner.name}: weekly follow-up, acceptance and win rates", percent=True)
    return {"asked": asked, "partner": partner, "mine": mine, "medians": medians,
            "columns": SCORECARD_COLUMNS, "chart": chart, "weekly": weekly,
            "speed": speed.offers(db.session, mine_scope)}


@bp.get("/partners/<code>")
@login_required
def scorecard(code: str):  # type: ignore[no-untyped-def]
    """One partner's figures against the channel's median partner, and its trend."""
    asked = _asked()
    partner = _visible_partner(code)
    return render_template("reports/scorecard.html", **_scorecard(partner, asked),
                           options=forms.choices(db.session, current_user),
                           back=url_for("reports.partners", **asked.query()))


#: the paper a scorecard PDF is laid out for, by its name in the query string
PAPER = {"letter": "Letter", "a4": "A4"}


@bp.get("/partners/<code>.pdf")
@login_required
def scorecard_pdf(code: str):  # type: ignore[no-untyped-def]
    """The scorecard as a PDF to send (WeasyPrint, from templates/pdf/scorecard.html):
    the same figures, chart and numbers, on Letter or A4 (``paper=a4``), legible in grey."""
    asked = _asked()
    partner = _visible_partner(code)
    paper = PAPER.get(request.args.get("paper", "").lower(), "Letter")
    html = render_template("pdf/scorecard.html", **_scorecard(partner, asked),
                           made_at=utcnow(), paper=paper)
    try:
        data = pdf.render_pdf(html, css=render_template("pdf/scorecard.css", paper=paper),
                              **library.render_options())  # type: ignore[arg-type]
    except pdf.RenderError as error:
        current_app.logger.warning("scorecard PDF for %s failed: %s", partner.code, error)
        abort(503, "The PDF could not be made just now. Try again in a minute.")
    name = f"scorecard-{partner.code}-{asked.start}-{asked.end}.pdf"
    return Response(data, mimetype="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
