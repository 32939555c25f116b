"""The channel overview (staff) and the speed-to-lead page (everyone, scoped): what became
of the leads captured in a period, and how the time to first contact bears on winning."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from sqlalchemy import select

from portal.core.models import Partner, display_name
from portal.extensions import db
from portal.reports import charts, export, forms, metrics, speed
from portal.reports import overview as leads_overview
from portal.reports.views import BY_NAME, DRILL_MAX, _asked, _visible_partners, bp


@bp.app_template_filter("duration")
def duration_filter(hours: float | None) -> str:
    """A time span read at a glance: "45 s", "12 min", "3.5 h", "2.1 d"; "—" when there is
    none (routing takes seconds, a first contact hours or days)."""
    if hours is None:
        return "—"
    seconds = hours * 3600
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{hours / 24:.1f} d" if hours >= 48 else f"{hours:.1f} h"


@dataclass(frozen=True)
class Figure:
    """One figure at the top of the overview: its value, how it is computed, and the list
    of leads behind it (``href``) with what it counts out of (``part``, ``whole``)."""

    name: str
    label: str
    value: Any
    how: str
    kind: str = "count"  #: count, rate, duration, money
    href: str | None = None
    part: int | None = None  #: for a rate: the leads counted …
    whole: int | None = None  #: … out of these
    part_href: str | None = None


#: how the medians count a time (what the rollups keep: a year's medians from their counts)
UNITS = ("Times are counted to the second under an hour, to the minute under two days, "
         "to the hour beyond.")


def _staff_only() -> None:
    if not current_user.is_staff:
        abort(404)


def _lead_list(asked: forms.Asked, figure: str) -> str:
    return url_for("reports.overview_leads", figure=figure, **asked.query())


def _offer_list(asked: forms.Asked, figure: str) -> str:
    return url_for("reports.leads", figure=figure, **asked.query())


def _figures(asked: forms.Asked, ov: leads_overview.Overview, work: metrics.Figures
             ) -> dict[str, list[Figure]]:
    """The overview's headline figures in three groups, each saying how it is computed."""
    t = ov.total
    due_days = current_app.config["OUTCOME_DUE_DAYS"]
    return {
        "questions": [
            Figure("sold", "Sold", t.won,
                   "Leads captured in the period that a partner closed as won by the "
                   "report's end.", href=_lead_list(asked, "won")),
            Figure("bought_from_competitor", "Bought from a competitor", t.lost_to_competitor,
                   "Leads captured in the period that a partner closed as lost with the "
                   "reason \"competitor\".", href=_lead_list(asked, "lost_to_competitor")),
            Figure("never_touched", "Never touched", t.untouched,
                   "Leads captured in the period that were offered to a partner, and that no "
                   "partner accepted, contacted or closed by the report's end.",
                   href=_lead_list(asked, "untouched")),
        ],
        "leads": [
            Figure("captured", "Leads captured", t.captured,
                   "Leads whose first inquiry falls in the period (the filters apply to the "
                   "lead; with a distributor chosen, the leads offered to it or its dealers).",
                   href=_lead_list(asked, "captured")),
            Figure("qualified_share", "Qualified", t.qualified_share,
                   "Captured leads that were qualified (sales-ready) at some point by the "
                   "report's end ÷ leads captured.", kind="rate", part=t.qualified,
                   whole=t.captured, part_href=_lead_list(asked, "qualified")),
            Figure("routed_within_1_minute", "Routed within 1 minute", t.routed_fast_share,
                   "Leads whose first offer to a partner (by the routing rules or a manager; "
                   "not a partner's own capture) came within 60 seconds of capture ÷ leads "
                   "offered that way.", kind="rate", part=t.routed_fast, whole=t.routed,
                   part_href=_lead_list(asked, "routed_fast")),
            Figure("median_capture_to_offer", "Median capture → offer",
                   ov.median_hours_to_offer,
                   "The middle of the times from capture to that first offer. " + UNITS,
                   kind="duration"),
            Figure("median_capture_to_first_contact", "Median capture → first contact",
                   ov.median_hours_to_contact,
                   "The middle of the times from capture to the first contact a partner "
                   "logged (or its outcome, if it reported one without a contact), over the "
                   "routed leads that were contacted. " + UNITS, kind="duration"),
        ],
        "work": [
            Figure("offered", "Offers made", work.offered, BY_NAME["offered"].how,
                   href=_offer_list(asked, "offered")),
            Figure("median_offer_to_accept", "Median offer → accept",
                   work.median_hours_to_accept,
                   "The middle of the times from offer to accept, over the offers accepted. "
                   + UNITS,
                   kind="duration"),
            Figure("follow_up_rate", "Follow-up rate", work.follow_up_rate,
                   BY_NAME["follow_up_rate"].how, kind="rate", part=work.followed_up,
                   whole=work.offered, part_href=_offer_list(asked, "followed_up")),
            Figure("outcome_compliance", "Outcome compliance", work.outcome_compliance,
                   f"1 − overdue ÷ accepted offers due an outcome (offered more than "
                   f"{due_days} days before the report's end): the share of them with an "
                   f"outcome reported.", kind="rate",
                   part=work.accepted_past_due - work.overdue, whole=work.accepted_past_due),
            Figure("won", "Won", work.won, "Offers made in the period that the partner closed "
                   "as won.", href=_offer_list(asked, "won")),
            Figure("win_rate", "Win rate", work.win_rate, BY_NAME["win_rate"].how,
                   kind="rate", part=work.won, whole=work.won + work.lost),
            Figure("revenue_won", "Revenue", work.revenue_won, BY_NAME["revenue_won"].how,
                   kind="money"),
        ],
    }


