"""Who gets which email and when: each user's choices, their firm's defaults, the outbox.

Every alert and digest is a ``Notification`` row first (DESIGN §3): written in the
transaction of the event that causes it (or keyed on user and period), nudged after
commit, claimed and committed before SMTP, and swept up when a nudge was lost.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from flask import current_app
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from portal.core import jobs, mail
from portal.core.errors import InvalidInput
from portal.core.jobs import claim_row, due_ids, enqueue_after_commit
from portal.core.localtime import (  # noqa: F401 (portal_zone, zone: the area uses them)
    portal_zone,
    time_zones,
    typed_zone,
    zone,
    zone_name,
)
from portal.core.models import (
    DEFAULT_ALERTS,
    DEFAULT_DIGEST,
    DEFAULT_DIGEST_HOUR,
    STAFF_DIGEST,
    AlertChoice,
    DigestFrequency,
    MailPreference,
    Notification,
    Partner,
    Role,
    User,
    utcnow,
)

#: the job that sends one notification, nudged after the commit that wrote it
SEND_JOB = "send_notification"

ALERT_LABELS = {
    AlertChoice.EVERY: "Every offer, reminder and escalation",
    AlertChoice.DIGEST: "Escalations only; the rest in my digest",
    AlertChoice.OFF: "No alert emails",
}
DIGEST_LABELS = {
    DigestFrequency.DAILY: "Daily",
    DigestFrequency.WEEKLY: "Weekly (Mondays)",
    DigestFrequency.OFF: "Never",
}


# --- time zones ---------------------------------------------------------------------------


def _check_zone(name: str, field: str) -> str:
    found = typed_zone(name, field)
    return found.key if found is not None else ""


# --- choices ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Choices:
    """What one user gets, once their own choices and their firm's defaults are merged."""

    alerts: str
    frequency: str
    hour: int
    time_zone: str

    @property
    def wants_alerts(self) -> bool:
        return self.alerts == AlertChoice.EVERY

    @property
    def wants_escalations(self) -> bool:
        return self.alerts != AlertChoice.OFF


def merge(user: User, pref: MailPreference | None, partner: Partner | None) -> Choices:
    """``user``'s own choices over their firm's defaults over the portal's."""
    pref_alerts = pref.alerts if pref else None
    pref_frequency = pref.frequency if pref else None
    if partner is not None and user.role == Role.PARTNER:
        firm_alerts, firm_frequency = partner.alert_default, partner.digest_default
        firm_zone = partner.time_zone
    else:
        firm_alerts, firm_frequency = str(DEFAULT_ALERTS), str(STAFF_DIGEST)
        firm_zone = ""
    hour = pref.digest_hour if pref and pref.digest_hour is not None else DEFAULT_DIGEST_HOUR
    return Choices(
        alerts=pref_alerts or firm_alerts or str(DEFAULT_ALERTS),
        frequency=pref_frequency or firm_frequency or str(DEFAULT_DIGEST),
        hour=hour,
        time_zone=zone_name(pref.time_zone if pref else None, firm_zone),
    )


def choices(session: Session, user: User) -> Choices:
    """What ``user`` gets now."""
    return merge(user, session.get(MailPreference, user.id), user.partner)


def own_preference(session: Session, user: User) -> MailPreference | None:
    """The user's own row (None: everything is their firm's default)."""
    return session.get(MailPreference, user.id)


def _one_of(value: str, allowed: Iterable[str], field: str, message: str) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if value not in set(allowed):
        raise InvalidInput(message, {field: message})
    return value


def save_choices(session: Session, user: User, *, alerts: str, frequency: str, hour: Any,
                 time_zone: str) -> None:
    """Store ``user``'s choices; an empty value means "my firm's default"."""
    alerts_value = _one_of(alerts, [a.value for a in AlertChoice], "alerts",
                           "Pick which alerts you want.")
    frequency_value = _one_of(frequency, [f.value for f in DigestFrequency], "frequency",
                              "Pick how often the digest comes.")
    hour_value: int | None = None
    if hour not in (None, ""):
        try:
            hour_value = int(hour)
        except (TypeError, ValueError):
            hour_value = -1
        if not 0 <= hour_value <= 23:
            raise InvalidInput("Pick an hour from 0 to 23.", {"hour": "Pick an hour."})
    zone_value = _check_zone(time_zone, "time_zone") or None
    pref = session.get(MailPreference, user.id)
    if pref is None:
        pref = MailPreference(user_id=user.id)
        session.add(pref)
    pref.alerts, pref.frequency = alerts_value, frequency_value
    pref.digest_hour, pref.time_zone = hour_value, zone_value
    pref.updated_at = utcnow()
    session.flush()


