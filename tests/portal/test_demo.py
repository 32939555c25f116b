"""The demo data: loaded once through the ``demo`` command, realistic, consistent, idempotent."""

from __future__ import annotations

import re
from collections import Counter
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import zipcodes
from sqlalchemy import func, select

from portal.capture.services import current_rules, inquiry_facts
from portal.core import lifecycle
from portal.core.models import (
    OPEN_STATUSES,
    Campaign,
    Competitor,
    EnrollmentStatus,
    Fulfilment,
    Lead,
    LeadEvent,
    LeadStatus,
    Notification,
    NurtureEnrollment,
    NurtureSend,
    NurtureStep,
    NurtureTrack,
    Offer,
    Partner,
    ProductLine,
    Source,
    Territory,
    User,
    utcnow,
)
from portal.demo import DEMO_LOGINS, DISTRIBUTORS, FRESH_OFFERS_PER_DEALER, PASSWORD, load_demo
from portal.dispatch.services import candidates_from
from portal.fulfilment.library import active_versions_for
from routing import LeadFacts, PartnerIndex, Point, TerritoryRule, parse_rule
from routing.scoring import evaluate


def count(session: Any, model: Any) -> int:
    return session.scalar(select(func.count()).select_from(model))


def table_counts(session: Any) -> dict[str, int]:
    models = (Partner, Territory, User, ProductLine, Competitor, Source, Campaign, Lead,
              LeadEvent, Offer)
    return {model.__name__: count(session, model) for model in models}


def test_demo_logins_are_distinct_demo_addresses():
    emails = [email for email, _ in DEMO_LOGINS]
    assert len(set(emails)) == len(emails)
    assert all(email.endswith("@demo.test") for email in emails)
    assert {"admin@demo.test", "manager@demo.test"} <= set(emails)
    assert all(what.strip() for _, what in DEMO_LOGINS)


