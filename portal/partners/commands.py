"""``flask --app portal import partners`` and ``export partners``."""

from __future__ import annotations

import click
from flask import current_app

from portal.core.commands import export_group, import_group
from portal.extensions import db


@import_group.command("partners")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def import_partners(file: str) -> None:
    """Import partners from a CSV file (DESIGN §6); bad rows are reported by line."""
    from portal.partners import csv as partners_csv

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


@export_group.command("partners")
@click.argument("file", type=click.File("w", encoding="utf-8"), default="-")
def export_partners(file: click.utils.LazyFile) -> None:
    """Write every partner as CSV (the same format the import reads)."""
    from portal.partners import csv as partners_csv

    for chunk in partners_csv.export_partners(db.session):
        file.write(chunk)