def save_firm_defaults(session: Session, partner: Partner, *, alerts: str, frequency: str,
                       time_zone: str) -> None:
    """A partner administrator sets what the firm's users get unless they choose."""
    partner.alert_default = _one_of(alerts, [a.value for a in AlertChoice], "alerts",
                                    "Pick which alerts your users get.") or str(DEFAULT_ALERTS)
    partner.digest_default = _one_of(
        frequency, [f.value for f in DigestFrequency], "frequency",
        "Pick how often the digest comes.") or str(DEFAULT_DIGEST)
    partner.time_zone = _check_zone(time_zone, "time_zone")
    session.flush()


def turn_off(session: Session, user: User, what: str) -> None:
    """The unsubscribe link: no more digests ("digest"), or no more alerts ("alerts")."""
    pref = session.get(MailPreference, user.id)
    if pref is None:
        pref = MailPreference(user_id=user.id)
        session.add(pref)
    if what == "alerts":
        pref.alerts = AlertChoice.OFF
    else:
        pref.frequency = DigestFrequency.OFF
    pref.updated_at = utcnow()
    session.flush()


# --- unsubscribe tokens -------------------------------------------------------------------

UNSUBSCRIBE_WHAT = ("digest", "alerts")


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt="notify-unsubscribe")


def unsubscribe_token(user: User, what: str) -> str:
    """A link's token that turns ``what`` off for ``user``, with no sign-in (a mail
    client's one-click unsubscribe has none). It never expires: unsubscribing must work."""
    return _serializer().dumps([user.id, what])


def read_unsubscribe_token(token: str) -> tuple[int, str] | None:
    """(user id, what) from a token this portal signed, else None."""
    try:
        user_id, what = _serializer().loads(token)
    except (BadSignature, TypeError, ValueError):
        return None
    if not isinstance(user_id, int) or what not in UNSUBSCRIBE_WHAT:
        return None
    return user_id, what


# --- recipients ---------------------------------------------------------------------------


def people(session: Session, partner_ids: Iterable[int], *, admins_only: bool = False,
           user_ids: Iterable[int] | None = None) -> list[tuple[User, Choices]]:
    """The active users of these partners (only those of ``user_ids``, when given: the
    leads' assignees) with what each wants (one query)."""
    ids = sorted({pid for pid in partner_ids if pid is not None})
    if not ids:
        return []
    query = (select(User, MailPreference, Partner)
             .join(Partner, Partner.id == User.partner_id)
             .outerjoin(MailPreference, MailPreference.user_id == User.id)
             .where(User.partner_id.in_(ids), User.active.is_(True),
                    User.role == Role.PARTNER)
             .order_by(User.id))
    if admins_only:
        query = query.where(User.partner_admin.is_(True))
    if user_ids is not None:
        query = query.where(User.id.in_(sorted(set(user_ids))))
    return [(user, merge(user, pref, partner)) for user, pref, partner in session.execute(query)]


def managers(session: Session) -> list[tuple[User, Choices]]:
    """The channel managers, with what each wants."""
    query = (select(User, MailPreference)
             .outerjoin(MailPreference, MailPreference.user_id == User.id)
             .where(User.active.is_(True), User.role == Role.MANAGER).order_by(User.id))
    return [(user, merge(user, pref, None)) for user, pref in session.execute(query)]


# --- writing rows -------------------------------------------------------------------------


def _insert(session: Session) -> Any:
    dialect = session.get_bind().dialect.name
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(Notification)