def test_the_readme_lists_the_logins_the_demo_command_prints():
    """The README's login table promises what the command prints, login by login."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    rows = re.findall(r"^\| `([^`]+@demo\.test)` \| (.+?) \|$", readme, re.M)
    assert rows == DEMO_LOGINS


def test_demo_rules_are_written_as_the_one_parser_spells_them():
    # The demo's rule texts go through routing's parser like an import's; spelled
    # canonically, the explanations that quote them read the same as the engine's.
    texts = [f"region:{r}" for d in DISTRIBUTORS for r in d.regions]
    texts += [t for d in DISTRIBUTORS for t in d.extra_rules]
    texts += [t for d in DISTRIBUTORS for dealer in d.dealers for t in dealer.rules]
    kinds = {parse_rule(text).kind for text in texts}
    assert kinds == {"zip", "zip_prefix", "zip_range", "radius", "region", "country"}
    assert [str(parse_rule(text)) for text in texts] == texts


def test_demo_is_not_loaded_over_an_existing_demo_partner(session, make_partner):
    make_partner("HEARTLAND", kind="distributor")
    before = table_counts(session)
    assert load_demo(session) is False
    session.flush()
    assert table_counts(session) == before


def test_demo_command_loads_a_realistic_channel_once(app, runner, session, client,
                                                     smtp_server):
    # What `make run` runs: migrations (none left to run here), rollups, demo data.
    started = utcnow().replace(microsecond=0)
    result = runner.invoke(args=["prepare", "--demo"])
    assert result.exit_code == 0, result.output
    assert "Demo data loaded." in result.output
    assert "password for all: demo-password" in result.output
    for email, what in DEMO_LOGINS:
        assert email in result.output
        assert what in result.output

    _check_catalogue(session)
    _check_literature(session)
    mailed = {m["To"] for m in smtp_server.handler.messages}
    # The packs the worker sent during the load went by mail (the history's went long ago).
    sent_now = set(session.scalars(select(Lead.email).join(
        Fulfilment, Fulfilment.lead_id == Lead.id).where(Fulfilment.sent_at >= started)))
    assert len(sent_now) >= 4 * FRESH_OFFERS_PER_DEALER // 2
    assert sent_now <= mailed
    _check_partners(session)
    _check_leads(session)
    _check_consistency(session)
    _check_nurture(session)
    _check_form_look(client)
    _check_logins(session, client, app)
    _check_assignments(session)
    _check_tasks_and_appointments(session, client, app)

    # Idempotent: a second run (command or service) changes nothing.
    before = table_counts(session)
    again = runner.invoke(args=["demo"])
    assert again.exit_code == 0, again.output
    assert "already present; nothing changed" in again.output
    assert load_demo(session) is False
    assert table_counts(session) == before

    # Every printed login signs in with the demo password.
    app.config["WTF_CSRF_ENABLED"] = False
    for email, _ in DEMO_LOGINS:
        response = client.post("/auth/login", data={"email": email, "password": PASSWORD})
        assert response.status_code == 303, (email, response.get_data(as_text=True)[:300])
        assert client.get("/", follow_redirects=True).status_code == 200
        client.post("/auth/logout")
    refused = client.post("/auth/login", data={"email": "admin@demo.test", "password": "nope"})
    assert "Wrong email or password." in refused.get_data(as_text=True)


def _check_assignments(session: Any) -> None:
    """dealer1's firm shows who holds what: sales1 has leads of its own ("My leads"), new
    offers among them, and some open leads wait unassigned for someone to take them."""
    sales = session.scalars(select(User).where(User.email == "sales1@demo.test")).one()
    firm = sales.partner
    assert firm.name.startswith("North Iowa Implement") and not sales.partner_admin
    open_ = [str(s) for s in OPEN_STATUSES]
    mine = Counter(session.scalars(select(Lead.status).where(
        Lead.assigned_user_id == sales.id, Lead.status.in_(open_))))
    assert mine["offered"] == 2 and sum(mine.values()) >= 3
    unassigned = session.scalar(select(func.count()).select_from(Lead).where(
        Lead.assigned_partner_id == firm.id, Lead.status.in_(open_),
        Lead.assigned_user_id.is_(None)))
    assert unassigned >= 2
    # Assigned today, but their last activity is what their history left: a neglected
    # lead still sorts as one.
    touched = list(session.scalars(select(Lead.updated_at).where(
        Lead.assigned_user_id.is_not(None), Lead.status != "offered")))
    loaded = max(touched)
    assert touched and sum(1 for at in touched if (loaded - at).total_seconds() > 86_400) \
        >= len(touched) // 2
    # Every assignee is a user of the firm holding the lead.
    assert session.scalar(select(func.count()).select_from(Lead).join(
        User, User.id == Lead.assigned_user_id).where(
        User.partner_id != Lead.assigned_partner_id)) == 0


def _check_tasks_and_appointments(session: Any, client: Any, app: Any) -> None:
    """The demo dealer has follow-up tasks (one overdue, some due today) to see on its
    dashboard and in "Tasks due today"; the history's appointments have a time."""
    from portal.core.models import LeadEvent, Task

    dealer1 = session.scalars(select(User).where(User.email == "dealer1@demo.test")).one()
    mine = list(session.scalars(select(Task).where(Task.user_id == dealer1.id)))
    now = utcnow()
    assert len(mine) == 4 and all(t.is_open and t.partner_id == dealer1.partner_id
                                  and t.owner == dealer1 for t in mine)  # theirs to do
    assert len([t for t in mine if t.due_at < now]) == 1
    assert len([t for t in mine if now < t.due_at < now + timedelta(hours=24)]) == 2
    times = [e.data for e in session.scalars(
        select(LeadEvent).where(LeadEvent.kind == "appointment").limit(50))]
    assert times and all(d.get("time") and d.get("at") for d in times)
    app.config["WTF_CSRF_ENABLED"] = False
    client.post("/auth/login", data={"email": dealer1.email, "password": PASSWORD})
    page = client.get("/leads/tasks").get_data(as_text=True)
    assert "1 overdue" in page and "Promised a call about financing." in page
    client.post("/auth/logout")


def _check_catalogue(session: Any) -> None:
    assert set(session.scalars(select(ProductLine.code))) == {"TRC", "MWR", "UTV"}
    assert count(session, Competitor) == 8
    sources = {s.code: s.cost_per_lead for s in session.scalars(select(Source))}
    assert set(sources) == {"WEB", "SHOW", "CALL", "LIST", "REFER"}
    assert sources["SHOW"] > sources["LIST"] > 0
    campaigns = list(session.scalars(select(Campaign)))
    assert len(campaigns) == 6
    today = utcnow().date()
    for campaign in campaigns:
        assert campaign.cost > 0
        assert today - timedelta(days=120) <= campaign.starts_on <= campaign.ends_on
        # Past ones ended; the running one's form takes leads for weeks to come.
        assert (campaign.ends_on > today + timedelta(days=7)) == campaign.active


