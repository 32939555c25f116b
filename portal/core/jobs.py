"""Background jobs on Huey: SQLite by default, Redis when ``REDIS_URL`` is set.

Tasks are plain functions registered here; the Huey instance is built on first use
(enqueue or worker), never in the factory, so creating an app touches no queue.
Each task runs inside an app context and commits once at its boundary.

Anything sent after a write (DESIGN §3) follows one pattern, and the pieces are here:

- the database row is the truth (a pack, a nurture email, a password link, an import);
- the job is only a nudge, queued by ``enqueue_after_commit`` once the writing
  transaction has committed, and dropped if it rolls back;
- the job re-reads the row by id and claims it with one conditional UPDATE
  (``claim_row``) in a short transaction committed *before* any network I/O, sends,
  then records the result in another short transaction;
- a periodic sweeper per kind sends what is due but was never nudged (``due_ids``) and
  settles rows a crash left claimed (``stale_claims``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import wraps
from typing import Any

from flask import Flask, current_app
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session, SessionTransaction, scoped_session

from portal.extensions import db

log = logging.getLogger(__name__)

_registry: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}
_periodic: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}


def job(**settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as a background job (``retries``, ``retry_delay`` … as in Huey)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _registry[fn.__name__] = (fn, settings)
        return fn

    return register


def periodic(**schedule: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` to run on a crontab schedule (``minute="*"`` …) in the worker.
    ``exclusive=True``: a run that finds the previous one still going is skipped (a long
    digest run must not take the worker's other thread too). Huey's scheduler looks at
    the schedule as the worker starts, so every-minute sweepers also run at once when a
    (restarted) worker starts."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _periodic[fn.__name__] = (fn, schedule)
        return fn

    return register


class Jobs:
    """The app's Huey instance and its registered tasks."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._huey: Huey | None = None
        self.tasks: dict[str, TaskWrapper] = {}

    @property
    def huey(self) -> Huey:
        if self._huey is None:
            self._huey = self._build()
        return self._huey

    def _build(self) -> Huey:
        from huey import crontab

        config = self.app.config
        huey: Huey
        if config.get("HUEY_IMMEDIATE"):
            huey = MemoryHuey("portal", immediate=True)
        elif config.get("REDIS_URL"):
            from redis import ConnectionPool

            # Bounded waits: a Redis that does not answer costs a request seconds, not the
            # operating system's two-minute connect timeout (and the worker's blocking read
            # of one second stays well inside the socket timeout).
            pool = ConnectionPool.from_url(
                config["REDIS_URL"],
                socket_connect_timeout=float(config.get("REDIS_CONNECT_TIMEOUT", 2.0)),
                socket_timeout=float(config.get("REDIS_SOCKET_TIMEOUT", 10.0)))
            huey = RedisHuey("portal", connection_pool=pool)
        else:
            huey = SqliteHuey("portal", filename=config["HUEY_SQLITE_PATH"])
        for name, (fn, settings) in _registry.items():
            self.tasks[name] = huey.task(name=name, **settings)(self._in_context(fn))
        for name, (fn, schedule) in _periodic.items():
            when = dict(schedule)
            run = self._in_context(fn)
            if when.pop("exclusive", False):
                run = _alone(huey, name, run)
            self.tasks[name] = huey.periodic_task(crontab(**when), name=name)(run)
        return huey

    def _in_context(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        app = self.app

        @wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                try:
                    result = fn(*args, **kwargs)
                    db.session.commit()
                    return result
                except BaseException:
                    db.session.rollback()
                    raise

        return run

    def schedule(self, name: str, eta: datetime, *args: Any) -> Any:
        """Queue job ``name`` to run at ``eta`` (naive UTC)."""
        self.huey  # noqa: B018 - builds and registers on first use
        return self.tasks[name].schedule(args=args, eta=eta)

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Queue job ``name``; in immediate mode (tests) it runs now, for real."""
        self.huey  # noqa: B018 - builds and registers on first use
        return self.tasks[name](*args, **kwargs)


def _alone(huey: Huey, name: str, run: Callable[..., Any]) -> Callable[..., Any]:
    """``run`` under the queue's lock named ``name``: skipped while another holds it. The
    lock is made here, once, so the worker knows it and clears it when it starts (a run
    that died with the worker must not hold it for ever)."""
    from huey.exceptions import TaskLockedException

    lock = huey.lock_task(name)

    @wraps(run)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        try:
            with lock:
                return run(*args, **kwargs)
        except TaskLockedException:
            log.info("%s: the previous run is still going; this one is skipped", name)
            return None

    return guarded


def init_app(app: Flask) -> None:
    """Attach the (lazy) job queue to the app. The areas register their jobs by importing
    their jobs modules in their own init_app, before anything is queued."""
    app.extensions["portal.core.jobs"] = Jobs(app)


def jobs() -> Jobs:
    """The current app's job queue."""
    return current_app.extensions["portal.core.jobs"]  # type: ignore[no-any-return]


def enqueue(name: str, *args: Any, **kwargs: Any) -> Any:
    """Queue a registered job on the current app's queue."""
    return jobs().enqueue(name, *args, **kwargs)


# --- nudges queued after commit ----------------------------------------------------------

#: Session.info key: the nudges recorded in the session's open transaction
_NUDGES = "portal.core.jobs.after_commit"


@dataclass(frozen=True)
class _Nudge:
    transaction: SessionTransaction  #: the (possibly nested) transaction it was recorded in
    name: str
    args: tuple[Any, ...]


def enqueue_after_commit(session: Session, name: str, *args: Any) -> None:
    """Queue job ``name`` once ``session``'s outermost transaction commits; drop it on rollback.

    Recorded against the innermost transaction (a savepoint too): rolling back that
    savepoint drops the nudge, while the enclosing transaction goes on. Arguments should be
    row ids: the job re-reads the row, which is the truth. A session with no transaction
    has nothing uncommitted to wait for, so the job is queued at once.
    """
    if isinstance(session, scoped_session):  # services are handed db.session itself
        session = session()
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:
        queue_nudge(name, *args)
        return
    session.info.setdefault(_NUDGES, []).append(_Nudge(transaction, name, args))


def pending_nudges(session: Session) -> list[tuple[str, tuple[Any, ...]]]:
    """The nudges waiting for this session's commit, as (job name, args)."""
    if isinstance(session, scoped_session):
        session = session()
    return [(n.name, n.args) for n in session.info.get(_NUDGES, ())]


#: after a nudge could not be queued, further nudges wait this long before trying again
QUEUE_DOWN_PAUSE = 30.0
_queue_down_until = 0.0


def queue_nudge(name: str, *args: Any, eta: datetime | None = None,
                queue: Jobs | None = None) -> None:
    """Queue a nudge (at ``eta``, naive UTC as the models store it, when given) for rows
    already committed; when the queue is down, the write it follows still stands.

    The row is the truth: a nudge that cannot be queued (Redis down, its host gone) is
    only later, sent by the kind's sweeper once a worker runs again. After one failure the
    next ``QUEUE_DOWN_PAUSE`` seconds skip the queue, so an outage costs one request one
    connect timeout rather than every request its own. ``queue``: the app's job queue,
    for a caller past its app context (a response's close).
    """
    global _queue_down_until
    if time.monotonic() < _queue_down_until:
        log.info("queue down: %s%r left to its sweeper", name, args)
        return
    try:
        target = queue or jobs()
        if eta is None:
            target.enqueue(name, *args)
        else:
            target.schedule(name, eta, *args)
    except (RedisConnectionError, RedisTimeoutError):
        _queue_down_until = time.monotonic() + QUEUE_DOWN_PAUSE
        log.exception("could not reach the queue for %s%r; its sweeper will pick it up "
                      "(the queue is left alone for %.0f s)", name, args, QUEUE_DOWN_PAUSE)
    except Exception:  # noqa: BLE001 - the row stays due: the kind's sweeper sends it
        log.exception("could not queue %s%r; its sweeper will pick it up", name, args)


def _within(transaction: SessionTransaction | None, ancestor: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is ancestor:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_commit")
def _queue_after_commit(session: Session) -> None:
    # after_commit also fires when a savepoint is released; only the outermost commit
    # makes the rows visible to a worker. (In the tests the outermost transaction is a
    # savepoint on the test's connection: the code sees the same thing as in production.)
    if session.in_nested_transaction():
        return
    for nudge in session.info.pop(_NUDGES, ()):
        queue_nudge(nudge.name, *nudge.args)


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    # The rows written in a rolled-back savepoint (or anything nested in it) are gone:
    # so are the nudges about them.
    nudges = session.info.get(_NUDGES)
    if nudges:
        nudges[:] = [n for n in nudges if not _within(n.transaction, previous_transaction)]


@event.listens_for(Session, "after_transaction_end")
def _drop_uncommitted(session: Session, transaction: SessionTransaction) -> None:
    # The outermost transaction ended without committing (rollback, close): nothing that
    # was recorded in it is in the database.
    if transaction.parent is None:
        session.info.pop(_NUDGES, None)


# --- claiming and sweeping rows ----------------------------------------------------------
# The rows are any model with ``id``, ``status``, ``attempts``, ``next_attempt_at`` and
# ``claimed_at`` columns, and statuses "pending" (due from next_attempt_at) and "sending"
# (claimed by one worker since claimed_at).

PENDING, SENDING = "pending", "sending"


def claim_row(session: Session, model: type[Any], row_id: Any, now: datetime,
              *conditions: Any) -> bool:
    """Take one due, pending row for sending (one conditional UPDATE): True if we have it.

    The caller commits before any network I/O, so no lock is held while a mail server
    takes its time and a second worker or the sweeper sees the claim and keeps off.
    """
    result = session.execute(
        update(model)
        .where(model.id == row_id, model.status == PENDING, model.next_attempt_at <= now,
               *conditions)
        .values(status=SENDING, claimed_at=now, attempts=model.attempts + 1),
        execution_options={"synchronize_session": False},
    )
    return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]


def due_ids(session: Session, model: type[Any], now: datetime, limit: int,
            *conditions: Any) -> list[Any]:
    """Pending rows whose time has come, oldest first: what a lost nudge or a retry left."""
    return list(session.scalars(
        select(model.id)
        .where(model.status == PENDING, model.next_attempt_at <= now, *conditions)
        .order_by(model.next_attempt_at, model.id).limit(limit)))


def stale_claims(model: type[Any], now: datetime, timeout: timedelta, *conditions: Any
                 ) -> Any:
    """The UPDATE's WHERE for rows claimed longer than ``timeout`` ago (a worker died)."""
    return update(model).where(model.status == SENDING, model.claimed_at < now - timeout,
                               *conditions)


def record_sent(session: Session, model: type[Any], row_id: Any, now: datetime) -> None:
    """The mail server took the claimed row's email."""
    row = session.get(model, row_id, populate_existing=True)
    if row is not None:
        row.status, row.sent_at, row.claimed_at, row.last_error = "sent", now, None, ""
        session.flush()
