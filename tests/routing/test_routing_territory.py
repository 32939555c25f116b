"""Territory rules: the CSV spelling, postal codes and specificity."""

from __future__ import annotations

import pytest

from routing import RuleError, TerritoryRule, normalise_postal_code, parse_rule, parse_rules
from routing.territory import (
    COUNTRY_LEVEL,
    EXACT_LEVEL,
    RADIUS_LEVEL,
    REGION_LEVEL,
    postal_set_level,
)


@pytest.mark.parametrize(
    ("text", "kind", "value", "canonical"),
    [
        ("zip:50401", "zip", "50401", "zip:50401"),
        ("zip:00501", "zip", "00501", "zip:00501"),
        ("zip:504*", "zip_prefix", "504", "zip:504*"),
        ("zip:50400-50499", "zip_range", "50400-50499", "zip:50400-50499"),
        ("region:US-IA", "region", "US-IA", "region:US-IA"),
        ("country:US", "country", "US", "country:US"),
        ("radius:80", "radius", "80", "radius:80"),
        ("radius:12.5", "radius", "12.5", "radius:12.5"),
        # case-insensitive kind, whitespace trimmed, values canonicalised
        ("  ZIP : 50401 ", "zip", "50401", "zip:50401"),
        ("Region:us-ia", "region", "US-IA", "region:US-IA"),
        ("COUNTRY: de", "country", "DE", "country:DE"),
        ("radius: 80 km", "radius", "80", "radius:80"),
        ("radius:80.0", "radius", "80", "radius:80"),
        ("zip:50400 - 50499", "zip_range", "50400-50499", "zip:50400-50499"),
        ("zip:sw1a 1aa", "zip", "SW1A1AA", "zip:SW1A1AA"),
    ],
)
def test_parse_rule_reads_every_kind_and_prints_it_back(
    text: str, kind: str, value: str, canonical: str
) -> None:
    rule = parse_rule(text)
    assert (rule.kind, rule.value) == (kind, value)
    assert str(rule) == canonical
    assert parse_rule(str(rule)) == rule


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty territory rule"),
        ("50401", "expected kind:value"),
        ("zip:", "value after ':' is empty"),
        ("zop:50401", "unknown territory kind 'zop'"),
        ("zip:*", "zip prefix '*' is empty"),
        ("zip:5*0*", "'*' may only end the prefix"),
        ("zip:50499-50400", "zip range 50499-50400: low is above high"),
        ("zip:504-50499", "same number of digits"),
        ("zip:5040A-50499", "both bounds must be digits"),
        ("zip:1-2-3", "expected low-high"),
        ("zip:504!1", "letters and digits"),
        ("region:Iowa", "ISO 3166-2"),
        ("country:USA", "ISO 3166-1 alpha-2"),
        ("radius:far", "expected a number of kilometres"),
        ("radius:0", "must be above 0"),
        ("radius:-5", "must be above 0"),
        ("radius:5000", "at most 1000 km"),
        ("radius:nan", "must be above 0"),
    ],
)
def test_parse_rule_rejects_bad_input_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(RuleError, match=message.replace("*", r"\*")):
        parse_rule(text)


def test_rule_error_is_a_value_error() -> None:
    assert issubclass(RuleError, ValueError)


def test_rules_are_validated_when_built_directly() -> None:
    with pytest.raises(RuleError, match="unknown territory kind"):
        TerritoryRule("postcode", "50401")
    with pytest.raises(RuleError, match="write it as 80"):
        TerritoryRule("radius", "80.0")


def test_parse_rules_splits_on_semicolons_and_names_the_bad_rule() -> None:
    assert parse_rules("") == ()
    assert parse_rules(" ; ") == ()
    assert parse_rules("zip:50401; zip:504* ;radius:80") == (
        TerritoryRule("zip", "50401"),
        TerritoryRule("zip_prefix", "504"),
        TerritoryRule("radius", "80"),
    )
    with pytest.raises(RuleError, match=r"rule 2 \('zip:9-1'\): zip range 9-1: low is above high"):
        parse_rules("zip:50401;zip:9-1")


@pytest.mark.parametrize(
    ("country", "code", "expected"),
    [
        ("US", "50401", "50401"),
        ("US", " 50401-1234 ", "50401"),
        ("US", "504011234", "50401"),
        ("us", "00501", "00501"),
        ("US", "5040", None),
        ("US", "50401-12", None),
        ("US", "ABCDE", None),
        ("US", "", None),
        ("US", None, None),
        ("GB", "sw1a 1aa", "SW1A1AA"),
        ("CA", "k1a 0b1", "K1A0B1"),
        ("DE", "01067", "01067"),
        ("DE", "   ", None),
        ("FR", None, None),
    ],
)
def test_normalise_postal_code(country: str, code: str | None, expected: str | None) -> None:
    assert normalise_postal_code(country, code) == expected


def test_specificity_follows_the_documented_ladder() -> None:
    levels = [
        parse_rule(text).level
        for text in (
            "zip:50401",
            "zip:50400-50409",  # 10 codes
            "zip:5040*",  # 10 codes
            "zip:50400-50449",  # 50 codes
            "zip:504*",  # 100 codes
            "zip:50*",
            "zip:5*",
            "radius:80",
            "region:US-IA",
            "country:US",
        )
    ]
    assert levels == [
        EXACT_LEVEL, 89, 89, 82, 79, 69, 59, RADIUS_LEVEL, REGION_LEVEL, COUNTRY_LEVEL
    ]
    assert levels == sorted(levels, reverse=True)


def test_a_range_and_a_prefix_covering_the_same_codes_are_equally_specific() -> None:
    assert parse_rule("zip:504*").level == parse_rule("zip:50400-50499").level
    assert parse_rule("zip:504*").width == parse_rule("zip:50400-50499").width == 100


def test_every_postal_set_ranks_between_exact_and_radius() -> None:
    for width in (1, 2, 10, 99_999, 10**9):
        assert RADIUS_LEVEL < postal_set_level(width) < EXACT_LEVEL
    assert postal_set_level(2) > postal_set_level(3) >= postal_set_level(10)


def test_rule_descriptions_are_readable() -> None:
    assert parse_rule("zip:50401").describe() == "exact postal code 50401"
    assert parse_rule("zip:504*").describe() == "postal prefix 504*"
    assert parse_rule("zip:50400-50499").describe() == "postal range 50400-50499"
    assert parse_rule("radius:80").describe() == "within 80 km"
    assert parse_rule("region:US-IA").describe() == "region US-IA"
    assert parse_rule("country:US").level_name == "country"

