"""Seed a portal database at scale for benchmarks: partners, territories, leads.

Reuses the routing bench's generators (real US ZIP centroids, the same rule mix), and
writes with Core bulk inserts: seeding is setup, not what the benchmarks measure.
"""

from __future__ import annotations

import os
import random
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from bench_routing import PRODUCT_LINES, load_zips, make_partners
from flask import Flask

from portal import create_app
from portal.core.models import Lead, Partner, ProductLine, Territory, partner_product_lines
from portal.extensions import db

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def fresh_database(backend: str, workdir: Path, prefix: str = "portal_bench",
                   name: str | None = None) -> tuple[str, Callable[[], None]]:
    """A new, empty database for ``backend`` (SQLite file or PostgreSQL database) and a
    function that drops it. A PostgreSQL ``name`` replaces any database of that name."""
    if backend == "sqlite":
        path = workdir / "bench.db"
        path.unlink(missing_ok=True)
        return f"sqlite:///{path}", lambda: None
    server = sa.make_url(PG_SERVER)
    name = name or f"{prefix}_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return server.set(database=name).render_as_string(hide_password=False), drop


@contextmanager
def bench_app(backend: str, workdir: Path, keep_as: str | None = None) -> Iterator[Flask]:
    """An app on a fresh database of its own (SQLite file or a new PostgreSQL database);
    a PostgreSQL database named ``keep_as`` is kept afterwards (for ``--reuse``)."""
    url, drop = fresh_database(backend, workdir, name=keep_as)
    if keep_as:
        drop = lambda: None  # noqa: E731
    app = create_app({"SECRET_KEY": "bench", "DATABASE_URL": url, "HUEY_IMMEDIATE": True,
                      "MAIL_SINK_DIR": str(workdir / "mail")})
    with app.app_context():
        from flask_migrate import upgrade

        upgrade(revision="heads")
    try:
        yield app
    finally:
        with app.app_context():
            db.engine.dispose()
        drop()


def database_url(backend: str, workdir: Path, name: str) -> str:
    """Where ``bench_app(..., keep_as=name)`` put its database."""
    if backend == "sqlite":
        return f"sqlite:///{workdir / 'bench.db'}"
    return sa.make_url(PG_SERVER).set(database=name).render_as_string(hide_password=False)


