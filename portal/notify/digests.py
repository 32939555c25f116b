"""Digests: what a partner, a distributor or a channel manager should know, once a day or
once a week, at the hour each user chose in their own time zone.

A digest is a row keyed on user and period ("digest:12:2026-12-02"): planning it twice
writes it once, and sending follows the outbox's claim-before-SMTP. Its content is read
when it is sent, over the period's fixed window, so a retry says the same thing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from portal.core.compliance import overdue_clause
from portal.core.mail import build_message, public_url
from portal.core.models import (
    CLOSED_STATUSES,
    Competitor,
    DigestFrequency,
    Fulfilment,
    FulfilmentStatus,
    Lead,
    LeadEvent,
    LeadStatus,
    MailPreference,
    Notification,
    NotificationKind,
    Offer,
    OfferResponse,
    Partner,
    PartnerKind,
    Role,
    User,
    utcnow,
)
from portal.notify import services
from portal.notify.alerts import head, unsubscribe_headers

S = LeadStatus
K = NotificationKind
#: how many leads a digest lists under each heading; the rest are counted and linked
LIST_MAX = 10
#: how many dealers a distributor's digest lists, worst first
DEALERS_MAX = 25
#: the partners a manager's digest names for worst follow-up and most overdue
WORST_MAX = 5
#: conflict events from offline sync waiting for a manager (the leads area names them)
CONFLICT_EVENT, CONFLICT_REVIEWED_EVENT = "conflict", "conflict_reviewed"


# --- when: periods in each user's time zone -----------------------------------------------


@dataclass(frozen=True)
class Period:
    """One digest's period: its key and the window it reports on."""

    frequency: str
    key: str  #: "2026-12-02" or "2026-W49"
    since: datetime  #: UTC, like every stored time
    until: datetime


def _to_utc(local: datetime) -> datetime:
    return local.astimezone(UTC)


def _start_of(frequency: str, day: date) -> tuple[date, str, timedelta] | None:
    """The first day of the period ``day`` falls in, its key and its step."""
    if frequency == DigestFrequency.DAILY:
        return day, day.isoformat(), timedelta(days=1)
    if frequency == DigestFrequency.WEEKLY:
        start = day - timedelta(days=day.weekday())
        iso = start.isocalendar()
        return start, f"{iso.year}-W{iso.week:02d}", timedelta(days=7)
    return None


def current_period(frequency: str, zone_name: str, hour: int, now: datetime, *,
                   by_hand: bool = False, since: datetime | None = None) -> Period | None:
    """The period whose digest is due at ``now`` (UTC) for someone in ``zone_name`` who
    wants it at ``hour``: today's once its hour has come, else yesterday's (last week's),
    so a run missed between the hour and midnight is made up, late, by the next one.
    None when that period came due before ``since`` (the user chose it afterwards).
    The window runs from hour to hour in local time, 23 or 25 hours across a change of
    clocks. By hand, the period is the one ``now`` falls in, and its window ends now."""
    zone = services.zone(zone_name)
    local = now.astimezone(zone)
    found = _start_of(frequency, local.date())
    if found is None:
        return None
    start, key, step = found
    if by_hand:
        return Period(str(frequency), key, now - step, now)
    due = datetime.combine(start, time(hour), tzinfo=zone)
    if local < due:
        start, key, _ = _start_of(frequency, start - step)  # type: ignore[misc]
        due = datetime.combine(start, time(hour), tzinfo=zone)
    if since is not None and _to_utc(due) < since:
        return None
    began = datetime.combine(start - step, time(hour), tzinfo=zone)
    return Period(str(frequency), key, _to_utc(began), _to_utc(due))


def plan(session: Session, now: datetime | None = None, *, frequency: str | None = None,
         by_hand: bool = False, batch: int = 1000) -> int:
    """Write the digest rows due now (each user's own hour and zone), once per user and
    period whatever how often this runs. ``frequency`` limits it to daily or weekly ones;
    ``by_hand`` ignores the hour. Returns how many rows are new.

    A user who had a digest less than half a period ago gets none (a new time zone must
    not mean a second one the same day). Rows are written and committed a batch at a
    time, so a long run holds no lock for long."""
    now = now or utcnow()
    written = 0
    for users in _users(session, batch):
        wanted: dict[str, dict[str, Any]] = {}
        for user, choice, chosen_at in users:
            if choice.frequency == DigestFrequency.OFF:
                continue
            if frequency and choice.frequency != frequency:
                continue
            period = current_period(choice.frequency, choice.time_zone, choice.hour, now,
                                    by_hand=by_hand, since=chosen_at)
            if period is None:
                continue
            key = f"digest:{user.id}:{period.key}"
            wanted[key] = {"key": key, "user_id": user.id, "kind": str(K.DIGEST),
                           "period": period.key, "partner_id": user.partner_id,
                           "data": {"frequency": period.frequency,
                                    "since": period.since.isoformat(),
                                    "until": period.until.isoformat()}}
        rows = _not_yet(session, wanted, now)
        written += len(services.write(session, rows, nudge=False, now=now))
        session.commit()
    return written


