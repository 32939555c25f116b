"""Capture: every way in (API, form, CSV, partner) validates, de-duplicates, qualifies,
ranks and routes an inquiry here, through the lifecycle service."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from portal.core import assignment, lifecycle
from portal.core.access import held_by
from portal.core.checks import text_problem
from portal.core.database import lock_names
from portal.core.errors import InvalidInput
from portal.core.lifecycle import Actor
from portal.core.models import (
    Campaign,
    IdempotencyKey,
    Lead,
    LeadStatus,
    Partner,
    ProductLine,
    ScoringRules,
    Source,
    utcnow,
)
from portal.core.models.codes import active_codes, by_code
from portal.dispatch.geo import is_us_zip, us_state_for, us_town_for
from portal.dispatch.services import RoutingResult, route_lead
from portal.fulfilment.services import request_pack
from routing import normalise_postal_code
from routing.scoring import BUDGETS, ROLES, TIMELINES, InquiryFacts, RuleSet, Verdict, evaluate

#: field → (max length, one line only)
TEXT_FIELDS: dict[str, tuple[int, bool]] = {
    "first_name": (80, True), "last_name": (80, True), "company": (160, True),
    "email": (254, True), "phone": (40, True), "address": (200, True),
    "city": (100, True), "region": (10, True), "postal_code": (20, True),
    "country": (2, True), "comments": (5000, False), "external_id": (80, True),
}
STANDARD_ANSWERS = {"timeline": TIMELINES, "budget": BUDGETS, "role": ROLES}
MAX_EXTRA_ANSWERS = 30
_REGION = re.compile(r"^[A-Z]{2}-[A-Z0-9]{1,3}$")


class CaptureError(InvalidInput):
    """The inquiry cannot be taken as sent; ``fields`` says what to fix."""


class IdempotencyKeyReused(CaptureError):
    """The key came before with another body: a client's bug, refused rather than answered
    with the first lead while the second inquiry is dropped."""

    code = "idempotency_key_reused"


@dataclass
class Inquiry:
    """A validated, normalised inquiry, ready to become (or join) a lead."""

    values: dict[str, Any]
    answers: dict[str, str]
    product_line: ProductLine | None
    campaign: Campaign | None
    source: Source | None
    email_normalized: str
    phone_normalized: str
    external_id: str | None


@dataclass
class CaptureResult:
    lead: Lead
    created: bool
    verdict: Verdict | None = None
    routing: RoutingResult | None = None
    duplicate_of: Lead | None = None
    notes: list[str] = field(default_factory=list)


def current_rules(session: Session) -> RuleSet:
    """The newest rule version, or the defaults when none was saved."""
    row = session.scalars(select(ScoringRules).order_by(ScoringRules.id.desc()).limit(1)).first()
    return RuleSet.from_dict(row.rules) if row else RuleSet()


def _text(data: dict[str, Any], name: str, errors: dict[str, str]) -> str:
    raw = data.get(name)
    if raw is None:
        return ""
    if not isinstance(raw, str):  # 50401 as a number loses no zero, inf would be "inf"
        errors[name] = "Send text (a JSON string)."
        return ""
    value = raw.strip()
    limit, one_line = TEXT_FIELDS[name]
    if problem := text_problem(value):
        errors[name] = problem
    elif one_line and ("\r" in value or "\n" in value):
        errors[name] = "Must be a single line."
    elif len(value) > limit:
        errors[name] = f"At most {limit} characters."
    return value


def _code(session: Session, model: type, raw: Any, name: str, errors: dict[str, str], *,
          active_only: bool = True) -> Any:
    if raw is None or raw == "":
        return None
    if not isinstance(raw, str):
        errors[name] = "Send the code as text (a JSON string)."
        return None
    code = raw.strip()
    if (problem := text_problem(code)) or len(code) > 64:
        errors[name] = problem or "At most 64 characters."
        return None
    row = by_code(session, model, code, active_only=active_only)
    if row is None:
        known = ", ".join(active_codes(session, model))
        errors[name] = f"Unknown {name.replace('_', ' ')} {code!r}; one of: {known}."
    return row


def validate_inquiry(session: Session, data: dict[str, Any], *,
                     past_campaigns: bool = False) -> Inquiry:
    """Check and normalise an inquiry (API body, form, CSV row); ``CaptureError`` if bad.

    ``past_campaigns``: an ended (inactive) campaign may be credited too, as a list from
    last season's show is imported now; new inquiries name running campaigns only.
    """
    if not isinstance(data, dict):
        raise CaptureError("Send a JSON object.", {})
    errors: dict[str, str] = {}
    values = {name: _text(data, name, errors) for name in TEXT_FIELDS}

    country = (values["country"] or "US").upper()
    if not re.fullmatch(r"[A-Z]{2}", country):
        errors["country"] = "Use the two-letter country code, e.g. US."
    values["country"] = country

    email_normalized = ""
    if values["email"] and "email" not in errors:
        try:
            checked = validate_email(values["email"], check_deliverability=False)
            values["email"] = checked.normalized
            email_normalized = checked.normalized.lower()
        except EmailNotValidError as error:
            errors["email"] = f"Not a valid email address: {error}"

    phone_normalized = ""
    if values["phone"] and "phone" not in errors:
        try:
            number = phonenumbers.parse(values["phone"], country if len(country) == 2 else "US")
            if not phonenumbers.is_valid_number(number):
                raise phonenumbers.NumberParseException(1, "not a valid number")
            phone_normalized = phonenumbers.format_number(
                number, phonenumbers.PhoneNumberFormat.E164)
        except phonenumbers.NumberParseException:
            errors["phone"] = "Not a valid phone number; include the area code."

    if not values["email"] and not values["phone"] and "email" not in errors:
        errors["email"] = "Give an email address or a phone number so a dealer can reply."

    if values["postal_code"] and "postal_code" not in errors:
        postal = normalise_postal_code(country, values["postal_code"])
        if postal is None:
            errors["postal_code"] = ("Enter a 5-digit ZIP code." if country == "US"
                                     else "Not a valid postal code.")
        elif country == "US" and not is_us_zip(postal):
            errors["postal_code"] = f"{postal} is not a US ZIP code; check the digits."
        else:
            values["postal_code"] = postal

    region = values["region"].upper()
    if region and "-" not in region:
        region = f"{country}-{region}"
    if region and not _REGION.match(region):
        errors["region"] = "Use the ISO 3166-2 code, e.g. US-IA."
    if not region and country == "US" and values["postal_code"] and "postal_code" not in errors:
        state = us_state_for(values["postal_code"])
        region = f"US-{state}" if state else ""
    values["region"] = region
    if not values["city"] and country == "US" and values["postal_code"] \
            and "postal_code" not in errors:
        # The town of the ZIP, so the cover letter's address and the lists name it.
        values["city"] = us_town_for(values["postal_code"])

    answers: dict[str, str] = {}
    raw_answers = data.get("answers") or {}
    if not isinstance(raw_answers, dict):
        errors["answers"] = "Send the answers as an object."
        raw_answers = {}
    # The CSV import and the form pass standard answers as top-level fields too.
    for key in STANDARD_ANSWERS:
        if key in data and key not in raw_answers:
            raw_answers[key] = data[key]
    if len(raw_answers) > MAX_EXTRA_ANSWERS:
        errors["answers"] = f"At most {MAX_EXTRA_ANSWERS} answers."
    for key, raw in raw_answers.items():
        name = str(key).strip()
        if problem := text_problem(name):
            errors["answers"] = f"A question's name: {problem}"
            continue
        if len(name) > 60:
            errors["answers"] = "A question's name has at most 60 characters."
            continue
        if raw is not None and not isinstance(raw, str):
            errors[f"answers.{name}"] = "Send the answer as text (a JSON string)."
            continue
        value = (raw or "").strip()
        if name in STANDARD_ANSWERS:
            value = value.lower().replace(" ", "_")
            if value and value not in STANDARD_ANSWERS[name]:
                errors[f"answers.{name}"] = f"One of: {', '.join(STANDARD_ANSWERS[name])}."
        if problem := text_problem(value):
            errors[f"answers.{name}"] = problem
        elif len(value) > 500 or "\r" in value:
            errors[f"answers.{name}"] = "At most 500 characters on one line."
        if value:
            answers[name] = value

    product_line = _code(session, ProductLine, data.get("product_line"), "product_line", errors)
    campaign = _code(session, Campaign, data.get("campaign"), "campaign", errors,
                     active_only=not past_campaigns)
    source = _code(session, Source, data.get("source"), "source", errors)

    raw_wants = data.get("wants_literature", False)
    if isinstance(raw_wants, str):
        raw_wants = raw_wants.strip().lower() in ("1", "true", "yes", "on", "y")
    elif raw_wants is not None and not isinstance(raw_wants, bool | int):
        errors["wants_literature"] = "Send true or false."
    values["wants_literature"] = bool(raw_wants)

    if errors:
        raise CaptureError("Please correct the fields listed.", errors)
    external_id = values.pop("external_id") or None
    return Inquiry(values=values, answers=answers, product_line=product_line,
                   campaign=campaign, source=source, email_normalized=email_normalized,
                   phone_normalized=phone_normalized, external_id=external_id)


def find_duplicate(session: Session, inquiry: Inquiry, now: datetime,
                   partner: Partner | None = None) -> Lead | None:
    """The lead this inquiry repeats: same email, phone, or name + postal code, recently.
    A partner's own capture repeats only a lead that partner holds (it may not join, nor
    learn of, another partner's)."""
    within: ColumnElement[bool] | None = held_by(partner.id) if partner is not None else None

    def newest(*where: ColumnElement[bool]) -> Lead | None:
        query = select(Lead).where(*where)
        if within is not None:
            query = query.where(within)
        return session.scalars(query.order_by(Lead.created_at.desc()).limit(1)).first()

    if inquiry.external_id:
        same = newest(Lead.external_id == inquiry.external_id)
        if same is not None:
            return same
    since = now - timedelta(days=int(current_app.config.get("DEDUP_DAYS", 90)))
    # One indexed lookup per key (each on a (key, created_at) index) rather than one OR:
    # planners turn the OR into a scan of every recent lead, quadratic over an import.
    keys = []
    if inquiry.email_normalized:
        keys.append(Lead.email_normalized == inquiry.email_normalized)
    if inquiry.phone_normalized:
        keys.append(Lead.phone_normalized == inquiry.phone_normalized)
    first, last = inquiry.values["first_name"], inquiry.values["last_name"]
    if first and last and inquiry.values["postal_code"]:
        keys.append(
            (Lead.postal_code == inquiry.values["postal_code"])
            & (func.lower(Lead.last_name) == last.lower())
            & (func.lower(Lead.first_name) == first.lower())
        )
    found = [lead for key in keys if (lead := newest(key, Lead.created_at >= since)) is not None]
    return max(found, key=lambda lead: lead.created_at, default=None)


