"""Fulfilment: the pack request (in the capture transaction), its state machine, the letter.

The ``fulfilments`` row is the source of truth. A job is only a nudge: whoever gets to a
row first claims it with a conditional UPDATE (``pending`` → ``sending``), so the job,
the sweeper and a second worker can all try the same row and only one sends it. What
happens to a row: pending → sending → sent, or back to pending with a later
``next_attempt_at`` (SMTP down: retried for hours), or failed (gave up, or a problem no retry can
fix) where a manager sees the error and can send it again. Print requests go pending →
batched (in the day's print batch) → printed when the mail room confirms.
"""

from __future__ import annotations

import logging
import statistics
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app, render_template
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from portal.core import lifecycle, mail
from portal.core.errors import Conflict
from portal.core.jobs import claim_row, due_ids, enqueue_after_commit
from portal.core.mail import build_message, public_url
from portal.core.models import (
    Fulfilment,
    FulfilmentChannel,
    FulfilmentStatus,
    Lead,
    LeadStatus,
    Partner,
    PrintBatch,
    User,
    utcnow,
)
from portal.fulfilment import library, pdf

log = logging.getLogger(__name__)
S = FulfilmentStatus
_LINK_SALT = "literature-pack-link"


class FulfilmentError(Conflict):
    """A manager's request that cannot be done (e.g. retrying a pack already sent)."""


