"""The database handle: one engine per app, one session per app context.

Plain SQLAlchemy 2 rather than Flask-SQLAlchemy: the tests bind the session to an
outer connection (a savepoint per test), which Flask-SQLAlchemy's ``get_bind`` ignores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from portal.core.models.base import Base

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class _State:
    engine: Engine
    bind: Engine | Connection


def _app_ctx_id() -> int:
    from flask.globals import app_ctx

    return id(app_ctx._get_current_object())  # type: ignore[attr-defined]


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let SQLAlchemy emit BEGIN itself (below): pysqlite's own handling breaks SAVEPOINT.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def read_only(view: F) -> F:
    """Mark a POST view that only computes (a preview): it begins no write transaction."""
    view.read_only = True  # type: ignore[attr-defined]
    return view


def reads_only() -> bool:
    """This request only reads: a safe method, or a POST view marked ``read_only``."""
    if not has_request_context():
        return False
    if request.method in _SAFE_METHODS:
        return True
    view = current_app.view_functions.get(request.endpoint or "")
    return bool(getattr(view, "read_only", False))


def _sqlite_begin(conn: Connection) -> None:
    # A writing transaction takes SQLite's write lock up front (BEGIN IMMEDIATE): a
    # deferred one that reads and then writes fails under concurrency instead of waiting.
    # That is what serialises capacity checks on SQLite. Safe-method requests and
    # previews marked ``read_only`` never write, so they do not queue behind writers,
    # and the connection refuses writes meanwhile (query_only).
    # Straight to the driver: every request begins one, and the statements need none of
    # SQLAlchemy's execution machinery (20 µs of it).
    driver = conn.connection.driver_connection
    reads = _holds_to_reading(conn)
    if conn.info.get(_QUERY_ONLY) is not reads:
        driver.execute(f"PRAGMA query_only = {int(reads)}")  # type: ignore[union-attr]
        conn.info[_QUERY_ONLY] = reads
    driver.execute("BEGIN" if reads else "BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _postgresql_begin(conn: Connection) -> None:
    # psycopg puts READ ONLY in the BEGIN it sends with the first statement: no round trip
    # of its own. (A read ending in ROLLBACK also made psycopg deallocate its prepared
    # statements: each page's queries were planned afresh on every request.)
    driver = conn.connection.driver_connection
    # None, not False, for the rest: a plain BEGIN, so the server's default stands (a
    # maintenance switch to default_transaction_read_only stays in force).
    wanted = True if _holds_to_reading(conn) else None
    if driver.read_only is not wanted:  # type: ignore[union-attr]
        driver.read_only = wanted  # type: ignore[union-attr]


#: Connection.info keys: this transaction is held to reading; SQLite's query_only is on
_READ_ONLY = "portal.read_only"
_QUERY_ONLY = "portal.query_only"


def _holds_to_reading(conn: Connection) -> bool:
    """A request that only reads (safe methods, previews marked ``read_only``) runs in a
    transaction the database holds to reading: any write in it fails, so it can end with
    COMMIT (Database.end_read)."""
    reads = reads_only()
    conn.info[_READ_ONLY] = reads
    return reads


#: one round trip for all of them, in order: since PostgreSQL 9.6 the select list is
#: computed after the sort when it is not needed for it
_ADVISORY_LOCKS = sa.text(
    "SELECT pg_advisory_xact_lock(k) FROM unnest(CAST(:keys AS bigint[])) AS k ORDER BY k")


def lock_names(session: Session, names: Iterable[str]) -> None:
    """Hold a lock on each of ``names`` until the transaction ends: another writer holding
    any of the same names waits until this one commits, and then reads what it wrote.

    The way to make "look, then write" (is this person already a lead?) safe among
    concurrent requests where no row exists yet to lock. PostgreSQL: transaction-level
    advisory locks on a 64-bit hash of each name, taken in one order (sorted), so two
    holders never wait on each other in a cycle. SQLite: nothing to take, a writing
    transaction already holds the database's one write lock (BEGIN IMMEDIATE).
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    keys = sorted({int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(),
                                  "big", signed=True) for name in names})
    if keys:
        session.execute(_ADVISORY_LOCKS, {"keys": keys})


