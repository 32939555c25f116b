"""What a leads CSV's words mean: column headers, and the values of closed fields.

Purchased and trade-show lists say "Farm / Company", "Interested in: Compact tractors",
"Timeline: this month", "Budget: $20k-50k". The import maps each header to a capture
field (``header_target``), and each value of a closed field (product line, the standard
answers, campaign, source) to the code the capture service takes (``Catalog.match``).
The person importing sees every distinct value with what it was matched to, and may
change it; the picks are kept on the import (``LeadImport.value_map``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core.filters import ANSWER_LABELS
from portal.core.models import Campaign, ProductLine, Source
from routing.scoring import BUDGETS, ROLES, TIMELINES

#: a column that holds a person's whole name: split into first and last name
FULL_NAME = "full_name"
ANSWER, IGNORE = "answer", "ignore"

#: the capture fields a column can fill (the API's body fields, standard answers inline)
FIELDS = ("first_name", "last_name", "company", "email", "phone", "address", "city",
          "region", "postal_code", "country", "product_line", "campaign", "source",
          "comments", "wants_literature", "external_id", "timeline", "budget", "role")
#: the labels that are not the field's name in words
_LABELS = {
    FULL_NAME: "Full name (split into first and last)",
    "company": "Company or farm",
    "address": "Street address",
    "city": "Town or city",
    "region": "State or region",
    "postal_code": "ZIP or postal code",
    "wants_literature": "Wants literature (yes/no)",
    "external_id": "Record id in your system",
    "timeline": "When they plan to buy",
    "role": "Purchase role",
    ANSWER: "Keep as an extra answer",
    IGNORE: "Ignore this column",
}
#: what the mapping page calls each target (never the field id)
FIELD_LABELS = {target: _LABELS.get(target) or target.replace("_", " ").capitalize()
                for target in (*FIELDS, FULL_NAME, ANSWER, IGNORE)}

#: fields whose values come from a closed list: the mapping page maps their values
CLOSED_FIELDS = ("product_line", "timeline", "budget", "role", "campaign", "source")

#: a value pick that leaves the field empty on the lead ("" keeps the value as written)
LEAVE_EMPTY = "-"
#: closed columns whose value no word matches are left empty rather than refusing the
#: row (a lead whose timeline says "spring" is still a lead); a pick can still refuse
OPTIONAL_ANSWERS = frozenset({"timeline", "budget", "role"})
#: at most this many distinct values of a column are listed to map (the rest as written)
MAX_DISTINCT = 60

#: header spellings seen in trade-show, purchased and CRM lists, per field (normalised:
#: lower case, non-alphanumerics as "_")
HEADER_SPELLINGS: dict[str, tuple[str, ...]] = {
    "first_name": ("firstname", "given_name", "first", "forename"),
    "last_name": ("lastname", "surname", "family_name", "last"),
    FULL_NAME: ("name", "full_name", "fullname", "contact", "contact_name", "customer",
                "customer_name", "prospect", "prospect_name"),
    "company": ("company_name", "organisation", "organization", "farm", "farm_company",
                "company_farm", "farm_name", "business", "business_name", "ranch",
                "employer"),
    "email": ("e_mail", "email_address", "mail", "e_mail_address"),
    "phone": ("telephone", "tel", "phone_number", "mobile", "cell", "cell_phone",
              "mobile_phone", "phone_no", "telephone_number"),
    "address": ("street", "address_1", "address1", "street_address", "address_line_1"),
    "city": ("town", "city_town", "town_city"),
    "region": ("state", "province", "state_province"),
    "postal_code": ("zip", "zip_code", "zipcode", "postcode", "postal", "zip_postal_code",
                    "postal_zip_code", "post_code"),
    "product_line": ("product", "interested_in", "product_interest", "products",
                     "product_line_interest", "equipment", "interest_product"),
    "comments": ("notes", "note", "comment", "message", "remarks"),
    "wants_literature": ("literature", "send_literature", "brochure", "wants_brochure"),
    "external_id": ("id", "lead_id", "record_id", "crm_id"),
    "timeline": ("purchase_timeline", "timeframe", "time_frame", "purchase_timeframe",
                 "buying_timeframe", "when", "when_to_buy", "purchase_date"),
    "budget": ("budget_range", "purchase_budget"),
    "role": ("job_title", "purchase_role", "buying_role", "role_in_purchase", "title"),
    "campaign": ("campaign_name", "campaign_code"),
    "source": ("lead_source", "source_code"),
}
HEADER_ALIASES = {spelling: target for target, spellings in HEADER_SPELLINGS.items()
                  for spelling in spellings}


def header_key(name: str) -> str:
    """A header as the aliases above spell it ("Farm / Company" → "farm_company")."""
    return re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")


def header_target(name: str, fields: Iterable[str]) -> str:
    """The field a header names, ``ANSWER`` when none (kept on the lead), ``IGNORE`` when
    the header is empty."""
    key = header_key(name)
    if not key:
        return IGNORE
    if key in fields:
        return key
    return HEADER_ALIASES.get(key, ANSWER)


def split_name(value: str) -> tuple[str, str]:
    """"Ann Able" → ("Ann", "Able"); "Able, Ann" → ("Ann", "Able"); "Cher" → ("Cher", "")."""
    value = " ".join(value.split())
    if "," in value:
        last, _, first = value.partition(",")
        return first.strip(), last.strip()
    first, _, last = value.rpartition(" ")
    return (first, last) if first else (last, "")


# --- values ------------------------------------------------------------------------------


def _words(value: str) -> str:
    """Lower case, punctuation as spaces, each word without a plural s: "Compact
    Tractors" and "compact tractor" are the same words."""
    words = re.sub(r"[^a-z0-9$]+", " ", value.lower()).split()
    return " ".join(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss")
                    else w for w in words)


