"""Nurture: enrol leads that are not ready, send each track's timed emails once, and turn
a click or a "talk to a dealer now" into a better score or a routed hot lead."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from flask import current_app, render_template
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import case, exists, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from portal.capture.services import current_rules, qualify_and_route
from portal.capture.services import inquiry_facts as lead_facts
from portal.core import jobs, lifecycle, mail
from portal.core.errors import InvalidInput
from portal.core.jobs import (
    PENDING,
    claim_row,
    due_ids,
    enqueue_after_commit,
)
from portal.core.lifecycle import Actor
from portal.core.mail import build_message, public_url
from portal.core.models import (
    EnrollmentStatus,
    Lead,
    LeadStatus,
    NurtureEnrollment,
    NurtureSend,
    NurtureStep,
    NurtureTrack,
    ProductLine,
    utcnow,
)
from portal.core.pagination import Page, paginate
from routing.scoring import evaluate

E = EnrollmentStatus
#: what a token in an email link may do; each purpose signs with its own salt
PURPOSES = ("talk", "unsubscribe", "click")
_URL = re.compile(r"^https?://[^\s<>\"']+$")
BATCH = 200


class NurtureError(InvalidInput):
    """Bad input to a nurture service; ``fields`` maps form fields to messages."""

def _actor() -> Actor:
    return Actor.system("nurture")


# --- links in the emails --------------------------------------------------------------------


def _serializer(purpose: str) -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=f"nurture-{purpose}")


def make_token(purpose: str, enrollment_id: int, step_id: int | None = None) -> str:
    """A signed token for one enrolment (and step, for content clicks)."""
    return _serializer(purpose).dumps([enrollment_id, step_id])


def read_token(session: Session, purpose: str, token: str
               ) -> tuple[NurtureEnrollment, NurtureStep | None] | None:
    """The enrolment (and step) a token names, or None when it is forged or stale."""
    try:
        enrollment_id, step_id = _serializer(purpose).loads(token)
    except (BadSignature, ValueError, TypeError):
        return None
    enrollment = session.get(NurtureEnrollment, int(enrollment_id))
    if enrollment is None:
        return None
    step = session.get(NurtureStep, int(step_id)) if step_id is not None else None
    if step_id is not None and (step is None or step.track_id != enrollment.track_id):
        return None
    return enrollment, step


# --- tracks and steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackStats:
    """A track with what it achieved: enrolled, still active, hand-raised, won."""

    track: NurtureTrack
    steps: int
    enrolled: int
    active: int
    hand_raised: int
    unsubscribed: int
    converted: int  #: enrolled leads that were later won


def tracks_page(session: Session, number: int, per_page: int) -> Page[TrackStats]:
    """One page of tracks with their counts (one grouped query per page, no N+1)."""
    page = paginate(session, select(NurtureTrack).options(joinedload(NurtureTrack.product_line))
                    .order_by(NurtureTrack.name, NurtureTrack.id), number, per_page)
    ids = [track.id for track in page.items]
    counts: dict[int, Any] = {}
    steps: dict[int, int] = {}
    if ids:
        E_ = NurtureEnrollment
        rows = session.execute(
            select(
                E_.track_id,
                func.count(),
                func.sum(case((E_.status == E.ACTIVE, 1), else_=0)),
                func.sum(case((E_.hand_raised_at.is_not(None), 1), else_=0)),
                func.sum(case((E_.status == E.UNSUBSCRIBED, 1), else_=0)),
                func.sum(case((Lead.status == LeadStatus.WON, 1), else_=0)),
            ).join(Lead, Lead.id == E_.lead_id).where(E_.track_id.in_(ids))
            .group_by(E_.track_id)
        ).all()
        counts = {row[0]: row for row in rows}
        steps = dict(session.execute(
            select(NurtureStep.track_id, func.count()).where(NurtureStep.track_id.in_(ids))
            .group_by(NurtureStep.track_id)).all())
    items = []
    for track in page.items:
        row = counts.get(track.id)
        values = [int(v or 0) for v in row[1:]] if row else [0, 0, 0, 0, 0]
        items.append(TrackStats(track, steps.get(track.id, 0), *values))
    return Page(items=items, number=page.number, pages=page.pages, total=page.total)


def track_stats(session: Session, track: NurtureTrack) -> TrackStats:
    """One track's counts."""
    E_ = NurtureEnrollment
    row = session.execute(
        select(func.count(),
               func.sum(case((E_.status == E.ACTIVE, 1), else_=0)),
               func.sum(case((E_.hand_raised_at.is_not(None), 1), else_=0)),
               func.sum(case((E_.status == E.UNSUBSCRIBED, 1), else_=0)),
               func.sum(case((Lead.status == LeadStatus.WON, 1), else_=0)))
        .join(Lead, Lead.id == E_.lead_id).where(E_.track_id == track.id)
    ).one()
    steps = session.scalar(
        select(func.count()).select_from(NurtureStep).where(NurtureStep.track_id == track.id))
    return TrackStats(track, int(steps or 0), *[int(v or 0) for v in row])


