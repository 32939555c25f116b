"""Speed-to-lead evidence (DESIGN §7 ``contacted_within``): how often leads are won by how
soon after capture a partner first got in touch — the manufacturer's own data on what a
slow response costs.

Channel-wide it counts leads (captured in the period, routed to a partner): hours from
capture to the first contact any partner logged. Per partner it counts the partner's own
offers (made in the period, as the league table does): hours from the lead's capture
(``Offer.lead_created_at``) to this partner's first contact (``Offer.contacted_at``). A
partner that reported an outcome without logging a contact first counts as in touch at the
outcome (DESIGN §7's follow-up), so a won lead is never in "never". Leads a partner
captured itself (walk-ins, shows) are left out: nobody had to respond to them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, func, literal, select
from sqlalchemy.orm import Session

from portal.core.models import SPEED_KEYS, Offer, Partner
from portal.reports import overview
from portal.reports.metrics import BY_NOTHING, BY_PARTNER, BY_ROLLUP, Scope, not_forwarded

HOUR = 3600
#: DESIGN §7's buckets: key, label, upper bound in seconds (exclusive; None: no bound)
BUCKETS: tuple[tuple[str, str, int | None], ...] = (
    ("<1h", "Under 1 hour", HOUR),
    ("1-4h", "1 to 4 hours", 4 * HOUR),
    ("4-24h", "4 to 24 hours", 24 * HOUR),
    ("1-2d", "1 to 2 days", 48 * HOUR),
    (">2d", "Over 2 days", None),
    ("never", "Never", None),
)


def bucket_of(seconds: ColumnElement[float]) -> ColumnElement[str]:
    """The bucket of a time to first contact in seconds (NULL: never contacted)."""
    bounded = [(seconds < limit, key) for key, _, limit in BUCKETS if limit is not None]
    return case(*bounded, (seconds.is_not(None), ">2d"), else_="never")


@dataclass
class Bucket:
    """The leads (or offers) first contacted within one stretch of time after capture."""

    key: str
    label: str
    leads: int = 0
    won: int = 0
    lost: int = 0

    @property
    def win_rate(self) -> float | None:
        """won ÷ (won + lost), as DESIGN §7's win rate."""
        return self.won / (self.won + self.lost) if self.won + self.lost else None

    @property
    def won_per_lead(self) -> float | None:
        """won ÷ leads: open leads count too, so a bucket cannot look good by closing few."""
        return self.won / self.leads if self.leads else None


@dataclass
class Speed:
    """Every bucket, in order, for one partner, a roll-up or the channel."""

    buckets: list[Bucket] = field(default_factory=lambda: [
        Bucket(key, label) for key, label, _ in BUCKETS])

    @property
    def total(self) -> int:
        return sum(b.leads for b in self.buckets)

    def contact_rate(self, bucket: Bucket) -> float | None:
        """The share of all the leads whose first contact fell in ``bucket``."""
        return bucket.leads / self.total if self.total else None

    def bucket(self, key: str) -> Bucket:
        return next(b for b in self.buckets if b.key == key)

    def rows(self) -> Iterator[tuple[Bucket, float | None]]:
        for b in self.buckets:
            yield b, self.contact_rate(b)


def _fill(found: dict[Any, Speed], key: Any, bucket: str, leads: int, won: int,
          lost: int) -> None:
    b = found.setdefault(key, Speed()).bucket(bucket)
    b.leads, b.won, b.lost = b.leads + leads, b.won + won, b.lost + lost


def _counted(inner: Any) -> Any:
    c = inner.c
    return (select(c.k, c.bucket, func.count(), func.sum(c.won), func.sum(c.lost))
            .group_by(c.k, c.bucket))


def channel(session: Session, scope: Scope, *, now: datetime | None = None) -> Speed:
    """Leads captured in the scope and routed to a partner, by time from capture to the
    first contact by any partner, with how many were won and lost."""
    if overview.rolled_up(session, scope, now=now):
        found_speed = Speed()
        for day in overview.days(session, scope):
            for b in found_speed.buckets:
                suffix = SPEED_KEYS[b.key]
                b.leads += getattr(day, f"speed_{suffix}")
                b.won += getattr(day, f"speed_won_{suffix}")
                b.lost += getattr(day, f"speed_lost_{suffix}")
        return found_speed
    facts = overview.lead_facts(scope, scope.end(now))
    seconds = overview.seconds_between(facts.c.created_at, facts.c.touched_at)
    inner = (select(literal(1).label("k"), bucket_of(seconds).label("bucket"),
                    facts.c.won.label("won"), facts.c.lost.label("lost"))
             .where(facts.c.routed_at.is_not(None)).subquery())
    found: dict[Any, Speed] = {}
    for _, bucket, leads, won, lost in session.execute(_counted(inner)):
        _fill(found, 1, bucket, int(leads), int(won or 0), int(lost or 0))
    return found.get(1, Speed())


def _key(by: str) -> Any:
    if by == BY_PARTNER:
        return Offer.partner_id
    if by == BY_ROLLUP:  # the distributor a partner rolls up to: its parent, or itself
        return func.coalesce(Partner.parent_id, Partner.id)
    return literal(1)


def by_partner(session: Session, scope: Scope, by: str = BY_PARTNER, *,
               now: datetime | None = None) -> dict[Any, Speed]:
    """Each partner's own offers in the scope (``BY_PARTNER``), each distributor's with its
    dealers' (``BY_ROLLUP``) or all of them (``BY_NOTHING``, key 1), by time from the lead's
    capture to this partner's first contact: one grouped query."""
    end = scope.end(now)
    touched = case((Offer.contacted_at < end, Offer.contacted_at),
                   (Offer.closed_at < end, Offer.closed_at))
    seconds = overview.seconds_between(Offer.lead_created_at, touched)
    closed = Offer.closed_at < end
    inner = (select(_key(by).label("k"), bucket_of(seconds).label("bucket"),
                    case((and_(Offer.outcome == "won", closed), 1), else_=0).label("won"),
                    case((and_(Offer.outcome == "lost", closed), 1), else_=0).label("lost"))
             .where(*scope.where(), not_forwarded(), Offer.method != "self"))
    if by == BY_ROLLUP:
        inner = inner.join(Partner, Partner.id == Offer.partner_id)
    found: dict[Any, Speed] = {}
    for key, bucket, leads, won, lost in session.execute(_counted(inner.subquery())):
        _fill(found, key, bucket, int(leads), int(won or 0), int(lost or 0))
    return found


def offers(session: Session, scope: Scope, *, now: datetime | None = None) -> Speed:
    """All the offers in the scope as one (every offer counted once)."""
    return by_partner(session, scope, BY_NOTHING, now=now).get(1, Speed())


@dataclass
class PartnerSpeed:
    """One partner's row: its own offers, or a distributor's with its dealers'."""

    partner: Partner
    speed: Speed
    rolled: bool = False


def partner_rows(session: Session, scope: Scope, partners: list[Partner], *,
                 now: datetime | None = None) -> list[PartnerSpeed]:
    """The partners in ``partners`` that had offers in the scope, in the given order;
    a distributor's row adds its dealers' offers to its own (as the league table does)."""
    own = by_partner(session, scope, BY_PARTNER, now=now)
    rolled = (by_partner(session, scope, BY_ROLLUP, now=now)
              if any(p.kind == "distributor" for p in partners) else {})
    rows = []
    for partner in partners:
        is_distributor = partner.kind == "distributor"
        speed = (rolled if is_distributor else own).get(partner.id)
        if speed is not None and speed.total:
            rows.append(PartnerSpeed(partner, speed, rolled=is_distributor))
    return rows
