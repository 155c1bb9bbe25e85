"""The ``luodi`` command: a thin click layer over ``ledger``.

Every command takes ``--instance PATH`` (or ``LUODI_INSTANCE``).  A domain
error prints one line and exits 1; nothing is written when a command refuses.
"""

from __future__ import annotations

import base64

import click

from ledger import instance as inst
from ledger.demo import seed_demo
from ledger.errors import LuodiError
from ledger.verify import verify_log


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LuodiError as exc:
            raise click.ClickException(exc.detail) from exc


instance_option = click.option(
    "--instance",
    envvar="LUODI_INSTANCE",
    default="instance",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The instance folder (database and log key).",
)


@click.group(cls=_Group)
@click.version_option(package_name="luodi")
def main():
    """Luodi (落地): a donation-transparency ledger with proofs anyone can check."""


@main.command()
@instance_option
@click.option("--origin", help=f"The log's origin and key name (default {inst.DEFAULT_ORIGIN}).")
def init(instance, origin):
    """Create the instance folder, the log key (mode 0600) and the database."""
    result = inst.init_instance(instance, origin)
    ledger = result.ledger
    click.echo(f"instance: {instance}")
    click.echo(f"log key:  {'created' if result.created_key else 'kept the existing key'} ({instance}/{inst.KEY_NAME})")
    click.echo(f"verifier: {ledger.verifier.to_string()}")
    click.echo(f"migrations applied: {', '.join(result.migrations) or 'none (up to date)'}")
    click.echo(f"entries:  {ledger.size()}")


@main.group()
def db():
    """Database maintenance."""


@db.command()
@instance_option
def upgrade(instance):
    """Apply pending migrations."""
    applied = inst.upgrade_database(instance)
    click.echo(f"applied: {', '.join(applied)}" if applied else "database is up to date")


@main.command()
@instance_option
@click.option(
    "--entries", default=300, show_default=True, type=click.IntRange(1, 1_000_000), help="How many demo entries to seed."
)
def demo(instance, entries):
    """Initialise the instance if needed, seed demo entries into an empty log, print a summary."""
    ledger = inst.init_instance(instance).ledger
    if ledger.size() == 1:
        seed_demo(ledger, entries)
    _summary(ledger)


@main.command()
@instance_option
def status(instance):
    """Print the log's size, latest checkpoint and verification result."""
    _summary(inst.open_ledger(instance, with_key=False))


@main.command()
@instance_option
@click.option("--log-key", help="Pin the log's verifier key instead of trusting the genesis entry's.")
def verify(instance, log_key):
    """Re-verify every entry, tree node and checkpoint; exit 1 at the first fault."""
    ledger = inst.open_ledger(instance, with_key=False)
    report = verify_log(ledger.storage, log_key)
    click.echo(
        f"ok: {report.size} entries, {report.checkpoints} checkpoints, "
        f"root {base64.b64encode(report.root).decode()}, log key {report.log_key}"
    )


@main.command()
@instance_option
def checkpoint(instance):
    """Print the latest signed checkpoint (a C2SP signed note)."""
    click.echo(inst.open_ledger(instance, with_key=False).checkpoint(), nl=False)


def _summary(ledger) -> None:
    from rich.console import Console
    from rich.table import Table

    report = verify_log(ledger.storage)
    table = Table(title="Luodi ledger", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("origin", ledger.origin)
    table.add_row("log key", ledger.verifier.to_string())
    table.add_row("entries", str(report.size))
    table.add_row("checkpoints", str(report.checkpoints))
    table.add_row("root", base64.b64encode(report.root).decode())
    table.add_row("verification", "[green]ok[/green]: every entry, node and checkpoint re-verified")
    console = Console()
    console.print(table)
    click.echo("latest checkpoint:")
    click.echo(ledger.checkpoint(), nl=False)
