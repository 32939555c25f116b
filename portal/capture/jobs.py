"""The lead import's jobs: the nudge after the mapping commits, and the sweeper."""

from __future__ import annotations

from portal.capture.imports import process_import, queued_import_ids
from portal.core.jobs import job, periodic
from portal.extensions import db


@job()
def import_leads(import_id: int) -> None:
    """The nudge after the mapping request commits: run that import now."""
    process_import(import_id)


@periodic(minute="*")
def import_sweep() -> int:
    """Every minute: run imports whose nudge was lost; returns how many it ran."""
    session = db.session
    ids = queued_import_ids(session)
    session.commit()
    return sum(1 for import_id in ids if process_import(import_id))