def person_keys(inquiry: Inquiry) -> list[str]:
    """The names of what ``find_duplicate`` matches a person by: a capture locks them
    (``lock_names``) so that the same person sent twice at once makes one lead."""
    names = []
    if inquiry.external_id:
        names.append(f"lead-external:{inquiry.external_id}")
    if inquiry.email_normalized:
        names.append(f"lead-email:{inquiry.email_normalized}")
    if inquiry.phone_normalized:
        names.append(f"lead-phone:{inquiry.phone_normalized}")
    first, last = inquiry.values["first_name"], inquiry.values["last_name"]
    if first and last and inquiry.values["postal_code"]:
        names.append(f"lead-name:{inquiry.values['postal_code']}:{last.lower()}:"
                     f"{first.lower()}")
    return names


def inquiry_facts(lead: Lead) -> InquiryFacts:
    """What the qualification rules look at for ``lead`` (capture, re-scoring, previews)."""
    domain = lead.email_normalized.rsplit("@", 1)[-1] if lead.email_normalized else ""
    return InquiryFacts(
        email_valid=bool(lead.email_normalized), phone_valid=bool(lead.phone_normalized),
        email_domain=domain, first_name=lead.first_name, last_name=lead.last_name,
        has_product_line=lead.product_line_id is not None or lead.product_line is not None,
        source=lead.source.code if lead.source else "",
        answers=dict(lead.answers or {}), repeats=max(0, (lead.inquiries or 1) - 1),
        engagements=lead.engagements or 0,
    )


