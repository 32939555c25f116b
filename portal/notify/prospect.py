"""A note to the prospect when the dealer its literature pack named no longer has its lead.

A manager's reassignment or a distributor's pull-back moves the lead to another partner;
the prospect, whose pack said "Prairie Tractors will contact you", hears who will now.
The note is a notifications row with no user (sent to the lead's email) written by a
lifecycle listener in the move's own transaction: a move that rolls back writes none,
one that commits writes one (keyed by the move's event).
"""

from __future__ import annotations

from email.message import EmailMessage

from flask import current_app, render_template
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.core.mail import build_message
from portal.core.models import (
    EnrollmentStatus,
    Fulfilment,
    FulfilmentStatus,
    Lead,
    LeadEvent,
    Notification,
    NotificationKind,
    NurtureEnrollment,
    Partner,
)
from portal.fulfilment.services import partner_contact
from portal.notify import services

K = NotificationKind
#: a pack in these states reached the prospect, naming its partner
_DELIVERED = (FulfilmentStatus.SENT, FulfilmentStatus.PRINTED)


def named_partner(session: Session, lead_id: object) -> int | None:
    """The partner the prospect last heard named: by its literature pack, or by a later
    note of ours; None when no pack naming a partner went out."""
    last = _last_named(session, lead_id)
    return last[0] if last is not None else None


def _last_named(session: Session, lead_id: object) -> tuple[int, bool] | None:
    """``named_partner``, and whether our note (not the pack) named it."""
    pack = session.execute(
        select(Fulfilment.partner_id, Fulfilment.sent_at, Fulfilment.printed_at)
        .where(Fulfilment.lead_id == lead_id, Fulfilment.status.in_(_DELIVERED),
               Fulfilment.partner_id.is_not(None))
        .order_by(Fulfilment.id.desc()).limit(1)).first()
    if pack is None:
        return None
    note = session.execute(
        select(Notification.partner_id, Notification.created_at)
        .where(Notification.lead_id == lead_id, Notification.kind == K.PROSPECT_MOVED,
               Notification.status != "skipped")
        .order_by(Notification.id.desc()).limit(1)).first()
    pack_at = pack.sent_at or pack.printed_at
    if note is not None and (pack_at is None or note.created_at >= pack_at):
        return note.partner_id, True
    return pack.partner_id, False


def unsubscribed(session: Session, lead_id: object) -> bool:
    """The prospect asked for no more email (nurture's one-click unsubscribe)."""
    return session.scalar(
        select(NurtureEnrollment.id)
        .where(NurtureEnrollment.lead_id == lead_id,
               NurtureEnrollment.status == EnrollmentStatus.UNSUBSCRIBED).limit(1)) is not None


def on_lead_event(session: Session, lead: Lead, event: LeadEvent) -> None:
    """The lifecycle's listener: a lead given by hand to another partner (a manager's
    reassignment, a distributor's pull-back) away from the partner the prospect's pack
    named writes one note to the prospect, naming the new partner; so does a forward
    after such a note (pulled back, then passed to another dealer: the note named the
    distributor, who passed it on)."""
    manual = event.kind == "offered" and (event.data or {}).get("method") == "manual"
    if not (manual or event.kind == "forwarded"):
        return
    if not lead.email or event.partner_id is None:
        return
    last = _last_named(session, lead.id)
    if last is None or (not manual and not last[1]):
        return  # a forward the pack already saw coming is no news
    named = last[0]
    if named == event.partner_id or unsubscribed(session, lead.id):
        return
    services.write(session, [{
        "key": f"{K.PROSPECT_MOVED}:{event.id}", "user_id": None,
        "kind": str(K.PROSPECT_MOVED), "lead_id": lead.id, "partner_id": event.partner_id,
        "data": {"from_partner_id": named}}])


def moved_email(session: Session, row: Notification) -> EmailMessage | str:
    """The note as it reads now, or why it has nothing to say any more."""
    lead = session.get(Lead, row.lead_id) if row.lead_id else None
    if lead is None or not lead.email:
        return "The prospect has no email address."
    if lead.assigned_partner_id != row.partner_id:
        return "The lead has moved on again since."
    if unsubscribed(session, lead.id):
        return "The prospect unsubscribed."
    partner = session.get(Partner, row.partner_id)
    if partner is None:
        return "The partner is gone."
    context = {"lead": lead, "contact": partner_contact(partner),
               "product": lead.product_line.name if lead.product_line else "our products",
               "manufacturer": current_app.config.get("MANUFACTURER_NAME", "")}
    headers = {"Reply-To": partner.email} if partner.email else {}
    return build_message(lead.email, f"Your contact for {context['product']}: {partner.name}",
                         render_template("emails/prospect_moved.txt", **context),
                         render_template("emails/prospect_moved.html", **context),
                         headers=headers)