def _not_yet(session: Session, wanted: dict[str, dict[str, Any]], now: datetime
             ) -> list[dict[str, Any]]:
    """The planned rows that are new: not written already (most runs find every one is),
    for users without a digest in the last half of the period."""
    if not wanted:
        return []
    keys = list(wanted)
    have = set(session.scalars(select(Notification.key).where(Notification.key.in_(keys))))
    rows = [row for key, row in wanted.items() if key not in have]
    if not rows:
        return []
    last = dict(session.execute(
        select(Notification.user_id, func.max(Notification.created_at))
        .where(Notification.user_id.in_([row["user_id"] for row in rows]),
               Notification.kind == K.DIGEST, Notification.created_at > now - timedelta(days=4))
        .group_by(Notification.user_id)).all())
    return [row for row in rows
            if row["user_id"] not in last
            or now - last[row["user_id"]] >= _half(row["data"]["frequency"])]


def _half(frequency: str) -> timedelta:
    return timedelta(hours=84) if frequency == DigestFrequency.WEEKLY else timedelta(hours=12)


def _users(session: Session, batch: int
           ) -> Iterator[list[tuple[User, services.Choices, datetime]]]:
    """Everyone who may get a digest, with their choices and when they made them (their
    own or their account's start), a batch at a time (by id)."""
    last = 0
    while True:
        rows = session.execute(
            select(User, MailPreference, Partner)
            .outerjoin(MailPreference, MailPreference.user_id == User.id)
            .outerjoin(Partner, Partner.id == User.partner_id)
            .where(User.active.is_(True), User.id > last,
                   or_(User.role.in_([Role.MANAGER, Role.ADMIN]),
                       and_(User.role == Role.PARTNER, User.partner_id.is_not(None))))
            .order_by(User.id).limit(batch)).all()
        if not rows:
            return
        last = rows[-1][0].id
        yield [(user, services.merge(user, pref, partner),
                max(user.created_at, pref.updated_at) if pref else user.created_at)
               for user, pref, partner in rows]


# --- what: a partner's digest ---------------------------------------------------------------


@dataclass
class LeadLine:
    """One lead in a digest's list: what it is and what is pressing about it."""

    head: dict[str, Any]
    detail: str
    link: str


@dataclass
class DealerLine:
    """One of a distributor's dealers, for the compliance table."""

    name: str
    code: str
    waiting: int = 0
    late_contact: int = 0
    overdue: int = 0
    won: int = 0
    lost: int = 0

    @property
    def score(self) -> tuple[int, int, int]:
        return (self.overdue, self.late_contact, self.waiting)


@dataclass
class PartnerDigest:
    """A partner's period: offers waiting, late first contacts, overdue outcomes, results."""

    partner: Partner
    waiting: int = 0
    waiting_list: list[LeadLine] = field(default_factory=list)
    late_contact: int = 0
    late_list: list[LeadLine] = field(default_factory=list)
    overdue: int = 0
    overdue_list: list[LeadLine] = field(default_factory=list)
    won: int = 0
    revenue: Decimal = Decimal(0)
    lost: int = 0
    lost_to: list[tuple[str, int]] = field(default_factory=list)
    no_interest: int = 0
    dealers: list[DealerLine] = field(default_factory=list)
    dealers_total: int = 0

    @property
    def empty(self) -> bool:
        return not (self.waiting or self.late_contact or self.overdue or self.won
                    or self.lost or self.no_interest
                    or any(d.score != (0, 0, 0) for d in self.dealers))


