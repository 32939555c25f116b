"""The qualification and ranking rules: pure facts in, a verdict with its reasons out."""

from __future__ import annotations

import pytest

from routing.scoring import InquiryFacts, RuleSet, evaluate, score

READY = {"timeline": "now", "budget": "approved", "role": "decision_maker"}


def facts(**overrides) -> InquiryFacts:
    values = dict(email_valid=True, phone_valid=True, email_domain="millerfarms.com",
                  first_name="Dana", last_name="Miller", has_product_line=True,
                  answers=READY)
    values.update(overrides)
    return InquiryFacts(**values)


def test_a_ready_buyer_is_qualified_and_hot_with_its_points_explained():
    verdict = evaluate(RuleSet(), facts())
    assert (verdict.outcome, verdict.rank, verdict.score) == ("qualified", "hot", 90)
    assert dict(verdict.breakdown) == {
        "timeline: now": 35, "budget: approved": 25, "role: decision_maker": 15,
        "email and phone": 10, "product line named": 5}
    assert sum(p for _, p in verdict.breakdown) == verdict.score


@pytest.mark.parametrize(("answers", "reason"), [
    ({"timeline": "researching"}, "not ready: timeline researching"),
    ({"timeline": "12_months", "budget": "approved"}, "not ready: timeline 12 months"),
    ({"timeline": "now", "budget": "none"}, "not ready: budget none"),
])
def test_not_ready_answers_go_to_nurture(answers, reason):
    verdict = evaluate(RuleSet(), facts(answers=answers))
    assert verdict.outcome == "nurture" and verdict.reason == reason


def test_cold_leads_go_to_nurture_unless_the_rules_say_otherwise():
    cold = facts(phone_valid=False, has_product_line=False,
                 answers={"timeline": "6_months", "budget": "unknown", "role": "other"})
    assert evaluate(RuleSet(), cold).outcome == "nurture"
    verdict = evaluate(RuleSet(cold_to_nurture=False), cold)
    assert (verdict.outcome, verdict.rank) == ("qualified", "cold")


@pytest.mark.parametrize(("rules", "overrides", "reason"), [
    (RuleSet(), {"email_valid": False, "phone_valid": False},
     "no valid email or phone: nobody could contact them"),
    (RuleSet(), {"email_domain": "mailinator.com"}, "test or spam address (@mailinator.com)"),
    (RuleSet(), {"last_name": "Test"}, "looks like a test inquiry (name)"),
    (RuleSet(competitor_domains=("rival.com",)), {"email_domain": "rival.com"},
     "competitor address (@rival.com)"),
    (RuleSet(disqualify_free_mail=True), {"email_domain": "gmail.com"},
     "free-mail address (@gmail.com) not accepted"),
])
def test_disqualifying_facts(rules, overrides, reason):
    verdict = evaluate(rules, facts(**overrides))
    assert verdict.outcome == "disqualified" and verdict.reason == reason


def test_free_mail_counts_only_when_the_manufacturer_says_so():
    assert evaluate(RuleSet(), facts(email_domain="gmail.com")).outcome == "qualified"


def test_repeats_and_engagement_add_points_up_to_their_caps():
    rules = RuleSet()
    base, _ = score(rules, facts(answers={}))
    assert score(rules, facts(answers={}, repeats=1))[0] == base + 5
    assert score(rules, facts(answers={}, repeats=10))[0] == base + 15
    assert score(rules, facts(answers={}, engagements=100))[0] == base + 12


def test_the_score_stays_within_0_and_100():
    generous = RuleSet(points={"timeline": {"now": 90}, "budget": {"approved": 90}},
                       contact_both=-200)
    assert score(generous, facts())[0] == 0
    assert score(RuleSet(contact_both=100, hot_at=90), facts())[0] == 100


def test_a_hand_raise_is_hot_even_with_a_long_timeline():
    verdict = evaluate(RuleSet(), facts(answers={"timeline": "researching"}),
                       hand_raised=True)
    assert (verdict.outcome, verdict.rank) == ("qualified", "hot")
    assert verdict.score >= RuleSet().hot_at
    # …but a test address stays disqualified.
    spam = evaluate(RuleSet(), facts(email_domain="test.invalid"), hand_raised=True)
    assert spam.outcome == "disqualified"


def test_source_points_follow_the_rules():
    rules = RuleSet(sources={"partner_referral": 10})
    with_source = evaluate(rules, facts(source="partner_referral"))
    assert ("source: partner_referral", 10) in with_source.breakdown


def test_rules_round_trip_and_refuse_nonsense():
    rules = RuleSet(hot_at=80, warm_at=50, sources={"trade_show": 5},
                    competitor_domains=("Rival.com ",), cold_to_nurture=False)
    again = RuleSet.from_dict(rules.to_dict())
    assert again.to_dict() == RuleSet.from_dict(again.to_dict()).to_dict()
    assert again.competitor_domains == ("rival.com",)
    assert RuleSet.from_dict({}).to_dict() == RuleSet().to_dict()
    with pytest.raises(ValueError, match="unknown rule"):
        RuleSet.from_dict({"hot": 5})
    with pytest.raises(ValueError, match="thresholds"):
        RuleSet.from_dict({"warm_at": 80, "hot_at": 60})
