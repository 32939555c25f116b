"""Geography for routing: imported GeoNames centroids, and the optional online geocoder."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.core.models import PostalCentroid
from routing import GeoNamesLineError, parse_geonames

_BATCH = 5000


@dataclass
class GeoImportReport:
    imported: int = 0
    countries: list[str] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = insert(PostalCentroid).values(rows)
    stmt = stmt.on_conflict_do_update(
        index_elements=["country", "postal_code"],
        set_={"latitude": stmt.excluded.latitude, "longitude": stmt.excluded.longitude},
    )
    session.execute(stmt)


def import_geonames(session: Session, lines: Iterable[str]) -> GeoImportReport:
    """Stream a GeoNames postal-code file into ``postal_centroids`` (insert or update)."""
    report = GeoImportReport()
    errors: list[GeoNamesLineError] = []
    batch: dict[tuple[str, str], dict[str, Any]] = {}
    countries: set[str] = set()
    for country, code, point in parse_geonames(lines, errors=errors):
        # A file may list one code several times (one per place): the last one wins.
        batch[(country, code)] = {"country": country, "postal_code": code,
                                  "latitude": point.lat, "longitude": point.lon}
        countries.add(country)
        if len(batch) >= _BATCH:
            _upsert(session, list(batch.values()))
            report.imported += len(batch)
            batch.clear()
    if batch:
        _upsert(session, list(batch.values()))
        report.imported += len(batch)
    report.countries = sorted(countries)
    report.errors = [(e.line_number, e.message) for e in errors]
    return report


_US_PLACES: dict[str, tuple[str, str]] | None = None


def _us_places() -> dict[str, tuple[str, str]]:
    global _US_PLACES
    if _US_PLACES is None:
        import zipcodes

        _US_PLACES = {z["zip_code"]: (z["state"], z["city"])
                      for z in zipcodes.list_all()}
    return _US_PLACES


def is_us_zip(postal_code: str) -> bool:
    """True when ``postal_code`` (five ASCII digits) is a ZIP code the US Postal Service
    gives out (the offline ``zipcodes`` data): 00000 and 99999 are not."""
    return postal_code in _us_places()


def us_state_for(postal_code: str) -> str | None:
    """The two-letter state of a US ZIP code (from the offline ``zipcodes`` data)."""
    place = _us_places().get(postal_code)
    return place[0] if place else None


def us_town_for(postal_code: str) -> str:
    """The town a US ZIP code is named for ("Mason City" for 50401), or ""."""
    place = _us_places().get(postal_code)
    return place[1] if place else ""
