"""The command groups several areas add to: ``flask --app portal import …`` and ``export …``."""

from __future__ import annotations

import click


@click.group("import")
def import_group() -> None:
    """Import partners or leads from CSV files."""


@click.group("export")
def export_group() -> None:
    """Export data as CSV."""
