"""``flask --app portal import leads``."""

from __future__ import annotations

from typing import Any

import click

from portal.core.commands import import_group
from portal.extensions import db


@import_group.command("leads")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--campaign", default="", help="campaign code for rows that name none")
@click.option("--source", default="", help="source code for rows that name none")
@click.option("--dry-run", is_flag=True,
              help="only say what would be created, joined and refused; write nothing")
def import_leads(file: str, campaign: str, source: str, dry_run: bool) -> None:
    """Import leads from a CSV file (DESIGN §6), columns and values mapped by their names."""
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
    if dry_run:
        _dry_run(lead_import, found["campaign"], found["source"])
        return
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


def _dry_run(lead_import: Any, campaign: Any, source: Any) -> None:
    """Print what the import would do, then forget the upload (nothing is kept)."""
    from portal.capture import imports
    from portal.capture.import_dry_run import dry_run
    from portal.core.models import utcnow

    lead_import.default_campaign, lead_import.default_source = campaign, source
    try:
        checked = dry_run(db.session, lead_import, now=utcnow())
    finally:
        db.session.rollback()
        imports.file_path(lead_import).unlink(missing_ok=True)
    click.echo(f"dry run, nothing written: {checked.total} rows: {checked.created} would be "
               f"created, {checked.joined} would join an existing lead, {checked.refused} "
               "would be refused")
    for row in checked.samples["refused"]:
        click.echo(f"line {row.line}: {' '.join(row.reasons)}", err=True)
