"""The command groups several areas add to: ``flask --app portal import …`` and ``export …``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import click

from portal.core.errors import DomainError
from portal.extensions import db


@contextmanager
def refusals_as_cli_errors() -> Iterator[None]:
    """A service's refusal ends the command with its message (exit status 1), and what the
    command wrote so far is rolled back."""
    try:
        yield
    except DomainError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None


@click.group("import")
def import_group() -> None:
    """Import partners or leads from CSV files."""


@click.group("export")
def export_group() -> None:
    """Export data as CSV."""
