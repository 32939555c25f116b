"""Points, great-circle distances and the postal-code centroid table.

Distances are great-circle distances on a sphere of radius ``geopy.distance.EARTH_RADIUS``
(6371.009 km). Against the WGS-84 geodesic the error is below 0.5 %, about 0.4 km at 80 km,
which is far below the precision of a postal-code centroid; ``geodesic`` costs ~100x more.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from geopy.distance import EARTH_RADIUS, great_circle

from routing.territory import normalise_postal_code

__all__ = [
    "CentroidTable",
    "GeoNamesLineError",
    "Point",
    "distance_km",
    "parse_geonames",
]

EARTH_RADIUS_KM: float = float(EARTH_RADIUS)


@dataclass(frozen=True, slots=True)
class Point:
    """A position in decimal degrees (WGS-84)."""

    lat: float
    lon: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.lat) and -90.0 <= self.lat <= 90.0):
            raise ValueError(f"latitude {self.lat!r} is outside -90..90")
        if not (math.isfinite(self.lon) and -180.0 <= self.lon <= 180.0):
            raise ValueError(f"longitude {self.lon!r} is outside -180..180")


def distance_km(a: Point, b: Point) -> float:
    """Great-circle distance in km, computed by geopy.distance.great_circle."""
    return float(great_circle((a.lat, a.lon), (b.lat, b.lon)).km)


def longitude_scale(lat: float) -> float:
    """How long a degree of longitude is at ``lat`` against a degree of latitude (the
    cosine of the latitude): with it, (Δlat² + (Δlon · scale)²) orders nearby points by
    distance, as a database can compute it (the order only; ``distance_km`` the km)."""
    return math.cos(math.radians(lat))


@dataclass(frozen=True, slots=True)
class Trig:
    """A point's sine/cosine of latitude and longitude in radians, for repeated distances."""

    sin_lat: float
    cos_lat: float
    lon_rad: float

    @classmethod
    def of(cls, point: Point) -> Trig:
        """Precompute the trigonometry of ``point``."""
        lat = math.radians(point.lat)
        return cls(math.sin(lat), math.cos(lat), math.radians(point.lon))

    def distance_km(self, other: Trig) -> float:
        """Great-circle distance in km: geopy's great_circle formula and earth radius.

        geopy builds two geopy Points per call (~6 us); the routing hot path measures tens
        of partner distances per lead, so it reuses precomputed sines and cosines instead.
        tests/routing/test_geo.py checks that both agree.
        """
        delta = other.lon_rad - self.lon_rad
        cos_delta = math.cos(delta)
        across = other.cos_lat * math.sin(delta)
        along = self.cos_lat * other.sin_lat - self.sin_lat * other.cos_lat * cos_delta
        angle = math.atan2(
            math.sqrt(across * across + along * along),
            self.sin_lat * other.sin_lat + self.cos_lat * other.cos_lat * cos_delta,
        )
        return EARTH_RADIUS_KM * angle


class GeoNamesLineError(ValueError):
    """A line of a GeoNames postal-code file that cannot be read."""

    def __init__(self, line_number: int, message: str) -> None:
        super().__init__(f"line {line_number}: {message}")
        self.line_number = line_number
        self.message = message


def parse_geonames(
    lines: Iterable[str], *, errors: list[GeoNamesLineError] | None = None
) -> Iterator[tuple[str, str, Point]]:
    """Yield (country, postal code, centroid) from a GeoNames postal-code file.

    Bad lines raise GeoNamesLineError, or are appended to ``errors`` and skipped when a list
    is given. Blank lines are ignored. Line numbers count from 1.
    """
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip("\r\n")
        if not line.strip():
            continue
        try:
            yield _geonames_row(number, line)
        except GeoNamesLineError as error:
            if errors is None:
                raise
            errors.append(error)


