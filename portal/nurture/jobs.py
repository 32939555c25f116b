"""The nurture sweep: a periodic job that enrols and sends (each step at most once)."""

from __future__ import annotations

from portal.core.jobs import periodic
from portal.extensions import db
from portal.nurture.services import run_sweep


@periodic(minute="*")
def nurture_sweep() -> tuple[int, int]:
    """Every minute: enrol new nurture leads, send the steps that are due."""
    return run_sweep(db.session)