def qualify_lead(session: Session, lead: Lead, actor: Actor, *, now: datetime,
                 hand_raised: bool = False, rules: RuleSet | None = None) -> Verdict:
    """Apply the rules (the newest version, or ``rules`` a caller of many already read)
    to a captured or nurtured lead: its verdict, score and rank, through the lifecycle."""
    verdict = evaluate(rules or current_rules(session), inquiry_facts(lead),
                       hand_raised=hand_raised)
    lifecycle.qualify(session, lead, verdict.outcome, reason=verdict.reason,
                      score=verdict.score, rank=verdict.rank, actor=actor, now=now)
    return verdict


def qualify_and_route(session: Session, lead: Lead, actor: Actor, *, now: datetime,
                      hand_raised: bool = False) -> tuple[Verdict, RoutingResult | None]:
    """Apply the rules to a captured or nurtured lead; route it when it is qualified."""
    verdict = qualify_lead(session, lead, actor, now=now, hand_raised=hand_raised)
    routed = None
    if lead.status == LeadStatus.QUALIFIED:
        routed = route_lead(session, lead, now=now)
    return verdict, routed


def capture_inquiry(
    session: Session,
    data: dict[str, Any],
    actor: Actor,
    *,
    idempotency_scope: str | None = None,
    idempotency_key: str | None = None,
    owner_partner: Partner | None = None,
    lead_id: Any = None,
    now: datetime | None = None,
    past_campaigns: bool = False,
) -> CaptureResult:
    """Take one inquiry in: a new lead (qualified, ranked, routed) or a repeat of one.

    The same person sent twice at once makes one lead: the capture locks the person's
    dedup keys (and its idempotency key) before it looks for a duplicate, so the second
    waits for the first to commit and then finds its lead.
    """
    now = now or utcnow()
    scope = idempotency_scope or ""
    fingerprint = ""
    if idempotency_key:
        if len(idempotency_key) > 200:
            raise CaptureError("Idempotency-Key is too long.",
                               {"Idempotency-Key": "At most 200 characters."})
        fingerprint = body_fingerprint(data)
        replayed = _replay(session, scope, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed

    inquiry = validate_inquiry(session, data, past_campaigns=past_campaigns)
    names = person_keys(inquiry)
    if idempotency_key:
        names.append(f"idempotency:{scope}:{idempotency_key}")
    lock_names(session, names)
    if idempotency_key:
        # The same key may have committed while this capture waited for the lock.
        replayed = _replay(session, scope, idempotency_key, fingerprint)
        if replayed is not None:
            return replayed
    duplicate = find_duplicate(session, inquiry, now, partner=owner_partner)
    if duplicate is not None:
        result = _attach_repeat(session, duplicate, inquiry, actor, now)
    else:
        result = _create(session, inquiry, actor, now, owner_partner, lead_id)
    if idempotency_key:
        session.add(IdempotencyKey(scope=scope, key=idempotency_key, lead_id=result.lead.id,
                                   fingerprint=fingerprint, created_at=now))
        session.flush()
    return result


def body_fingerprint(data: Any) -> str:
    """A SHA-256 of what was sent, the same for the same content in any key order."""
    text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _replay(session: Session, scope: str, key: str, fingerprint: str) -> CaptureResult | None:
    """The first lead made with ``key``, or None; the key with another body is refused."""
    known = session.scalars(select(IdempotencyKey).where(
        IdempotencyKey.scope == scope, IdempotencyKey.key == key)).first()
    if known is None:
        return None
    if known.fingerprint and known.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            "This Idempotency-Key was sent before with a different body; send a new "
            "inquiry with a new key.", {"Idempotency-Key": "Used before with another body."})
    lead = session.get(Lead, known.lead_id)
    assert lead is not None
    return CaptureResult(lead=lead, created=False, notes=["idempotent replay"])