def _hours(delta: timedelta) -> str:
    hours = int(delta.total_seconds() // 3600)
    if hours >= 48:
        return f"{hours // 24} days"
    return f"{max(hours, 0)} h" if hours else f"{max(int(delta.total_seconds() // 60), 1)} min"


def _line(lead: Lead, detail: str) -> LeadLine:
    return LeadLine(head(lead), detail, public_url("leads.lead", lead_id=lead.id))


def _contact_sla() -> timedelta:
    return timedelta(hours=float(current_app.config["CONTACT_SLA_HOURS"]))


def partner_digest(session: Session, partner: Partner, period: Period, now: datetime
                   ) -> PartnerDigest:
    """What ``partner``'s users need to know; a distributor's also covers its dealers."""
    digest = PartnerDigest(partner)
    mine = Lead.assigned_partner_id == partner.id
    waiting = select(Lead, Offer.expires_at).join(
        Offer, and_(Offer.lead_id == Lead.id, Offer.partner_id == Lead.assigned_partner_id,
                    Offer.response == OfferResponse.PENDING)
    ).where(mine, Lead.status == S.OFFERED)
    digest.waiting = _count(session, waiting)
    digest.waiting_list = [
        _line(lead, f"{_hours(expires - now)} left to accept" if expires and expires > now
              else "expiring now")
        for lead, expires in session.execute(
            waiting.order_by(Offer.expires_at, Lead.id).limit(LIST_MAX))]
    sla = _contact_sla()
    late = select(Lead).where(mine, Lead.status == S.ACCEPTED, Lead.offered_at <= now - sla)
    digest.late_contact = _count(session, late)
    digest.late_list = [
        _line(lead, f"first contact {_hours(now - lead.offered_at - sla)} late")
        for lead in session.scalars(late.order_by(Lead.offered_at, Lead.id).limit(LIST_MAX))
        if lead.offered_at is not None]
    overdue = select(Lead).where(mine, overdue_clause(now))
    digest.overdue = _count(session, overdue)
    days = float(current_app.config["OUTCOME_DUE_DAYS"])
    digest.overdue_list = [
        _line(lead, f"outcome {_hours(now - started - timedelta(days=days))} overdue")
        for lead in session.scalars(overdue.order_by(Lead.accepted_at, Lead.id).limit(LIST_MAX))
        if (started := lead.accepted_at or lead.offered_at) is not None]
    _results(session, digest, mine, period)
    if partner.kind == PartnerKind.DISTRIBUTOR:
        _dealers(session, digest, partner, period, now)
    return digest


def _count(session: Session, query: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(query.order_by(None)
                                                               .subquery())) or 0)


def _results(session: Session, digest: PartnerDigest, mine: Any, period: Period) -> None:
    closed = (mine, Lead.closed_at >= period.since, Lead.closed_at < period.until)
    for status, count, revenue in session.execute(
            select(Lead.status, func.count(), func.sum(Lead.won_amount))
            .where(*closed, Lead.status.in_([str(s) for s in CLOSED_STATUSES]))
            .group_by(Lead.status)):
        if status == S.WON:
            digest.won, digest.revenue = count, Decimal(revenue or 0)
        elif status == S.LOST:
            digest.lost = count
        elif status == S.NO_INTEREST:
            digest.no_interest = count
    if digest.lost:
        rows = session.execute(
            select(func.coalesce(Competitor.name, Lead.lost_competitor_other), func.count())
            .select_from(Lead).outerjoin(Competitor, Competitor.id == Lead.lost_competitor_id)
            .where(*closed, Lead.status == S.LOST, Lead.lost_reason == "competitor")
            .group_by(func.coalesce(Competitor.name, Lead.lost_competitor_other)))
        digest.lost_to = sorted(((name or "another competitor", n) for name, n in rows),
                                key=lambda item: (-item[1], item[0]))


def _dealers(session: Session, digest: PartnerDigest, partner: Partner, period: Period,
             now: datetime) -> None:
    dealers = {p.id: DealerLine(p.name, p.code) for p in session.scalars(
        select(Partner).where(Partner.parent_id == partner.id).order_by(Partner.name))}
    if not dealers:
        return
    ids = list(dealers)
    theirs = Lead.assigned_partner_id.in_(ids)
    grouped = [
        ("waiting", and_(theirs, Lead.status == S.OFFERED)),
        ("late_contact", and_(theirs, Lead.status == S.ACCEPTED,
                              Lead.offered_at <= now - _contact_sla())),
        ("overdue", and_(theirs, overdue_clause(now))),
        ("won", and_(theirs, Lead.status == S.WON, Lead.closed_at >= period.since,
                     Lead.closed_at < period.until)),
        ("lost", and_(theirs, Lead.status == S.LOST, Lead.closed_at >= period.since,
                      Lead.closed_at < period.until)),
    ]
    for name, where in grouped:
        for dealer_id, count in session.execute(
                select(Lead.assigned_partner_id, func.count()).where(where)
                .group_by(Lead.assigned_partner_id)):
            setattr(dealers[dealer_id], name, count)
    ranked = sorted(dealers.values(), key=lambda d: (tuple(-n for n in d.score), d.name))
    digest.dealers_total = len(ranked)
    digest.dealers = ranked[:DEALERS_MAX]


