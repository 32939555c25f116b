"""routing/ is the one home of great-circle distance and of the territory rules' spelling.

The portal, the demo, the benchmarks and the tests once each carried their own haversine
and their own ``zip:504*`` split; this scan keeps a new copy from creeping back outside
routing/ (issue 12). It looks for the copies' fingerprints, not for every possible one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCANNED = ("portal", "tests", "bench", "scripts", "wsgi.py")

#: the trigonometry only a distance formula needs (math.degrees stays allowed: tests use it
#: to place points at a known distance along a meridian)
DISTANCE_CALLS = {"asin", "acos", "atan2", "radians", "haversine", "great_circle", "geodesic"}


def fingerprints(source: str, filename: str = "<source>") -> list[str]:
    """Every sign of a distance formula or a rule parser in ``source``, as 'file:line: what'."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        line = getattr(node, "lineno", 0)
        if isinstance(node, ast.ImportFrom) and node.module == "geopy.distance":
            found.append((line, "imports geopy.distance (use routing.distance_km)"))
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in DISTANCE_CALLS:
                found.append((line, f"calls {name}() (use routing.distance_km)"))
            star = [ast.Constant("*")]
            if name in ("endswith", "removesuffix") and ast.dump(ast.List(node.args)) == (
                ast.dump(ast.List(star))
            ):
                found.append((line, f"calls .{name}('*') (use routing.parse_rule)"))
        elif (
            isinstance(node, ast.Constant)
            and isinstance(node.value, float | int)
            and not isinstance(node.value, bool)
            and 6371 <= node.value < 6372
        ):
            found.append((line, "an earth radius (use routing.distance_km)"))
    return [f"{filename}:{line}: {what}" for line, what in sorted(found)]


def test_the_scan_catches_the_old_copies() -> None:
    haversine = (
        "import math\n"
        "def distance_km(a, b):\n"
        "    lat1, lat2 = math.radians(a.lat), math.radians(b.lat)\n"
        "    return 2 * 6371.009 * math.asin(1)\n"
    )
    split = "kind, value = rule.split(':', 1)\nif value.endswith('*'): value = value[:-1]\n"
    geopy = "from geopy.distance import great_circle\n"
    assert [f.split(": ", 1)[1] for f in fingerprints(haversine + split + geopy)] == [
        "calls radians() (use routing.distance_km)",
        "calls radians() (use routing.distance_km)",
        "an earth radius (use routing.distance_km)",
        "calls asin() (use routing.distance_km)",
        "calls .endswith('*') (use routing.parse_rule)",
        "imports geopy.distance (use routing.distance_km)",
    ]
    assert fingerprints("from routing import distance_km, parse_rule\nx = math.degrees(1)\n") == []


def test_no_distance_formula_or_rule_parser_outside_routing() -> None:
    found = []
    for name in SCANNED:
        path = ROOT / name
        for file in sorted(path.rglob("*.py") if path.is_dir() else [path]):
            found += fingerprints(file.read_text(encoding="utf-8"), str(file.relative_to(ROOT)))
    # This file names the fingerprints it looks for; only its own example trips the scan.
    this = str(Path(__file__).relative_to(ROOT))
    assert [f for f in found if not f.startswith(this)] == []
