"""The reports' rollups, kept exact by every write (the tables: ``models.rollups``).

A flush hook counts each changed offer and lead as a difference: its contribution before
the flush is taken away and its contribution after is added (``UPDATE … SET n = n + d``,
an upsert), in the same transaction as the change. So whatever changes a lead, whenever —
an outcome months later, a re-opened lead, a reassignment, a forward — the rollups move
with it, and two transactions changing the same partner's month both count (the row lock
orders them; neither overwrites the other). A rolled-back transaction takes its counts
with it.

What an offer contributes (``offer_contribution``) and what a lead contributes
(``lead_contribution``) is said once, here, in Python, for the hook and for ``rebuild``
alike; the reports' live queries (``portal.reports``) say the same in SQL, and the tests
check that both agree. Everything counted is "by now": a report whose period ends in the
past, or that filters on the lead's attributes, reads live.

Writes that go around the ORM (a bulk load, a migration over existing data) leave the
state ``stale``: the reports read live until ``rebuild`` (``flask --app portal reports
rebuild``) has counted everything again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from flask import current_app, has_app_context
from sqlalchemy import Connection, and_, case, delete, event, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, UOWTransaction

from portal.core.database import PortalSession
from portal.core.models import (
    LEAD_COUNTS,
    OFFER_COUNTS,
    SPEED_KEYS,
    DurationMonth,
    Lead,
    LeadDay,
    LeadEvent,
    LeadFacts,
    LeadStatus,
    Offer,
    OfferDay,
    OfferMonth,
    OfferResponse,
    RollupState,
    utcnow,
)

R = OfferResponse
#: a lead reached a partner "at once" when its first offer came within this many seconds
ROUTED_WITHIN_SECONDS = 60
#: durations are counted in whole seconds up to an hour, whole minutes up to two days,
#: whole hours beyond: a median exact to what the pages show, from a few thousand counts
SECONDS_UP_TO, MINUTES_UP_TO = 3600, 48 * 3600
#: DESIGN §7's speed buckets: key, upper bound in seconds (exclusive)
SPEED_BOUNDS = (("<1h", 3600), ("1-4h", 4 * 3600), ("4-24h", 24 * 3600), ("1-2d", 48 * 3600))

#: the offer columns a contribution reads: their old value must be known at the flush
OFFER_FIELDS = ("partner_id", "offered_at", "response", "accepted_at", "contacted_at",
                "closed_at", "outcome", "amount")


def duration_seconds(start: datetime, end: datetime) -> int:
    """A duration as the rollups keep it, in seconds: whole seconds below an hour, whole
    minutes below two days, whole hours beyond; never negative."""
    seconds = max(0, (end - start) // timedelta(seconds=1))
    if seconds < SECONDS_UP_TO:
        return seconds
    return seconds // 60 * 60 if seconds < MINUTES_UP_TO else seconds // 3600 * 3600


def whole_seconds(start: datetime, end: datetime) -> int:
    """Whole seconds from ``start`` to ``end``, rounded (as the reports' SQL does)."""
    return int((end - start).total_seconds() + 0.5) if end >= start \
        else -int((start - end).total_seconds() + 0.5)


def month_of(moment: datetime) -> date:
    return date(moment.year, moment.month, 1)


def day_of(moment: datetime) -> date:
    return moment.astimezone(UTC).date() if moment.tzinfo else moment.date()


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def speed_key(seconds: int | None) -> str:
    """The speed-to-lead bucket of a time from capture to first contact (None: never)."""
    if seconds is None:
        return "never"
    for key, bound in SPEED_BOUNDS:
        if seconds < bound:
            return key
    return ">2d"


# --- what one offer, one lead contributes -----------------------------------------------


@dataclass
class Contribution:
    """Counts keyed by row, and durations keyed by (kind, month, seconds)."""

    rows: dict[Any, dict[str, Any]] = field(default_factory=dict)
    durations: dict[tuple[str, date, int], int] = field(default_factory=dict)

    def add(self, other: Contribution | None, sign: int = 1) -> None:
        if other is None:
            return
        for key, counts in other.rows.items():
            mine = self.rows.setdefault(key, {})
            for name, value in counts.items():
                mine[name] = mine.get(name, 0) + sign * value
        for key, n in other.durations.items():
            self.durations[key] = self.durations.get(key, 0) + sign * n

    def nonzero(self) -> Contribution:
        rows = {k: c for k, c in ((k, {n: v for n, v in c.items() if v})
                                  for k, c in self.rows.items()) if c}
        return Contribution(rows, {k: n for k, n in self.durations.items() if n})


def offer_contribution(values: dict[str, Any], sla_hours: float) -> Contribution | None:
    """What one offer adds to its partner's month (DESIGN §7, by now); None for an offer a
    distributor forwarded (its dealer's offer counts instead)."""
    if values["response"] == R.FORWARDED or values["partner_id"] is None:
        return None
    offered_at = _utc(values["offered_at"])
    accepted_at = _utc(values["accepted_at"])
    contacted_at = _utc(values["contacted_at"])
    closed_at = _utc(values["closed_at"])
    assert offered_at is not None
    sla = sla_hours * 3600

    def within(moment: datetime | None) -> bool:
        return moment is not None and (moment - offered_at).total_seconds() <= sla

    outcome = values["outcome"] if closed_at is not None else None
    held = accepted_at is not None and values["response"] == R.ACCEPTED
    counts = {
        "offered": 1,
        "accepted": int(accepted_at is not None),
        "declined": int(values["response"] == R.DECLINED),
        "expired": int(values["response"] == R.EXPIRED),
        "followed_up": int(contacted_at is not None or closed_at is not None),
        "on_time": int(within(contacted_at) or within(closed_at)),
        "held": int(held),
        "held_open": int(held and closed_at is None),
        "won": int(outcome == "won"),
        "lost": int(outcome == "lost"),
        "no_interest": int(outcome == "no_interest"),
        "untouched": int(accepted_at is None and contacted_at is None and closed_at is None),
        "revenue_won": Decimal(values["amount"] or 0) if outcome == "won" else Decimal(0),
    }
    month = month_of(offered_at)
    # Each partner's month, and the channel's day (its whole-day periods need no edges).
    found = Contribution({(values["partner_id"], month): counts, day_of(offered_at): counts})
    if accepted_at is not None:
        found.durations[("accept", month, duration_seconds(offered_at, accepted_at))] = 1
    return found


@dataclass(frozen=True)
class Facts:
    """One lead's facts as ``lead_facts`` keeps them."""

    created_at: datetime
    qualified_at: datetime | None
    offered_at: datetime | None
    routed_at: datetime | None
    accepted_at: datetime | None
    touched_at: datetime | None
    won: bool
    lost: bool
    lost_to_competitor: bool

    NAMES = ("created_at", "qualified_at", "offered_at", "routed_at", "accepted_at",
             "touched_at", "won", "lost", "lost_to_competitor")

    @classmethod
    def of(cls, row: Any) -> Facts:
        values = row._mapping if hasattr(row, "_mapping") else row
        return cls(**{name: _utc(values[name]) if name.endswith("_at") else bool(values[name])
                      for name in cls.NAMES})


def lead_contribution(facts: Facts | None) -> Contribution | None:
    """What one lead adds to its day of capture and to the months' durations."""
    if facts is None:
        return None
    created = facts.created_at
    routed = facts.routed_at is not None
    contacted = facts.touched_at is not None
    counts: dict[str, Any] = {
        "captured": 1,
        "qualified": int(facts.qualified_at is not None),
        "offered": int(facts.offered_at is not None),
        "routed": int(routed),
        "routed_fast": int(routed and whole_seconds(created, facts.routed_at)  # type: ignore[arg-type]
                           <= ROUTED_WITHIN_SECONDS),
        "accepted": int(facts.accepted_at is not None),
        "contacted": int(contacted),
        "won": int(facts.won),
        "lost": int(facts.lost),
        "lost_to_competitor": int(facts.lost_to_competitor),
        "untouched": int(facts.offered_at is not None and facts.accepted_at is None
                         and not contacted),
    }
    month = month_of(created)
    found = Contribution({day_of(created): counts})
    if routed:
        assert facts.routed_at is not None
        suffix = SPEED_KEYS[speed_key(whole_seconds(created, facts.touched_at)
                                      if facts.touched_at is not None else None)]
        counts[f"speed_{suffix}"] = 1
        counts[f"speed_won_{suffix}"] = int(facts.won)
        counts[f"speed_lost_{suffix}"] = int(facts.lost)
        found.durations[("offer", month, duration_seconds(created, facts.routed_at))] = 1
        if facts.touched_at is not None:
            found.durations[("contact", month, duration_seconds(created, facts.touched_at))] = 1
    return found


def facts_query(lead_ids: Iterable[uuid.UUID] | None = None) -> Any:
    """Each lead's facts from its offers and events, as of now (all leads: ``None``)."""
    o = Offer
    qualified = (select(func.min(LeadEvent.at))
                 .where(LeadEvent.lead_id == Lead.id,
                        LeadEvent.to_status == LeadStatus.QUALIFIED)
                 .correlate(Lead).scalar_subquery())
    closed = o.closed_at.is_not(None)

    def flag(condition: Any) -> Any:
        return func.max(case((condition, 1), else_=0))

    query = (select(
        Lead.id.label("lead_id"),
        Lead.created_at.label("created_at"),
        qualified.label("qualified_at"),
        func.min(o.offered_at).label("offered_at"),
        func.min(case((o.method != "self", o.offered_at))).label("routed_at"),
        func.min(o.accepted_at).label("accepted_at"),
        func.min(func.coalesce(o.contacted_at, o.closed_at)).label("touched_at"),
        flag(and_(o.outcome == "won", closed)).label("won"),
        flag(and_(o.outcome == "lost", closed)).label("lost"),
        flag(and_(o.outcome == "lost", closed, o.lost_reason == "competitor"))
        .label("lost_to_competitor"),
    ).outerjoin(o, o.lead_id == Lead.id).group_by(Lead.id, Lead.created_at))
    if lead_ids is not None:
        query = query.where(Lead.id.in_(sorted(lead_ids)))
    return query


# --- writing the differences ---------------------------------------------------------------


def _insert(conn: Connection) -> Any:
    return postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert


def apply(conn: Connection, change: Contribution, key_columns: tuple[str, ...],
          table: Any) -> None:
    """Add ``change``'s counts to ``table``'s rows (an upsert adding to what is there)."""
    if not change.rows:
        return
    insert = _insert(conn)
    names = sorted({n for counts in change.rows.values() for n in counts})
    rows = []
    for key, counts in sorted(change.rows.items(), key=lambda kv: str(kv[0])):
        keys = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(key_columns, keys, strict=True)),
                     **{n: counts.get(n, 0) for n in names}})
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(
        index_elements=list(key_columns),
        set_={n: getattr(table.c, n) + getattr(stmt.excluded, n) for n in names})
    conn.execute(stmt, rows)


