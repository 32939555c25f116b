"""What a report is asked for: the period (a preset or two dates) and the filters, read
from the query string and checked, and who may see which partners."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core.models import Campaign, Partner, PartnerKind, ProductLine, Source, User, utcnow
from portal.reports.metrics import Scope

#: the period presets, by their name in the query string
PRESETS = {
    "7d": "Last 7 days",
    "30d": "Last 30 days",
    "90d": "Last 90 days",
    "365d": "Last 12 months",
    "ytd": "This year",
    "custom": "From … to …",
}
DEFAULT_PRESET = "90d"
RANKS = ("hot", "warm", "cold")
#: the longest custom period (a report over ten years is a mistake, not a question)
MAX_DAYS = 3 * 366


@dataclass
class Asked:
    """The report as asked: the period, the filters and what was wrong with them."""

    preset: str = DEFAULT_PRESET
    start: date | None = None  #: first day (inclusive), UTC
    end: date | None = None  #: last day (inclusive), UTC
    distributor: str = ""  #: a distributor's code: it and its dealers
    region: str = ""  #: US-IA
    product_line: str = ""
    campaign: str = ""
    source: str = ""
    rank: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    scope: Scope | None = None

    @property
    def label(self) -> str:
        if self.preset != "custom":
            return PRESETS[self.preset]
        assert self.start and self.end
        return f"{self.start:%d %b %Y} – {self.end:%d %b %Y}"

    def query(self, **changes: Any) -> dict[str, str]:
        """The query string that asks for this report again (with ``changes``)."""
        values = {"period": self.preset, "distributor": self.distributor,
                  "region": self.region, "product_line": self.product_line,
                  "campaign": self.campaign, "source": self.source, "rank": self.rank}
        if self.preset == "custom" and self.start and self.end:
            values.update(since=self.start.isoformat(), until=self.end.isoformat())
        values.update({k: str(v) for k, v in changes.items()})
        return {k: v for k, v in values.items() if v}


def _day(raw: str) -> date | None:
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        return None


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def read(session: Session, args: Mapping[str, str], user: User, *,
         now: datetime | None = None) -> Asked:
    """The report asked for in ``args``, with the partners ``user`` may see. A bad value
    is reported in ``errors`` and left out (the page still answers, with a note)."""
    now = now or utcnow()
    today = now.date()
    asked = Asked()
    preset = (args.get("period") or DEFAULT_PRESET).strip()
    if preset not in PRESETS:
        asked.errors["period"] = "Pick a period from the list."
        preset = DEFAULT_PRESET
    asked.preset = preset
    if preset == "custom":
        start, end = _day(args.get("since", "")), _day(args.get("until", ""))
        if start is None or end is None:
            asked.errors["since"] = "Give both dates as YYYY-MM-DD."
        elif end < start:
            asked.errors["until"] = "The end comes before the start."
        elif (end - start).days > MAX_DAYS:
            asked.errors["until"] = "At most three years at a time."
        else:
            asked.start, asked.end = start, end
        if asked.start is None:
            asked.preset = DEFAULT_PRESET
    if asked.preset != "custom":
        asked.end = today
        if asked.preset == "ytd":
            asked.start = date(today.year, 1, 1)
        else:
            asked.start = today - timedelta(days=int(asked.preset[:-1]) - 1)
    assert asked.start is not None and asked.end is not None

    partner_ids = visible_partner_ids(session, user)
    asked.rank = (args.get("rank") or "").strip().lower()
    if asked.rank and asked.rank not in RANKS:
        asked.errors["rank"] = "Pick hot, warm or cold."
        asked.rank = ""
    asked.region = (args.get("region") or "").strip().upper()
    if asked.region and "-" not in asked.region:
        asked.region = f"US-{asked.region}"
    if asked.region and not (len(asked.region) <= 10 and asked.region.replace("-", "").isalnum()):
        asked.errors["region"] = "Use a state or region code, e.g. IA or US-IA."
        asked.region = ""
    codes: dict[str, Any] = {}
    for name, model in (("product_line", ProductLine), ("campaign", Campaign),
                        ("source", Source)):
        code = (args.get(name) or "").strip()
        if not code:
            continue
        found = session.scalars(select(model).where(model.code == code)).first()
        if found is None:
            asked.errors[name] = f"No {name.replace('_', ' ')} {code!r}."
        else:
            setattr(asked, name, code)
            codes[name] = found.id
    code = (args.get("distributor") or "").strip()
    if code:
        distributor = session.scalars(select(Partner).where(
            Partner.code == code, Partner.kind == PartnerKind.DISTRIBUTOR)).first()
        if distributor is None or (partner_ids is not None and distributor.id not in partner_ids):
            asked.errors["distributor"] = f"No distributor {code!r}."
        else:
            asked.distributor = code
            family = {distributor.id} | set(session.scalars(
                select(Partner.id).where(Partner.parent_id == distributor.id)))
            partner_ids = family if partner_ids is None else partner_ids & family
    asked.scope = Scope(
        since=_midnight(asked.start), until=_midnight(asked.end + timedelta(days=1)),
        partner_ids=frozenset(partner_ids) if partner_ids is not None else None,
        region=asked.region, product_line_id=codes.get("product_line"),
        campaign_id=codes.get("campaign"), source_id=codes.get("source"), rank=asked.rank)
    return asked


def visible_partner_ids(session: Session, user: User) -> set[int] | None:
    """The partners whose figures ``user`` may see: every one for staff (None), a
    distributor and its dealers, a dealer only itself."""
    if user.is_staff:
        return None
    if user.partner_id is None:
        return set()
    partner = session.get(Partner, user.partner_id)
    if partner is not None and partner.kind == PartnerKind.DISTRIBUTOR:
        return {partner.id} | set(session.scalars(
            select(Partner.id).where(Partner.parent_id == partner.id)))
    return {user.partner_id}


def previous(scope: Scope) -> Scope:
    """The period of the same length just before ``scope`` (for trends and comparisons)."""
    length = scope.until - scope.since
    return replace(scope, since=scope.since - length, until=scope.since)


def choices(session: Session, user: User) -> dict[str, list[tuple[str, str]]]:
    """The filters' options: distributors (those the user may see), product lines,
    campaigns, sources, ranks, periods."""
    visible = visible_partner_ids(session, user)
    distributors = select(Partner.code, Partner.name).where(
        Partner.kind == PartnerKind.DISTRIBUTOR).order_by(Partner.name)
    if visible is not None:
        distributors = distributors.where(Partner.id.in_(sorted(visible) or [0]))
    return {
        "period": list(PRESETS.items()),
        "distributor": [(c, n) for c, n in session.execute(distributors)],
        "product_line": [(c, n) for c, n in session.execute(
            select(ProductLine.code, ProductLine.name).order_by(ProductLine.name))],
        "campaign": [(c, n) for c, n in session.execute(
            select(Campaign.code, Campaign.name).order_by(Campaign.name))],
        "source": [(c, n) for c, n in session.execute(
            select(Source.code, Source.name).order_by(Source.name))],
        "rank": [(r, r.capitalize()) for r in RANKS],
    }