def _table(pairs: dict[str, tuple[str, ...]]) -> dict[str, str]:
    return {_words(word): code for code, words in pairs.items() for word in words}


_TIMELINE_WORDS = _table({
    "now": ("now", "asap", "immediately", "immediate", "right away", "right now", "urgent",
            "this month", "this week", "today", "ready to buy", "ready now", "within a month",
            "within 30 days", "30 days", "0-1 month"),
    "3_months": ("next month", "this quarter", "next quarter", "soon", "within 90 days",
                 "90 days", "1-3 months", "few months", "in a few months"),
    "6_months": ("this season", "next season", "this spring", "this summer", "this fall",
                 "this autumn", "this winter", "half a year", "within half a year",
                 "3-6 months"),
    "12_months": ("this year", "next year", "within a year", "1 year", "one year",
                  "a year", "6-12 months", "next 12 months"),
    "researching": ("researching", "just researching", "just looking", "looking",
                    "browsing", "research", "info only", "information only", "no plans",
                    "no plan", "someday", "some day", "undecided", "not sure", "unsure",
                    "unknown", "no timeline", "future", "later", "not yet", "over a year",
                    "more than a year", "2 years", "18 months"),
})
_BUDGET_WORDS = _table({
    "approved": ("approved", "yes", "budget approved", "funded", "cash", "cash buyer",
                 "financing approved", "pre approved", "preapproved", "have budget",
                 "in budget", "budgeted"),
    "planned": ("planned", "planning", "pending", "in progress", "seeking financing",
                "financing", "needs financing", "being planned", "applying"),
    "none": ("none", "no", "no budget", "no money", "$0", "0", "zero", "nothing"),
    "unknown": ("unknown", "not sure", "unsure", "n a", "na", "tbd", "don't know",
                "dont know", "do not know", "undecided", "?"),
})
_ROLE_WORDS = _table({
    "decision_maker": ("decision maker", "decides", "decider", "owner", "co owner",
                       "buyer", "purchaser", "purchasing", "purchasing manager",
                       "president", "ceo", "proprietor", "principal", "farm owner",
                       "ranch owner", "manager", "farm manager", "general manager",
                       "partner owner", "final say", "final decision"),
    "influencer": ("influencer", "advisor", "adviser", "advises", "consultant",
                   "recommender", "recommends", "agronomist", "spouse", "family member",
                   "evaluator", "researcher"),
    "user": ("user", "end user", "operator", "employee", "driver", "worker", "farmhand",
             "farm hand", "staff", "mechanic", "technician"),
    "other": ("other", "student", "dealer", "competitor", "press", "media"),
})
_MONEY = re.compile(r"^\$?\s*\d[\d,.]*\s*(k|m|thousand|million)?(\s*(-|to|–)\s*\$?\s*\d[\d,.]*"
                    r"\s*(k|m|thousand|million)?)?\s*\+?$", re.I)
_SPAN = re.compile(r"(\d+)\s*(day|week|wk|month|mo|mth|year|yr)", re.I)
_PER_MONTH = {"day": 1 / 30, "week": 0.25, "wk": 0.25, "month": 1, "mo": 1, "mth": 1,
              "year": 12, "yr": 12}