def _report() -> tuple[forms.Asked, leads_overview.Overview, metrics.Figures, speed.Speed]:
    asked = _asked()
    assert asked.scope is not None
    return (asked, leads_overview.overview(db.session, asked.scope),
            metrics.channel(db.session, asked.scope, details=False),
            speed.channel(db.session, asked.scope))


def _speed_chart(found: speed.Speed, title: str) -> Any:
    """Win rate per bucket, each bar named with how many leads it is over (a rate over two
    leads is no evidence), undefined rates as "—"."""
    return charts.bars([(f"{b.label} ({b.leads:,})",
                         None if b.win_rate is None else round(b.win_rate * 100, 1))
                        for b in found.buckets], title=title, fmt=lambda v: f"{v:.0f}% won")


@bp.get("/")
@login_required
def overview():  # type: ignore[no-untyped-def]
    """The channel at a glance for staff: the leads captured in the period, what became of
    them, the partners' work on the period's offers, the funnel, weekly trends and speed to
    lead. A partner is sent to its own reports."""
    if not current_user.is_staff:
        return redirect(url_for("reports.partners"))
    asked, ov, work, channel_speed = _report()
    weekly_chart = charts.lines(
        [f"{w.start:%d %b}" for w in ov.weeks],
        [("Captured", [w.counts.captured for w in ov.weeks]),
         ("Offered", [w.counts.offered for w in ov.weeks]),
         ("Contacted", [w.counts.contacted for w in ov.weeks]),
         ("Won", [w.counts.won for w in ov.weeks])],
        title="Leads captured each week, and how many of them were offered, contacted, won")
    funnel = ov.funnel()
    funnel_chart = charts.bars([(label, n) for _, label, n, _, _ in funnel],
                               title="The funnel: leads captured in the period by how far "
                                     "they got")
    return render_template(
        "reports/overview.html", asked=asked, ov=ov, work=work, funnel=funnel,
        figures=_figures(asked, ov, work), weekly_chart=weekly_chart,
        funnel_chart=funnel_chart, speed=channel_speed,
        speed_chart=_speed_chart(channel_speed, "Win rate by time from capture to first "
                                                "contact, leads captured in the period"),
        options=forms.choices(db.session, current_user))


OVERVIEW_TABLES = ("figures", "funnel", "weeks", "speed")


def _figure_cell(figure: Figure) -> Any:
    if figure.kind == "rate":
        return export.rate(figure.value)
    if figure.kind == "money":
        return str(Decimal(figure.value).quantize(Decimal("0.01")))
    return figure.value  # counts; durations in hours


@bp.get("/overview/<table>.csv")
@login_required
def overview_csv(table: str):  # type: ignore[no-untyped-def]
    """One of the overview's tables as CSV: its figures, the funnel, the weeks, the speed."""
    _staff_only()
    if table not in OVERVIEW_TABLES:
        abort(404)
    asked, ov, work, channel_speed = _report()
    name = f"overview-{table}-{asked.start}-{asked.end}.csv"
    if table == "figures":
        groups = _figures(asked, ov, work)
        return export.csv_response(
            name, ["figure", "value", "counted", "out_of", "unit", "how"],
            ([f.name, _figure_cell(f), f.part, f.whole,
              {"rate": "percent", "duration": "hours", "money": "dollars"}.get(f.kind, "leads"),
              f.how] for group in groups.values() for f in group))
    if table == "funnel":
        return export.csv_response(
            name, ["stage", "leads", "share_of_captured", "share_of_previous_stage"],
            ([stage, n, export.rate(of_all), export.rate(of_before)]
             for stage, _, n, of_all, of_before in ov.funnel()))
    if table == "weeks":
        return export.csv_response(
            name, ["week_from", *[stage for stage, _ in leads_overview.FUNNEL],
                   "lost_to_competitor", "untouched"],
            ([w.start.isoformat(), *[getattr(w.counts, stage)
                                     for stage, _ in leads_overview.FUNNEL],
              w.counts.lost_to_competitor, w.counts.untouched] for w in ov.weeks))
    return _speed_csv(name, [("", "All leads", "", "", channel_speed)])