def save_track(session: Session, track: NurtureTrack | None, *, name: str,
               product_line: ProductLine | None, active: bool) -> NurtureTrack:
    """Create or change a track (its product line decides who it is for)."""
    name = " ".join((name or "").split())
    if not name:
        raise NurtureError("Name the track.", {"name": "A name is required."})
    if len(name) > 120:
        raise NurtureError("The name is too long.", {"name": "At most 120 characters."})
    if track is None:
        track = NurtureTrack(created_at=utcnow())
        session.add(track)
    track.name = name
    track.product_line = product_line
    track.product_line_id = product_line.id if product_line else None
    track.active = active
    session.flush()
    return track


def save_step(session: Session, track: NurtureTrack, step: NurtureStep | None, *,
              position: int, delay_days: int, subject: str, body: str, link_url: str = "",
              link_label: str = "") -> NurtureStep:
    """Create or change one email of a track; positions are unique within the track."""
    errors: dict[str, str] = {}
    subject = " ".join((subject or "").split())
    body = (body or "").replace("\r\n", "\n").strip()
    link_url = (link_url or "").strip()
    link_label = " ".join((link_label or "").split())
    if not subject:
        errors["subject"] = "Write the subject line."
    elif len(subject) > 200:
        errors["subject"] = "At most 200 characters."
    if not body:
        errors["body"] = "Write the email's text."
    elif len(body) > 20000:
        errors["body"] = "At most 20,000 characters."
    if not 1 <= position <= 100:
        errors["position"] = "From 1 to 100."
    if not 0 <= delay_days <= 730:
        errors["delay_days"] = "From 0 to 730 days."
    if link_url and (len(link_url) > 500 or not _URL.match(link_url)):
        errors["link_url"] = "Give a full web address starting with https://."
    if link_label and not link_url:
        errors["link_url"] = "Give the address the link text points to."
    if len(link_label) > 120:
        errors["link_label"] = "At most 120 characters."
    taken = session.scalars(select(NurtureStep.id).where(
        NurtureStep.track_id == track.id, NurtureStep.position == position)).first()
    if taken is not None and (step is None or taken != step.id):
        errors["position"] = f"Step {position} exists already; pick another position."
    if errors:
        raise NurtureError("Please correct the fields marked below.", errors)
    if step is None:
        step = NurtureStep(track_id=track.id)
        session.add(step)
    step.position, step.delay_days, step.subject, step.body = position, delay_days, subject, body
    step.link_url, step.link_label = link_url, link_label or ("Read more" if link_url else "")
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError:  # a concurrent save took the position first
        raise NurtureError("That position was just taken.",
                           {"position": f"Step {position} exists already."}) from None
    return step


# --- enrolment and sending ---------------------------------------------------------------------


def track_for(session: Session, lead: Lead) -> NurtureTrack | None:
    """The active track for the lead's product line, else the fallback track (no line)."""
    candidates = session.scalars(
        select(NurtureTrack)
        .where(NurtureTrack.active.is_(True),
               (NurtureTrack.product_line_id == lead.product_line_id)
               | NurtureTrack.product_line_id.is_(None))
        .order_by(NurtureTrack.product_line_id.is_(None), NurtureTrack.id)
        .limit(1)
    ).first()
    return candidates


def _first_step_after(session: Session, track_id: int, position: int) -> NurtureStep | None:
    return session.scalars(
        select(NurtureStep).where(NurtureStep.track_id == track_id,
                                  NurtureStep.position >= position)
        .order_by(NurtureStep.position).limit(1)
    ).first()


def enrol(session: Session, lead: Lead, *, now: datetime | None = None
          ) -> NurtureEnrollment | None:
    """Put a nurture lead on its track (once); None when no track fits or no email."""
    now = now or utcnow()
    if lead.status != LeadStatus.NURTURE or not lead.email:
        return None
    track = track_for(session, lead)
    if track is None:
        return None
    first = _first_step_after(session, track.id, 1)
    enrollment = NurtureEnrollment(
        lead_id=lead.id, track_id=track.id, enrolled_at=now, status_at=now,
        next_step=first.position if first else 1,
        next_due_at=now + timedelta(days=first.delay_days) if first else now,
        status=E.ACTIVE)
    try:
        with session.begin_nested():
            session.add(enrollment)
            session.flush()
    except IntegrityError:  # enrolled meanwhile by a concurrent sweep
        return None
    lifecycle.record_event(session, lead, "nurture_enrolled", _actor(), now=now,
                           data={"track": track.name, "track_id": track.id})
    return enrollment