def _check_literature(session: Any) -> None:
    # A brochure per product line, a real PDF in the library, so demo packs have content.
    for line in session.scalars(select(ProductLine)):
        [(item, version)] = active_versions_for(session, line.id)
        assert item.title == f"{line.name} brochure" and version.page_count >= 1
    # The fresh inquiries (today's, through the capture path) that asked for it have
    # their pack sent by email (the tests' worker runs jobs at once).
    packs = session.scalars(select(Fulfilment)).all()
    fresh = [p for p in packs if p.requested_at > utcnow() - timedelta(hours=6)]
    assert len(fresh) >= 4 * FRESH_OFFERS_PER_DEALER // 2
    assert {(p.channel, p.status) for p in packs} == {("email", "sent")}
    # As in the product: the worker sends a pack a minute or two after the inquiry (the
    # fresh ones, sent for real by the tests' worker, a few minutes after their
    # back-dated capture), never hours later; the history's leads that asked have theirs.
    for pack in packs:
        lead = session.get(Lead, pack.lead_id)
        assert lead.wants_literature and lead.status != "disqualified", lead.id
        assert pack.requested_at == lead.created_at, lead.id
        assert timedelta(0) < pack.sent_at - pack.requested_at < timedelta(minutes=15), (
            lead.id, pack.requested_at, pack.sent_at)
        assert pack.sent_to == lead.email
        sent = session.scalars(select(LeadEvent.at).where(
            LeadEvent.lead_id == lead.id, LeadEvent.kind == "literature_sent")).all()
        assert sent == [pack.sent_at], lead.id
    # Every lead that asked (and can be written to) has its pack, but one captured in the
    # last minutes, which is still with the worker.
    with_pack = {p.lead_id for p in packs}
    asked = session.scalars(select(Lead.id).where(
        Lead.wants_literature, Lead.status != "disqualified", Lead.email != "",
        Lead.created_at < utcnow() - timedelta(minutes=10))).all()
    assert len(asked) > 500 and set(asked) <= with_pack


def _check_partners(session: Any) -> None:
    distributors = list(session.scalars(select(Partner).where(Partner.kind == "distributor")))
    dealers = list(session.scalars(select(Partner).where(Partner.kind == "dealer")))
    assert len(distributors) == 4
    assert len(dealers) == 40
    assert Counter(d.parent_id for d in dealers) == {d.id: 10 for d in distributors}
    assert Counter(d.forwarding for d in distributors) == {"auto": 2, "manual": 2}
    assert [d.code for d in dealers if not d.active] != []
    assert len([d for d in dealers if not d.active]) == 1
    assert any(d.capacity is None for d in dealers)
    assert any(d.capacity is not None for d in dealers)
    assert len({tuple(line.code for line in d.product_lines) for d in dealers}) >= 4

    # Real postal codes with their real city and state.
    for partner in distributors + dealers:
        [place] = zipcodes.matching(partner.postal_code)
        assert (partner.city, partner.region) == (place["city"], f"US-{place['state']}")
        assert abs(partner.latitude - float(place["lat"])) < 0.01

    kinds = set(session.scalars(select(Territory.kind)))
    # Stored rows read back through the one parser unchanged (no second spelling).
    for territory in session.scalars(select(Territory)):
        assert parse_rule(territory.rule) == TerritoryRule(territory.kind, territory.value)
    assert kinds == {"zip", "zip_prefix", "zip_range", "radius", "region", "country"}
    regions = set(session.scalars(select(Territory.value).where(Territory.kind == "region")))
    assert {"US-IA", "US-MN", "US-TX", "US-OK", "US-GA", "US-OH", "US-IN"} <= regions

    partner_users = list(session.scalars(select(User).where(User.role == "partner")))
    assert {u.partner_id for u in partner_users} == {p.id for p in distributors + dealers}
    # What the command prints about each partner login is true of its partner.
    for email, what in DEMO_LOGINS:
        user = session.scalars(select(User).where(User.email == email)).one()
        if user.partner is not None:
            assert what.startswith(user.partner.name), email
            assert ("paused" in what) == (not user.partner.active), email
    # Each active demo dealer has offers waiting, enough to try every flow a few times.
    for email, _ in DEMO_LOGINS:
        user = session.scalars(select(User).where(User.email == email)).one()
        if user.partner and user.partner.kind == "dealer" and user.partner.active:
            waiting = session.scalar(select(func.count()).select_from(Lead).where(
                Lead.assigned_partner_id == user.partner_id, Lead.status == "offered"))
            assert waiting >= FRESH_OFFERS_PER_DEALER, (email, waiting)
    dealer1 = session.scalars(select(User).where(User.email == "dealer1@demo.test")).one()
    assert dealer1.partner_admin and dealer1.partner.kind == "dealer"
    assert session.scalars(select(User.role).where(User.email == "manager@demo.test")).one() \
        == "manager"


