"""Background jobs on Huey: SQLite by default, Redis when ``REDIS_URL`` is set.

Tasks are plain functions registered here; the Huey instance is built on first use
(enqueue or worker), never in the factory, so creating an app touches no queue.
Each task runs inside an app context and commits once at its boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from flask import Flask, current_app
from huey import Huey, MemoryHuey, RedisHuey, SqliteHuey
from huey.api import TaskWrapper

from portal.extensions import db

_registry: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}
_periodic: dict[str, tuple[Callable[..., Any], dict[str, Any]]] = {}


def job(**settings: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` as a background job (``retries``, ``retry_delay`` … as in Huey)."""

    def register(fn: Callable[..., Any]) -> Callable[..., Any]:
        _registry[fn.__name__] = (fn, settings)
        return fn

    return register


def periodic(**schedule: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register ``fn`` to run on a crontab schedule (``minute="*"`` …) in the worker."""

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
            huey = RedisHuey("portal", url=config["REDIS_URL"])
        else:
            huey = SqliteHuey("portal", filename=config["HUEY_SQLITE_PATH"])
        for name, (fn, settings) in _registry.items():
            self.tasks[name] = huey.task(name=name, **settings)(self._in_context(fn))
        for name, (fn, schedule) in _periodic.items():
            self.tasks[name] = huey.periodic_task(crontab(**schedule), name=name)(
                self._in_context(fn)
            )
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

    def enqueue(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Queue job ``name``; in immediate mode (tests) it runs now, for real."""
        self.huey  # noqa: B018 - builds and registers on first use
        return self.tasks[name](*args, **kwargs)


def init_app(app: Flask) -> None:
    """Attach the (lazy) job queue to the app."""
    # Importing the modules that define jobs registers them.
    from portal import routing_jobs  # noqa: F401
    from portal.capture import imports as _capture_imports  # noqa: F401
    from portal.core import mail  # noqa: F401
    from portal.fulfilment import jobs as _fulfilment_jobs  # noqa: F401
    from portal.nurture import jobs as _nurture_jobs  # noqa: F401

    app.extensions["portal.core.jobs"] = Jobs(app)


def jobs() -> Jobs:
    """The current app's job queue."""
    return current_app.extensions["portal.core.jobs"]  # type: ignore[no-any-return]


def enqueue(name: str, *args: Any, **kwargs: Any) -> Any:
    """Queue a registered job on the current app's queue."""
    return jobs().enqueue(name, *args, **kwargs)
