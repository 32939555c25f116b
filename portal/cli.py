"""``flask --app portal …`` commands; each calls the same services as the pages."""

from __future__ import annotations

import click
from flask import Flask, current_app

from portal.core.commands import export_group, import_group, refusals_as_cli_errors
from portal.extensions import db


def init_app(app: Flask) -> None:
    """Register the app-wide commands and the groups the areas add to."""
    app.cli.add_command(worker)
    app.cli.add_command(demo)
    app.cli.add_command(prepare)
    app.cli.add_command(backup)
    app.cli.add_command(restore)
    app.cli.add_command(import_group)
    app.cli.add_command(export_group)


@click.command("worker")
@click.option("--workers", default=2, show_default=True, help="worker threads")
@click.option("--shutdown-timeout", default=5.0, show_default=True,
              help="seconds a stop waits for running jobs before leaving them to the sweepers")
def worker(workers: int, shutdown_timeout: float) -> None:
    """Run the background job consumer (Huey) until interrupted (INT or TERM)."""
    import logging
    import signal

    from huey.consumer import Consumer

    from portal.core.jobs import jobs
    from portal.fulfilment import pdf

    class StoppingConsumer(Consumer):  # type: ignore[misc]
        """Huey's consumer, stopping gracefully on TERM as on INT, renders abandoned at once."""

        def __init__(self, *args: object, **kwargs: object) -> None:
            super().__init__(*args, **kwargs)
            # Huey treats TERM as "stop now", and its thread workers cannot be interrupted:
            # the process would exit mid-job (a pack left "sending" for a person to sort
            # out). TERM is what serve.sh, systemd and docker send, so it is graceful too;
            # a second INT or TERM still means "now".
            self._signal_actions[signal.SIGTERM] = (False, True)

        def stop(self, graceful: bool = False) -> None:
            # A render may take a minute; abandon it now (its pack goes back to pending)
            # so the stop takes seconds, not the render's time limit.
            pdf.request_stop()
            super().stop(graceful=graceful)

    if not logging.getLogger().handlers:  # say what the consumer does, stopping included
        logging.basicConfig(level=logging.INFO,
                            format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    huey = jobs().huey
    backend = "Redis" if current_app.config.get("REDIS_URL") else "SQLite"
    click.echo(f"worker: {workers} threads on {backend}; Ctrl-C stops it")
    # flush_locks: an exclusive job's lock left by a worker that died mid-run is cleared
    # (this is the one worker; with several, give the others flush_locks=False).
    consumer = StoppingConsumer(huey, workers=workers, worker_type="thread", periodic=True,
                                check_worker_health=True, shutdown_timeout=shutdown_timeout,
                                flush_locks=True)
    pdf.start_pool(int(current_app.config.get("PDF_RENDER_PROCESSES", 1)))
    try:
        consumer.run()
    finally:
        # End and reap the render children (bounded: pdf.shutdown kills what lingers)
        # without a late Ctrl-C cutting that short and leaving them behind; then let
        # INT and TERM act at once, as Huey's handlers outlive run() and would swallow them.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        pdf.shutdown()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@click.command("backup")
@click.argument("target", type=click.Path(dir_okay=False, writable=True))
def backup(target: str) -> None:
    """Write a backup archive (.tar.gz) of the database and the literature files while
    the portal runs; ``restore`` loads it into a new, empty database."""
    from pathlib import Path

    from portal.core import backup as backups

    with refusals_as_cli_errors():
        manifest = backups.take(Path(target))
    click.echo(f"Backed up {manifest.backend} at revision {manifest.revision} "
               f"({sum(manifest.rows.values()):,} rows in {len(manifest.rows)} tables, "
               f"{manifest.files} literature files) to {target}")


@click.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
def restore(source: str) -> None:
    """Load a backup archive into the configured database, which must be empty (a new
    SQLite file or PostgreSQL database); the row counts are checked against the backup."""
    from pathlib import Path

    from portal.core import backup as backups

    with refusals_as_cli_errors():
        manifest = backups.restore(Path(source))
    click.echo(f"Restored the backup of {manifest.taken_at} ({sum(manifest.rows.values()):,} "
               f"rows, {manifest.files} literature files); run `flask --app portal prepare` "
               "if the code is newer than the backup.")


@click.command("demo")
@click.option("--quiet", is_flag=True, help="print nothing but errors")
def demo(quiet: bool) -> None:
    """Load the demo data once (idempotent) and print the demo logins."""
    _load_demo(quiet)


def _load_demo(quiet: bool) -> None:
    from portal.demo import DEMO_LOGINS, is_loaded, load_demo

    if not quiet and not is_loaded(db.session):
        click.echo("Loading the demo data (first run only) ...", err=True)
    created = load_demo(db.session)
    db.session.commit()
    if quiet:
        return
    click.echo("Demo data " + ("loaded." if created else "already present; nothing changed."))
    click.echo("Demo logins (password for all: demo-password):")
    for email, what in DEMO_LOGINS:
        click.echo(f"  {email:<32} {what}")


def _upgrade_unless_current() -> None:
    """``db upgrade`` when the database is behind the migrations (read on the session's
    own connection: Alembic's environment, and its second connection, only when needed)."""
    from alembic.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from flask_migrate import upgrade

    config = current_app.extensions["migrate"].migrate.get_config()
    wanted = set(ScriptDirectory.from_config(config).get_heads())
    current = set(MigrationContext.configure(db.session.connection()).get_current_heads())
    db.session.commit()
    if current != wanted:
        upgrade()


@click.command("prepare")
@click.option("--demo", "with_demo", is_flag=True, help="also load the demo data once")
@click.option("--quiet", is_flag=True, help="print nothing but errors")
def prepare(with_demo: bool, quiet: bool) -> None:
    """What a start or a deploy needs, in one process: the migrations (``db upgrade``),
    the reports' rollups when they are stale (``reports rebuild --if-stale``) and, with
    ``--demo``, the demo data once (``demo``)."""
    from portal.reports.commands import count_again

    _upgrade_unless_current()
    count_again(if_stale=True, quiet=quiet)
    if with_demo:
        _load_demo(quiet)