def apply_offers(conn: Connection, change: Contribution) -> None:
    """An offers' change: the partners' months and the channel's days."""
    months = {k: v for k, v in change.rows.items() if isinstance(k, tuple)}
    days = {k: v for k, v in change.rows.items() if not isinstance(k, tuple)}
    apply(conn, Contribution(months), ("partner_id", "month"), OfferMonth.__table__)
    apply(conn, Contribution(days), ("day",), OfferDay.__table__)


def apply_durations(conn: Connection, durations: dict[tuple[str, date, int], int]) -> None:
    if not durations:
        return
    table = DurationMonth.__table__
    insert = _insert(conn)
    stmt = insert(table)
    stmt = stmt.on_conflict_do_update(index_elements=["kind", "month", "seconds"],
                                      set_={"n": table.c.n + stmt.excluded.n})
    conn.execute(stmt, [{"kind": k, "month": m, "seconds": sec, "n": n}
                        for (k, m, sec), n in sorted(durations.items())])


def sla_hours() -> float:
    return float(current_app.config["CONTACT_SLA_HOURS"]) if has_app_context() else 48.0


#: Session.info key: what this transaction changed, counted when it commits
_TOUCHED = "portal.rollups.touched"


@dataclass
class Touched:
    """The offers and leads a transaction changed. ``offers`` keeps each offer's values
    as they were before the transaction touched it (None: made in it), read from the
    database under the lead's lock, not from objects a session may have kept."""

    offers: dict[int, dict[str, Any] | None] = field(default_factory=dict)
    leads: set[uuid.UUID] = field(default_factory=set)
    stale: bool = False


