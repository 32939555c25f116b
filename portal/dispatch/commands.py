"""``flask --app portal route`` and ``geo import``."""

from __future__ import annotations

import click

from portal.extensions import db


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
