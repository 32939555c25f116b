"""The channel managers' analysis pages: won / lost (who wins against us, where and when).
Staff only: anyone else gets a 404."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any

from flask import abort, render_template, request
from flask_login import current_user, login_required

from portal.extensions import db
from portal.reports import charts, export, forms, wonlost
from portal.reports.views import bp


def staff_only(view: Callable[..., Any]) -> Callable[..., Any]:
    """Managers' reports: a partner user gets a 404, as for anything it may not see."""

    @wraps(view)
    @login_required
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        if not current_user.is_staff:
            abort(404)
        return view(*args, **kwargs)

    return wrapped


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
