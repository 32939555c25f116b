"""Shared fixtures: a real database per run (SQLite, and PostgreSQL when
``TEST_DATABASE_URL`` names a server), migrated once, each test inside an outer
transaction that is rolled back; a real SMTP server; factories that flush."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from email import message_from_bytes
from email.message import Message
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from portal import create_app
from portal.extensions import db

BACKENDS = ["sqlite"] + (["postgresql"] if os.environ.get("TEST_DATABASE_URL") else [])


def base_config(database_url: str) -> dict[str, Any]:
    """The settings every test app shares."""
    return {
        "TESTING": True,
        "SECRET_KEY": "test-secret-key-not-for-production",
        "DATABASE_URL": database_url,
        "HUEY_IMMEDIATE": True,
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",  # fast hashing keeps the suite quick
        "PORTAL_BASE_URL": "http://portal.test",
    }


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Any]:
    """A real SMTP server (aiosmtpd) on a free local port, collecting what it receives."""
    from aiosmtpd.controller import Controller

    class Collect:
        def __init__(self) -> None:
            self.messages: list[Message] = []
            self.delay = 0.0  #: seconds each message takes to accept (a slow server)

        async def handle_RCPT(self, server: Any, session: Any, envelope: Any,  # noqa: N802
                              address: str, rcpt_options: list[str]) -> str:
            # An address at bounce.test does not exist: refused for good, as a real
            # server refuses an unknown mailbox.
            if address.lower().endswith("@bounce.test"):
                return "550 5.1.1 No such user here"
            envelope.rcpt_tos.append(address)
            return "250 OK"

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            if self.delay:
                import asyncio

                await asyncio.sleep(self.delay)
            message = message_from_bytes(envelope.original_content)
            message.smtp_peer = session.peer  # type: ignore[attr-defined]  # which connection
            self.messages.append(message)
            return "250 OK"

    import socket

    with socket.socket() as probe:  # aiosmtpd cannot start on port 0: find a free one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield controller
    controller.stop()


@pytest.fixture
def mute_server() -> Iterator[int]:
    """Accepts connections and never says a word (no banner): a hung mail relay."""
    import socket
    import threading

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in held:
        connection.close()
    listener.close()


def _create_postgres_database(server_url: str) -> tuple[str, Callable[[], None]]:
    url = sa.make_url(server_url)
    name = f"portal_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()

    return url.set(database=name).render_as_string(hide_password=False), drop


@pytest.fixture(scope="session", params=BACKENDS)
def migrated_app(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                 smtp_server: Any) -> Iterator[Flask]:
    """One app per backend on a database made for this run and migrated once."""
    drop: Callable[[], None] | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'portal.db'}"
    else:
        url, drop = _create_postgres_database(os.environ["TEST_DATABASE_URL"])
    config = base_config(url)
    config.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    app = create_app(config)

    @app.before_request
    def _fresh_g() -> None:
        # Each test's requests share the test's app context (so they share its session),
        # and with it one ``g``: without this, Flask-Login's cached ``g._login_user`` would
        # let a second client, or a signed-out one, act as whoever signed in last.
        from flask import g

        vars(g._get_current_object()).clear()

    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
    yield app
    with app.app_context():
        db.engine.dispose()
    if drop:
        drop()


@pytest.fixture
def app(migrated_app: Flask, smtp_server: Any) -> Iterator[Flask]:
    """The app with every session bound to one outer transaction, rolled back afterwards."""
    app = migrated_app
    saved_config = dict(app.config)
    with app.app_context():
        connection = db.engine.connect()
        outer = connection.begin()
        db.bind_to(connection)
        smtp_server.handler.messages.clear()
        try:
            yield app
        finally:
            db.session.remove()
            outer.rollback()
            connection.close()
            db.bind_to(db.engine)
            app.config.clear()
            app.config.update(saved_config)


@pytest.fixture
def session(app: Flask) -> sa.orm.Session:
    """The test's own session (same outer transaction the requests use)."""
    return db.session()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> Any:
    return app.test_cli_runner()


@pytest.fixture
def outbox(smtp_server: Any) -> list[Message]:
    """Messages the real SMTP server received during this test."""
    return smtp_server.handler.messages  # type: ignore[no-any-return]


@pytest.fixture
def count_queries(app: Flask) -> Callable[[], Any]:
    """``with count_queries() as counter: …`` then ``counter.count``."""
    from contextlib import contextmanager

    @contextmanager
    def counting() -> Iterator[Any]:
        class Counter:
            count = 0
            statements: list[str] = []

        counter = Counter()
        counter.statements = []

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if not statement.lstrip().upper().startswith(("SAVEPOINT", "RELEASE", "ROLLBACK")):
                counter.count += 1
                counter.statements.append(statement)

        engine = db.engine
        sa.event.listen(engine, "before_cursor_execute", before)
        try:
            yield counter
        finally:
            sa.event.remove(engine, "before_cursor_execute", before)

    return counting