def _touched(session: Session) -> Touched:
    found: Touched = session.info.setdefault(_TOUCHED, Touched())
    return found


def _offer_values(conn: Connection, ids: Iterable[int]) -> dict[int, dict[str, Any]]:
    found = {}
    for part in _chunks(sorted(set(ids))):
        for row in conn.execute(select(Offer.id, *[getattr(Offer, n) for n in OFFER_FIELDS])
                                .where(Offer.id.in_(part))):
            values = dict(row._mapping)
            found[values.pop("id")] = values
    return found


@event.listens_for(PortalSession, "before_flush")
def _remember_offers(session: Session, _context: UOWTransaction, _instances: Any) -> None:
    # An offer about to change for the first time in this transaction: its values now.
    changing = [o.id for o in (*session.dirty, *session.deleted)
                if isinstance(o, Offer) and o.id is not None and session.is_modified(o)]
    touched = session.info.get(_TOUCHED)
    fresh = [i for i in changing if touched is None or i not in touched.offers]
    if fresh:
        _touched(session).offers.update(_offer_values(session.connection(), fresh))


@event.listens_for(PortalSession, "after_flush")
def _note_changes(session: Session, _context: UOWTransaction) -> None:
    offers_new = [o for o in session.new if isinstance(o, Offer)]
    offers_dirty = [o for o in session.dirty if isinstance(o, Offer)]
    leads = [o for o in session.new if isinstance(o, Lead)]
    events = [o for o in session.new if isinstance(o, LeadEvent)
              and o.to_status == LeadStatus.QUALIFIED]
    gone = any(isinstance(o, (Lead, Offer)) for o in session.deleted)
    if not (offers_new or offers_dirty or leads or events or gone):
        return
    touched = _touched(session)
    # Nothing deletes leads or offers today; if something does, the counts of what went
    # are gone with it: the reports read live until the next rebuild rather than be wrong.
    touched.stale |= gone
    for offer in offers_new:
        touched.offers.setdefault(offer.id, None)
    # A lead's facts come from its capture, its offers and its "qualified" events: a lead
    # whose other columns changed (its version, a note's time) is not read again.
    touched.leads |= {o.lead_id for o in (*offers_new, *offers_dirty)}
    touched.leads |= {lead.id for lead in leads} | {e.lead_id for e in events}
    touched.leads.discard(None)  # type: ignore[arg-type]


