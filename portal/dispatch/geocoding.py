"""The optional online geocoder (DESIGN §4): geopy's Nominatim behind a rate limit and a cache.

Routing uses it only when ``GEOCODER`` is not ``offline`` and a lead's postal code has no
known centre. Every answer, "not found" included, is cached in ``geocode_cache`` by the
normalised query, so a place is asked for once. Network and service errors are logged and
read as "unknown": a geocoder outage must never stop a lead from being routed.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import current_app
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.core.models import GeocodeCache, utcnow
from routing import Point

log = logging.getLogger(__name__)

OFFLINE = "offline"
PROVIDERS = ("nominatim",)
_QUERY_MAX = 300  # GeocodeCache.query's width
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class GeocodeResult:
    """What a lookup gave: the point (None: unknown), where it came from, and a note."""

    point: Point | None
    cached: bool
    note: str


def enabled() -> bool:
    """True when an online geocoder is configured."""
    return str(current_app.config.get("GEOCODER") or OFFLINE).lower() != OFFLINE


def address_query(address: str, city: str, region: str, postal_code: str,
                  country: str) -> str | None:
    """The free-form query for a lead's address, or None when it has nothing to look up."""
    if not any(part.strip() for part in (address, city, postal_code)):
        return None
    parts = [address, city, region, postal_code, country]
    return ", ".join(part.strip() for part in parts if part and part.strip())


def normalise(query: str) -> str:
    """The cache key: case and spacing do not make a different place."""
    key = _SPACES.sub(" ", query.strip().lower())
    key = re.sub(r"\s*,\s*", ", ", key)
    if len(key) > _QUERY_MAX:
        # Keep the key readable yet unique for very long addresses.
        digest = hashlib.sha256(key.encode()).hexdigest()
        key = f"{key[:_QUERY_MAX - 65]}#{digest}"
    return key


# One rate-limited geocoder per configuration and process: the limit holds across requests
# of one worker (each gunicorn worker keeps its own; size min_delay for the worker count).
_geocoders: dict[tuple[Any, ...], Callable[..., Any]] = {}
_geocoders_lock = threading.Lock()


def _geocoder() -> Callable[..., Any]:
    config = current_app.config
    provider = str(config["GEOCODER"]).lower()
    if provider not in PROVIDERS:
        raise ValueError(f"GEOCODER {config['GEOCODER']!r} is not one of: offline, "
                         + ", ".join(PROVIDERS))
    key = (provider, config["GEOCODER_DOMAIN"], config["GEOCODER_SCHEME"],
           config["GEOCODER_USER_AGENT"], float(config["GEOCODER_TIMEOUT"]),
           float(config["GEOCODER_MIN_DELAY"]))
    with _geocoders_lock:
        limited = _geocoders.get(key)
        if limited is None:
            from geopy.extra.rate_limiter import RateLimiter
            from geopy.geocoders import Nominatim

            nominatim = Nominatim(user_agent=key[3], domain=key[1], scheme=key[2],
                                  timeout=key[4])
            # No retries and no swallowing: an error must stay distinguishable from
            # "not found", since only answers are cached.
            limited = RateLimiter(nominatim.geocode, min_delay_seconds=key[5], max_retries=0,
                                  swallow_exceptions=False)
            _geocoders[key] = limited
    return limited


def cached_point(session: Session, query: str) -> tuple[bool, Point | None]:
    """(found in the cache, its point) without touching the network."""
    row = session.get(GeocodeCache, normalise(query))
    if row is None:
        return False, None
    if row.latitude is None or row.longitude is None:
        return True, None
    return True, Point(row.latitude, row.longitude)


def _store(session: Session, key: str, point: Point | None, provider: str) -> None:
    values = {"query": key, "latitude": point.lat if point else None,
              "longitude": point.lon if point else None, "provider": provider,
              "at": utcnow()}
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(GeocodeCache).values(values)
    # Two workers may geocode the same place at once: the later answer simply wins.
    stmt = stmt.on_conflict_do_update(
        index_elements=["query"],
        set_={"latitude": stmt.excluded.latitude, "longitude": stmt.excluded.longitude,
              "provider": stmt.excluded.provider, "at": stmt.excluded.at},
    )
    session.execute(stmt)


def lookup(session: Session, query: str, *, country: str | None = None) -> GeocodeResult:
    """Geocode ``query`` through the cache; errors give an unknown point and say why."""
    key = normalise(query)
    hit, point = cached_point(session, key)
    provider = str(current_app.config.get("GEOCODER") or OFFLINE).lower()
    if hit:
        note = (f"location from the {provider} geocoder (cached)" if point
                else f"the {provider} geocoder found no location for the address (cached)")
        return GeocodeResult(point, True, note)
    try:
        geocode = _geocoder()
        kwargs: dict[str, Any] = {"exactly_one": True}
        if country:
            kwargs["country_codes"] = country.lower()
        found = geocode(query, **kwargs)
    except Exception as error:  # noqa: BLE001 — any failure means "unknown", never a crash
        log.warning("geocoder %s failed for %r: %s", provider, key, error)
        reason = type(error).__name__
        return GeocodeResult(None, False,
                             f"the {provider} geocoder is unavailable ({reason}): "
                             "location unknown")
    point = Point(float(found.latitude), float(found.longitude)) if found else None
    _store(session, key, point, provider)
    note = (f"location from the {provider} geocoder" if point
            else f"the {provider} geocoder found no location for the address")
    return GeocodeResult(point, False, note)


def geocode(session: Session, query: str) -> Point | None:
    """The point for ``query`` (cached, rate-limited), or None when unknown or unavailable."""
    return lookup(session, query).point