class PackProblem(Exception):
    """A pack cannot be made or sent for a reason no retry fixes; a person must act."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _config(name: str, default: Any) -> Any:
    return current_app.config.get(name, default)


# --- the request -------------------------------------------------------------------------


def wants_print(lead: Lead) -> bool:
    """Printed literature: asked for it (``answers.literature_format`` print) or no email."""
    answer = str((lead.answers or {}).get("literature_format", "")).strip().lower()
    return answer == "print" or not lead.email


def has_postal_address(lead: Lead) -> bool:
    """Enough of an address to put on an envelope."""
    return bool(lead.address and lead.postal_code and (lead.city or lead.region))


def request_pack(session: Session, lead: Lead, *, reason: str = "captured",
                 now: datetime | None = None, manual: bool = False) -> Fulfilment:
    """Write the pack request for ``lead`` (in the caller's transaction); a repeat returns it.

    One pack per lead and product line, whether it was asked for at capture, on
    qualification or on entering nurture; ``manual`` makes a fresh request (a manager's
    "send again"). The worker is nudged only once the caller's transaction commits.
    """
    now = now or utcnow()
    session.flush()  # the lead needs its id
    key = (f"manual:{uuid.uuid4().hex}" if manual
           else f"lead:{lead.id}:line:{lead.product_line_id or 0}")
    if not manual:
        existing = session.scalars(select(Fulfilment).where(Fulfilment.request_key == key)
                                   ).first()
        if existing is not None:
            return existing
    row = Fulfilment(request_key=key, lead_id=lead.id, product_line_id=lead.product_line_id,
                     reason=reason[:16], requested_at=now, next_attempt_at=now,
                     channel=FulfilmentChannel.PRINT if wants_print(lead)
                     else FulfilmentChannel.EMAIL)
    if row.channel == FulfilmentChannel.PRINT and not has_postal_address(lead):
        # Kept, not dropped: a manager sees it, adds the address and sends it again.
        row.status = S.FAILED
        row.error_code = "no_address"
        row.last_error = ("No email address and no full postal address (street, city or "
                          "state, postal code): add one to the lead, then retry.")
    session.add(row)
    session.flush()
    if row.status == S.PENDING and row.channel == FulfilmentChannel.EMAIL:
        enqueue_after_commit(session, "send_pack", row.id)
    return row


# --- the state machine -------------------------------------------------------------------


def claim(session: Session, fulfilment_id: int, now: datetime) -> bool:
    """Take a due, pending email pack for sending; False if someone else has it or it's done."""
    return claim_row(session, Fulfilment, fulfilment_id, now,
                     Fulfilment.channel == FulfilmentChannel.EMAIL)


def release_claim(session: Session, fulfilment_id: int) -> bool:
    """Give back a claim the worker could not finish before stopping (nothing was sent):
    the pack is pending and due again, and the interrupted try does not count."""
    result = session.execute(
        update(Fulfilment)
        .where(Fulfilment.id == fulfilment_id, Fulfilment.status == S.SENDING)
        .values(status=S.PENDING, claimed_at=None, attempts=Fulfilment.attempts - 1),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined]


def record_failure(session: Session, fulfilment_id: int, *, code: str, message: str,
                   permanent: bool, now: datetime) -> Fulfilment | None:
    """After a failed try: back to pending after the mail policy's wait (1 min doubling to
    1 h), or ``failed`` once it gives up (36 h of tries) or at once when ``permanent``."""
    row = session.get(Fulfilment, fulfilment_id, populate_existing=True)
    if row is None or row.status != S.SENDING:
        return row
    row.last_error = message[:2000]
    row.error_code = code[:20]
    row.claimed_at = None
    if permanent or mail.gives_up(row.attempts):
        row.status = S.FAILED
        if not permanent:
            row.last_error = f"Gave up after {row.attempts} tries. Last error: {message}"[:2000]
    else:
        row.status = S.PENDING
        row.next_attempt_at = now + mail.retry_wait(row.attempts)
    session.flush()
    return row


def record_sent(session: Session, fulfilment_id: int, *, delivery: str, sent_to: str,
                partner_id: int | None, contents: list[dict[str, Any]], page_total: int,
                size: int, pack_file: str | None, now: datetime) -> Fulfilment | None:
    """After the mail server took the pack: mark it sent and note it on the lead's trail."""
    row = session.get(Fulfilment, fulfilment_id, populate_existing=True)
    if row is None:
        return None
    # Even if a sweeper gave up on it meanwhile, the mail did go: the record says so.
    row.status = S.SENT
    row.delivery, row.sent_to, row.partner_id = delivery, sent_to, partner_id
    row.contents, row.page_count, row.size_bytes = contents, page_total, size
    row.pack_file, row.sent_at, row.claimed_at = pack_file, now, None
    row.last_error, row.error_code = "", ""
    lead = session.get(Lead, row.lead_id)
    if lead is not None:
        lifecycle.record_event(session, lead, "literature_sent", lifecycle.Actor.system("job"),
                               now=now, partner_id=partner_id,
                               data={"fulfilment": row.id, "channel": row.channel,
                                     "delivery": delivery, "pages": page_total})
    session.flush()
    return row


def requeue_stale_sending(session: Session, now: datetime) -> int:
    """Packs stuck in ``sending`` (a worker died mid-send) go again by themselves.

    At least once: a crash between the mail server's 250 and the commit that records it
    sends the pack twice; both copies carry the request's one Message-ID
    (``compose_email``), so the prospect's mail system can tell them for one. A pack that
    never arrives, waiting for a person to notice, is the worse of the two.
    """
    return mail.requeue_stale(session, Fulfilment, now,
                              Fulfilment.channel == FulfilmentChannel.EMAIL)


def due_email_ids(session: Session, now: datetime, limit: int) -> list[int]:
    """Pending email packs whose time has come, oldest first."""
    return due_ids(session, Fulfilment, now, limit,
                   Fulfilment.channel == FulfilmentChannel.EMAIL)


def retry(session: Session, row: Fulfilment, user: User | None,
          now: datetime | None = None) -> Fulfilment:
    """A manager sends a failed pack again (the worker is nudged after commit)."""
    now = now or utcnow()
    if row.status != S.FAILED:
        raise FulfilmentError(f"Only failed packs can be retried; this one is {row.status}.")
    lead = session.get(Lead, row.lead_id)
    assert lead is not None
    row.channel = FulfilmentChannel.PRINT if wants_print(lead) else FulfilmentChannel.EMAIL
    if row.channel == FulfilmentChannel.PRINT and not has_postal_address(lead):
        raise FulfilmentError("The lead still has no email and no full postal address; "
                              "add one first.")
    who = user.email if user else "the portal"
    row.status, row.attempts, row.next_attempt_at = S.PENDING, 0, now
    row.error_code, row.claimed_at = "", None
    row.last_error = f"Retried by {who} at {now:%Y-%m-%d %H:%M} UTC. {row.last_error}"[:2000]
    session.flush()
    if row.channel == FulfilmentChannel.EMAIL:
        enqueue_after_commit(session, "send_pack", row.id)
    return row


# --- what goes into a pack ---------------------------------------------------------------


@dataclass
class Contact:
    """Who the prospect should talk to: the assigned dealer or the manufacturer."""

    name: str
    address: str = ""
    city_line: str = ""
    phone: str = ""
    email: str = ""
    is_dealer: bool = False


@dataclass
class PackData:
    """Everything a pack needs, read in one short transaction, so rendering holds no lock."""

    fulfilment_id: int
    attempt: int
    to_email: str
    letter: dict[str, Any]
    literature: list[dict[str, Any]]
    partner_id: int | None
    subject: str
    links: dict[str, Any] = field(default_factory=dict)


def _region(region: str) -> str:
    return region.split("-", 1)[-1] if region else ""


def city_line(city: str, region: str, postal_code: str) -> str:
    """"Mason City, IA 50401"."""
    place = ", ".join(part for part in (city, _region(region)) if part)
    return " ".join(part for part in (place, postal_code) if part)


def manufacturer_contact() -> Contact:
    """The manufacturer's own contact, for leads no dealer has yet."""
    config = current_app.config
    return Contact(name=config.get("MANUFACTURER_NAME", "The manufacturer"),
                   address=config.get("MANUFACTURER_ADDRESS", ""),
                   city_line=config.get("MANUFACTURER_CITY_LINE", ""),
                   phone=config.get("MANUFACTURER_PHONE", ""),
                   email=config.get("MANUFACTURER_EMAIL", ""))


def contact_for(lead: Lead) -> Contact:
    """The dealer named in the letter: the assigned partner, else the manufacturer."""
    partner: Partner | None = lead.assigned_partner
    if partner is None:
        return manufacturer_contact()
    return partner_contact(partner)


def partner_contact(partner: Partner) -> Contact:
    """A dealer (or distributor) as a prospect reaches it: name, address, phone, email."""
    return Contact(name=partner.name, address=partner.address,
                   city_line=city_line(partner.city, partner.region, partner.postal_code),
                   phone=partner.phone, email=partner.email, is_dealer=True)


def next_steps(lead: Lead, contact: Contact) -> str:
    """What happens next, in one or two sentences the prospect can act on."""
    hours = int(current_app.config.get("CONTACT_SLA_HOURS", 48))
    if contact.is_dealer and lead.status == LeadStatus.OFFERED:
        # Offered, not yet accepted: the dealer may still pass it on.
        return (f"We have passed your inquiry to {contact.name}, the authorised dealer for "
                f"your area. They, or another dealer near you should they be unable to, will "
                f"contact you within {hours} hours to answer your questions and, if you "
                "wish, arrange a demonstration.")
    if contact.is_dealer:
        return (f"{contact.name} has your inquiry and will contact you within {hours} hours "
                "to answer your questions and, if you wish, arrange a demonstration.")
    if lead.status == LeadStatus.NURTURE:
        return ("We will keep you up to date with occasional news. Whenever you are ready to "
                "talk, reply to this letter or call us and we will put you in touch with your "
                "nearest dealer.")
    return ("We are finding the dealer nearest you, who will contact you shortly. In the "
            "meantime, you are welcome to contact us directly.")


def letter_context(lead: Lead, contact: Contact, literature: list[dict[str, Any]],
                   now: datetime) -> dict[str, Any]:
    """The cover letter's facts: prospect, products asked about, dealer, next steps."""
    product = lead.product_line.name if lead.product_line else "our products"
    return {
        "date": now,
        "prospect": {
            "name": lead.name,
            "first_name": lead.first_name or lead.name,
            "company": lead.company,
            "address": lead.address,
            "city_line": city_line(lead.city, lead.region, lead.postal_code),
        },
        "products": [product],
        "comments": (lead.comments or "")[:300],
        "contact": contact,
        "next_steps": next_steps(lead, contact),
        "literature": literature,
        "manufacturer": current_app.config.get("MANUFACTURER_NAME", ""),
    }


def gather(session: Session, fulfilment_id: int, now: datetime) -> PackData:
    """Read what one pack needs; ``PackProblem`` when it cannot be made as things stand."""
    row = session.get(Fulfilment, fulfilment_id)
    if row is None:
        raise PackProblem("gone", "The request no longer exists.")
    lead = session.scalars(select(Lead).where(Lead.id == row.lead_id).options(
        selectinload(Lead.assigned_partner), selectinload(Lead.product_line))).one()
    if not lead.email:
        raise PackProblem("no_email", "The lead has no email address any more.")
    items = library.active_versions_for(session, row.product_line_id)
    if not items:
        line = lead.product_line.code if lead.product_line else "(none)"
        raise PackProblem("no_literature",
                          f"No active literature for product line {line}. Add a brochure in "
                          "the literature library; waiting packs then go out by themselves.")
    literature = [{"item_id": item.id, "title": item.title, "version": version.number,
                   "version_id": version.id, "stored_name": version.stored_name,
                   "pages": version.page_count} for item, version in items]
    contact = contact_for(lead)
    product = lead.product_line.name if lead.product_line else "product"
    manufacturer = current_app.config.get("MANUFACTURER_NAME", "")
    return PackData(
        fulfilment_id=row.id, attempt=row.attempts, to_email=lead.email,
        letter=letter_context(lead, contact, literature, now),
        literature=literature, partner_id=lead.assigned_partner_id,
        subject=f"Your {product} information from {manufacturer}".strip(),
    )


def render_letter_html(letter: dict[str, Any]) -> str:
    """The cover letter as HTML (also what the print batch repeats per prospect)."""
    return render_template("pdf/cover_letter.html", **letter)


def build_pack(data: PackData) -> bytes:
    """Cover letter (rendered per lead) + the line's literature (joined once, cached)."""
    options = library.render_options()
    cover = pdf.render_pdf(render_letter_html(data.letter), css=library.pack_css(),
                           **options)  # type: ignore[arg-type]
    names = tuple(part["stored_name"] for part in data.literature)
    literature = pdf.literature_cache.get(
        names, lambda: pdf.join_pdfs([library.read_file(name) for name in names]))
    return pdf.join_pdfs([cover, literature])


def link_serializer() -> URLSafeTimedSerializer:
    """Signs download links (the fulfilment id); SECRET_KEY is the key."""
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=_LINK_SALT)


