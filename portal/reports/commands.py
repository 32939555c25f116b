"""``flask --app portal reports rebuild [--if-stale]``: count the reports' rollups again."""

from __future__ import annotations

import time

import click

from portal.core import rollups
from portal.extensions import db


@click.group("reports")
def reports_group() -> None:
    """The channel reports."""


@reports_group.command("rebuild")
@click.option("--if-stale", is_flag=True,
              help="only when the rollups are not built (or counted with another contact "
                   "time): what a deploy runs after its migrations")
def rebuild(if_stale: bool) -> None:
    """Count every offer and lead into the reports' rollups again, in one transaction
    (the reports read live meanwhile). Needed after writes around the portal (a bulk load)
    or a change of CONTACT_SLA_HOURS; the portal keeps them itself otherwise."""
    count_again(if_stale=if_stale)


def count_again(*, if_stale: bool, quiet: bool = False) -> None:
    """Rebuild the rollups (only when stale, with ``if_stale``) and say what was counted."""
    if if_stale and rollups.readable(db.session):
        db.session.commit()  # ends the transaction of that read
        return
    started = time.monotonic()
    counted = rollups.rebuild(db.session.connection())
    db.session.commit()
    if not quiet:
        click.echo(f"reports: counted {counted['offers']:,} offers and {counted['leads']:,} "
                   f"leads in {time.monotonic() - started:.1f} s")