def enrol_waiting(session: Session, *, now: datetime | None = None, limit: int = BATCH) -> int:
    """Enrol nurture leads that have no enrolment yet; returns how many were enrolled."""
    now = now or utcnow()
    # Only leads a track fits: the others would fill every batch while they wait for one.
    fitting = exists().where(
        NurtureTrack.active.is_(True),
        (NurtureTrack.product_line_id == Lead.product_line_id)
        | NurtureTrack.product_line_id.is_(None))
    waiting = session.scalars(
        select(Lead)
        .where(Lead.status == LeadStatus.NURTURE, Lead.email != "", fitting,
               ~exists().where(NurtureEnrollment.lead_id == Lead.id))
        .order_by(Lead.created_at).limit(limit)
    ).all()
    return sum(1 for lead in waiting if enrol(session, lead, now=now) is not None)


def _set_status(enrollment: NurtureEnrollment, status: str, now: datetime) -> None:
    enrollment.status = status
    enrollment.status_at = now
    enrollment.next_due_at = None


def plan_due(session: Session, *, now: datetime | None = None, limit: int = BATCH
             ) -> list[int]:
    """Write a pending send for every step that is due (each once per enrolment) and move
    each enrolment on; the emails go after the caller commits. Returns the send ids."""
    now = now or utcnow()
    due = session.scalars(
        select(NurtureEnrollment)
        .options(joinedload(NurtureEnrollment.lead))
        .join(NurtureTrack, NurtureTrack.id == NurtureEnrollment.track_id)
        # A paused track keeps its enrolments where they are until it is active again.
        .where(NurtureEnrollment.status == E.ACTIVE, NurtureEnrollment.next_due_at <= now,
               NurtureTrack.active.is_(True))
        .order_by(NurtureEnrollment.next_due_at).limit(limit)
    ).all()
    planned = []
    for enrollment in due:
        lead = enrollment.lead
        if lead.status != LeadStatus.NURTURE:
            # It left nurture another way (a repeat inquiry, a manager): stop the emails.
            done = E.FINISHED if lead.status == LeadStatus.DISQUALIFIED else E.CONVERTED
            _set_status(enrollment, done, now)
            continue
        step = _first_step_after(session, enrollment.track_id, enrollment.next_step)
        if step is None:
            _set_status(enrollment, E.FINISHED, now)
            continue
        send = NurtureSend(enrollment_id=enrollment.id, step_id=step.id, status=PENDING,
                           next_attempt_at=now)
        try:
            with session.begin_nested():
                # The unique (enrolment, step) row: a second sweep planning at the same
                # time fails here and plans nothing.
                session.add(send)
                session.flush()
                _advance(session, enrollment, step, now)
                enqueue_after_commit(session, "send_nurture_email", send.id)
        except IntegrityError:
            continue
        planned.append(send.id)
    return planned


def claim_send(session: Session, send_id: int, now: datetime) -> bool:
    """Take a due, pending nurture email for sending; False if taken, done or not due."""
    return claim_row(session, NurtureSend, send_id, now)


def send_message(session: Session, send_id: int, now: datetime) -> EmailMessage | None:
    """The claimed email, or None when it went void meanwhile (marked skipped, with why)."""
    send = session.get(NurtureSend, send_id, populate_existing=True)
    assert send is not None
    enrollment = session.get(NurtureEnrollment, send.enrollment_id, populate_existing=True)
    step = session.get(NurtureStep, send.step_id)
    assert enrollment is not None and step is not None
    lead = enrollment.lead
    # Re-read now, not at planning: an unsubscribe or a hand-raise may have come between.
    if enrollment.status == E.UNSUBSCRIBED or lead.status != LeadStatus.NURTURE \
            or not lead.email:
        send.status, send.claimed_at = "skipped", None
        send.last_error = "Not sent: unsubscribed or no longer in nurture."
        session.flush()
        return None
    return _message(enrollment, step)


def record_sent(session: Session, send_id: int, now: datetime) -> None:
    """The mail server took it."""
    jobs.record_sent(session, NurtureSend, send_id, now)


def record_failure(session: Session, send_id: int, message: str, now: datetime,
                   permanent: bool = False) -> str:
    """After a failed try: pending again with a doubling wait for hours (the mail policy),
    failed with the reason when it gives up or the server refuses for good."""
    return mail.record_failed_try(session, NurtureSend, send_id, message, now,
                                  permanent=permanent)