@bp.get("/overview/leads")
@login_required
def overview_leads():  # type: ignore[no-untyped-def]
    """The leads behind one of the overview's numbers (captured in the period)."""
    _staff_only()
    asked = _asked()
    assert asked.scope is not None
    figure = request.args.get("figure", "captured")
    query = leads_overview.leads_behind(asked.scope, figure, limit=DRILL_MAX + 1)
    if query is None:
        abort(404)
    found = db.session.execute(query).all()
    labels = {"captured": "Leads captured", "qualified": "Qualified",
              "routed_fast": "Routed within 1 minute", "routed": "Routed",
              "offered": "Offered", "accepted": "Accepted", "contacted": "Contacted",
              "won": "Sold", "lost": "Lost", "lost_to_competitor": "Bought from a competitor",
              "untouched": "Never touched"}
    return render_template("reports/overview_leads.html", asked=asked, figure=figure,
                           label=labels.get(figure, figure), rows=found[:DRILL_MAX],
                           more=len(found) > DRILL_MAX, display_name=display_name,
                           options=forms.choices(db.session, current_user))


# --- speed to lead -------------------------------------------------------------------------


def _speed_page_data(asked: forms.Asked) -> tuple[speed.Speed | None, speed.Speed,
                                                  list[speed.PartnerSpeed]]:
    """The channel's leads (staff only), all the offers in scope, and each partner's."""
    assert asked.scope is not None
    channel_speed = speed.channel(db.session, asked.scope) if current_user.is_staff else None
    rows = speed.partner_rows(db.session, asked.scope, _visible_partners(asked))
    return channel_speed, speed.offers(db.session, asked.scope), rows


@bp.get("/speed", endpoint="speed")
@login_required
def speed_page():  # type: ignore[no-untyped-def]
    """Contact rate and win rate by time from capture to first contact: the channel's
    leads (staff), then each partner's own offers (a partner its own, a distributor its
    own and its dealers')."""
    asked = _asked()
    channel_speed, all_offers, rows = _speed_page_data(asked)
    shown = channel_speed if channel_speed is not None else all_offers
    chart = _speed_chart(shown, "Win rate by time from capture to first contact")
    return render_template("reports/speed.html", asked=asked, channel=channel_speed,
                           all_offers=all_offers, rows=rows, chart=chart,
                           buckets=speed.BUCKETS,
                           options=forms.choices(db.session, current_user))


def _speed_csv(name: str, rows: list[tuple[str, str, str, str, speed.Speed]]) -> Any:
    header = ["partner", "name", "kind", "distributor", "bucket", "leads", "contact_rate",
              "won", "lost", "win_rate", "won_per_lead"]
    return export.csv_response(name, header, (
        [code, title, kind, parent, b.key, b.leads, export.rate(share), b.won, b.lost,
         export.rate(b.win_rate), export.rate(b.won_per_lead)]
        for code, title, kind, parent, found in rows for b, share in found.rows()))


@bp.get("/speed/<table>.csv")
@login_required
def speed_csv(table: str):  # type: ignore[no-untyped-def]
    """The speed-to-lead tables as CSV: ``channel`` (staff: the leads) or ``partners``
    (each partner's own offers and all of them; ``partner=CODE`` for one)."""
    asked = _asked()
    assert asked.scope is not None
    name = f"speed-{table}-{asked.start}-{asked.end}.csv"
    if table == "channel":
        _staff_only()
        return _speed_csv(name, [("", "All leads", "", "",
                                  speed.channel(db.session, asked.scope))])
    if table != "partners":
        abort(404)
    code = request.args.get("partner", "")
    partners = _visible_partners(asked)
    if code:
        partners = [p for p in partners if p.code == code]
        if not partners:
            abort(404)
    parents = dict(db.session.execute(select(Partner.id, Partner.code).where(
        Partner.id.in_(sorted({p.parent_id for p in partners if p.parent_id}) or [0]))).all())
    rows = [(r.partner.code, r.partner.name, r.partner.kind,
             parents.get(r.partner.parent_id, ""), r.speed)
            for r in speed.partner_rows(db.session, asked.scope, partners)]
    if not code:
        rows.append(("", "All offers", "", "", speed.offers(db.session, asked.scope)))
    return _speed_csv(name, rows)

