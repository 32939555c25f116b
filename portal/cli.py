"""``flask --app portal …`` commands; each calls the same services as the pages."""

from __future__ import annotations

import click
from flask import Flask, current_app

from portal.core.models import Role
from portal.extensions import db


def init_app(app: Flask) -> None:
    """Register the command groups."""
    app.cli.add_command(create_user)
    app.cli.add_command(worker)
    app.cli.add_command(demo)
    app.cli.add_command(import_group)
    app.cli.add_command(export_group)
    app.cli.add_command(route)
    app.cli.add_command(geo_group)


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--partner", "partner_code", help="partner code (required for --role partner)")
@click.option("--name", default="")
def create_user(email: str, password: str, role: str, partner_code: str | None,
                name: str) -> None:
    """Create a user who can sign in at once."""
    from portal.manage import services

    try:
        user = services.create_user(db.session, email=email, name=name, role=role,
                                    partner_code=partner_code, password=password)
    except services.ManageError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    db.session.commit()
    click.echo(f"created {user.role} {user.email}"
               + (f" for partner {user.partner.code}" if user.partner else ""))


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
    consumer = StoppingConsumer(huey, workers=workers, worker_type="thread", periodic=True,
                                check_worker_health=True, shutdown_timeout=shutdown_timeout)
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


@click.command("demo")
@click.option("--quiet", is_flag=True, help="print nothing but errors")
def demo(quiet: bool) -> None:
    """Load the demo data once (idempotent) and print the demo logins."""
    from portal.demo import DEMO_LOGINS, load_demo

    created = load_demo(db.session)
    db.session.commit()
    if quiet:
        return
    click.echo("Demo data " + ("loaded." if created else "already present; nothing changed."))
    click.echo("Demo logins (password for all: demo-password):")
    for email, what in DEMO_LOGINS:
        click.echo(f"  {email:<32} {what}")


@click.group("import")
def import_group() -> None:
    """Import partners or leads from CSV files."""


@import_group.command("partners")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_partners(file: str) -> None:
    """Import partners from a CSV file (DESIGN §6); bad rows are reported by line."""
    from portal.manage import partners_csv

    with open(file, "rb") as handle:
        report = partners_csv.import_partners(
            db.session, handle, max_bytes=current_app.config["PARTNERS_CSV_MAX_BYTES"]
        )
    for problem in report.errors:
        click.echo(str(problem), err=True)  # "line N, column C: message"
    if report.fatal:
        db.session.rollback()
        raise click.ClickException(report.fatal)
    db.session.commit()
    click.echo(f"{report.created} created, {report.updated} updated, "
               f"{len(report.error_lines)} rows rejected")
    if report.errors:
        raise SystemExit(1)


@import_group.command("leads")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--campaign", default="", help="campaign code for rows that name none")
@click.option("--source", default="", help="source code for rows that name none")
def import_leads(file: str, campaign: str, source: str) -> None:
    """Import leads from a CSV file (DESIGN §6), columns mapped by their header names."""
    from portal.capture import imports
    from portal.core.models import Campaign, ImportStatus, LeadImport, Source
    from portal.core.models.codes import active_codes, by_code

    found = {}
    for model, code, name in ((Campaign, campaign, "campaign"), (Source, source, "source")):
        found[name] = by_code(db.session, model, code)
        if code and found[name] is None:
            known = ", ".join(active_codes(db.session, model))
            raise click.ClickException(f"Unknown {name} {code!r}; one of: {known}.")
    try:
        with open(file, "rb") as handle:
            lead_import = imports.create_import(db.session, handle, file, None)
    except imports.ImportFileError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    problems = imports.check_mapping(lead_import.header, lead_import.mapping)
    if problems:
        db.session.rollback()
        raise click.ClickException("; ".join(problems.values()))
    imports.start_import(db.session, lead_import, lead_import.mapping, found["campaign"],
                         found["source"], nudge=False)
    db.session.commit()
    import_id = lead_import.id
    if not imports.process_import(import_id):
        raise click.ClickException(f"import {import_id} was taken by the worker meanwhile")
    done = db.session.get(LeadImport, import_id, populate_existing=True)
    assert done is not None
    lead_import = done
    if lead_import.status == ImportStatus.FAILED:
        raise click.ClickException(lead_import.message)
    click.echo(f"{lead_import.processed} rows: {lead_import.created} created, "
               f"{lead_import.duplicates} duplicates, {lead_import.rejected} rejected")
    if lead_import.rejected:
        click.echo(f"problems by line: {imports.report_path(lead_import)}", err=True)
        raise SystemExit(1)


@click.group("export")
def export_group() -> None:
    """Export data as CSV."""


@export_group.command("partners")
@click.argument("file", type=click.File("w", encoding="utf-8"), default="-")
def export_partners(file: click.utils.LazyFile) -> None:
    """Write every partner as CSV (the same format the import reads)."""
    from portal.manage import partners_csv

    for chunk in partners_csv.export_partners(db.session):
        file.write(chunk)






@click.command("route")
@click.option("--batch", default=1000, show_default=True, help="leads per transaction")
def route(batch: int) -> None:
    """Expire overdue offers, then route every pending lead (commits per batch)."""
    import time

    from portal.core.errors import InvalidTransition
    from portal.dispatch.services import (
        expire_overdue_offers,
        partner_index,
        pending_leads,
        route_lead,
    )

    started = time.perf_counter()
    expired = 0
    while True:
        done = expire_overdue_offers(db.session, limit=batch)
        db.session.commit()
        expired += len(done)
        if len(done) < batch:
            break
    offered = queued = 0
    while True:
        leads = pending_leads(db.session, limit=batch)
        if not leads:
            break
        index = partner_index(db.session)  # checked once per batch, not per lead
        for lead in leads:
            try:
                result = route_lead(db.session, lead, index=index)
            except InvalidTransition:
                continue  # routed by the worker since the query read it
            if result.partner is not None:
                offered += 1
            else:
                queued += 1
        db.session.commit()
    seconds = time.perf_counter() - started
    total = offered + queued
    rate = f", {total / seconds:,.0f} leads/s" if total and seconds > 0 else ""
    click.echo(f"{expired} offers expired; {offered} leads offered, {queued} queued for a "
               f"manager in {seconds:.1f} s{rate}")


@click.group("geo")
def geo_group() -> None:
    """Postal-code centroids for routing by distance."""


@geo_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def geo_import(file: str) -> None:
    """Import a GeoNames postal-code file (tab-separated, UTF-8); bad lines are reported."""
    from portal.dispatch.geo import import_geonames

    with open(file, encoding="utf-8", errors="strict") as handle:
        try:
            report = import_geonames(db.session, handle)
        except UnicodeDecodeError as error:
            db.session.rollback()
            raise click.ClickException(
                f"the file is not UTF-8 (byte {error.start}); GeoNames files are UTF-8"
            ) from None
    db.session.commit()
    for line, message in report.errors[:50]:
        click.echo(f"line {line}: {message}", err=True)
    if len(report.errors) > 50:
        click.echo(f"… and {len(report.errors) - 50} more bad lines", err=True)
    countries = ", ".join(report.countries) or "no country"
    click.echo(f"{report.imported} postal codes imported for {countries}; "
               f"{len(report.errors)} lines rejected")
