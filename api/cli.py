"""The ``luodi`` command: a thin click layer over ``ledger``.

Every command takes ``--instance PATH`` (or ``LUODI_INSTANCE``).  A domain
error prints one line and exits 1; nothing is written when a command refuses.
"""

from __future__ import annotations

import base64
from pathlib import Path

import click

from ledger import instance as inst
from ledger.audit import audit_books
from ledger.books import DEFAULT_WINDOW_SECONDS
from ledger.charity import CharityLedger
from ledger.demo import seed_demo
from ledger.errors import LuodiError
from ledger.money import format_amount
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
    "--donations", default=400, show_default=True, type=click.IntRange(1, 1_000_000), help="How many demo donations."
)
def demo(instance, donations):
    """Initialise the instance if needed, seed a demo into an empty log, print a summary."""
    ledger = inst.init_instance(instance).ledger
    if ledger.size() == 1:
        seed_demo(CharityLedger(ledger), donations, keys_dir=Path(instance) / "demo-keys")
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
@click.option("--log-key", help="Pin the log's verifier key instead of trusting the genesis entry's.")
@click.option(
    "--window",
    default=DEFAULT_WINDOW_SECONDS,
    show_default=True,
    type=click.IntRange(1),
    help="The signing window (seconds) the operator runs with, to replay the signed_at rule.",
)
def audit(instance, log_key, window):
    """Verify the log, then recompute the books from the entries alone and compare with the index."""
    ledger = inst.open_ledger(instance, with_key=False)
    chain = verify_log(ledger.storage, log_key)
    report = audit_books(ledger.storage, window)
    click.echo(
        f"ok: {chain.size} entries verified; books recomputed and equal: {report.projects} projects, "
        f"{report.donations} donations, {report.disbursements} disbursements, {report.refunds} refunds"
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
    audit = audit_books(ledger.storage, ledger.window_seconds)
    table = Table(title="Luodi ledger", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("origin", ledger.origin)
    table.add_row("log key", ledger.verifier.to_string())
    table.add_row("entries", str(report.size))
    table.add_row("checkpoints", str(report.checkpoints))
    table.add_row("root", base64.b64encode(report.root).decode())
    table.add_row("verification", "[green]ok[/green]: every entry, node and checkpoint re-verified")
    table.add_row("audit", "[green]ok[/green]: the books recomputed from the entries match the index")
    for p in CharityLedger(ledger).projects():
        table.add_row(
            f"project {p.project}",
            f"{p.donations} donations, raised {format_amount(p.raised, p.currency)}, "
            f"spent {format_amount(p.spent, p.currency)}, refunded {format_amount(p.refunded, p.currency)}, "
            f"balance {format_amount(p.balance, p.currency)} {p.currency}",
        )
    console = Console()
    console.print(table)
    click.echo("latest checkpoint:")
    click.echo(ledger.checkpoint(), nl=False)
