"""Territory rules: parsing the partners-CSV spelling, postal codes and specificity.

Specificity is a number (higher = more specific) so that rules of different kinds compare
directly. The ladder, most specific first:

* ``EXACT_LEVEL`` (100) — one postal code.
* postal sets, 40..99 — a prefix or a range, ranked by how many codes it covers: a rule
  covering *n* codes has level ``99 - round(10 * log10(n))`` (floored at 40), i.e. one step
  per tenth of a decade. ``zip:504*`` and ``zip:50400-50499`` both cover 100 codes and share
  level 79; ``zip:50400-50449`` (50 codes) is 82, ``zip:50*`` (1,000 codes) is 69. Prefix
  widths are counted against 5-character codes (the US ZIP length).
* ``RADIUS_LEVEL`` (30), ``REGION_LEVEL`` (20), ``COUNTRY_LEVEL`` (10).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

__all__ = [
    "COUNTRY_LEVEL",
    "EXACT_LEVEL",
    "KINDS",
    "MAX_RADIUS_KM",
    "RADIUS_LEVEL",
    "REGION_LEVEL",
    "RuleError",
    "TerritoryRule",
    "normalise_postal_code",
    "parse_rule",
    "parse_rules",
    "postal_set_level",
]

KINDS = ("zip", "zip_prefix", "zip_range", "region", "country", "radius")

EXACT_LEVEL = 100
POSTAL_SET_TOP = 99
POSTAL_SET_FLOOR = 40
RADIUS_LEVEL = 30
REGION_LEVEL = 20
COUNTRY_LEVEL = 10

#: Wider areas belong to region or country rules; the cap also bounds the radius grid.
MAX_RADIUS_KM = 1000.0

#: Prefix widths are measured against this code length (the US ZIP).
_REFERENCE_CODE_LENGTH = 5

_CODE = re.compile(r"[A-Z0-9]+(?:-[A-Z0-9]+)*")
_REGION = re.compile(r"[A-Z]{2}-[A-Z0-9]{1,3}")
_COUNTRY = re.compile(r"[A-Z]{2}")
#: ASCII digits only: ``\d`` would also take "５０４０１" (full-width) and other scripts' digits
_US_ZIP = re.compile(r"([0-9]{5})(?:-?[0-9]{4})?")
_KIND_NAMES = {
    "zip": "exact postal code",
    "zip_prefix": "postal prefix",
    "zip_range": "postal range",
    "radius": "radius",
    "region": "region",
    "country": "country",
}


class RuleError(ValueError):
    """A territory rule that cannot be understood; the message says what is wrong."""


def postal_set_level(width: int) -> int:
    """Return the specificity level of a prefix or range rule covering ``width`` codes."""
    if width < 1:
        raise ValueError(f"a postal set covers at least one code, not {width}")
    return max(POSTAL_SET_FLOOR, POSTAL_SET_TOP - round(10 * math.log10(width)))


@dataclass(frozen=True, slots=True)
class TerritoryRule:
    """One territory rule in canonical form; build it with :func:`parse_rule`."""

    kind: str
    value: str

    def __post_init__(self) -> None:
        _check(self.kind, self.value)

    def __str__(self) -> str:
        if self.kind == "zip_prefix":
            return f"zip:{self.value}*"
        if self.kind in ("zip", "zip_range"):
            return f"zip:{self.value}"
        return f"{self.kind}:{self.value}"

    @property
    def width(self) -> int | None:
        """Number of postal codes a postal rule covers (None for other kinds)."""
        if self.kind == "zip":
            return 1
        if self.kind == "zip_prefix":
            return int(10 ** max(0, _REFERENCE_CODE_LENGTH - len(self.value)))
        if self.kind == "zip_range":
            low, high = self.bounds
            return int(high) - int(low) + 1
        return None

    @property
    def level(self) -> int:
        """Specificity level (higher = more specific); see the module docstring."""
        if self.kind == "zip":
            return EXACT_LEVEL
        if self.kind in ("zip_prefix", "zip_range"):
            width = self.width
            assert width is not None
            return postal_set_level(width)
        if self.kind == "radius":
            return RADIUS_LEVEL
        if self.kind == "region":
            return REGION_LEVEL
        return COUNTRY_LEVEL

    @property
    def level_name(self) -> str:
        """Readable name of this rule's kind of match, e.g. 'exact postal code'."""
        return _KIND_NAMES[self.kind]

    @property
    def bounds(self) -> tuple[str, str]:
        """Low and high code of a range rule."""
        if self.kind != "zip_range":
            raise AttributeError(f"{self} is not a range rule")
        low, high = self.value.split("-")
        return low, high

    @property
    def radius_km(self) -> float:
        """Radius of a radius rule in kilometres."""
        if self.kind != "radius":
            raise AttributeError(f"{self} is not a radius rule")
        return float(self.value)

    def describe(self) -> str:
        """Readable description, e.g. 'postal prefix 504*' or 'within 80 km'."""
        if self.kind == "zip":
            return f"exact postal code {self.value}"
        if self.kind == "zip_prefix":
            return f"postal prefix {self.value}*"
        if self.kind == "zip_range":
            return f"postal range {self.value}"
        if self.kind == "radius":
            return f"within {self.value} km"
        return f"{self.kind} {self.value}"


