"""``flask --app portal create-user``."""

from __future__ import annotations

import click

from portal.core.models import Role
from portal.extensions import db


@click.command("create-user")
@click.option("--email", required=True)
@click.option("--password", required=True)
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--partner", "partner_code", help="partner code (required for --role partner)")
@click.option("--name", default="")
def create_user(email: str, password: str, role: str, partner_code: str | None,
                name: str) -> None:
    """Create a user who can sign in at once."""
    from portal.core.commands import refusals_as_cli_errors
    from portal.users import services

    with refusals_as_cli_errors():
        user = services.create_user(db.session, email=email, name=name, role=role,
                                    partner_code=partner_code, password=password)
    db.session.commit()
    click.echo(f"created {user.role} {user.email}"
               + (f" for partner {user.partner.code}" if user.partner else ""))