def lost_a_race(error: sa.exc.DBAPIError) -> bool:
    """The statement lost to a concurrent transaction and is worth one more try: a unique
    key the other committed first, or a deadlock the server broke by failing this side
    (an import's batch holds many ``lock_names`` in file order, a capture a few sorted)."""
    if isinstance(error, sa.exc.IntegrityError):
        return True
    return getattr(error.orig, "sqlstate", None) == "40P01"  # deadlock_detected


def unavailable(error: BaseException | None) -> bool:
    """The database did not answer (the connection dropped: a failover, a restart, a cut)
    or stayed locked past its timeout: nothing was saved, and trying again is safe."""
    if not isinstance(error, sa.exc.OperationalError):
        return False
    return error.connection_invalidated or "database is locked" in str(error.orig)


class SafeRequestWrote(RuntimeError):
    """A GET (or a preview marked ``read_only``) tried to write: a bug, refused."""


def _refuse_writes_in_reads(session: Session, *_flushing: Any) -> None:
    # The same answer on every database: PostgreSQL's READ ONLY transaction would refuse
    # the write; SQLite's would take it and have it rolled back unnoticed.
    if reads_only() and (session.new or session.deleted or any(
            session.is_modified(instance) for instance in session.dirty)):
        changed = {type(o).__name__ for o in (*session.new, *session.dirty, *session.deleted)}
        raise SafeRequestWrote(
            f"{request.method} {request.path} may only read, but changed {sorted(changed)}")


class PortalSession(Session):
    """The app's sessions: a flush in a request that may only read is refused."""


event.listen(PortalSession, "before_flush", _refuse_writes_in_reads)


class Database:
    """Engine and scoped session for the current app."""

    metadata = Base.metadata

    def __init__(self) -> None:
        self.session: scoped_session[Session] = scoped_session(
            self.new_session, scopefunc=_app_ctx_id
        )

    def init_app(self, app: Flask) -> None:
        """Create the app's engine (no connection is made here) and the session teardown."""
        url = sa.make_url(app.config["DATABASE_URL"])
        options: dict[str, Any] = {}
        if url.get_backend_name() == "sqlite":
            options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        else:
            options["pool_pre_ping"] = True
        engine = sa.create_engine(url, **options)
        if url.get_backend_name() == "sqlite":
            event.listen(engine, "connect", _sqlite_connect)
            event.listen(engine, "begin", _sqlite_begin)
        elif url.get_backend_name() == "postgresql" and url.get_driver_name() == "psycopg":
            event.listen(engine, "begin", _postgresql_begin)
        app.extensions["portal.db"] = _State(engine=engine, bind=engine)
        app.teardown_appcontext(self._remove)

    @staticmethod
    def _state() -> _State:
        return current_app.extensions["portal.db"]  # type: ignore[no-any-return]

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        return self._state().engine

    def bind_to(self, bind: Engine | Connection) -> None:
        """Route new sessions to ``bind`` (tests bind an outer transaction's connection)."""
        self._state().bind = bind

    def new_session(self) -> Session:
        """A session on the current app's bind; the scoped ``session`` uses this."""
        return PortalSession(
            bind=self._state().bind,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )

    def end_read(self) -> None:
        """End a request that only read: a transaction held to reading commits (nothing
        can have been written; psycopg drops its prepared statements on ROLLBACK); any
        other (a test's savepoint) rolls back. Changes left in the session are refused as
        a flush would refuse them (SafeRequestWrote), rather than dropped unnoticed."""
        session = self.session()
        _refuse_writes_in_reads(session)
        if session.in_transaction() and session.connection().info.get(_READ_ONLY):
            session.commit()
        else:
            session.rollback()

    def _remove(self, _exc: BaseException | None) -> None:
        self.session.remove()


db = Database()
