"""The channel's settings (one row, defaults when there is none) and what they decide:
whether a partner may read a prospect's contact details yet."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from portal.core.models import (
    CLOSED_STATUSES,
    WORKING_STATUSES,
    ChannelSettings,
    Lead,
    display_name,
    utcnow,
)

_ROW_ID = 1
#: a partner that holds a lead in these has accepted it: its contact details are shown
_ACCEPTED = frozenset({*WORKING_STATUSES, *CLOSED_STATUSES})
#: what a partner reads in place of a contact detail it may not see yet
HIDDEN_TEXT = "Shown once the offer is accepted"


def settings(session: Session) -> ChannelSettings:
    """The channel's settings (an unsaved row of defaults when none was saved)."""
    row = session.get(ChannelSettings, _ROW_ID)
    return row if row is not None else ChannelSettings(id=_ROW_ID,
                                                       hide_contacts_until_accepted=True)


def save_settings(session: Session, user: Any, *, hide_contacts_until_accepted: bool
                  ) -> ChannelSettings:
    """Change the channel's settings (a manager or admin); flushes, never commits."""
    row = session.get(ChannelSettings, _ROW_ID)
    if row is None:
        row = ChannelSettings(id=_ROW_ID)
        session.add(row)
    row.hide_contacts_until_accepted = hide_contacts_until_accepted
    row.updated_at = utcnow()
    row.updated_by_id = getattr(user, "id", None)
    session.flush()
    return row


def contacts_hidden(session: Session) -> bool:
    """Partners see contact details only after accepting (the setting, on by default)."""
    return bool(settings(session).hide_contacts_until_accepted)


def contact_reader(session: Session, user: Any) -> Callable[[Lead], bool]:
    """For one viewer (who may see the leads it is given): may it read a lead's phone,
    email and street? Staff always; a partner once the lead was accepted (by it, or by its
    own dealer), for its own captures, or when the setting is off. The setting is read
    once, and only when a lead needs it."""
    if getattr(user, "is_staff", False):
        return lambda lead: True
    partner_id = getattr(user, "partner_id", None)
    hidden: list[bool] = []

    def may_read(lead: Lead) -> bool:
        if partner_reads(lead.status, lead.owner_partner_id, partner_id, hidden=True):
            # (accepted, or its own capture: whatever the setting says)
            return True
        if not hidden:
            hidden.append(contacts_hidden(session))
        return not hidden[0]

    return may_read


def partner_reads(status: str, owner_partner_id: int | None, partner_id: int | None, *,
                  hidden: bool) -> bool:
    """The rule itself, for a lead as a list row has it: a partner reads the contact
    details of a lead accepted (or later), of its own capture, or all of them when the
    setting (``hidden``: ``contacts_hidden``) is off."""
    return (not hidden or status in _ACCEPTED
            or (partner_id is not None and owner_partner_id == partner_id))


def shown_name(lead: Lead, may_read: bool) -> str:
    """What a lead is called for a viewer: the person, else the company, else its email
    only where the viewer may read contact details (``contact_reader``); else ""."""
    return display_name(lead.first_name, lead.last_name, lead.company,
                        lead.email if may_read else "")


