"""The lead import's jobs: the nudge after the mapping commits, and the sweeper."""

from __future__ import annotations

from portal.capture.import_dry_run import check_import as check_rows
from portal.capture.imports import checks_waiting, process_import, queued_import_ids
from portal.core.jobs import job, periodic
from portal.extensions import db


@job()
def import_leads(import_id: int) -> None:
    """The nudge after the mapping request commits: run that import now."""
    process_import(import_id)


@job()
def check_import(import_id: int) -> None:
    """The nudge after a mapping is saved: its dry run."""
    check_rows(import_id)


@periodic(minute="*")
def import_sweep() -> int:
    """Every minute: run dry runs and imports whose nudge was lost; how many it ran."""
    session = db.session
    checks, ids = checks_waiting(session), queued_import_ids(session)
    session.commit()
    return (sum(1 for import_id in checks if check_rows(import_id))
            + sum(1 for import_id in ids if process_import(import_id)))