def download_url(fulfilment_id: int) -> str:
    """The signed, expiring link to a pack too large to attach."""
    return public_url("fulfilment.pack_download", token=link_serializer().dumps(fulfilment_id))


def link_max_age() -> int:
    """Seconds a download link stays valid."""
    return int(_config("PACK_LINK_MAX_AGE_DAYS", 30)) * 86400


def fulfilment_for_token(session: Session, token: str) -> Fulfilment | None:
    """The link's pack, or None when the link is forged, expired or its pack is gone."""
    try:
        fulfilment_id = link_serializer().loads(token, max_age=link_max_age())
    except (SignatureExpired, BadSignature):
        return None
    row = session.get(Fulfilment, fulfilment_id) if isinstance(fulfilment_id, int) else None
    if row is None or row.status != S.SENT or not row.pack_file:
        return None
    return row


def record_download(session: Session, row: Fulfilment, now: datetime | None = None) -> None:
    """The prospect fetched the pack through the link (a POST, so mail scanners don't count)."""
    now = now or utcnow()
    row.downloads = (row.downloads or 0) + 1
    if row.downloaded_at is None:
        row.downloaded_at = now
    session.flush()


def compose_email(data: PackData, pack: bytes) -> tuple[Any, str, str | None]:
    """The email: HTML + text, the PDF attached, or a link above PACK_ATTACH_MAX_BYTES."""
    limit = int(_config("PACK_ATTACH_MAX_BYTES", 8 * 1024 * 1024))
    pack_file = None
    link = None
    if len(pack) > limit:
        pack_file = library.store_file(pack)
        link = download_url(data.fulfilment_id)
    context = dict(data.letter, link=link, link_days=link_max_age() // 86400,
                   size_mb=len(pack) / 1_048_576)
    text = render_template("emails/literature_pack.txt", **context)
    html = render_template("emails/literature_pack.html", **context)
    attachments: tuple[tuple[str, bytes, str], ...] = ()
    if link is None:
        attachments = (("literature-pack.pdf", pack, "application/pdf"),)
    contact = data.letter.get("contact")
    # A reply goes to the dealer the letter names (or the manufacturer's contact), not to
    # the portal's sending address.
    headers = {"Reply-To": contact.email} if contact is not None and contact.email else {}
    message = build_message(data.to_email, data.subject, text, html, attachments, headers)
    # One Message-ID per request: if a pack ever goes twice, mail systems can tell.
    del message["Message-ID"]
    message["Message-ID"] = mail.stable_message_id("literature-pack", data.fulfilment_id)
    return message, "link" if link else "attachment", pack_file


