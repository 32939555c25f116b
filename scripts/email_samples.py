"""Render one sample of every alert and digest the portal sends, into docs/emails/.

    .venv/bin/python scripts/email_samples.py [--out docs/emails] [--screenshots]

A throwaway instance (SQLite in a temporary folder) gets the demo data, then lives
through the events and the clocks that cause each email: a new offer, a forward, a
reassignment, reminders, escalations, the compliance gate and the digests. The emails are
the real ones, written by the real code to the development mail sink; one of each kind is
kept as ``<kind>.html`` and ``<kind>.txt`` (and, with --screenshots, a PNG of the HTML in
headless Chromium).
"""

from __future__ import annotations

import argparse
import email.policy
import os
import sys
import tempfile
from datetime import timedelta
from email import message_from_bytes
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

#: subject prefix -> the sample's file name
KINDS = {
    "New lead offered": "alert-offer",
    "Lead forwarded to you": "alert-forward",
    "Lead assigned to you by": "alert-assigned",  # by a colleague (before the next)
    "Lead assigned to you": "alert-reassign",
    "Lead taken back": "alert-taken-back",
    "Prospect asked again": "alert-repeat",
    "Reminder: offer waiting": "reminder-accept",
    "Reminder: first contact due": "reminder-contact",
    "Offer expired unanswered": "escalation-expired",
    "First contact is late": "escalation-contact-late",
    "Partner held back by the compliance gate": "escalation-gate",
    "Reminder: leads to bring up to date": "reminder-compliance",
    "Channel weekly digest": "digest-manager-weekly",
}


def live_through_it(app: object) -> None:
    from sqlalchemy import select

    from portal.capture.services import capture_inquiry
    from portal.core import lifecycle
    from portal.core.lifecycle import Actor
    from portal.core.models import Lead, LeadStatus, Partner, User, utcnow
    from portal.demo import load_demo
    from portal.dispatch import services as routing_service
    from portal.extensions import db
    from portal.notify import jobs, outbox

    session = db.session
    load_demo(session)
    session.commit()  # the demo's fresh offers and forwards alert their dealers
    now = utcnow()
    jobs.sweep(now=now + timedelta(hours=12, minutes=5))  # half the time to accept used

    dealer_user = session.scalars(select(User).where(User.email == "dealer1@demo.test")).one()
    manager = session.scalars(select(User).where(User.email == "manager@demo.test")).one()
    offered = list(session.scalars(select(Lead).where(
        Lead.assigned_partner_id == dealer_user.partner_id, Lead.status == LeadStatus.OFFERED)
        .order_by(Lead.offered_at.desc())))
    accepted, moved = offered[0], offered[1]
    lifecycle.accept(session, accepted, Actor.of(dealer_user))
    session.commit()
    # The firm's administrator gives it to a salesperson: "Lead assigned to you by …".
    from portal.core.assignment import assign

    sales = session.scalars(select(User).where(User.email == "sales1@demo.test")).one()
    assign(session, accepted, sales, Actor.of(dealer_user))
    session.commit()
    capture_inquiry(session, {
        "first_name": accepted.first_name, "last_name": accepted.last_name,
        "email": accepted.email, "phone": accepted.phone, "postal_code": accepted.postal_code,
        "comments": "Our old tractor burned in a barn fire. Can you bring a 45 hp one to "
                    "try this week?", "answers": {"timeline": "now", "budget": "approved"}},
        Actor.system("web-form"))
    other = session.scalars(select(Partner).where(
        Partner.id != dealer_user.partner_id, Partner.kind == "dealer",
        Partner.active.is_(True))).first()
    assert other is not None
    lifecycle.reassign(session, moved, other, Actor.of(manager),
                       reason="the customer asked for the dealer near his other farm")
    session.commit()
    assert accepted.offered_at is not None
    outbox.send_digests(frequency="daily", by_hand=True)
    outbox.send_digests(frequency="weekly", by_hand=True)
    jobs.sweep(now=accepted.offered_at + timedelta(hours=44, minutes=30))  # contact soon
    jobs.sweep(now=accepted.offered_at + timedelta(hours=49))  # contact late
    routing_service.expire_overdue_offers(session, now=now + timedelta(hours=25))
    session.commit()
    app.config["COMPLIANCE_GATE_MAX_OVERDUE"] = 3  # type: ignore[attr-defined]
    jobs.gate_check(now=now + timedelta(hours=25, minutes=1))
    # A channel manager's one-click reminder from the compliance list.
    from portal.reports.services import compliance_list, remind

    for row in compliance_list(session).items:
        if row.recipients:
            remind(session, row.partner, manager)
            session.commit()
            break


def kind_of(subject: str, to: str) -> str | None:
    for prefix, name in KINDS.items():
        if subject.startswith(prefix):
            return name
    if "daily digest" in subject:
        return "digest-distributor-daily" if to.startswith("distributor") \
            else "digest-partner-daily"
    return None


def collect(sink: Path, out: Path) -> dict[str, Path]:
    """The first email of each kind, written as .html and .txt."""
    out.mkdir(parents=True, exist_ok=True)
    kept: dict[str, Path] = {}
    for path in sorted(sink.glob("*.eml")):
        message = message_from_bytes(path.read_bytes(), policy=email.policy.default)
        name = kind_of(str(message["Subject"]), str(message["To"]))
        if name is None or name in kept:
            continue
        for part in message.walk():
            kind = part.get_content_type()
            if kind == "text/plain":
                header = f"To: {message['To']}\nSubject: {message['Subject']}\n\n"
                (out / f"{name}.txt").write_text(header + str(part.get_content()))
            elif kind == "text/html":
                (out / f"{name}.html").write_text(str(part.get_content()))
        kept[name] = out / f"{name}.html"
    return kept


def screenshots(kept: dict[str, Path]) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 680, "height": 900})
        for path in kept.values():
            page.set_content(path.read_text())
            page.screenshot(path=str(path.with_suffix(".png")), full_page=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=str(ROOT / "docs" / "emails"))
    parser.add_argument("--screenshots", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PORTAL_INSTANCE_PATH"] = tmp
        from flask_migrate import upgrade

        from portal import create_app

        sink = Path(tmp) / "sink"
        app = create_app({"SECRET_KEY": "samples", "HUEY_IMMEDIATE": True,
                          "MAIL_SERVER": None, "MAIL_SINK_DIR": str(sink),
                          "DATABASE_URL": f"sqlite:///{tmp}/portal.db",
                          "PORTAL_BASE_URL": "https://leads.example.com"})
        with app.app_context():
            upgrade(directory=str(ROOT / "migrations"))
            live_through_it(app)
            kept = collect(sink, Path(args.out))
    if args.screenshots:
        screenshots(kept)
    wanted = set(KINDS.values()) | {"digest-partner-daily", "digest-distributor-daily"}
    missing = sorted(wanted - set(kept))
    print(f"{len(kept)} samples in {args.out}" + (f"; missing: {', '.join(missing)}"
                                                   if missing else ""))


if __name__ == "__main__":
    main()
