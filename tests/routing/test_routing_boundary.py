"""routing/ is a functional core: no web, database, clock, randomness or network inside."""

from __future__ import annotations

import ast
from pathlib import Path

ROUTING = Path(__file__).resolve().parents[2] / "routing"

FORBIDDEN_MODULES = {
    "flask",
    "sqlalchemy",
    "portal",
    "random",
    "secrets",
    "requests",
    "urllib",
    "urllib3",
    "http",
    "httpx",
    "socket",
    "time",
}
#: Attribute calls that read the clock: datetime.now(), date.today(), time.time(), ...
FORBIDDEN_CALLS = {"now", "utcnow", "today", "time", "monotonic", "perf_counter", "time_ns"}


def violations(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden import or clock read in ``source``, as 'file:line: what'."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source, filename)):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        for module in modules:
            if module.split(".")[0] in FORBIDDEN_MODULES:
                line = getattr(node, "lineno", 0)
                found.append((line, f"{filename}:{line}: imports {module}"))
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FORBIDDEN_CALLS
        ):
            found.append((node.lineno, f"{filename}:{node.lineno}: calls .{node.func.attr}()"))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in {"__import__", "import_module"}:
                found.append((node.lineno, f"{filename}:{node.lineno}: dynamic import"))
    return [text for _, text in sorted(found)]


def test_the_checker_catches_what_it_should() -> None:
    bad = (
        "import flask\n"
        "from sqlalchemy.orm import Session\n"
        "from portal.core.models import Lead\n"
        "import random\n"
        "from urllib.request import urlopen\n"
        "import requests\n"
        "from datetime import datetime\n"
        "x = datetime.now()\n"
        "import time as t\n"
        "y = t.time()\n"
        "z = __import__('socket')\n"
    )
    assert [v.split(": ", 1)[1] for v in violations(bad)] == [
        "imports flask",
        "imports sqlalchemy.orm",
        "imports portal.core.models",
        "imports random",
        "imports urllib.request",
        "imports requests",
        "calls .now()",
        "imports time",
        "calls .time()",
        "dynamic import",
    ]
    assert violations("from datetime import datetime\nfrom routing.geo import Point\n") == []


def test_routing_modules_stay_pure() -> None:
    files = sorted(ROUTING.glob("*.py"))
    assert {f.name for f in files} >= {"__init__.py", "territory.py", "geo.py", "engine.py"}
    found = [v for f in files for v in violations(f.read_text(encoding="utf-8"), f.name)]
    assert found == []