def _check(kind: str, value: str) -> None:
    if kind not in KINDS:
        raise RuleError(f"unknown territory kind {kind!r} (expected one of {', '.join(KINDS)})")
    if kind in ("zip", "zip_prefix"):
        if not value:
            raise RuleError("zip rule has an empty postal code")
        if not _CODE.fullmatch(value):
            raise RuleError(
                f"postal code {value!r} must be upper-case letters and digits, no spaces"
            )
    elif kind == "zip_range":
        parts = value.split("-")
        if len(parts) != 2:
            raise RuleError(f"zip range {value}: expected low-high, e.g. 50400-50499")
        low, high = parts
        if not (low.isdigit() and high.isdigit() and low.isascii() and high.isascii()):
            raise RuleError(f"zip range {value}: both bounds must be digits")
        if len(low) != len(high):
            raise RuleError(f"zip range {value}: both bounds must have the same number of digits")
        if low > high:
            raise RuleError(f"zip range {value}: low is above high")
    elif kind == "region":
        if not _REGION.fullmatch(value):
            raise RuleError(f"region {value!r}: expected an ISO 3166-2 code such as US-IA")
    elif kind == "country":
        if not _COUNTRY.fullmatch(value):
            raise RuleError(f"country {value!r}: expected an ISO 3166-1 alpha-2 code such as US")
    else:
        try:
            km = float(value)
        except ValueError:
            raise RuleError(f"radius {value!r}: expected a number of kilometres") from None
        if not (math.isfinite(km) and 0 < km <= MAX_RADIUS_KM):
            raise RuleError(
                f"radius {value} km: must be above 0 and at most {MAX_RADIUS_KM:g} km "
                "(use region or country rules for wider areas)"
            )
        if value != f"{km:g}":
            raise RuleError(f"radius {value!r}: write it as {km:g}")


def parse_rule(text: str) -> TerritoryRule:
    """Parse one rule in the partners-CSV spelling (zip:50401, zip:504*, radius:80, ...)."""
    stripped = text.strip()
    if not stripped:
        raise RuleError("empty territory rule")
    kind, sep, raw = stripped.partition(":")
    kind = kind.strip().lower()
    raw = raw.strip()
    if not sep:
        raise RuleError(f"territory rule {stripped!r}: expected kind:value, e.g. zip:50401")
    if not raw:
        raise RuleError(f"territory rule {stripped!r}: the value after ':' is empty")
    if kind == "zip":
        code = "".join(raw.split()).upper()
        if code.endswith("*"):
            return TerritoryRule("zip_prefix", _prefix(code))
        if "-" in code:
            return TerritoryRule("zip_range", code)
        return TerritoryRule("zip", code)
    if kind == "zip_prefix":
        return TerritoryRule("zip_prefix", _prefix("".join(raw.split()).upper()))
    if kind == "zip_range":
        return TerritoryRule("zip_range", "".join(raw.split()))
    if kind in ("region", "country"):
        return TerritoryRule(kind, raw.upper())
    if kind == "radius":
        number = raw.lower().removesuffix("km").strip()
        try:
            km = float(number)
        except ValueError:
            raise RuleError(f"radius {raw!r}: expected a number of kilometres") from None
        return TerritoryRule("radius", f"{km:g}" if math.isfinite(km) else number)
    raise RuleError(
        f"unknown territory kind {kind!r} in {stripped!r} "
        "(expected zip, region, country or radius)"
    )


def _prefix(code: str) -> str:
    prefix = code.removesuffix("*")
    if not prefix:
        raise RuleError("zip prefix '*' is empty: give at least one leading character")
    if "*" in prefix:
        raise RuleError(f"zip prefix {code!r}: '*' may only end the prefix")
    return prefix


def problem_for_country(rule: TerritoryRule, country: str) -> str | None:
    """Why ``rule`` can never match a postal code of ``country``, or None. A US ZIP code is
    five digits: zip:5020 or zip:ABCDE is a well-formed rule that would silently cover
    nothing, so a partner's form and the partners CSV refuse it with this message."""
    if country.strip().upper() != "US":
        return None  # other countries' codes vary in length and letters
    if rule.kind == "zip" and not (len(rule.value) == 5 and rule.value.isdigit()):
        return (f"zip {rule.value}: a US ZIP code is 5 digits (zip:50201), or a prefix "
                "with * (zip:502*)")
    if rule.kind == "zip_prefix" and not (rule.value.isdigit() and len(rule.value) <= 5):
        return f"zip prefix {rule.value}*: a US ZIP code prefix is 1 to 5 digits"
    if rule.kind == "zip_range" and len(rule.bounds[0]) != 5:
        return f"zip range {rule.value}: a US ZIP code range has 5 digits on each side"
    return None


def parse_rules(text: str) -> tuple[TerritoryRule, ...]:
    """Parse a ';'-separated list of rules (the CSV territories cell); empty gives ()."""
    rules = []
    for position, part in enumerate(text.split(";"), start=1):
        if not part.strip():
            continue
        try:
            rules.append(parse_rule(part))
        except RuleError as error:
            raise RuleError(f"rule {position} ({part.strip()!r}): {error}") from None
    return tuple(rules)


def normalise_postal_code(country: str, code: str | None) -> str | None:
    """Return the canonical postal code for matching, or None when absent or invalid."""
    if code is None:
        return None
    if country.strip().upper() == "US":
        found = _US_ZIP.fullmatch(code.strip())
        return found.group(1) if found else None
    compact = "".join(code.split()).upper()
    return compact or None