def _create(session: Session, inquiry: Inquiry, actor: Actor, now: datetime,
            owner_partner: Partner | None, lead_id: Any) -> CaptureResult:
    lead = Lead(**inquiry.values)
    if lead_id is not None:
        lead.id = lead_id
    lead.answers = inquiry.answers
    lead.product_line, lead.campaign, lead.source = (
        inquiry.product_line, inquiry.campaign, inquiry.source)
    lead.email_normalized, lead.phone_normalized = (
        inquiry.email_normalized, inquiry.phone_normalized)
    lead.external_id = inquiry.external_id
    lifecycle.capture(session, lead, actor, now=now, data={
        "campaign": inquiry.campaign.code if inquiry.campaign else None,
        "source": inquiry.source.code if inquiry.source else None,
        "self_sourced": owner_partner is not None,
    })
    session.flush()
    if owner_partner is not None:
        result = _self_sourced(session, lead, owner_partner, actor, now)
    else:
        verdict, routed = qualify_and_route(session, lead, actor, now=now)
        result = CaptureResult(lead=lead, created=True, verdict=verdict, routing=routed)
    if lead.wants_literature and lead.status != LeadStatus.DISQUALIFIED:
        # The pack request is written in this transaction; the worker is nudged after commit.
        request_pack(session, lead, now=now)
    return result