@event.listens_for(PortalSession, "before_commit")
def _count_changes(session: Session) -> None:
    """Count what the transaction changed, as it commits: every rollup row it moves is
    locked only now, in one order (table by table, keys sorted), so two writers never
    wait on each other crosswise; a rolled-back savepoint's changes are not counted
    because the counts are read from the database as it is now."""
    session.flush()  # the commit would flush after this hook: count that too
    touched: Touched | None = session.info.pop(_TOUCHED, None)
    if touched is None:
        return
    conn = session.connection()
    if touched.stale:
        mark(conn, "stale")
        return
    sla = sla_hours()
    change = Contribution()
    now = _offer_values(conn, touched.offers)
    for offer_id, before in touched.offers.items():
        if before == now.get(offer_id):
            continue
        change.add(offer_contribution(before, sla) if before else None, -1)
        change.add(offer_contribution(now[offer_id], sla) if offer_id in now else None)
    offers = change.nonzero()
    apply_offers(conn, offers)
    leads = recount_leads(conn, touched.leads)
    durations = Contribution(durations=offers.durations)
    durations.add(Contribution(durations=leads.durations))
    apply_durations(conn, durations.nonzero().durations)


@event.listens_for(PortalSession, "after_transaction_end")
def _forget_changes(session: Session, transaction: Any) -> None:
    if transaction.parent is None:  # rolled back, or counted at the commit
        session.info.pop(_TOUCHED, None)


def _chunks(items: list[Any], size: int = 2_000) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def recount_leads(conn: Connection, lead_ids: Iterable[uuid.UUID]) -> Contribution:
    """Count these leads again: their facts as they are now against the facts counted
    (``lead_facts``), the days' counts moved; returns what moved (its durations are the
    caller's to apply, with the others, in one order)."""
    every = sorted(set(lead_ids))
    change = Contribution()
    facts_table = LeadFacts.__table__
    for part in _chunks(every):
        before = {row.lead_id: Facts.of(row) for row in conn.execute(
            select(facts_table).where(facts_table.c.lead_id.in_(part)))}
        after = {row.lead_id: Facts.of(row) for row in conn.execute(facts_query(part))}
        changed = []
        for lead_id in part:
            old, new = before.get(lead_id), after.get(lead_id)
            if old == new:
                continue
            change.add(lead_contribution(old), -1)
            change.add(lead_contribution(new))
            changed.append(lead_id)
        if changed:
            conn.execute(delete(facts_table).where(facts_table.c.lead_id.in_(changed)))
            fresh = [{"lead_id": i, **{n: getattr(after[i], n) for n in Facts.NAMES}}
                     for i in changed if i in after]
            if fresh:
                conn.execute(facts_table.insert(), fresh)
    change = change.nonzero()
    apply(conn, Contribution(change.rows), ("day",), LeadDay.__table__)
    return change


