"""``flask --app portal import leads``."""

from __future__ import annotations

import click

from portal.core.commands import import_group
from portal.extensions import db


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
