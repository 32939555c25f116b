"""Qualification and ranking rules: a manufacturer's rule set applied to an inquiry's facts.

Pure: the portal passes the facts (answers, contact validity, repeat count) and the rule
set (stored versioned in the database as ``RuleSet.to_dict()``); this returns the verdict
with its reasons, so the same code serves capture, re-scoring and the "try it" preview.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

TIMELINES = ("now", "3_months", "6_months", "12_months", "researching")
BUDGETS = ("approved", "planned", "none", "unknown")
ROLES = ("decision_maker", "influencer", "user", "other")

QUALIFIED, NURTURE, DISQUALIFIED = "qualified", "nurture", "disqualified"
HOT, WARM, COLD = "hot", "warm", "cold"


def _default_points() -> dict[str, dict[str, int]]:
    return {
        "timeline": {"now": 35, "3_months": 25, "6_months": 12, "12_months": 5,
                     "researching": 0, "": 5},
        "budget": {"approved": 25, "planned": 15, "unknown": 5, "none": 0, "": 5},
        "role": {"decision_maker": 15, "influencer": 8, "user": 4, "other": 2, "": 2},
    }


@dataclass(frozen=True, slots=True)
class RuleSet:
    """The manufacturer's editable rules. Defaults follow common B2B practice: roughly
    one inquiry in eight is sales-ready on arrival; long timelines are nurtured."""

    #: points per standard answer value ("" = not answered)
    points: Mapping[str, Mapping[str, int]] = field(default_factory=_default_points)
    #: points when both email and phone are valid / when only one is
    contact_both: int = 10
    contact_one: int = 5
    #: points when the inquiry names a product line
    product_line: int = 5
    #: points per source code (e.g. partner_referral: 10)
    sources: Mapping[str, int] = field(default_factory=dict)
    #: points per earlier inquiry by the same person, capped
    repeat_each: int = 5
    repeat_cap: int = 15
    #: points per nurture email engagement (click), capped
    engagement_each: int = 3
    engagement_cap: int = 12
    hot_at: int = 70
    warm_at: int = 45
    #: timelines and budgets that mean "not ready": nurture instead of sales
    nurture_timelines: tuple[str, ...] = ("12_months", "researching")
    nurture_budgets: tuple[str, ...] = ("none",)
    #: cold qualified leads go to nurture instead of a dealer
    cold_to_nurture: bool = True
    #: email domains that mark a test or spam inquiry
    blocked_domains: tuple[str, ...] = ("example.invalid", "test.invalid", "mailinator.com")
    #: words in a name that mark a test inquiry
    test_names: tuple[str, ...] = ("test", "asdf", "xxx")
    disqualify_free_mail: bool = False
    free_mail_domains: tuple[str, ...] = ("gmail.com", "yahoo.com", "hotmail.com",
                                          "outlook.com", "aol.com", "icloud.com")
    competitor_domains: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as stored and edited."""
        return {
            "points": {k: dict(v) for k, v in self.points.items()},
            "contact_both": self.contact_both, "contact_one": self.contact_one,
            "product_line": self.product_line, "sources": dict(self.sources),
            "repeat_each": self.repeat_each, "repeat_cap": self.repeat_cap,
            "engagement_each": self.engagement_each, "engagement_cap": self.engagement_cap,
            "hot_at": self.hot_at, "warm_at": self.warm_at,
            "nurture_timelines": list(self.nurture_timelines),
            "nurture_budgets": list(self.nurture_budgets),
            "cold_to_nurture": self.cold_to_nurture,
            "blocked_domains": list(self.blocked_domains),
            "test_names": list(self.test_names),
            "disqualify_free_mail": self.disqualify_free_mail,
            "free_mail_domains": list(self.free_mail_domains),
            "competitor_domains": list(self.competitor_domains),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleSet:
        """Rebuild from :meth:`to_dict`; missing keys keep their defaults."""
        base = cls()
        tuples = {"nurture_timelines", "nurture_budgets", "blocked_domains", "test_names",
                  "free_mail_domains", "competitor_domains"}
        values: dict[str, Any] = {}
        for key, value in data.items():
            if not hasattr(base, key):
                raise ValueError(f"unknown rule {key!r}")
            if key in tuples:
                values[key] = tuple(str(v).strip().lower() for v in value if str(v).strip())
            elif key == "points":
                values[key] = {str(k): {str(a): int(p) for a, p in v.items()}
                               for k, v in value.items()}
            elif key == "sources":
                values[key] = {str(k): int(v) for k, v in value.items()}
            elif isinstance(getattr(base, key), bool):
                values[key] = bool(value)
            else:
                values[key] = int(value)
        rules = cls(**values)
        if not 0 <= rules.warm_at <= rules.hot_at <= 100:
            raise ValueError("thresholds must satisfy 0 <= warm_at <= hot_at <= 100")
        return rules


@dataclass(frozen=True, slots=True)
class InquiryFacts:
    """What the rules look at."""

    email_valid: bool
    phone_valid: bool
    email_domain: str = ""
    first_name: str = ""
    last_name: str = ""
    has_product_line: bool = False
    source: str = ""
    answers: Mapping[str, str] = field(default_factory=dict)
    repeats: int = 0
    engagements: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    outcome: str  #: qualified, nurture or disqualified
    score: int
    rank: str
    reason: str
    breakdown: tuple[tuple[str, int], ...]  #: (what, points) that add up to the score


def _rank(rules: RuleSet, score: int) -> str:
    if score >= rules.hot_at:
        return HOT
    return WARM if score >= rules.warm_at else COLD


def score(rules: RuleSet, facts: InquiryFacts) -> tuple[int, tuple[tuple[str, int], ...]]:
    """The 0–100 score and the points behind it."""
    parts: list[tuple[str, int]] = []
    for question in ("timeline", "budget", "role"):
        answer = str(facts.answers.get(question, "") or "")
        table = rules.points.get(question, {})
        points = table.get(answer, table.get("", 0))
        if points:
            parts.append((f"{question}: {answer or 'not answered'}", points))
    if facts.email_valid and facts.phone_valid:
        parts.append(("email and phone", rules.contact_both))
    elif facts.email_valid or facts.phone_valid:
        parts.append(("email or phone", rules.contact_one))
    if facts.has_product_line:
        parts.append(("product line named", rules.product_line))
    if facts.source and rules.sources.get(facts.source):
        parts.append((f"source: {facts.source}", rules.sources[facts.source]))
    if facts.repeats:
        parts.append((f"{facts.repeats} earlier inquiries",
                      min(facts.repeats * rules.repeat_each, rules.repeat_cap)))
    if facts.engagements:
        parts.append((f"{facts.engagements} nurture clicks",
                      min(facts.engagements * rules.engagement_each, rules.engagement_cap)))
    total = max(0, min(100, sum(p for _, p in parts)))
    return total, tuple(p for p in parts if p[1])


def evaluate(rules: RuleSet, facts: InquiryFacts, *, hand_raised: bool = False) -> Verdict:
    """Qualify and rank an inquiry; ``hand_raised`` (asked for a dealer now) makes it hot."""
    total, parts = score(rules, facts)
    rank = _rank(rules, total)
    domain = facts.email_domain.lower()
    name = f"{facts.first_name} {facts.last_name}".lower().split()

    def verdict(outcome: str, reason: str, rank_: str = rank, total_: int = total) -> Verdict:
        return Verdict(outcome, total_, rank_, reason, parts)

    if not facts.email_valid and not facts.phone_valid:
        return verdict(DISQUALIFIED, "no valid email or phone: nobody could contact them")
    if domain and domain in rules.blocked_domains:
        return verdict(DISQUALIFIED, f"test or spam address (@{domain})")
    if any(word in rules.test_names for word in name):
        return verdict(DISQUALIFIED, "looks like a test inquiry (name)")
    if domain and domain in rules.competitor_domains:
        return verdict(DISQUALIFIED, f"competitor address (@{domain})")
    if rules.disqualify_free_mail and domain in rules.free_mail_domains:
        return verdict(DISQUALIFIED, f"free-mail address (@{domain}) not accepted")
    if hand_raised:
        return verdict(QUALIFIED, "asked to talk to a dealer now", HOT, max(total, rules.hot_at))
    timeline = str(facts.answers.get("timeline", "") or "")
    budget = str(facts.answers.get("budget", "") or "")
    if timeline in rules.nurture_timelines:
        return verdict(NURTURE, f"not ready: timeline {timeline.replace('_', ' ')}")
    if budget in rules.nurture_budgets:
        return verdict(NURTURE, f"not ready: budget {budget}")
    if rank == COLD and rules.cold_to_nurture:
        return verdict(NURTURE, f"cold (score {total} below {rules.warm_at}): nurture first")
    return verdict(QUALIFIED, f"sales-ready: {rank} (score {total})")