# --- print batches -----------------------------------------------------------------------


def start_print_batch(session: Session, now: datetime, limit: int = 2000) -> PrintBatch | None:
    """Put waiting print requests into a new batch (claimed: no second batch takes them)."""
    waiting = list(session.scalars(
        select(Fulfilment.id)
        .where(Fulfilment.status == S.PENDING, Fulfilment.channel == FulfilmentChannel.PRINT)
        .order_by(Fulfilment.requested_at, Fulfilment.id).limit(limit)))
    if not waiting:
        return None
    batch = PrintBatch(created_at=now, letters_file=library.new_file_name(),
                       labels_file=library.new_file_name(), count=0)
    session.add(batch)
    session.flush()
    claimed = session.execute(
        update(Fulfilment)
        .where(Fulfilment.id.in_(waiting), Fulfilment.status == S.PENDING)
        .values(status=S.BATCHED, print_batch_id=batch.id, attempts=Fulfilment.attempts + 1),
        execution_options={"synchronize_session": False},
    ).rowcount  # type: ignore[attr-defined]
    if not claimed:
        session.delete(batch)
        session.flush()
        return None
    batch.count = claimed
    session.flush()
    return batch


def batch_rows(session: Session, batch: PrintBatch) -> list[Fulfilment]:
    """A batch's requests with their leads, in mailing order."""
    return list(session.scalars(
        select(Fulfilment).where(Fulfilment.print_batch_id == batch.id)
        .options(selectinload(Fulfilment.lead).selectinload(Lead.assigned_partner),
                 selectinload(Fulfilment.lead).selectinload(Lead.product_line))
        .order_by(Fulfilment.requested_at, Fulfilment.id)))


