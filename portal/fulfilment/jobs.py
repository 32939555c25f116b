"""Fulfilment jobs: send one pack, sweep what waits, build the day's print batch.

Each function here is a transaction boundary and commits between its stages on purpose:
the claim is committed before the slow part (render, SMTP) so no lock is held while
WeasyPrint or a mail server takes its time, and so a second worker sees the claim.
"""

from __future__ import annotations

import logging
import smtplib
from datetime import datetime

from portal.core.jobs import job, periodic
from portal.core.mail import deliver, is_permanent, nudge_retry
from portal.core.models import Fulfilment, PrintBatch, utcnow
from portal.extensions import db
from portal.fulfilment import library, pdf, services

log = logging.getLogger(__name__)


def process_fulfilment(fulfilment_id: int, *, now: datetime | None = None) -> str:
    """Claim, build and email one pack; returns what happened (sent, retry, failed, skipped,
    interrupted)."""
    session = db.session
    now = now or utcnow()
    if not services.claim(session, fulfilment_id, now):
        session.rollback()
        return "skipped"  # sent already, someone else is on it, or not due yet
    session.commit()
    try:
        data = services.gather(session, fulfilment_id, now)
        session.commit()  # end the read before rendering: no lock held while we work
        pack = services.build_pack(data)
        message, delivery, pack_file = services.compose_email(data, pack)
        try:
            deliver(message)
        except BaseException:
            library.remove_file(pack_file)
            raise
    except pdf.RenderCancelled:
        # Stopping before the mail went out: safe to hand back; the sweeper sends it later.
        session.rollback()
        services.release_claim(session, fulfilment_id)
        session.commit()
        return "interrupted"
    except services.PackProblem as problem:
        return _failed(fulfilment_id, problem.code, problem.message, True, now)
    except pdf.RenderError as error:
        return _failed(fulfilment_id, "render", str(error), False, now)
    except (smtplib.SMTPException, OSError) as error:
        message_text = f"Mail server: {type(error).__name__}: {error}".strip()
        return _failed(fulfilment_id, "smtp", message_text, is_permanent(error), now)
    except Exception as error:  # noqa: BLE001 - never leave a row stuck in "sending"
        log.exception("literature pack %s failed", fulfilment_id)
        return _failed(fulfilment_id, "error", f"{type(error).__name__}: {error}", False, now)
    services.record_sent(session, fulfilment_id, delivery=delivery, sent_to=data.to_email,
                         partner_id=data.partner_id,
                         contents=[{k: v for k, v in part.items() if k != "stored_name"}
                                   for part in data.literature],
                         page_total=pdf.page_count(pack), size=len(pack), pack_file=pack_file,
                         now=utcnow())
    session.commit()
    return "sent"


def _failed(fulfilment_id: int, code: str, message: str, permanent: bool,
            now: datetime) -> str:
    session = db.session
    session.rollback()
    row = services.record_failure(session, fulfilment_id, code=code, message=message,
                                  permanent=permanent, now=now)
    session.commit()
    outcome = "failed" if row is not None and row.status == "failed" else "retry"
    return nudge_retry("send_pack", Fulfilment, fulfilment_id, outcome)


def sweep(now: datetime | None = None, limit: int = 200) -> dict[str, int]:
    """Send again packs a dead worker left mid-send, then every pending email pack that is
    due."""
    session = db.session
    now = now or utcnow()
    stale = services.requeue_stale_sending(session, now)
    session.commit()
    outcomes: dict[str, int] = {"interrupted": stale}
    for fulfilment_id in services.due_email_ids(session, now, limit):
        session.commit()
        if pdf.stopping.is_set():
            break  # the worker is stopping: the rest wait for the next sweep
        outcome = process_fulfilment(fulfilment_id, now=now)
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    session.commit()
    return outcomes


def make_print_batch(now: datetime | None = None) -> PrintBatch | None:
    """Batch the waiting print requests: letters PDF + label sheet, stored for the mail room."""
    session = db.session
    now = now or utcnow()
    batch = services.start_print_batch(session, now)
    session.commit()
    if batch is None:
        return None
    try:
        letters, labels = services.render_print_batch(session, batch, now)
        library.store_file(letters, batch.letters_file)
        library.store_file(labels, batch.labels_file)
        session.commit()
    except Exception as error:
        session.rollback()
        log.exception("print batch %s failed", batch.id)
        services.abandon_print_batch(session, batch.id,
                                     f"Print batch failed: {type(error).__name__}: {error}")
        session.commit()
        raise
    return batch


@job()
def send_pack(fulfilment_id: int) -> str:
    """The nudge after a request commits: send that one pack now."""
    return process_fulfilment(fulfilment_id)


@periodic(minute="*")
def fulfilment_sweep() -> None:
    """Every minute: pick up packs whose nudge was lost or whose retry is due."""
    sweep()


@job()
def print_batch_now() -> None:
    """A manager asked for the print batch now rather than at the daily hour."""
    make_print_batch()


@periodic(minute="0", hour="6")
def daily_print_batch() -> None:
    """Every morning: one batch of letters and labels for the mail room."""
    make_print_batch()
