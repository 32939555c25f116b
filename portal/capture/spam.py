"""Spam defence for the public forms that does not bother people: no captcha.

Three brakes: a honeypot field (checked in the view), a signed time stamp (a person
takes more than a few seconds, and does not submit a page shown days ago), and a
per-address rate limit kept in the database so it holds across workers and hosts.

A form sent sooner than a person types is not refused: a browser's autofill fills it in
two seconds. If its answers are otherwise good, the person is asked to confirm them (the
page shown again, filled in, with a stamp marked confirmed that skips the timer); simple
bots post once and never come back for the second step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from portal.core.models import CaptureAttempt, utcnow

_AGAIN = "Please check your details and send the form again."
#: what a person whose browser filled the form in at once reads (nothing is lost)
CONFIRM = ("Almost done: please check your details below and press "
           "“Send my inquiry” again to confirm.")


@dataclass(frozen=True)
class StampCheck:
    ok: bool
    message: str = ""
    #: sent sooner than a person types: ask to confirm (``sign_stamp(confirmed=True)``)
    too_fast: bool = False


def _signer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="capture-form-stamp")


def sign_stamp(campaign_code: str, issued_at: float | None = None, *,
               confirmed: bool = False) -> str:
    """A tamper-proof note of when the form for ``campaign_code`` was shown; ``confirmed``
    when it is the confirmation step of a quick send (no minimum time then)."""
    issued = time.time() if issued_at is None else issued_at
    data: dict[str, object] = {"c": campaign_code, "t": int(issued)}
    if confirmed:
        data["k"] = 1
    return _signer().dumps(data)


def check_stamp(stamp: str, campaign_code: str, *, embedded: bool,
                now: float | None = None) -> StampCheck:
    """Whether the form took a person's time to fill in: not too fast, not days old."""
    if not stamp:
        # The embedded snippet is static HTML on another site: it cannot carry a fresh
        # stamp, so there the per-address rate limit is the only brake.
        return StampCheck(True) if embedded else StampCheck(False, _AGAIN)
    try:
        data = _signer().loads(stamp)
        issued, code = float(data["t"]), str(data["c"])
        confirmed = data.get("k") == 1
    except (AttributeError, BadSignature, KeyError, TypeError, ValueError):
        return StampCheck(False, _AGAIN)
    if code != campaign_code:
        return StampCheck(False, _AGAIN)
    elapsed = (time.time() if now is None else now) - issued
    config = current_app.config
    if elapsed > float(config.get("CAPTURE_MAX_FORM_AGE_SECONDS", 86400)):
        return StampCheck(False, "This page was open for a long time. " + _AGAIN)
    if not confirmed and elapsed < float(config.get("CAPTURE_MIN_FILL_SECONDS", 3)):
        return StampCheck(False, CONFIRM, too_fast=True)
    return StampCheck(True)


def _window() -> timedelta:
    return timedelta(minutes=float(current_app.config.get("CAPTURE_RATE_WINDOW_MINUTES", 10)))


def rate_limited(session: Session, address: str, *, now: datetime | None = None) -> bool:
    """True when ``address`` already sent the most submissions the window allows."""
    since = (now or utcnow()) - _window()
    count = session.scalar(select(func.count()).select_from(CaptureAttempt).where(
        CaptureAttempt.address == address[:64], CaptureAttempt.at >= since)) or 0
    return count >= int(current_app.config.get("CAPTURE_RATE_LIMIT", 5))


def record_attempt(session: Session, address: str, campaign_code: str, *,
                   now: datetime | None = None) -> None:
    """Count one submission against ``address``; drop records older than any window."""
    now = now or utcnow()
    session.add(CaptureAttempt(address=address[:64], campaign_code=campaign_code[:32],
                               at=now))
    # Old records are useless; trimming them here keeps the table small without a job.
    session.execute(delete(CaptureAttempt).where(
        CaptureAttempt.address == address[:64], CaptureAttempt.at < now - _window()))
    session.flush()