# --- what: a channel manager's week --------------------------------------------------------


@dataclass
class Figures:
    """The channel's numbers over one window."""

    offered: int = 0
    accepted: int = 0
    followed_up: int = 0
    won: int = 0
    lost: int = 0
    revenue: Decimal = Decimal(0)

    def rate(self, part: int) -> str:
        return f"{part / self.offered:.0%}" if self.offered else "—"


@dataclass
class PartnerFigure:
    name: str
    code: str
    offered: int
    followed_up: int
    overdue: int = 0

    @property
    def follow_up_rate(self) -> str:
        return f"{self.followed_up / self.offered:.0%}" if self.offered else "—"


@dataclass
class ManagerDigest:
    """The channel's week against the week before, and what waits for a manager."""

    this: Figures
    before: Figures
    worst_follow_up: list[PartnerFigure]
    most_overdue: list[PartnerFigure]
    unassigned: int
    failed_fulfilments: int
    conflicts: int
    failed_mail: int

    @property
    def empty(self) -> bool:
        quiet = Figures()
        return (self.this == quiet and self.before == quiet and not self.most_overdue
                and not (self.unassigned or self.failed_fulfilments or self.conflicts
                         or self.failed_mail))


def _followed(offer_partner: Any) -> Any:
    # The partner who had the offer made a first contact (or closed it) afterwards.
    return and_(Lead.assigned_partner_id == offer_partner,
                or_(Lead.first_contact_at.is_not(None),
                    Lead.status.in_([str(s) for s in CLOSED_STATUSES])))


def _offers_in(since: datetime, until: datetime) -> tuple[Any, ...]:
    # A distributor's offer it passed on is its dealer's to follow up, not its own.
    return (Offer.offered_at >= since, Offer.offered_at < until,
            Offer.response != OfferResponse.FORWARDED)


def figures(session: Session, since: datetime, until: datetime) -> Figures:
    """Offers made in the window and what came of them; outcomes closed in it."""
    result = Figures()
    in_window = _offers_in(since, until)
    result.offered = int(session.scalar(select(func.count(Offer.id)).where(*in_window)) or 0)
    result.accepted = int(session.scalar(
        select(func.count(Offer.id)).where(*in_window, Offer.response == OfferResponse.ACCEPTED)
    ) or 0)
    result.followed_up = int(session.scalar(
        select(func.count(Offer.id)).join(Lead, Lead.id == Offer.lead_id)
        .where(*in_window, _followed(Offer.partner_id))) or 0)
    for status, count, revenue in session.execute(
            select(Lead.status, func.count(), func.sum(Lead.won_amount))
            .where(Lead.closed_at >= since, Lead.closed_at < until,
                   Lead.status.in_([str(S.WON), str(S.LOST)]))
            .group_by(Lead.status)):
        if status == S.WON:
            result.won, result.revenue = count, Decimal(revenue or 0)
        else:
            result.lost = count
    return result


