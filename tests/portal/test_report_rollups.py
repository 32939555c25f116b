"""The reports' rollups give the same figures as a live read of every offer and lead, on
both databases: after a random history of offers, accepts, forwards, declines, expiries,
reassignments, contacts, outcomes and re-opened leads written through the lifecycle;
after changes to leads counted months ago; and after a rebuild from scratch."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.core import lifecycle, rollups
from portal.core.errors import InvalidInput, InvalidTransition
from portal.core.lifecycle import Actor
from portal.core.models import (
    Competitor,
    DurationMonth,
    Lead,
    LeadDay,
    LeadFacts,
    OfferMonth,
    utcnow,
)
from portal.extensions import db
from portal.reports import metrics, overview, speed

DAY, HOUR, MINUTE = timedelta(days=1), timedelta(hours=1), timedelta(minutes=1)


@pytest.fixture
def history(app, session, make_partner, make_user, make_product_line):
    """Five dealers (two under a distributor), 90 leads over the last four months, each
    worked at random through the lifecycle, every step in the past."""
    rng = random.Random(14)
    session.add(Competitor(name="Deere"))
    line = make_product_line("TRC")
    d = make_partner("D", name="Delta Distributor", kind="distributor")
    dealers = [make_partner(code, name=f"Dealer {code}") for code in ("A", "B", "E")]
    dealers += [make_partner(code, name=f"Dealer {code}", parent_id=d.id) for code in ("C", "F")]
    partners = [*dealers, d]
    users = {p.id: make_user("partner", partner=p) for p in partners}
    manager = make_user("manager")
    session.commit()
    now = utcnow()
    start = now - 120 * DAY

    for n in range(90):
        t = start + timedelta(seconds=rng.randint(0, 110 * 86400))
        lead = Lead(first_name="Pat", last_name=f"P{n}", email=f"p{n}@example.com",
                    postal_code="50401", country="US", region="US-IA", product_line=line,
                    created_at=t)
        lifecycle.capture(session, lead, Actor.system("test"), now=t)
        if rng.random() < 0.1:  # never qualified, never offered
            continue
        # around the one-minute boundary, to the microsecond (halves round up)
        t += timedelta(seconds=rng.choice([5, 30, 59, 59.6, 60.4, 60.5, 61, 300, 4000]))
        lifecycle.qualify(session, lead, "qualified", reason="test", score=80,
                          rank=rng.choice(["hot", "warm"]), actor=Actor.system("test"), now=t)
        if rng.random() < 0.1:
            continue
        partner = rng.choice(partners)
        lifecycle.offer(session, lead, partner, Actor.system(), now=t)
        session.commit()
        for _step in range(rng.randint(1, 7)):
            t += timedelta(seconds=rng.randint(60, 4 * 86400),
                           microseconds=rng.randint(0, 999_999))
            if t >= now - MINUTE:
                break
            holder = lead.assigned_partner
            actor = Actor.of(users[holder.id]) if holder is not None else Actor.of(manager)
            action = rng.choice(["accept", "accept", "decline", "expire", "forward",
                                 "contact", "contact", "attempt", "won", "lost",
                                 "no_interest",
                                 "reopen", "reassign", "withdraw"])
            try:
                if action == "accept":
                    lifecycle.accept(session, lead, actor, now=t)
                elif action == "decline":
                    lifecycle.decline(session, lead, actor, reason="out_of_area", now=t)
                elif action == "expire":
                    lifecycle.expire(session, lead, now=t)
                elif action == "forward" and holder is d:
                    lifecycle.forward(session, lead, rng.choice(dealers[3:]), actor, now=t)
                elif action == "contact":
                    lifecycle.advance(session, lead, "contacted", actor, now=t)
                elif action == "attempt":  # no answer: counts as follow-up, stage stays
                    lifecycle.attempt(session, lead, actor, data={"channel": "phone"}, now=t)
                elif action == "won":
                    lifecycle.close(session, lead, "won", actor,
                                    data={"amount": str(rng.randint(1, 90) * 100)}, now=t)
                elif action == "lost":
                    lifecycle.close(session, lead, "lost", actor,
                                    data={"reason": "competitor", "competitor": "deere"},
                                    now=t)
                elif action == "no_interest":
                    lifecycle.close(session, lead, "no_interest", actor, now=t)
                elif action == "reopen":
                    lifecycle.reopen(session, lead, Actor.of(manager), reason="again", now=t)
                elif action == "reassign":
                    lifecycle.reassign(session, lead, rng.choice(partners), Actor.of(manager),
                                       reason="by hand", now=t)
                elif action == "withdraw":
                    lifecycle.withdraw(session, lead, Actor.of(manager), reason="back",
                                       now=t)
            except (InvalidTransition, InvalidInput):
                session.rollback()  # not allowed in this state: the next step, then
                lead = session.get(Lead, lead.id)
                continue
            session.commit()
        session.commit()
    session.commit()  # a lead captured last and never qualified (the rollups count commits)
    return {"partners": partners, "now": now}


def scopes(now: datetime, partners: list[Any]) -> list[metrics.Scope]:
    today = metrics.last_days(365)
    mid = (now - 100 * DAY).replace(hour=0, minute=0, second=0, microsecond=0)
    return [today, metrics.last_days(90),
            replace(today, since=mid),
            replace(today, partner_ids=frozenset(p.id for p in partners[3:]))]


def same(rolled: metrics.Figures, live: metrics.Figures) -> None:
    assert rolled.as_json() == live.as_json()


def check_everything(session, history) -> None:
    """Every scope, every grouping: the rollups' answer is the live answer."""
    for scope in scopes(history["now"], history["partners"]):
        assert metrics.plan(session, scope) is not None, scope  # the rollups are read
        live = replace(scope, live=True)
        for by in (metrics.BY_PARTNER, metrics.BY_ROLLUP, metrics.BY_NOTHING):
            rolled = metrics.figures_by(session, scope, by)
            read = metrics.figures_by(session, live, by)
            assert set(rolled) == set(read), (scope, by)
            for key in read:
                same(rolled[key], read[key])
        if scope.partner_ids is None:
            assert overview.rolled_up(session, scope)
            ov, ov_live = overview.overview(session, scope), overview.overview(session, live)
            assert ov.total == ov_live.total
            assert [w.counts for w in ov.weeks] == [w.counts for w in ov_live.weeks]
            assert ov.median_hours_to_offer == ov_live.median_hours_to_offer
            assert ov.median_hours_to_contact == ov_live.median_hours_to_contact
            assert speed.channel(session, scope) == speed.channel(session, live)