def database_exists(url: str) -> bool:
    """The SQLite file or PostgreSQL database at ``url`` is there."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return Path(parsed.database or "").exists()
    admin = sa.create_engine(PG_SERVER)
    try:
        with admin.connect() as conn:
            return bool(conn.scalar(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                    {"n": parsed.database}))
    finally:
        admin.dispose()


def _chunks(rows: list[dict[str, Any]], size: int = 5000) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(rows), size):
        yield rows[start:start + size]


def seed_partners(app: Flask, *, partners: int, rules: int, seed: int = 7) -> list[Any]:
    """Insert product lines, partners (with ids 1..n), authorisations and territories."""
    rng = random.Random(seed)
    zips = load_zips()
    candidates = make_partners(rng, zips, partners, rules)
    now = datetime.now(UTC)
    with app.app_context():
        conn = db.session.connection()
        conn.execute(sa.insert(ProductLine), [
            {"id": i + 1, "code": code, "name": code, "description": "", "active": True}
            for i, code in enumerate(PRODUCT_LINES)])
        line_ids = {code: i + 1 for i, code in enumerate(PRODUCT_LINES)}
        rows, auth, terr = [], [], []
        for c in candidates:
            capacity = None if rng.random() < 0.3 else rng.randint(20, 200)
            rows.append({
                "id": c.id, "code": c.code, "name": c.name, "kind": c.kind,
                "parent_id": None, "email": f"{c.code.lower()}@dealer.test", "phone": "",
                "address": "", "city": "", "region": "", "postal_code": "", "country": "US",
                "latitude": c.location.lat if c.location else None,
                "longitude": c.location.lon if c.location else None,
                "location_from_centroid": True, "capacity": capacity, "open_leads": 0,
                "forwarding": "manual", "active": rng.random() < 0.97, "paused_reason": "",
                "created_at": now, "updated_at": now,
            })
            auth.extend({"partner_id": c.id, "product_line_id": line_ids[code]}
                        for code in c.product_lines)
            terr.extend({"partner_id": c.id, "kind": t.kind, "value": t.value, "position": n}
                        for n, t in enumerate(c.territories))
        for chunk in _chunks(rows):
            conn.execute(sa.insert(Partner), chunk)
        # Parents after every row exists (the generator may point forward).
        parents = [{"pid": c.id, "parent": c.parent_id} for c in candidates if c.parent_id]
        if parents:
            conn.execute(sa.update(Partner).where(Partner.id == sa.bindparam("pid"))
                         .values(parent_id=sa.bindparam("parent")), parents)
        for chunk in _chunks(auth):
            conn.execute(sa.insert(partner_product_lines), chunk)
        for chunk in _chunks(terr):
            conn.execute(sa.insert(Territory), chunk)
        if conn.dialect.name == "postgresql":
            for table in ("partners", "product_lines", "territories"):
                conn.exec_driver_sql(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                    f"(SELECT max(id) FROM {table}))")
        db.session.commit()
    return candidates


def seed_leads(app: Flask, *, leads: int, status: str = "qualified", days: int = 90,
               seed: int = 11) -> None:
    """Insert leads at real ZIPs over the last ``days``, all in ``status`` (no events)."""
    rng = random.Random(seed)
    zips = load_zips()
    now = datetime.now(UTC)
    with app.app_context():
        conn = db.session.connection()
        batch: list[dict[str, Any]] = []
        for n in range(leads):
            code, _, region = rng.choice(zips)
            created = now - timedelta(seconds=rng.randint(60, days * 86400))
            batch.append({
                "id": uuid.uuid4(), "first_name": "Bench", "last_name": f"Lead{n}",
                "company": "", "email": f"lead{n}@example.com",
                "email_normalized": f"lead{n}@example.com", "phone": "",
                "phone_normalized": "", "address": "", "city": "", "region": region,
                "postal_code": code, "country": "US",
                "product_line_id": rng.randint(1, len(PRODUCT_LINES)),
                "comments": "", "wants_literature": False, "answers": {"timeline": "now"},
                "status": status, "qualification_reason": "bench", "rank": "hot",
                "score": 80, "offers_count": 0, "lost_competitor_other": "", "version": 2,
                "inquiries": 1, "engagements": 0, "created_at": created, "updated_at": created,
            })
            if len(batch) == 5000:
                conn.execute(sa.insert(Lead), batch)
                batch.clear()
        if batch:
            conn.execute(sa.insert(Lead), batch)
        db.session.commit()


#: the status mix of leads in a portal that has run for a year: most closed, some being
#: worked, a few not routed (no partner). Weights per status.
WORKLOAD_MIX: dict[str, float] = {
    "captured": 0.5, "qualified": 0.5, "nurture": 5, "disqualified": 4, "unassigned": 2,
    "offered": 2, "accepted": 2, "contacted": 2, "appointment": 1, "quoted": 1,
    "won": 17, "lost": 27, "no_interest": 36,
}
_UNROUTED = frozenset({"captured", "qualified", "nurture", "disqualified", "unassigned"})
_WORKING = frozenset({"accepted", "contacted", "appointment", "quoted"})
_CLOSED = frozenset({"won", "lost", "no_interest"})


def _lead_row(rng: random.Random, n: int, place: tuple[str, str], status: str,
              partner_id: int | None, created: datetime, now: datetime,
              accepted_at: datetime | None = None, closed_at: datetime | None = None,
              ) -> dict[str, Any]:
    """One lead row in ``status`` with the timestamps the lifecycle would have set."""
    code, region = place
    offered = accepted = contact = closed = None
    if status not in _UNROUTED:
        offered = min(now, created + timedelta(minutes=rng.randint(1, 30)))
    if status in _WORKING or status in _CLOSED:
        accepted = accepted_at or min(now, offered + timedelta(hours=rng.randint(1, 20)))
        offered = min(offered, accepted)
    if status in ("contacted", "appointment", "quoted") or status in _CLOSED:
        contact = min(now, accepted + timedelta(hours=rng.randint(2, 72)))
    if status in _CLOSED:
        closed = closed_at or min(now, accepted + timedelta(days=rng.randint(3, 60)))
        contact = min(contact, closed)
    rank = rng.choice(("hot", "warm", "warm", "cold"))
    return {
        "id": uuid.uuid4(), "first_name": "Bench", "last_name": f"Lead{n}",
        "company": f"Farm {n % 997}" if n % 3 == 0 else "", "email": f"lead{n}@example.com",
        "email_normalized": f"lead{n}@example.com", "phone": "", "phone_normalized": "",
        "address": "", "city": "", "region": region, "postal_code": code, "country": "US",
        "product_line_id": rng.randint(1, len(PRODUCT_LINES)), "comments": "",
        "wants_literature": False, "answers": {"timeline": "now"}, "status": status,
        "qualification_reason": "bench", "rank": rank,
        "score": {"hot": 85, "warm": 60, "cold": 30}[rank],
        "assigned_partner_id": None if status in _UNROUTED else partner_id,
        "offers_count": 0 if status in _UNROUTED else 1,
        "lost_reason": rng.choice(("competitor", "price", "timing")) if status == "lost" else None,
        "won_amount": rng.randint(5, 400) * 100 if status == "won" else None,
        "lost_competitor_other": "", "version": 4, "inquiries": 1, "engagements": 0,
        "created_at": created, "updated_at": closed or accepted or offered or created,
        "offered_at": offered, "accepted_at": accepted, "first_contact_at": contact,
        "closed_at": closed,
    }


def seed_workload(app: Flask, *, leads: int, partners: int, days: int = 365,
                  seed: int = 13) -> dict[str, int]:
    """Insert ``leads`` leads over the last ``days`` in ``WORKLOAD_MIX``'s statuses.

    Routed leads go to partners 1..``partners`` with a skewed load (a few busy partners,
    many quiet ones); leads still being worked are recent (last 90 days). Returns the
    number of leads per status.
    """
    rng = random.Random(seed)
    places = [(code, region) for code, _, region in load_zips()]
    statuses = list(WORKLOAD_MIX)
    weights = list(WORKLOAD_MIX.values())
    load = [rng.lognormvariate(0, 1) for _ in range(partners)]
    ids = list(range(1, partners + 1))
    now = datetime.now(UTC)
    counts = dict.fromkeys(statuses, 0)
    with app.app_context():
        conn = db.session.connection()
        batch: list[dict[str, Any]] = []
        for start in range(0, leads, 5000):
            size = min(5000, leads - start)
            picked = rng.choices(statuses, weights, k=size)
            owners = rng.choices(ids, load, k=size)
            for k in range(size):
                status = picked[k]
                counts[status] += 1
                recent = status in _WORKING or status == "offered" or status == "captured"
                span = (90 if status in _WORKING else 2) if recent else days
                created = now - timedelta(seconds=rng.randint(3600, span * 86400))
                batch.append(_lead_row(rng, 2_000_000 + start + k, rng.choice(places), status,
                                       owners[k], created, now))
            conn.execute(sa.insert(Lead), batch)
            batch.clear()
        db.session.commit()
    return counts


def seed_dealer_inbox(app: Flask, *, partner_id: int, leads: int = 5000, offered: int = 40,
                      working: int = 300, overdue_share: float = 0.25, seed: int = 17,
                      email: str = "dealer@bench.test", password: str = "bench-password-1"
                      ) -> dict[str, int]:
    """Give one partner a realistic inbox and a partner user to sign in with.

    ``offered`` new offers with pending Offer rows (expiring within the accept SLA),
    ``working`` accepted/contacted/appointment/quoted leads of which about
    ``overdue_share`` were accepted more than ``OUTCOME_DUE_DAYS`` ago, the rest closed
    won/lost/no interest over two years. Every lead also has its accepted Offer row.
    Returns the number of leads per inbox tab (as the inbox counts them).
    """
    from portal.core.models import Offer, Role, User

    rng = random.Random(seed)
    places = [(code, region) for code, _, region in load_zips()]
    now = datetime.now(UTC)
    due_days = float(app.config["OUTCOME_DUE_DAYS"])
    sla = timedelta(hours=float(app.config["ACCEPT_SLA_HOURS"]))
    stages = ["accepted"] * 40 + ["contacted"] * 27 + ["appointment"] * 20 + ["quoted"] * 13
    tabs = {"new": 0, "contact": 0, "open": 0, "overdue": 0, "closed": 0}
    rows: list[dict[str, Any]] = []
    for n in range(leads):
        place = rng.choice(places)
        if n < offered:
            status = "offered"
            created = now - timedelta(minutes=rng.randint(20, int(sla.total_seconds() // 60)))
            rows.append(_lead_row(rng, n, place, status, partner_id, created, now))
            tabs["new"] += 1
        elif n < offered + working:
            status = stages[(n - offered) % len(stages)]
            late = rng.random() < overdue_share
            age = (rng.uniform(due_days + 1, due_days * 3) if late
                   else rng.uniform(0.5, due_days - 1))
            accepted = now - timedelta(days=age)
            created = accepted - timedelta(hours=rng.randint(2, 30))
            rows.append(_lead_row(rng, n, place, status, partner_id, created, now,
                                  accepted_at=accepted))
            tabs["contact" if status == "accepted" else "open"] += 1
            tabs["overdue"] += late
        else:
            status = rng.choice(("won", "won", "lost", "lost", "no_interest", "no_interest",
                                 "no_interest"))
            created = now - timedelta(days=rng.uniform(3, 730))
            closed = min(now, created + timedelta(days=rng.uniform(2, 90)))
            rows.append(_lead_row(rng, n, place, status, partner_id, created, now,
                                  closed_at=closed))
            tabs["closed"] += 1
    offers = [{
        "lead_id": row["id"], "partner_id": partner_id, "offered_at": row["offered_at"],
        "expires_at": row["offered_at"] + sla, "method": "rule", "reason": "",
        "explanation": None, "decline_reason": "",
        "response": "pending" if row["status"] == "offered" else "accepted",
        "responded_at": row["accepted_at"],
    } for row in rows]
    with app.app_context():
        conn = db.session.connection()
        for chunk in _chunks(rows):
            conn.execute(sa.insert(Lead), chunk)
        for chunk in _chunks(offers):
            conn.execute(sa.insert(Offer), chunk)
        user = User(email=email, name="Bench Dealer", role=Role.PARTNER,
                    partner_id=partner_id, partner_admin=True)
        user.set_password(password)
        db.session.add(user)
        db.session.commit()
    return tabs