def manager_digest(session: Session, period: Period, now: datetime) -> ManagerDigest:
    length = period.until - period.since
    names = {pid: (name, code) for pid, name, code in
             session.execute(select(Partner.id, Partner.name, Partner.code))}
    # Worst follow-up: offers of the period whose first-contact time has run out (one
    # made an hour ago is not yet a failure to follow up).
    per_partner = session.execute(
        select(Offer.partner_id, func.count(Offer.id),
               func.count(Lead.id).filter(_followed(Offer.partner_id)))
        .join(Lead, Lead.id == Offer.lead_id)
        .where(*_offers_in(period.since, min(period.until, now - _contact_sla())))
        .group_by(Offer.partner_id)).all()
    worst = sorted((PartnerFigure(*names[pid], offered, followed)
                    for pid, offered, followed in per_partner if pid in names),
                   key=lambda f: (f.followed_up / f.offered, -f.offered, f.name))
    overdue = session.execute(
        select(Lead.assigned_partner_id, func.count()).where(overdue_clause(now))
        .group_by(Lead.assigned_partner_id)
        .order_by(func.count().desc(), Lead.assigned_partner_id).limit(WORST_MAX)).all()
    conflicts = sum((1 if kind == CONFLICT_EVENT else -1) * int(n) for kind, n in session.execute(
        select(LeadEvent.kind, func.count(LeadEvent.seq))
        .where(LeadEvent.kind.in_([CONFLICT_EVENT, CONFLICT_REVIEWED_EVENT]))
        .group_by(LeadEvent.kind)))
    return ManagerDigest(
        this=figures(session, period.since, period.until),
        before=figures(session, period.since - length, period.since),
        worst_follow_up=[f for f in worst if f.followed_up < f.offered][:WORST_MAX],
        most_overdue=[PartnerFigure(*names[pid], 0, 0, count) for pid, count in overdue
                      if pid in names],
        unassigned=int(session.scalar(select(func.count(Lead.id))
                                      .where(Lead.status == S.UNASSIGNED)) or 0),
        failed_fulfilments=int(session.scalar(
            select(func.count(Fulfilment.id))
            .where(Fulfilment.status == FulfilmentStatus.FAILED)) or 0),
        conflicts=max(conflicts, 0),
        failed_mail=int(session.scalar(
            select(func.count(Notification.id))
            .where(Notification.status == "failed",
                   Notification.created_at >= period.since)) or 0),
    )


# --- the email ------------------------------------------------------------------------------


@dataclass
class DigestEmail:
    """One user's digest, ready for its templates."""

    user: User
    period: Period
    subject: str
    partner: PartnerDigest | None = None
    manager: ManagerDigest | None = None
    links: dict[str, str] = field(default_factory=dict)


def period_of(row: Notification) -> Period:
    data = row.data or {}
    return Period(str(data.get("frequency") or "daily"), row.period,
                  datetime.fromisoformat(str(data["since"])),
                  datetime.fromisoformat(str(data["until"])))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def digest_email(session: Session, user: User, period: Period, now: datetime, *,
                 cache: dict[Any, Any] | None = None) -> DigestEmail | str:
    """``user``'s digest for ``period`` as it reads now, or why there is nothing to send.
    ``cache`` shares one partner's (or the channel's) figures between its users."""
    cache = {} if cache is None else cache
    label = "weekly" if period.frequency == DigestFrequency.WEEKLY else "daily"
    links = {"preferences": public_url("notify.preferences"),
             "unsubscribe": public_url("notify.unsubscribe",
                                       token=services.unsubscribe_token(user, "digest"))}
    if user.is_staff:
        key = ("channel", period.since, period.until)
        if key not in cache:
            cache[key] = manager_digest(session, period, now)
        manager: ManagerDigest = cache[key]
        if manager.empty:
            return "Nothing to report this period."
        links["queue"] = public_url("leads.queue")
        subject = (f"Channel {label} digest: {_plural(manager.this.offered, 'offer')}, "
                   f"{manager.this.won:,} won, {_plural(manager.unassigned, 'lead')} unassigned")
        return DigestEmail(user, period, subject, manager=manager, links=links)
    partner = user.partner
    if partner is None:
        return "The user belongs to no partner."
    key = ("partner", partner.id, period.since, period.until)
    if key not in cache:
        cache[key] = partner_digest(session, partner, period, now)
    digest: PartnerDigest = cache[key]
    if digest.empty:
        return "Nothing to report this period."
    links.update(inbox=public_url("leads.inbox"),
                 overdue=public_url("leads.inbox", tab="overdue"),
                 contact=public_url("leads.inbox", tab="contact"))
    if partner.kind == PartnerKind.DISTRIBUTOR:
        links["dealers"] = public_url("leads.inbox", tab="dealers")
    parts = [_plural(digest.waiting, "offer") + " waiting"] if digest.waiting else []
    if digest.overdue:
        parts.append(f"{digest.overdue:,} overdue")
    if digest.late_contact:
        parts.append(f"{digest.late_contact:,} to contact")
    if not parts:  # only the period's results, or only the dealers' figures
        parts = [f"{digest.won:,} won, {digest.lost:,} lost"]
    subject = f"{partner.name} {label} digest: " + ", ".join(parts)
    return DigestEmail(user, period, subject, partner=digest, links=links)


def digest_message(email: DigestEmail) -> EmailMessage:
    context = {"email": email, "now": utcnow()}
    return build_message(
        email.user.email, email.subject,
        render_template("emails/digest.txt", **context),
        render_template("emails/digest.html", **context),
        headers=unsubscribe_headers(email.links["unsubscribe"]))