PASSWORD = "correct horse battery"


@pytest.fixture
def make_product_line(session: sa.orm.Session) -> Callable[..., Any]:
    from portal.core.models import ProductLine

    def make(code: str = "TRC", name: str | None = None, **overrides: Any) -> ProductLine:
        existing = session.scalars(sa.select(ProductLine).where(ProductLine.code == code)).first()
        if existing:
            return existing
        line = ProductLine(code=code, name=name or f"{code} line", **overrides)
        session.add(line)
        session.flush()
        return line

    return make


@pytest.fixture
def make_partner(session: sa.orm.Session, make_product_line: Callable[..., Any]
                 ) -> Callable[..., Any]:
    """``make_partner(code="D1", territories=["zip:50401"], product_lines=["TRC"], …)``."""
    from portal.core.models import Partner, Territory
    from routing import parse_rule

    counter = iter(range(1, 10_000))

    def make(code: str | None = None, *, territories: tuple[str, ...] | list[str] = (),
             product_lines: tuple[str, ...] | list[str] = ("TRC",), **overrides: Any) -> Partner:
        n = next(counter)
        values: dict[str, Any] = dict(
            code=code or f"P{n:04d}", name=f"Partner {n}", kind="dealer", email=f"p{n}@dealer.test",
            city="Mason City", region="US-IA", postal_code="50401", country="US",
            latitude=43.15, longitude=-93.2,
        )
        values.update(overrides)
        partner = Partner(**values)
        partner.product_lines = [make_product_line(c) for c in product_lines]
        # The portal's one parser, so tests store exactly what an import or the form would.
        for position, rule in enumerate(parse_rule(text) for text in territories):
            partner.territories.append(
                Territory(kind=rule.kind, value=rule.value, position=position))
        session.add(partner)
        session.flush()
        return partner

    return make


@pytest.fixture
def make_user(session: sa.orm.Session) -> Callable[..., Any]:
    """``make_user("manager")`` or ``make_user("partner", partner=p)``; password PASSWORD."""
    from portal.core.models import User

    counter = iter(range(1, 10_000))

    def make(role: str = "admin", *, partner: Any = None, email: str | None = None,
             **overrides: Any) -> User:
        n = next(counter)
        user = User(email=email or f"{role}{n}@portal.test", name=f"{role.title()} {n}",
                    role=role, partner=partner, **overrides)
        user.set_password(PASSWORD)
        session.add(user)
        session.flush()
        return user

    return make


class AuthActions:
    """Sign in and out through the real pages, as a person would."""

    def __init__(self, client: FlaskClient, make_user: Callable[..., Any]) -> None:
        self._client = client
        self._make_user = make_user

    def login_as(self, user: Any, password: str = PASSWORD) -> Any:
        response = self._client.post(
            "/auth/login", data={"email": user.email, "password": password}
        )
        assert response.status_code == 303, response.get_data(as_text=True)[:500]
        return user

    def login(self, role: str = "admin", **kwargs: Any) -> Any:
        return self.login_as(self._make_user(role, **kwargs))

    def logout(self) -> Any:
        return self._client.post("/auth/logout")


@pytest.fixture
def auth(client: FlaskClient, make_user: Callable[..., Any], app: Flask) -> AuthActions:
    app.config["WTF_CSRF_ENABLED"] = False
    return AuthActions(client, make_user)


@pytest.fixture
def make_lead(session: sa.orm.Session, make_product_line: Callable[..., Any]
              ) -> Callable[..., Any]:
    """``make_lead(postal_code="50401", status="qualified", …)``: captured through the lifecycle
    and qualified (hot) unless ``status="captured"``."""
    from portal.core import lifecycle
    from portal.core.models import Lead

    counter = iter(range(1, 100_000))

    def make(*, status: str = "qualified", product_line: str | None = "TRC",
             rank: str = "hot", score: int = 80, **fields: Any) -> Lead:
        n = next(counter)
        values: dict[str, Any] = dict(first_name="Pat", last_name=f"Prospect{n}",
                                      email=f"pat{n}@example.com", postal_code="50401",
                                      country="US", region="US-IA")
        values.update(fields)
        lead = Lead(**values)
        if product_line:
            lead.product_line = make_product_line(product_line)
        lifecycle.capture(session, lead, lifecycle.Actor.system("test"))
        if status != "captured":
            lifecycle.qualify(session, lead, status, reason="test", score=score, rank=rank,
                              actor=lifecycle.Actor.system("test"))
        session.flush()
        return lead

    return make
