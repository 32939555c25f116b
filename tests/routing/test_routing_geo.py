"""Points, distances and the centroid table."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from routing import CentroidTable, GeoNamesLineError, Point, distance_km, parse_geonames
from routing.geo import Trig

latitudes = st.floats(min_value=-90, max_value=90)
longitudes = st.floats(min_value=-180, max_value=180)
points = st.builds(Point, latitudes, longitudes)


@pytest.mark.parametrize(
    ("lat", "lon"), [(91, 0), (-90.5, 0), (0, 180.1), (0, -181), (math.nan, 0), (0, math.inf)]
)
def test_point_rejects_out_of_range_coordinates(lat: float, lon: float) -> None:
    with pytest.raises(ValueError, match="outside"):
        Point(lat, lon)


def test_distance_matches_geopy_documented_example() -> None:
    newport_ri, cleveland_oh = Point(41.49008, -71.312796), Point(41.499498, -81.695391)
    # geopy's docs: great_circle(newport_ri, cleveland_oh).miles == 536.997990696
    assert distance_km(newport_ri, cleveland_oh) == pytest.approx(536.997990696 * 1.609344)
    assert distance_km(newport_ri, newport_ri) == 0.0


@given(points, points)
def test_precomputed_trig_distance_agrees_with_geopy(a: Point, b: Point) -> None:
    assert Trig.of(a).distance_km(Trig.of(b)) == pytest.approx(distance_km(a, b), abs=1e-6)


def test_us_table_has_real_zip_centroids_and_keeps_leading_zeros() -> None:
    table = CentroidTable.us()
    assert len(table) > 40_000
    mason_city = table.get("US", "50401")
    assert mason_city is not None
    assert distance_km(mason_city, Point(43.1536, -93.2010)) < 5
    assert table.get("us", "50401-1234") == mason_city
    assert table.get("US", "00501") is not None
    assert table.get("US", "99999") is None
    assert table.get("US", None) is None
    assert table.get("US", "5040") is None
    # military codes carry 0,0 in the source data: no centroid rather than a wrong one
    assert table.get("US", "09001") is None
    assert ("US", "50401") in table


def test_adding_to_one_us_table_does_not_leak_into_another() -> None:
    first, second = CentroidTable.us(), CentroidTable.us()
    before = len(first)
    first.add("US", "99999", Point(40, -100))
    first.add("US", "50401", Point(43, -93))  # replaces, does not grow
    assert first.get("US", "99999") == Point(40, -100)
    assert first.get("US", "50401") == Point(43, -93)
    assert len(first) == before + 1
    assert second.get("US", "99999") is None
    assert second.get("US", "50401") != Point(43, -93)


def test_add_rejects_an_invalid_code() -> None:
    with pytest.raises(ValueError, match="not valid"):
        CentroidTable().add("US", "ABC", Point(0, 0))


GEONAMES = [
    "DE\t01067\tDresden\tSachsen\tSN\t\t00\tKreisfreie Stadt Dresden\t14612\t51.0574\t13.7217\t4\n",
    "\n",
    "DE\t01067\tDresden Altstadt\tSachsen\tSN\t\t00\t\t\t51.1\t13.8\t4\n",
    "GB\tSW1A 1AA\tLondon\tEngland\tENG\t\t\t\t\t51.501\t-0.1416\t6\n",
    "DE\t01069\tDresden\n",
    "DE\t01069\tDresden\tSachsen\tSN\t\t00\t\t\tabc\t13.7\t4\n",
    "DE\t01070\tDresden\tSachsen\tSN\t\t00\t\t\t95\t13.7\t4\n",
]


def test_parse_geonames_reports_bad_lines_by_number() -> None:
    errors: list[GeoNamesLineError] = []
    rows = list(parse_geonames(GEONAMES, errors=errors))
    assert [(country, code) for country, code, _ in rows] == [
        ("DE", "01067"),
        ("DE", "01067"),
        ("GB", "SW1A1AA"),
    ]
    assert rows[0][2] == Point(51.0574, 13.7217)
    assert [error.line_number for error in errors] == [5, 6, 7]
    assert "expected 12 tab-separated columns, found 3" in str(errors[0])
    assert str(errors[1]).startswith("line 6: latitude/longitude 'abc'/'13.7'")
    assert "latitude 95.0 is outside" in str(errors[2])


def test_parse_geonames_raises_on_the_first_bad_line_without_an_error_list() -> None:
    with pytest.raises(GeoNamesLineError, match="^line 5: ") as caught:
        list(parse_geonames(GEONAMES))
    assert caught.value.line_number == 5


def test_load_geonames_keeps_the_first_position_of_a_repeated_code() -> None:
    table = CentroidTable()
    errors: list[GeoNamesLineError] = []
    assert table.load_geonames(GEONAMES, errors=errors) == 2
    assert len(errors) == 3
    assert table.get("DE", "01067") == Point(51.0574, 13.7217)
    assert table.get("gb", "sw1a 1aa") == Point(51.501, -0.1416)
    assert len(table) == 2
