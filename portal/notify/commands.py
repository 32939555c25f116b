"""``flask --app portal digests send [--period daily|weekly]``."""

from __future__ import annotations

import click


@click.group("digests")
def digests_group() -> None:
    """Email digests."""


@digests_group.command("send")
@click.option("--period", type=click.Choice(["daily", "weekly"]), default=None,
              help="only the users who chose this; by hand, whatever their hour")
def send(period: str | None) -> None:
    """Send the digests due now. With --period, every user who chose that period gets
    this period's digest now (whatever their hour); a repeat sends nothing twice."""
    from portal.notify.outbox import send_digests

    outcomes = send_digests(frequency=period, by_hand=period is not None)
    click.echo(f"digests: {outcomes.get('planned', 0)} planned, {outcomes.get('sent', 0)} sent, "
               f"{outcomes.get('skipped', 0)} with nothing to say, "
               f"{outcomes.get('retry', 0)} to retry, {outcomes.get('failed', 0)} failed")