def test_the_rollups_answer_as_a_live_read(session, history):
    year = metrics.last_days(365)
    total = metrics.channel(session, year)
    # The history is rich enough to mean something.
    assert total.offered > 60 and total.accepted > 20 and total.won and total.lost
    assert total.overdue and total.untouched and total.declined
    assert overview.overview(session, year).total.routed_fast
    check_everything(session, history)


def test_a_change_months_later_moves_the_counts_of_its_month(session, history, make_user):
    """An outcome reported long after the offer, and a lead re-opened: the month of the
    offer changes at once, as the live read does."""
    manager = make_user("manager")
    open_leads = list(session.scalars(select(Lead).where(Lead.status == "accepted")))
    closed = list(session.scalars(select(Lead).where(Lead.status == "won")))
    assert open_leads and closed
    before = metrics.channel(session, metrics.last_days(365))
    lead = open_leads[0]
    holder = Actor.of(next(u for u in lead.assigned_partner.users))
    lifecycle.close(session, lead, "won", holder, data={"amount": "1234"})
    lifecycle.reopen(session, closed[0], Actor.of(manager), reason="sale fell through")
    session.commit()
    after = metrics.channel(session, metrics.last_days(365))
    assert after.won == before.won  # one more, one fewer
    assert after.revenue_won != before.revenue_won
    check_everything(session, history)


def test_a_rebuild_counts_what_the_writes_counted(session, history, app):
    def snapshot() -> Any:
        # A count taken back leaves a row of noughts, which a rebuild does not make.
        keys = {OfferMonth: 2, LeadDay: 1, DurationMonth: 3, LeadFacts: 10}
        return {table.__name__: sorted(
            values for values in (tuple(str(v) for v in row) for row in session.execute(
                select(*table.__table__.columns)))
            if table is LeadFacts or any(v not in ("0", "0.00") for v in values[n:]))
            for table, n in keys.items()}

    kept = snapshot()
    assert kept["OfferMonth"] and kept["DurationMonth"]
    counted = rollups.rebuild(session.connection())
    assert counted["leads"] == 90
    assert snapshot() == kept


def test_stale_or_counted_with_another_contact_time_reads_live(session, history, app):
    year = metrics.last_days(365)
    assert metrics.plan(session, year) is not None
    app.config["CONTACT_SLA_HOURS"] = 24  # on_time was counted with 48
    assert metrics.plan(session, year) is None
    assert not overview.rolled_up(session, year)
    live = metrics.figures_by(session, replace(year, live=True), metrics.BY_NOTHING)
    assert metrics.channel(session, year).as_json() == live[1].as_json()
    app.config["CONTACT_SLA_HOURS"] = 48
    rollups.mark(session.connection(), "stale")
    assert metrics.plan(session, year) is None
    rollups.rebuild(session.connection())
    assert metrics.plan(session, year) is not None