def _check_leads(session: Any) -> None:
    total = count(session, Lead)
    assert 1900 <= total <= 2100
    statuses = Counter(dict(session.execute(
        select(Lead.status, func.count()).group_by(Lead.status)).all()))
    assert set(statuses) == {s.value for s in LeadStatus} - {"captured"}
    assert 0.08 < statuses["disqualified"] / total < 0.17
    assert 0.14 < statuses["nurture"] / total < 0.26
    assert statuses["won"] > 100 and statuses["lost"] > 100

    now = utcnow()
    first, last = session.execute(select(func.min(Lead.created_at),
                                         func.max(Lead.created_at))).one()
    assert now - timedelta(days=121) < first < now - timedelta(days=100)
    assert now - timedelta(hours=3) < last < now
    recent = session.scalar(select(func.count()).select_from(Lead)
                            .where(Lead.created_at >= now - timedelta(days=30)))
    early = session.scalar(select(func.count()).select_from(Lead)
                           .where(Lead.created_at < now - timedelta(days=90)))
    assert recent > early  # more recent days have more leads
    assert session.scalar(select(func.max(LeadEvent.at))) < now

    ranks = set(session.scalars(select(Lead.rank).where(Lead.status != "disqualified")))
    assert {"hot", "warm", "cold"} <= ranks
    # Every lead was scored by the rules engine: its rank is what the thresholds say, and
    # its verdict what the rules give for what it sent (a hand-raise makes it hot).
    rules = current_rules(session)
    hand_raised = set(session.scalars(select(LeadEvent.lead_id).where(
        LeadEvent.from_status == "nurture", LeadEvent.to_status == "qualified")))
    for lead in session.scalars(select(Lead)):
        expected = "hot" if lead.score >= rules.hot_at else (
            "warm" if lead.score >= rules.warm_at else "cold")
        assert lead.rank == expected, (lead.id, lead.score, lead.rank)
        first = session.scalars(select(LeadEvent.to_status).where(
            LeadEvent.lead_id == lead.id, LeadEvent.kind != "captured")
            .order_by(LeadEvent.seq).limit(1)).one()
        if lead.id not in hand_raised and lead.inquiries == 1 and not lead.engagements:
            assert first == evaluate(rules, inquiry_facts(lead)).outcome, lead.id
    won = list(session.scalars(select(Lead.won_amount).where(Lead.status == "won")))
    assert min(won) >= Decimal(8000) and max(won) <= Decimal(60000)

    lost = list(session.scalars(select(Lead).where(Lead.status == "lost")))
    to_competitor = [lead for lead in lost if lead.lost_reason == "competitor"]
    assert 0.45 < len(to_competitor) / len(lost) < 0.75
    assert any(lead.lost_competitor_id for lead in to_competitor)
    assert any(lead.lost_competitor_other for lead in to_competitor)

    sample = session.scalars(select(Lead).where(Lead.status != "disqualified")
                             .order_by(Lead.created_at).limit(50)).all()
    for lead in sample:
        assert lead.email.endswith(("@example.com", "@example.net"))
        assert "555-" in lead.phone
        assert set(lead.answers) == {"timeline", "budget", "role"}
        assert lead.source_id is not None
        assert lead.product_line_id is not None
    assert session.scalar(select(func.count()).select_from(Lead)
                          .where(Lead.campaign_id.is_not(None))) > total / 5

    # Accepted leads with no outcome 45 days after the offer: the overdue list has work.
    overdue = session.scalar(select(func.count()).select_from(Lead).where(
        Lead.status.in_(["accepted", "contacted", "appointment", "quoted"]),
        Lead.offered_at < now - timedelta(days=45)))
    assert overdue > 10

    responses = Counter(dict(session.execute(
        select(Offer.response, func.count()).group_by(Offer.response)).all()))
    assert {"pending", "accepted", "declined", "expired", "forwarded", "withdrawn"} <= set(
        responses)
    methods = set(session.scalars(select(Offer.method)))
    assert methods == {"rule", "forward", "manual"}


