"""Overdue outcomes: accepted leads with no closed outcome ``OUTCOME_DUE_DAYS`` later.

Kept apart from the workspace services so routing (the compliance gate) can use it
without importing the pages' code.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from flask import current_app
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.orm import Session

from portal.core.models import WORKING_STATUSES, Lead, LeadStatus, utcnow


def overdue_cutoff(now: datetime | None = None) -> datetime:
    """Leads accepted before this moment and still open are overdue."""
    days = float(current_app.config["OUTCOME_DUE_DAYS"])
    return (now or utcnow()) - timedelta(days=days)


def overdue_clause(now: datetime | None = None) -> ColumnElement[bool]:
    """A WHERE clause: the lead is being worked and its outcome is past due."""
    return overdue_before(overdue_cutoff(now))


def overdue_before(cutoff: datetime | ColumnElement[datetime]) -> ColumnElement[bool]:
    """The same clause for a given cutoff: a moment, or a bound parameter that a statement
    built once (the inbox's) takes at each execution."""
    return or_(*overdue_parts(cutoff))


def overdue_parts(cutoff: datetime | ColumnElement[datetime]
                  ) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    """The overdue clause as two disjoint parts: accepted before the cutoff, and (odd old
    rows) never accepted but offered before it. Each is one range of the
    (assigned_partner_id, status, accepted_at, offered_at) index, so a count of each
    reads only the overdue entries; the OR of both made SQLite read every working lead.
    """
    working = Lead.status.in_([str(s) for s in WORKING_STATUSES])
    late, never_accepted = _late(cutoff)
    return and_(working, late), and_(working, never_accepted)


def _late(cutoff: datetime | ColumnElement[datetime]
          ) -> tuple[ColumnElement[bool], ColumnElement[bool]]:
    # Not coalesce(): an expression over both dates could use no index at all.
    return (Lead.accepted_at < cutoff,
            and_(Lead.accepted_at.is_(None), Lead.offered_at < cutoff))


def overdue_ranges(cutoff: datetime | ColumnElement[datetime]) -> list[ColumnElement[bool]]:
    """``overdue_parts`` split further, one clause per working status: each is an index
    range whatever plan the database makes. A prepared statement's generic plan (which
    PostgreSQL settles on after five executions) does not know the partner is a busy one
    and filtered an IN list of statuses instead, reading all of a dealer's 5,000 leads."""
    return [and_(Lead.status == str(status), part)
            for status in WORKING_STATUSES for part in _late(cutoff)]


def untouched_clause() -> ColumnElement[bool]:
    """A WHERE clause: the lead waits for its partner's first answer, neither accepted,
    contacted nor closed (DESIGN §7's untouched, as of now; the partner's New tab)."""
    return Lead.status == LeadStatus.OFFERED


def overdue_counts(session: Session, partner_ids: Iterable[int],
                   now: datetime | None = None) -> dict[int, int]:
    """Overdue outcomes per partner, for just these partners, in one grouped query."""
    ids = sorted(set(partner_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Lead.assigned_partner_id, func.count())
        .where(Lead.assigned_partner_id.in_(ids), overdue_clause(now))
        .group_by(Lead.assigned_partner_id)
    )
    return {pid: count for pid, count in rows}


def gate_limit() -> int | None:
    """The compliance gate's limit (config ``COMPLIANCE_GATE_MAX_OVERDUE``); None = off."""
    limit = current_app.config.get("COMPLIANCE_GATE_MAX_OVERDUE")
    return None if limit is None else int(limit)


def gate_reason(overdue: int, limit: int | None) -> str | None:
    """Why the gate holds back new offers, or None when it does not."""
    if limit is None or overdue <= limit:
        return None
    noun = "outcome" if overdue == 1 else "outcomes"
    return f"compliance gate: {overdue} overdue {noun} (limit {limit})"