def test_the_rebuild_command(app, session, history):
    rollups.mark(session.connection(), "stale")
    session.commit()
    result = app.test_cli_runner().invoke(args=["reports", "rebuild", "--if-stale"])
    assert result.exit_code == 0, result.output
    assert "counted" in result.output and "90 leads" in result.output
    db.session.expire_all()
    assert rollups.readable(db.session)
    again = app.test_cli_runner().invoke(args=["reports", "rebuild", "--if-stale"])
    assert again.exit_code == 0 and again.output == ""  # built: nothing to do
    check_everything(session, history)


def test_a_median_is_the_middle_of_the_counts():
    assert metrics.median_of_counts([]) is None
    assert metrics.median_of_counts([(3600, 1)]) == 1
    assert metrics.median_of_counts([(3600, 1), (7200, 1)]) == 1.5
    assert metrics.median_of_counts([(60, 2), (7200, 1), (36000, 5)]) == 10
    assert metrics.median_of_counts([(60, 2), (120, 2)]) == pytest.approx(90 / 3600)
    # the rollups' units: seconds to an hour, minutes to two days, hours beyond
    t = datetime(2026, 1, 1, tzinfo=UTC)
    assert rollups.duration_seconds(t, t + timedelta(seconds=3599.9)) == 3599
    assert rollups.duration_seconds(t, t + timedelta(seconds=3719)) == 3660
    assert rollups.duration_seconds(t, t + timedelta(hours=50, minutes=59)) == 50 * 3600
    assert rollups.duration_seconds(t + HOUR, t) == 0


def test_a_rolled_back_savepoint_counts_nothing(session, history, make_user):
    """Changes undone by a savepoint's rollback are not counted; the rest of the
    transaction is, when it commits."""
    year = metrics.last_days(365)
    before = metrics.channel(session, year)
    pending = list(session.scalars(select(Lead).where(Lead.status == "offered")))
    assert len(pending) >= 2
    first, second = pending[:2]
    savepoint = session.begin_nested()
    lifecycle.accept(session, first, Actor.of(first.assigned_partner.users[0]))
    session.flush()
    savepoint.rollback()
    lifecycle.accept(session, second, Actor.of(second.assigned_partner.users[0]))
    session.commit()
    after = metrics.channel(session, year)
    assert after.accepted == before.accepted + 1
    check_everything(session, history)


def test_a_partner_whose_offers_all_fall_outside_the_period_is_not_listed(
        session, history, make_partner, make_lead):
    """A month read as the month less its days outside the period leaves a partner with
    only those days' offers at nothing: it is not counted, as a live read does not."""
    month = (history["now"] - 60 * DAY).replace(day=1, hour=0, minute=0, second=0,
                                                microsecond=0)
    z = make_partner("Z", name="Zulu Dealer")
    lead = make_lead()
    lifecycle.offer(session, lead, z, Actor.system(), now=month + HOUR)
    session.commit()
    scope = replace(metrics.last_days(1), since=month + 2 * DAY)
    assert metrics.plan(session, scope).cover.pieces[0].sign == -1  # month less 2 days
    rolled = metrics.figures_by(session, scope)
    assert z.id not in rolled
    assert set(rolled) == set(metrics.figures_by(session, replace(scope, live=True)))


def test_seconds_on_the_database_are_python_s_to_the_microsecond(session):
    """The live reads count a time as the rollups do: SQLite's date functions round to the
    millisecond (59.9997 s would be a minute), PostgreSQL's round(double) halves to even."""
    from sqlalchemy import literal

    from portal.core.models.base import UtcDateTime

    start = datetime(2026, 8, 5, 10, 0, 0, 100, tzinfo=UTC)
    for seconds in (59.9996, 59.9997, 60.4999, 60.5, 3599.9999, 172799.9996):
        end = start + timedelta(seconds=seconds)
        a, b = literal(start, UtcDateTime()), literal(end, UtcDateTime())
        elapsed, rounded = session.execute(
            select(metrics.elapsed_seconds(a, b), metrics.rounded_seconds(a, b))).one()
        assert elapsed == (end - start) // timedelta(seconds=1), seconds
        assert rounded == rollups.whole_seconds(start, end), seconds
        assert session.scalar(select(metrics.duration(a, b))) == \
            rollups.duration_seconds(start, end), seconds