def render_print_batch(session: Session, batch: PrintBatch, now: datetime) -> tuple[bytes, bytes]:
    """The batch's letters (one per prospect, listing what to enclose) and label sheet."""
    letters = []
    labels = []
    for row in batch_rows(session, batch):
        lead = row.lead
        items = library.active_versions_for(session, row.product_line_id)
        literature = [{"title": item.title, "pages": version.page_count,
                       "version": version.number} for item, version in items]
        letters.append(letter_context(lead, contact_for(lead), literature, now))
        labels.append([line for line in (
            lead.name, lead.company if lead.company != lead.name else "", lead.address,
            city_line(lead.city, lead.region, lead.postal_code),
            "" if lead.country == "US" else lead.country) if line])
        row.partner_id = lead.assigned_partner_id
        row.contents = literature
    options = library.render_options()
    css = library.pack_css()
    letters_pdf = pdf.render_pdf(render_template("pdf/print_letters.html", letters=letters),
                                 css=css, **options)  # type: ignore[arg-type]
    per_sheet = 30
    sheets = [labels[i:i + per_sheet] for i in range(0, len(labels), per_sheet)]
    labels_pdf = pdf.render_pdf(render_template("pdf/labels.html", sheets=sheets), css="",
                                **options)  # type: ignore[arg-type]
    session.flush()
    return letters_pdf, labels_pdf