def _check_consistency(session: Any) -> None:
    # The counters the lifecycle kept are exactly what a recount finds.
    assert lifecycle.recount_open_leads(session) == 0

    # A lead offered by the rules sits at a postal code its partner's territory covers
    # (forwards and manual placements are the distributor's or manager's choice).
    by_rule = session.execute(
        select(Lead, Offer.partner_id).join(Offer, Offer.lead_id == Lead.id)
        .where(Offer.method == "rule").order_by(Offer.id).limit(300)
    ).all()
    partners = {p.id: p for p in session.scalars(select(Partner))}
    # The engine itself judges the demo's choices, so the demo cannot drift from it.
    index = PartnerIndex.build(candidates_from(partners.values()))
    assert len(by_rule) == 300
    for lead, partner_id in by_rule:
        partner = partners[partner_id]
        assert lead.product_line in partner.product_lines, lead.id
        facts = LeadFacts(country=lead.country, postal_code=lead.postal_code,
                          region=lead.region, location=Point(lead.latitude, lead.longitude),
                          product_line=None, rank=None)
        matched = {m.candidate.id for m in index.match(facts, parent_id=partner.parent_id)}
        assert partner_id in matched, (partner.code, lead.postal_code)

    # Every lead's events form one unbroken chain ending in its status.
    chains: dict[Any, list[Any]] = {}
    rows = session.execute(select(LeadEvent.lead_id, LeadEvent.kind, LeadEvent.from_status,
                                  LeadEvent.to_status).order_by(LeadEvent.at, LeadEvent.seq))
    for row in rows:
        chains.setdefault(row.lead_id, []).append(row)
    leads = {row.id: row for row in session.execute(select(Lead.id, Lead.status, Lead.version))}
    assert set(chains) == set(leads)
    for lead_id, events in chains.items():
        assert events[0].kind == "captured"
        moves = [e for e in events if e.to_status is not None]
        for before, after in zip(moves, moves[1:], strict=False):
            assert after.from_status == before.to_status, lead_id
        assert moves[-1].to_status == leads[lead_id].status
        assert leads[lead_id].version == len(events)




def _check_nurture(session: Any) -> None:
    """Nurture leads are on tracks that exist, emailed on the tracks' schedule."""
    tracks = {t.id: t for t in session.scalars(select(NurtureTrack))}
    assert {t.product_line.code for t in tracks.values()} == {"TRC", "MWR", "UTV"}
    steps = {t.id: sorted(session.scalars(select(NurtureStep).where(
        NurtureStep.track_id == t.id)), key=lambda step: step.position) for t in tracks.values()}
    assert all(len(s) >= 2 for s in steps.values())
    enrollments = {e.lead_id: e for e in session.scalars(select(NurtureEnrollment))}
    nurture = session.scalars(select(Lead).where(Lead.status == "nurture")).all()
    assert len(nurture) > 200
    now = utcnow()
    for lead in nurture:
        enrollment = enrollments[lead.id]  # every one is on a track
        track = tracks[enrollment.track_id]
        assert track.active and track.product_line_id == lead.product_line_id, lead.id
        assert enrollment.enrolled_at - lead.created_at < timedelta(minutes=10), lead.id
        assert enrollment.status in (EnrollmentStatus.ACTIVE, EnrollmentStatus.FINISHED)
    # Hand-raisers left nurture from a track, after an email reached them.
    raised = dict(session.execute(select(LeadEvent.lead_id, LeadEvent.at).where(
        LeadEvent.from_status == "nurture", LeadEvent.to_status == "qualified")).all())
    assert len(raised) > 20
    for lead_id, at in raised.items():
        assert enrollments[lead_id].hand_raised_at == at, lead_id
    sends = session.scalars(select(NurtureSend)).all()
    by_enrollment: dict[int, list[Any]] = {}
    for send in sends:
        by_enrollment.setdefault(send.enrollment_id, []).append(send)
    for enrollment in enrollments.values():
        done = sorted(by_enrollment.get(enrollment.id, []), key=lambda send: send.sent_at)
        track_steps = steps[enrollment.track_id]
        # The emails went in the track's order, each when due and before now.
        assert [send.step_id for send in done] == [s.id for s in track_steps[:len(done)]]
        assert all(s.status == "sent" and s.sent_at < now for s in done)
        if enrollment.status == EnrollmentStatus.ACTIVE:
            assert enrollment.next_due_at > now - timedelta(minutes=10), enrollment.id
        if enrollment.hand_raised_at is not None:
            assert done and done[0].sent_at < enrollment.hand_raised_at
            assert all(s.sent_at <= enrollment.hand_raised_at for s in done)
    # The lead's timeline says when it was enrolled, in the event chain.
    enrolled = session.scalar(select(func.count()).select_from(LeadEvent).where(
        LeadEvent.kind == "nurture_enrolled"))
    assert enrolled == len(enrollments)