def _timeline_by_span(value: str) -> str | None:
    """"3 months", "within 6 mo", "1-2 years": the longest span said, in the buckets."""
    spans = _SPAN.findall(value)
    numbers = [int(n) for n in re.findall(r"\d+", value)]
    if not spans or not numbers:
        return None
    months = max(numbers) * _PER_MONTH[spans[-1][1].lower()]
    for limit, code in ((1, "now"), (3, "3_months"), (6, "6_months"), (12, "12_months")):
        if months <= limit:
            return code
    return "researching"


def _closed_words(codes: Iterable[str], question: str, extra: dict[str, str]) -> dict[str, str]:
    words = dict(extra)
    for code in codes:
        words[_words(code)] = code
        words[_words(code.replace("_", " "))] = code
        words[_words(ANSWER_LABELS[question][code])] = code
    return words


_ANSWER_WORDS = {
    "timeline": _closed_words(TIMELINES, "timeline", _TIMELINE_WORDS),
    "budget": _closed_words(BUDGETS, "budget", _BUDGET_WORDS),
    "role": _closed_words(ROLES, "role", _ROLE_WORDS),
}
# The public form's first-person role wording, as exported from older form tools.
_ANSWER_WORDS["role"].update({_words("I decide on the purchase"): "decision_maker",
                              _words("I advise on the purchase"): "influencer",
                              _words("I will use it"): "user"})


@dataclass
class Choice:
    code: str
    label: str


@dataclass
class Catalog:
    """The codes a closed field may take, in words, and the words each is known by."""

    choices: dict[str, list[Choice]] = field(default_factory=dict)
    words: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, today: date | None = None) -> Catalog:
        """Read the product lines (active), campaigns (ended ones too), sources (active)."""
        catalog = cls()
        lines = session.scalars(select(ProductLine).where(ProductLine.active)
                                .order_by(ProductLine.name)).all()
        catalog.choices["product_line"] = [Choice(p.code, f"{p.name} ({p.code})")
                                           for p in lines]
        catalog.words["product_line"] = {
            _words(word): p.code for p in lines for word in (p.code, p.name, *p.aliases)}
        campaigns = session.scalars(select(Campaign).order_by(
            Campaign.active.desc(), Campaign.starts_on.desc(), Campaign.code)).all()
        catalog.choices["campaign"] = [Choice(c.code, campaign_label(c)) for c in campaigns]
        catalog.words["campaign"] = {_words(word): c.code for c in reversed(campaigns)
                                     for word in (c.name, c.code)}
        sources = session.scalars(select(Source).where(Source.active)
                                  .order_by(Source.name)).all()
        catalog.choices["source"] = [Choice(s.code, f"{s.name} ({s.code})") for s in sources]
        catalog.words["source"] = {_words(word): s.code for s in sources
                                   for word in (s.name, s.code)}
        for question, words in _ANSWER_WORDS.items():
            catalog.choices[question] = [Choice(code, label) for code, label
                                         in ANSWER_LABELS[question].items()]
            catalog.words[question] = words
        return catalog

    def pick(self, target: str, value: str) -> str:
        """What a value is taken as unless the person picks otherwise: its match; else
        left empty for an optional answer, or "" (kept as written, so the capture refuses
        the row and says why)."""
        found = self.match(target, value)
        if found is not None:
            return found
        return LEAVE_EMPTY if target in OPTIONAL_ANSWERS else ""

    def match(self, target: str, value: str) -> str | None:
        """The code ``value`` stands for in ``target``, or None when it is not recognised."""
        key = _words(value)
        if not key:
            return None
        found = self.words.get(target, {}).get(key)
        if found is not None:
            return found
        if target == "timeline":
            return _timeline_by_span(value)
        if target == "budget" and _MONEY.match(value.strip()):
            # A figure or a range: they have an amount in mind, not an approval.
            return "none" if re.fullmatch(r"\$?\s*0+([.,]0+)?", value.strip()) else "planned"
        return None

    def label(self, target: str, code: str) -> str:
        """A code in words ("TRC" → "Compact tractors (TRC)"), as the pick list shows it."""
        for choice in self.choices.get(target, []):
            if choice.code == code:
                return choice.label
        return code


def campaign_label(campaign: Campaign) -> str:
    """"Iowa Farm Show booth (FARMSHOW-IA), ended 2026-08-20" for a picker."""
    text = f"{campaign.name} ({campaign.code})"
    if not campaign.active:
        text += f", ended {campaign.ends_on.isoformat()}" if campaign.ends_on else ", ended"
    return text