def write(session: Session, rows: Sequence[dict[str, Any]], *, nudge: bool = True,
          now: datetime | None = None) -> list[int]:
    """Insert these notifications, each once: a row whose key exists already is left as
    it is (a repeated scan, two sweepers at once). Returns the new ids; with ``nudge``
    each is sent by a job once the caller commits (else the caller sends them: a sweep
    that goes on to send what is due)."""
    if not rows:
        return []
    now = now or utcnow()
    values = [{"period": "", "data": {}, "status": jobs.PENDING, "attempts": 0,
               "next_attempt_at": now, "created_at": now, "last_error": "",
               "lead_id": None, "partner_id": None, **row} for row in rows]
    session.flush()  # the event and the lead go in first: the rows refer to them
    statement = (_insert(session).values(values)
                 .on_conflict_do_nothing(index_elements=["key"]).returning(Notification.id))
    ids = list(session.scalars(statement))
    if nudge:
        for row_id in ids:
            enqueue_after_commit(session, SEND_JOB, row_id)
    return ids


# --- the outbox step ------------------------------------------------------------------------


def claim(session: Session, row_id: int, now: datetime) -> bool:
    return claim_row(session, Notification, row_id, now)


def skip(session: Session, row: Notification, why: str) -> None:
    """Nothing to send after all (the lead moved on, the user left, nothing to say)."""
    row.status, row.claimed_at, row.last_error = "skipped", None, why[:2000]
    session.flush()


def record_sent(session: Session, row_id: int, now: datetime) -> None:
    jobs.record_sent(session, Notification, row_id, now)


def record_failure(session: Session, row_id: int, message: str, now: datetime,
                   permanent: bool = False) -> str:
    """After a failed try: pending again with a doubling wait of at most an hour (the mail
    policy), failed once it gives up (36 h with the defaults) or at once for a bounce.
    Failures show on the managers' outgoing-mail page."""
    return mail.record_failed_try(session, Notification, row_id, message, now,
                                  permanent=permanent)


def requeue_stale(session: Session, now: datetime) -> int:
    """Rows a dead worker left claimed go again (at least once; a copy that went twice
    carries the same Message-ID, so it reads as one alert)."""
    return mail.requeue_stale(session, Notification, now)


#: what a bounce's last_error starts with (core.mail's send step writes it)
BOUNCE_MARK = "Address refused (bounced)"
#: after a bounce, the address gets nothing more for this long (unless it changes)
BOUNCE_QUIET = timedelta(days=7)


def bounced_lately(session: Session, user: User, row_id: int, now: datetime) -> str | None:
    """Why not to send to ``user`` now: their address bounced in the last week. Mailing
    a dead address again and again hurts the portal's standing with mail providers; the
    bounce shows on the outgoing-mail page, and a changed address is tried at once."""
    row = session.scalars(
        select(Notification).where(Notification.user_id == user.id, Notification.id != row_id,
                                   Notification.status == "failed",
                                   Notification.created_at > now - BOUNCE_QUIET,
                                   Notification.last_error.startswith(BOUNCE_MARK))
        .order_by(Notification.id.desc()).limit(1)).first()
    if row is None or user.email.lower() not in row.last_error.lower():
        return None
    return f"Not sent: {user.email} bounced an email on {row.created_at:%Y-%m-%d}."


def due(session: Session, now: datetime, limit: int, *, digests: bool | None = None
        ) -> list[int]:
    """Pending rows whose time has come: all, or only digests (True) or only alerts (False)."""
    if digests is None:
        return due_ids(session, Notification, now, limit)
    kind = Notification.kind == "digest"
    return due_ids(session, Notification, now, limit, kind if digests else ~kind)


# --- the managers' view of it ---------------------------------------------------------------


def outbox_counts(session: Session, since: datetime) -> dict[str, int]:
    """Notifications written since ``since``, by status."""
    rows = session.execute(select(Notification.status, func.count())
                           .where(Notification.created_at >= since)
                           .group_by(Notification.status))
    return {status: count for status, count in rows}



def retry(session: Session, row_id: int) -> Notification:
    """An admin sends a failed notification again (once more, from now)."""
    row = session.get(Notification, row_id)
    if row is None or row.status != "failed":
        raise InvalidInput("Only a failed email can be sent again.")
    _send_again(session, Notification.id == row_id)
    enqueue_after_commit(session, SEND_JOB, row_id)
    return row


def _send_again(session: Session, which: Any) -> int:
    result = session.execute(
        update(Notification).where(which, Notification.status == "failed")
        .values(status=jobs.PENDING, attempts=0, next_attempt_at=utcnow(), claimed_at=None)
        .execution_options(synchronize_session="fetch"))
    return result.rowcount  # type: ignore[attr-defined, no-any-return]