def _check_form_look(client: Any) -> None:
    """The running campaign's form shows the look it was given, from the portal."""
    page = client.get("/f/FINANCE-0").get_data(as_text=True)
    assert '<body class="public branded">' in page and 'class="brand-logo"' in page
    assert "Tell us what you need and the authorised dealer" in page
    logo = re.search(r'src="(/f/FINANCE-0/logo\?v=\d+)"', page)
    assert logo and client.get(logo.group(1)).mimetype == "image/png"


def _check_logins(session: Any, client: Any, app: Any) -> None:
    """What each printed login line says is true once signed in as it."""
    app.config["WTF_CSRF_ENABLED"] = False
    pages = {"admin@demo.test": ["/manage/rules/", "/manage/partners",
                                 "/manage/product-lines", "/manage/users"],
             "manager@demo.test": ["/leads/search", "/leads/queue", "/reports/compliance"]}
    for email, what in DEMO_LOGINS:
        user = session.scalars(select(User).where(User.email == email)).one()
        assert client.post("/auth/login", data={"email": email, "password": PASSWORD}
                           ).status_code == 303
        for url in pages.get(email, []):
            assert client.get(url).status_code == 200, (email, url)
        partner = user.partner
        if partner is not None:
            assert ("(partner admin)" in what) == (user.partner_admin
                                                   and partner.kind == "dealer"), email
            if partner.kind == "distributor":
                assert ("auto" in what) == (partner.forwarding == "auto"), email
                assert ("manual" in what) == (partner.forwarding == "manual"), email
                assert ("national" in what) == any(
                    t.kind == "country" for t in partner.territories), email
            else:
                assert f"{partner.city} {partner.region[3:]}" in what, email
            home = client.get("/", follow_redirects=True).get_data(as_text=True)
            assert ("Paused: you get no new offers" in home) == ("paused" in what), email
            # A working dealer has offers to accept; a distributor that forwards by hand
            # has offers to pass on to its dealers.
            if partner.active and (partner.kind == "dealer" or "manual" in what):
                inbox = client.get("/leads/").get_data(as_text=True)
                assert "lead-card" in inbox, email
        client.post("/auth/logout")
    # The README's try-it: an inquiry for ZIP 50401 alerts distributor1 within seconds.
    from portal.capture.services import capture_inquiry
    from portal.core.lifecycle import Actor

    result = capture_inquiry(session, {
        "first_name": "Readme", "last_name": "Reader", "email": "readme.reader@example.org",
        "postal_code": "50401", "product_line": "TRC",
        "answers": {"timeline": "now", "budget": "approved", "role": "decision_maker"},
    }, Actor.system("web-form"))
    session.flush()
    distributor1 = session.scalars(select(User).where(
        User.email == "distributor1@demo.test")).one()
    assert result.lead.assigned_partner_id == distributor1.partner_id
    assert session.scalar(select(func.count()).select_from(Notification).where(
        Notification.lead_id == result.lead.id, Notification.user_id == distributor1.id)) == 1
