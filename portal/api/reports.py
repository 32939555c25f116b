"""``/api/v1/reports/partners``: each partner's DESIGN §7 figures for a period."""

from __future__ import annotations

from flask import g, jsonify, request
from sqlalchemy import select

from portal.api.auth import token_required
from portal.api.views import bp
from portal.core.models import Partner
from portal.core.web import json_error
from portal.extensions import db
from portal.reports import forms, metrics


@bp.get("/reports/partners")
@token_required
def report_partners():  # type: ignore[no-untyped-def]
    """Every partner the caller may see (staff all, a distributor itself and its dealers,
    a dealer itself) with each metric by its DESIGN §7 name, over the offers made from
    ``since`` to ``until`` (dates, both days included; default the last 90 days). A
    distributor's row counts its own offers; ``rolled_up`` adds its dealers'."""
    since, until = request.args.get("since", ""), request.args.get("until", "")
    args = {"period": "custom", "since": since, "until": until} if since or until else {}
    asked = forms.read(db.session, args, g.api_user)
    if asked.errors:
        return json_error(422, "invalid_input", "Give since and until as YYYY-MM-DD.",
                          asked.errors)
    assert asked.scope is not None
    metrics.tune(db.session)
    query = select(Partner).order_by(Partner.code)
    if asked.scope.partner_ids is not None:
        query = query.where(Partner.id.in_(sorted(asked.scope.partner_ids) or [0]))
    rows = metrics.league(db.session, asked.scope, db.session.scalars(query))
    return jsonify({
        "since": asked.start.isoformat() if asked.start else None,
        "until": asked.end.isoformat() if asked.end else None,
        "partners": [{
            "code": row.partner.code, "name": row.partner.name, "kind": row.partner.kind,
            "distributor": row.partner.parent.code if row.partner.parent else None,
            **row.own.as_json(),
            **({"rolled_up": row.rolled.as_json()} if row.rolled is not None else {}),
        } for row in rows],
    })