def _geonames_row(number: int, line: str) -> tuple[str, str, Point]:
    columns = line.split("\t")
    if len(columns) < 11:
        raise GeoNamesLineError(
            number, f"expected 12 tab-separated columns, found {len(columns)}"
        )
    country = columns[0].strip().upper()
    if len(country) != 2 or not country.isalpha():
        raise GeoNamesLineError(number, f"country code {columns[0]!r} is not two letters")
    code = normalise_postal_code(country, columns[1])
    if code is None:
        raise GeoNamesLineError(number, f"postal code {columns[1]!r} is empty or invalid")
    try:
        lat, lon = float(columns[9]), float(columns[10])
    except ValueError:
        raise GeoNamesLineError(
            number, f"latitude/longitude {columns[9]!r}/{columns[10]!r} are not numbers"
        ) from None
    try:
        point = Point(lat, lon)
    except ValueError as error:
        raise GeoNamesLineError(number, str(error)) from None
    return country, code, point


_US_CENTROIDS: Mapping[tuple[str, str], Point] | None = None


def _us_centroids() -> Mapping[tuple[str, str], Point]:
    global _US_CENTROIDS
    if _US_CENTROIDS is None:
        import zipcodes

        points: dict[tuple[str, str], Point] = {}
        for record in zipcodes.list_all():  # type: ignore[no-untyped-call]
            lat, lon = float(record["lat"]), float(record["long"])
            # Military (APO/FPO) codes carry 0,0: no place, so no centroid.
            if lat == 0.0 and lon == 0.0:
                continue
            points[("US", str(record["zip_code"]))] = Point(lat, lon)
        _US_CENTROIDS = MappingProxyType(points)
    return _US_CENTROIDS


class CentroidTable:
    """Postal code -> centroid lookup; codes are normalised as for matching."""

    __slots__ = ("_base", "_own")

    def __init__(self, base: Mapping[tuple[str, str], Point] | None = None) -> None:
        self._base: Mapping[tuple[str, str], Point] = base if base is not None else {}
        self._own: dict[tuple[str, str], Point] = {}

    @classmethod
    def us(cls) -> CentroidTable:
        """A table of US ZIP centroids from the zipcodes package (loaded once per process).

        Every call returns a new table over the shared read-only data, so ``add`` on one
        table never leaks into another.
        """
        return cls(_us_centroids())

    def add(self, country: str, code: str, point: Point) -> None:
        """Add or replace the centroid of a postal code; ValueError if the code is invalid."""
        key = _key(country, code)
        if key is None:
            raise ValueError(f"postal code {code!r} is not valid for country {country!r}")
        self._own[key] = point

    def load_geonames(
        self, lines: Iterable[str], *, errors: list[GeoNamesLineError] | None = None
    ) -> int:
        """Add every centroid of a GeoNames file (first position wins); return how many."""
        seen: set[tuple[str, str]] = set()
        for country, code, point in parse_geonames(lines, errors=errors):
            if (country, code) not in seen:
                seen.add((country, code))
                self._own[(country, code)] = point
        return len(seen)

    def get(self, country: str, code: str | None) -> Point | None:
        """The centroid of a postal code, or None when unknown or invalid."""
        key = _key(country, code)
        if key is None:
            return None
        found = self._own.get(key)
        return found if found is not None else self._base.get(key)

    def items(self) -> Iterator[tuple[str, str, Point]]:
        """Every (country, postal code, centroid) in the table, added ones last."""
        for (country, code), point in self._base.items():
            if (country, code) not in self._own:
                yield country, code, point
        for (country, code), point in self._own.items():
            yield country, code, point

    def __len__(self) -> int:
        return len(self._base) + sum(1 for key in self._own if key not in self._base)

    def __contains__(self, key: object) -> bool:
        if not (isinstance(key, tuple) and len(key) == 2):
            return False
        country, code = key
        if not (isinstance(country, str) and (code is None or isinstance(code, str))):
            return False
        return self.get(country, code) is not None


def _key(country: str, code: str | None) -> tuple[str, str] | None:
    country = country.strip().upper()
    normalised = normalise_postal_code(country, code)
    return None if normalised is None else (country, normalised)