def forget_leads(conn: Connection, lead_ids: Iterable[uuid.UUID]) -> None:
    """Take these leads and their offers out of the rollups: what to call before deleting
    leads around the ORM (an erasure, a test's clean-up), so the counts stay exact."""
    ids = sorted(set(lead_ids))
    if not ids:
        return
    sla = sla_hours()
    offers = Contribution()
    for row in conn.execute(select(*[getattr(Offer, n) for n in OFFER_FIELDS])
                            .where(Offer.lead_id.in_(ids))):
        offers.add(offer_contribution(dict(row._mapping), sla), -1)
    offers = offers.nonzero()
    apply_offers(conn, offers)
    leads = Contribution(durations=offers.durations)
    facts_table = LeadFacts.__table__
    for row in conn.execute(select(facts_table).where(facts_table.c.lead_id.in_(ids))):
        leads.add(lead_contribution(Facts.of(row)), -1)
    leads = leads.nonzero()
    apply(conn, leads, ("day",), LeadDay.__table__)
    apply_durations(conn, leads.durations)
    conn.execute(delete(facts_table).where(facts_table.c.lead_id.in_(ids)))


# --- state and rebuild ---------------------------------------------------------------------


def state(session: Session | Connection) -> RollupState | None:
    if isinstance(session, Session):
        return session.get(RollupState, 1)
    row = session.execute(select(RollupState.__table__).where(
        RollupState.__table__.c.id == 1)).first()
    return None if row is None else RollupState(**row._mapping)


def readable(session: Session) -> bool:
    """May the reports read the rollups: built, and counted with today's contact time."""
    found = session.execute(select(RollupState.state, RollupState.contact_sla_hours)
                            .where(RollupState.id == 1)).first()
    return found is not None and found.state == "built" \
        and abs(found.contact_sla_hours - sla_hours()) < 1e-9


def _stream(conn: Connection, query: Any, size: int = 20_000) -> Iterator[Any]:
    # Per statement: Connection.execution_options() would stream every later one too.
    result = conn.execute(query, execution_options={"yield_per": size})
    for part in result.partitions(size):
        yield from part


def rebuild(conn: Connection, *, batch: int = 20_000) -> dict[str, int]:
    """Count every offer and lead again from scratch, then mark the rollups built (with
    the contact time they were counted with). Returns the rows counted."""
    sla = sla_hours()
    tables = (OfferMonth, OfferDay, LeadDay, DurationMonth, LeadFacts)
    if conn.dialect.name == "postgresql":
        # Writers count their changes as they commit: they wait for the rebuild, then add
        # theirs to its counts (SQLite has one writer at a time anyway).
        conn.exec_driver_sql("LOCK TABLE " + ", ".join(t.__tablename__ for t in tables)
                             + " IN EXCLUSIVE MODE")
    for table in tables:
        conn.execute(delete(table.__table__))
    months = Contribution()
    offers = 0
    for row in _stream(conn, select(*[getattr(Offer, n) for n in OFFER_FIELDS])):
        months.add(offer_contribution(dict(row._mapping), sla))
        offers += 1
    apply_offers(conn, months.nonzero())
    days = Contribution()
    leads = 0
    pending: list[dict[str, Any]] = []
    for row in _stream(conn, facts_query()):
        facts = Facts.of(row)
        days.add(lead_contribution(facts))
        pending.append({"lead_id": row.lead_id, **{n: getattr(facts, n) for n in Facts.NAMES}})
        leads += 1
        if len(pending) >= batch:
            conn.execute(LeadFacts.__table__.insert(), pending)
            pending = []
    if pending:
        conn.execute(LeadFacts.__table__.insert(), pending)
    days.add(Contribution(durations=months.durations))
    days = days.nonzero()
    apply(conn, days, ("day",), LeadDay.__table__)
    apply_durations(conn, days.durations)
    mark(conn, "built", sla)
    return {"offers": offers, "leads": leads}


def mark(conn: Connection, new_state: str, sla: float | None = None) -> None:
    """Set the rollups' state (the one row made if missing)."""
    table = RollupState.__table__
    values = {"state": new_state, "contact_sla_hours": sla if sla is not None else sla_hours(),
              "built_at": utcnow() if new_state == "built" else None}
    if conn.execute(update(table).where(table.c.id == 1).values(**values)).rowcount == 0:
        conn.execute(table.insert().values(id=1, **values))


def counted_offers(conn: Connection) -> defaultdict[str, int]:
    """The channel's offer counts in the rollups (a check: they equal a live count)."""
    total: defaultdict[str, int] = defaultdict(int)
    for row in conn.execute(select(*[func.sum(getattr(OfferMonth, n)).label(n)
                                     for n in OFFER_COUNTS])):
        for name in OFFER_COUNTS:
            total[name] = int(row._mapping[name] or 0)
    return total


__all__ = ["LEAD_COUNTS", "OFFER_COUNTS", "rebuild", "readable", "recount_leads", "mark"]
