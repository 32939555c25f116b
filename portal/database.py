"""The database handle: one engine per app, one session per app context.

Plain SQLAlchemy 2 rather than Flask-SQLAlchemy: the tests bind the session to an
outer connection (a savepoint per test), which Flask-SQLAlchemy's ``get_bind`` ignores.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from flask import Flask, current_app, has_request_context, request
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import Session, scoped_session

from portal.models.base import Base

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


def _reads_only() -> bool:
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
    # previews marked ``read_only`` never write, so they do not queue behind writers.
    # Straight to the driver: every request begins one, and the statement needs none of
    # SQLAlchemy's execution machinery (20 µs of it).
    conn.connection.driver_connection.execute(  # type: ignore[union-attr]
        "BEGIN" if _reads_only() else "BEGIN IMMEDIATE")


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
        return Session(
            bind=self._state().bind,
            join_transaction_mode="create_savepoint",
            expire_on_commit=False,
        )

    def _remove(self, _exc: BaseException | None) -> None:
        self.session.remove()


db = Database()
