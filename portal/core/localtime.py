"""Times people type and read in their own zone: a task's due time, an appointment's.

A user's zone is the one they chose under Email, else their firm's, else the portal's
(``DEFAULT_TIME_ZONE``): the same rule the digests' hour follows (``notify.services``).
Times are stored in UTC; what was typed is read in the zone and shown back in it.
"""

from __future__ import annotations

import functools
import re
import zoneinfo
from datetime import date, datetime, time, timedelta
from typing import Any

from flask import current_app, g, has_request_context
from sqlalchemy.orm import Session

from portal.core.checks import clean_text, parse_day
from portal.core.errors import InvalidInput
from portal.core.models import MailPreference, Role, User

_CLOCK = re.compile(r"([01]?[0-9]|2[0-3]):([0-5][0-9])", re.ASCII)


def portal_zone() -> str:
    """The portal's own zone (``DEFAULT_TIME_ZONE``): for users and firms who chose none."""
    return str(current_app.config.get("DEFAULT_TIME_ZONE") or "UTC")


def zone(name: str) -> zoneinfo.ZoneInfo:
    """The zone called ``name``; the portal's when the name is unknown (a stored zone the
    machine's tz database no longer has must not stop anyone's mail)."""
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(portal_zone())


@functools.cache
def time_zones() -> tuple[str, ...]:
    """The IANA zones a user may pick or send, by name (the tz database the machine has)."""
    return tuple(sorted(z for z in zoneinfo.available_timezones()
                        if "/" in z and not z.startswith(("Etc/", "SystemV/", "posix/",
                                                          "right/"))))


@functools.cache
def _known_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def typed_zone(raw: Any, field: str) -> zoneinfo.ZoneInfo | None:
    """A zone someone typed or sent (a form, the API): None when none was given, else the
    zone, or a refusal on ``field`` naming what to send. The one check for every zone
    that comes in."""
    name = clean_text(raw, field).strip()
    if not name:
        return None
    if name not in _known_zones():
        raise InvalidInput("Unknown time zone.", {
            field: "Pick an IANA time zone, e.g. America/Chicago."})
    return zoneinfo.ZoneInfo(name)


def zone_name(own: str | None, firm: str | None) -> str:
    """The zone a user lives by: their own choice over their firm's over the portal's."""
    return own or firm or portal_zone()


def zone_of(session: Session, user: User | None) -> zoneinfo.ZoneInfo:
    """``user``'s zone (the portal's for the portal itself)."""
    if user is None:
        return zone(portal_zone())
    pref = session.get(MailPreference, user.id)
    firm = user.partner.time_zone if user.partner is not None and user.role == Role.PARTNER \
        else None
    return zone(zone_name(pref.time_zone if pref else None, firm))


def viewer_zone(session: Session, user: User | None) -> zoneinfo.ZoneInfo:
    """``zone_of`` the signed-in user, looked up once per request."""
    if not has_request_context():
        return zone_of(session, user)
    key = "portal.viewer_zone"
    if key not in g:
        setattr(g, key, zone_of(session, user))
    return getattr(g, key)  # type: ignore[no-any-return]


def parse_clock(raw: Any, field: str) -> time | None:
    """A time of day as ``HH:MM`` (24-hour); None when empty."""
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    found = _CLOCK.fullmatch(raw.strip()) if isinstance(raw, str) else None
    if found is None:
        raise InvalidInput("The time is not valid.",
                           {field: "Enter a time as HH:MM, e.g. 09:30 or 14:00."})
    return time(int(found.group(1)), int(found.group(2)))


def local_moment(day: date, clock: time, where: zoneinfo.ZoneInfo) -> datetime:
    """The moment ``day`` at ``clock`` in ``where``, as an aware UTC datetime. A time the
    clocks skip (spring forward) or pass twice (fall back) is read as the first one."""
    moment = datetime.combine(day, clock, tzinfo=where)
    return moment.astimezone(zoneinfo.ZoneInfo("UTC"))


def parse_local(raw_day: Any, raw_clock: Any, where: zoneinfo.ZoneInfo, *, today: date,
                day_field: str = "date", clock_field: str = "time",
                earliest: date | None = None) -> tuple[date, time | None, datetime | None]:
    """A day (required) and an optional time typed in ``where``: (day, time, the UTC
    moment, None without a time)."""
    day = parse_day(raw_day, day_field, today=today,
                    **({"earliest": earliest} if earliest is not None else {}))
    if day is None:
        raise InvalidInput("Enter the date.", {day_field: "Enter the date."})
    clock = parse_clock(raw_clock, clock_field)
    return day, clock, (local_moment(day, clock, where) if clock is not None else None)


def local_text(moment: datetime | None, where: zoneinfo.ZoneInfo) -> str:
    """A moment as people read it in ``where``: "Tue 8 Dec, 10:30"."""
    if moment is None:
        return "—"
    here = moment.astimezone(where)
    return f"{here:%a} {here.day} {here:%b}, {here:%H:%M}"


def day_text(day: date) -> str:
    """A day alone, the same way: "Tue 8 Dec"."""
    return f"{day:%a} {day.day} {day:%b}"


def local_day_bounds(now: datetime, where: zoneinfo.ZoneInfo) -> tuple[datetime, datetime]:
    """The start and end (UTC) of the day it is now in ``where``."""
    today = now.astimezone(where).date()
    start = local_moment(today, time(0, 0), where)
    end = local_moment(today + timedelta(days=1), time(0, 0), where)
    return start, end