def _self_sourced(session: Session, lead: Lead, partner: Partner, actor: Actor,
                  now: datetime) -> CaptureResult:
    """A partner's own walk-in or show contact: it owns and works the lead at once."""
    lead.owner_partner_id = partner.id
    verdict = evaluate(current_rules(session), inquiry_facts(lead))
    outcome = verdict.outcome if verdict.outcome == "disqualified" else "qualified"
    lifecycle.qualify(session, lead, outcome, reason=f"captured by {partner.code} itself",
                      score=verdict.score, rank=verdict.rank, actor=actor, now=now)
    if lead.status == LeadStatus.QUALIFIED:
        lifecycle.offer(session, lead, partner, actor, method="self", force=True, now=now,
                        reason="self-sourced")
        lifecycle.accept(session, lead, actor, now=now)
        typed_by = actor.user
        if typed_by is not None and typed_by.partner_id == partner.id and typed_by.active:
            # the salesperson who typed in their walk-in works it: one of "My leads"
            assignment.assign(session, lead, typed_by, actor, now=now)
    return CaptureResult(lead=lead, created=True, verdict=verdict)


def _attach_repeat(session: Session, lead: Lead, inquiry: Inquiry, actor: Actor,
                   now: datetime) -> CaptureResult:
    """A repeat inquiry joins the existing lead, may fill gaps, and raises its score."""
    lifecycle.record_inquiry(session, lead, actor, now=now, data={
        "campaign": inquiry.campaign.code if inquiry.campaign else None,
        "source": inquiry.source.code if inquiry.source else None,
        "comments": inquiry.values.get("comments", "")[:2000],
        "answers": inquiry.answers,
        "product_line": inquiry.product_line.code if inquiry.product_line else None,
    })
    for name in ("phone", "company", "address", "city"):
        if not getattr(lead, name) and inquiry.values.get(name):
            setattr(lead, name, inquiry.values[name])
    if not lead.phone_normalized and inquiry.phone_normalized:
        lead.phone_normalized = inquiry.phone_normalized
    if lead.product_line_id is None and inquiry.product_line is not None:
        lead.product_line = inquiry.product_line
    merged = dict(lead.answers or {})
    merged.update(inquiry.answers)  # the newer answer (e.g. a shorter timeline) counts
    lead.answers = merged
    result = CaptureResult(lead=lead, created=False, duplicate_of=lead)
    verdict = evaluate(current_rules(session), inquiry_facts(lead))
    if lead.status == LeadStatus.NURTURE and verdict.outcome == LeadStatus.QUALIFIED:
        # Ready now: the same rules qualify it through the lifecycle and route it.
        result.verdict, result.routing = qualify_and_route(session, lead, actor, now=now)
        return result
    lifecycle.rescore(session, lead, score=verdict.score, rank=verdict.rank,
                      reason="repeat inquiry", actor=actor, now=now)
    result.verdict = verdict
    return result