def requeue_stale_sends(session: Session, now: datetime) -> int:
    """Sends a dead worker left claimed go again (at least once; a copy that went twice
    carries the same Message-ID): a step never sent is lost for good, a second copy is
    recognisable."""
    return mail.requeue_stale(session, NurtureSend, now)


def due_sends(session: Session, now: datetime, limit: int = BATCH) -> list[int]:
    """Pending nurture emails whose time has come (a lost nudge, a retry)."""
    return due_ids(session, NurtureSend, now, limit)


def _advance(session: Session, enrollment: NurtureEnrollment, step: NurtureStep,
             now: datetime) -> None:
    following = _first_step_after(session, enrollment.track_id, step.position + 1)
    if following is None:
        enrollment.next_step = step.position + 1
        _set_status(enrollment, E.FINISHED, now)
    else:
        enrollment.next_step = following.position
        enrollment.next_due_at = now + timedelta(days=following.delay_days)


def _message(enrollment: NurtureEnrollment, step: NurtureStep) -> EmailMessage:
    lead = enrollment.lead
    context = {
        "lead": lead, "step": step,
        "manufacturer": current_app.config["MANUFACTURER_NAME"],
        "talk_url": public_url("nurture.talk", token=make_token("talk", enrollment.id)),
        "unsubscribe_url": public_url("nurture.unsubscribe",
                                      token=make_token("unsubscribe", enrollment.id)),
        "content_url": public_url("nurture.click",
                                  token=make_token("click", enrollment.id, step.id))
        if step.link_url else None,
    }
    text = render_template("emails/nurture_step.txt", **context)
    html = render_template("emails/nurture_step.html", **context)
    message = build_message(lead.email, step.subject, text, html)
    message["List-Unsubscribe"] = f"<{context['unsubscribe_url']}>"
    return message


# --- what the prospect does with an email ------------------------------------------------------


def unsubscribe(session: Session, enrollment: NurtureEnrollment, *,
                now: datetime | None = None) -> bool:
    """Stop the track for this lead; False when it had stopped already."""
    now = now or utcnow()
    if enrollment.status != E.ACTIVE:
        return False
    _set_status(enrollment, E.UNSUBSCRIBED, now)
    lifecycle.record_event(session, enrollment.lead, "nurture_unsubscribed", _actor(), now=now,
                           data={"track_id": enrollment.track_id})
    return True


def hand_raise(session: Session, enrollment: NurtureEnrollment, *,
               now: datetime | None = None) -> Lead:
    """"Talk to a dealer now": the lead becomes hot and is routed at once (only once)."""
    now = now or utcnow()
    lead = enrollment.lead
    if enrollment.hand_raised_at is not None:
        return lead  # a second click changes nothing
    enrollment.hand_raised_at = now
    if enrollment.status == E.ACTIVE:
        _set_status(enrollment, E.HAND_RAISED, now)
    lead.engagements = (lead.engagements or 0) + 1
    if lead.status == LeadStatus.NURTURE:
        qualify_and_route(session, lead, _actor(), now=now, hand_raised=True)
    elif lead.status not in (LeadStatus.DISQUALIFIED, *_closed()):
        # Already with sales (a repeat inquiry qualified it): tell the dealer it is hot now.
        rules = current_rules(session)
        verdict = evaluate(rules, lead_facts(lead), hand_raised=True)
        lifecycle.rescore(session, lead, score=verdict.score, rank=verdict.rank,
                          reason="asked to talk to a dealer now", actor=_actor(), now=now)
    return lead


def _closed() -> tuple[str, ...]:
    return (LeadStatus.WON, LeadStatus.LOST, LeadStatus.NO_INTEREST)


def record_click(session: Session, enrollment: NurtureEnrollment, step: NurtureStep, *,
                 now: datetime | None = None) -> str:
    """A click on a step's content: engagement counts once per email; returns the link."""
    now = now or utcnow()
    send = session.scalars(select(NurtureSend).where(
        NurtureSend.enrollment_id == enrollment.id, NurtureSend.step_id == step.id)).first()
    lead = enrollment.lead
    if send is not None and send.clicked_at is None:
        send.clicked_at = now
        lead.engagements = (lead.engagements or 0) + 1
        verdict = evaluate(current_rules(session), lead_facts(lead))
        if lead.status == LeadStatus.NURTURE and verdict.outcome == LeadStatus.QUALIFIED:
            # Reading moved it over the line (e.g. cold → warm): sales-ready, route it.
            qualify_and_route(session, lead, _actor(), now=now)
        elif lead.status not in (LeadStatus.DISQUALIFIED, *_closed()):
            lifecycle.rescore(session, lead, score=verdict.score, rank=verdict.rank,
                              reason=f"read nurture email: {step.subject}"[:200],
                              actor=_actor(), now=now)
    return step.link_url
