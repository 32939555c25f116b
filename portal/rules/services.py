"""The rules editor's services: check a draft, save it as a new version, try it on a lead."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from wtforms import SelectChoice

from portal.capture.services import inquiry_facts as lead_facts
from portal.core.errors import InvalidInput
from portal.core.models import Lead, ScoringRules, User
from portal.core.pagination import Page, paginate
from routing.scoring import BUDGETS, ROLES, TIMELINES, InquiryFacts, RuleSet, Verdict, evaluate

#: the standard questions and their answers ("" = not answered)
QUESTIONS: dict[str, tuple[str, ...]] = {"timeline": TIMELINES, "budget": BUDGETS, "role": ROLES}
LIST_RULES = ("blocked_domains", "test_names", "free_mail_domains", "competitor_domains")
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_SOURCE_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,31})\s*[:=]?\s*(-?\d{1,3})$")
MAX_LIST = 500


class RulesError(InvalidInput):
    """A draft the editor cannot save; ``fields`` maps form fields to what to fix."""

def split_list(text: str) -> list[str]:
    """Entries typed one per line (or separated by commas), lower case, without repeats."""
    seen: dict[str, None] = {}
    for part in re.split(r"[\n,;]", text or ""):
        value = part.strip().lower().lstrip("@")
        if value:
            seen.setdefault(value, None)
    return list(seen)


def parse_sources(text: str) -> tuple[dict[str, int], list[str]]:
    """``code: points`` lines → points per source code, and the lines that made no sense."""
    points: dict[str, int] = {}
    bad: list[str] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line:
            continue
        match = _SOURCE_LINE.match(line)
        if match is None:
            bad.append(line[:40])
        else:
            points[match.group(1)] = int(match.group(2))
    return points, bad


def sources_text(sources: Mapping[str, int]) -> str:
    """The source points as the editor shows them."""
    return "\n".join(f"{code}: {points}" for code, points in sorted(sources.items()))


def build_rules(data: Mapping[str, Any]) -> RuleSet:
    """A checked rule set from the editor's values (``RuleSet.to_dict`` shape, with the
    lists and source points as typed text); ``RulesError`` names every field to fix."""
    errors: dict[str, str] = {}
    values = dict(data)
    for name in LIST_RULES:
        items = split_list(str(values.get(name) or ""))
        if len(items) > MAX_LIST:
            errors[name] = f"At most {MAX_LIST} entries."
        if name != "test_names":
            wrong = [item for item in items if not _DOMAIN.match(item)]
            if wrong:
                errors[name] = (f"Not a domain: {', '.join(wrong[:3])}. "
                                "Write one domain per line, e.g. example.com.")
        elif any(" " in item or len(item) > 40 for item in items):
            errors[name] = "Write one word per line (no spaces, at most 40 letters)."
        values[name] = items
    sources, bad = parse_sources(str(values.get("sources") or ""))
    if bad:
        errors["sources"] = (f"Could not read: {', '.join(bad[:3])}. "
                             "Write one source per line as code: points, e.g. trade_show: 10.")
    values["sources"] = sources
    for name in ("nurture_timelines", "nurture_budgets"):
        allowed = TIMELINES if name == "nurture_timelines" else BUDGETS
        values[name] = [v for v in values.get(name) or () if v in allowed]
    if int(values.get("warm_at") or 0) > int(values.get("hot_at") or 0):
        errors["warm_at"] = "The warm threshold must not be above the hot one."
    if errors:
        raise RulesError("Please correct the rules marked below.", errors)
    try:
        return RuleSet.from_dict(values)
    except (TypeError, ValueError) as error:
        raise RulesError(f"These rules cannot be used: {error}.") from None


def latest_version(session: Session) -> ScoringRules | None:
    """The version that applies now (the newest), or None while the defaults apply."""
    return session.scalars(
        select(ScoringRules).order_by(ScoringRules.id.desc()).limit(1)).first()


def rules_of(row: ScoringRules | None) -> RuleSet:
    """The rule set a stored version holds (the defaults for None)."""
    return RuleSet.from_dict(row.rules) if row is not None else RuleSet()


def save_rules(session: Session, rules: RuleSet, *, note: str, user: User) -> ScoringRules:
    """Store ``rules`` as a new version (newest applies from the next inquiry on)."""
    note = " ".join((note or "").split())
    if not note:
        raise RulesError("Say what you changed and why.",
                         {"note": "A short note is required, e.g. 'trade-show leads +10'."})
    if len(note) > 300:
        raise RulesError("The note is too long.", {"note": "At most 300 characters."})
    current = latest_version(session)
    if rules.to_dict() == rules_of(current).to_dict():
        raise RulesError("Nothing changed: these are the rules that apply now.")
    row = ScoringRules(rules=rules.to_dict(), note=note, created_by_id=user.id)
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class VersionRow:
    """A version in the history list, with who saved it."""

    version: ScoringRules
    author: User | None
    current: bool


def versions_page(session: Session, number: int, per_page: int) -> Page[VersionRow]:
    """One page of the rule history, newest first, with the authors in one query."""
    page = paginate(session, select(ScoringRules).order_by(ScoringRules.id.desc()), number,
                    per_page)
    ids = {row.created_by_id for row in page.items if row.created_by_id is not None}
    users = {u.id: u for u in session.scalars(select(User).where(User.id.in_(ids)))} if ids \
        else {}
    newest = latest_version(session)
    rows = [VersionRow(row, users.get(row.created_by_id or 0),
                       newest is not None and row.id == newest.id) for row in page.items]
    return Page(items=rows, number=page.number, pages=page.pages, total=page.total)


def changes_between(old: RuleSet, new: RuleSet) -> list[tuple[str, Any, Any]]:
    """What differs between two rule sets, rule by rule, as (rule, before, after)."""
    before, after = old.to_dict(), new.to_dict()
    changes: list[tuple[str, Any, Any]] = []
    for key in after:
        if key == "points":
            for question, table in after[key].items():
                old_table = before[key].get(question, {})
                for answer in sorted(set(table) | set(old_table)):
                    if table.get(answer) != old_table.get(answer):
                        changes.append((f"{question}: {answer or 'not answered'}",
                                        old_table.get(answer), table.get(answer)))
        elif before.get(key) != after[key]:
            changes.append((key, before.get(key), after[key]))
    return changes


def recent_leads(session: Session, limit: int = 20) -> list[Lead]:
    """The newest leads, to try a draft on."""
    return list(session.scalars(select(Lead).order_by(Lead.created_at.desc()).limit(limit)))


def typed_facts(*, name: str, email: str, phone: bool, product_line: bool, source: str,
                answers: Mapping[str, str], repeats: int, engagements: int) -> InquiryFacts:
    """Facts for an inquiry typed into the preview (nothing is stored)."""
    first, _, last = (name or "").strip().partition(" ")
    email = (email or "").strip().lower()
    valid = bool(re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email))
    return InquiryFacts(
        email_valid=valid, phone_valid=phone,
        email_domain=email.rsplit("@", 1)[-1] if valid else "",
        first_name=first, last_name=last, has_product_line=product_line,
        source=(source or "").strip(),
        answers={k: v for k, v in answers.items() if v}, repeats=max(0, repeats),
        engagements=max(0, engagements),
    )


@dataclass(frozen=True)
class Preview:
    """One inquiry judged by the rules that apply now and by the draft."""

    subject: str
    current: Verdict
    draft: Verdict

    @property
    def differs(self) -> bool:
        return (self.current.outcome, self.current.rank, self.current.score) != (
            self.draft.outcome, self.draft.rank, self.draft.score)


def preview(session: Session, draft: RuleSet, *, lead: Lead | None = None,
            facts: InquiryFacts | None = None) -> Preview:
    """The verdicts of the current rules and of ``draft`` for a lead or typed facts."""
    if lead is not None:
        facts = lead_facts(lead)
        subject = f"{lead.name} ({lead.status}, {lead.created_at:%Y-%m-%d})"
    else:
        subject = "the answers typed above"
    assert facts is not None
    current = rules_of(latest_version(session))
    return Preview(subject=subject, current=evaluate(current, facts),
                   draft=evaluate(draft, facts))


def choice_pairs(values: Iterable[str]) -> list[SelectChoice]:
    """Select choices for an answer list, labelled in words."""
    return [SelectChoice(v, v.replace("_", " ")) for v in values]