def abandon_print_batch(session: Session, batch_id: int, message: str) -> None:
    """Rendering a batch failed: its requests wait for the next one, nothing is lost."""
    session.execute(update(Fulfilment).where(Fulfilment.print_batch_id == batch_id)
                    .values(status=S.PENDING, print_batch_id=None, last_error=message[:2000]),
                    execution_options={"synchronize_session": False})
    batch = session.get(PrintBatch, batch_id)
    if batch is not None:
        session.delete(batch)
    session.flush()


def confirm_print_batch(session: Session, batch: PrintBatch, user: User,
                        now: datetime | None = None) -> int:
    """The mail room printed and mailed the batch: its requests become ``printed``."""
    now = now or utcnow()
    if batch.confirmed_at is not None:
        raise FulfilmentError("This batch was already confirmed.")
    batch.confirmed_at, batch.confirmed_by_id = now, user.id
    rows = [row for row in batch_rows(session, batch) if row.status == S.BATCHED]
    for row in rows:
        row.status, row.printed_at, row.delivery = S.PRINTED, now, "mail"
        lifecycle.record_event(session, row.lead, "literature_printed",
                               lifecycle.Actor.of(user), now=now, partner_id=row.partner_id,
                               data={"fulfilment": row.id, "batch": batch.id})
    session.flush()
    return len(rows)


# --- tracking and reports ----------------------------------------------------------------


def fulfilments_for(session: Session, lead: Lead) -> list[Fulfilment]:
    """What literature a lead was sent (or is waiting for): newest first, for the lead page."""
    return list(session.scalars(
        select(Fulfilment).where(Fulfilment.lead_id == lead.id)
        .options(selectinload(Fulfilment.product_line), selectinload(Fulfilment.partner))
        .order_by(Fulfilment.requested_at.desc(), Fulfilment.id.desc())))


def status_counts(session: Session) -> dict[str, int]:
    """How many requests are in each state."""
    rows = session.execute(select(Fulfilment.status, func.count()).group_by(Fulfilment.status))
    counts = {status.value: 0 for status in S}
    counts.update({status: count for status, count in rows})
    return counts


@dataclass(frozen=True)
class Timing:
    """Time to fulfil for one channel over a period."""

    channel: str
    count: int
    median_hours: float | None
    p95_hours: float | None


def time_to_fulfil(session: Session, since: datetime, until: datetime) -> list[Timing]:
    """Request → sent (email) or printed (mail), for requests made in [since, until)."""
    rows = session.execute(
        select(Fulfilment.channel, Fulfilment.requested_at, Fulfilment.sent_at,
               Fulfilment.printed_at)
        .where(Fulfilment.requested_at >= since, Fulfilment.requested_at < until,
               Fulfilment.status.in_((S.SENT, S.PRINTED))))
    hours: dict[str, list[float]] = {}
    for channel, requested, sent, printed in rows:
        done = sent or printed
        if done is not None:
            hours.setdefault(channel, []).append((done - requested).total_seconds() / 3600)
    timings = []
    for channel in (FulfilmentChannel.EMAIL, FulfilmentChannel.PRINT):
        values = sorted(hours.get(channel, []))
        if not values:
            timings.append(Timing(channel, 0, None, None))
            continue
        p95 = values[min(len(values) - 1, max(0, round(0.95 * len(values)) - 1))]
        timings.append(Timing(channel, len(values), statistics.median(values), p95))
    return timings
