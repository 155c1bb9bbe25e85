"""The ``luodi`` command: a thin click layer over ``ledger``.

Every command takes ``--instance PATH`` (or ``LUODI_INSTANCE``).  A domain
error prints one line and exits 1; nothing is written when a command refuses.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

import click

from ledger.charity import payload as P
from ledger.charity.audit import audit_books
from ledger.charity.books import DEFAULT_WINDOW_SECONDS
from ledger.charity.kinds import MAX_WINDOW_SECONDS
from ledger.charity.demo import seed_demo
from ledger.charity.money import format_amount
from ledger.charity.service import CharityLedger
from ledger.charity.tokens import ROLES, create_token, list_tokens, revoke_token
from ledger.errors import LuodiError
from ledger.log.clock import utc_now
from ledger.log.keyfile import read_key_file, write_key_file
from ledger.log.note import Signer
from ledger.log.verify import verify_log
from ledger.stores.sqlite import DEFAULT_LOCK_TIMEOUT

from . import instance as inst
from .database_url import ENV_VAR as URL_ENV
from .database_url import URL_NAME, is_database_url, redact

DEMO_TOKENS = "demo-tokens.txt"


def _closed(opened):
    """``opened`` (stores, or a CharityLedger), closed when the command ends, whatever
    happens: a PostgreSQL database's pool of connections is let go of at once."""
    stores = getattr(opened, "stores", opened)
    click.get_current_context().call_on_close(stores.close)
    return opened


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


window_option = click.option(
    "--signing-window",
    default=DEFAULT_WINDOW_SECONDS,
    show_default=True,
    type=click.IntRange(1, MAX_WINDOW_SECONDS),
    help="Seconds a signed disbursement's signed_at may be from the time it is logged (recorded in the log).",
)


@main.command()
@instance_option
@click.option("--origin", help=f"The log's origin and key name (default {inst.DEFAULT_ORIGIN}).")
@window_option
@click.option(
    "--database", metavar="postgresql://USER@HOST:PORT/DB",
    help="Keep the log in this PostgreSQL database instead of luodi.sqlite in the instance folder; the URL is "
    f"recorded in the folder ({URL_NAME}, mode 0600) for every later command and the server. "
    f"{URL_ENV} overrides the recorded URL (and without --database, init uses it and records nothing). "
    "The password may stay out of the URL: libpq reads PGPASSWORD or ~/.pgpass. The log key stays in the folder.",
)
def init(instance, origin, signing_window, database):
    """Create the instance folder, the log key (mode 0600) and the database; a new
    log starts with its genesis entry and its policy entry."""
    if database is not None and not is_database_url(database.strip()):
        click.echo(
            f"Error: --database takes a PostgreSQL URL (postgresql://… or postgres://…), not {redact(database)!r}",
            err=True,
        )
        sys.exit(2)
    result = inst.init_instance(instance, origin, signing_window, database)
    _closed(result.charity)
    ledger = result.charity.ledger
    click.echo(f"instance: {instance}")
    click.echo(f"database: {inst.database_name(instance)}")
    if result.tightened is not None:
        click.echo(f"folder:   made private (mode {result.tightened:o} -> 700)")
    click.echo(f"log key:  {'created' if result.created_key else 'kept the existing key'} ({instance}/{inst.KEY_NAME})")
    click.echo(f"verifier: {ledger.verifier.to_string()}")
    click.echo(f"migrations applied: {', '.join(result.migrations) or 'none (up to date)'}")
    click.echo(f"entries:  {ledger.size()}")
    policy = result.charity.policy()
    click.echo(
        f"policy:   signing window {policy.signing_window_seconds} s (seq {policy.seq})" if policy else
        f"policy:   none recorded: the default {DEFAULT_WINDOW_SECONDS} s governs ('luodi policy record' records one)"
    )


@main.group()
def policy():
    """The log's policy parameters, recorded in the log so that auditors replay the rules with them."""


@policy.command("record")
@instance_option
@window_option
def policy_record(instance, signing_window):
    """Record the policy in a log that has none (once; 'luodi init' does it in a new log)."""
    entry = _closed(inst.open_instance(instance)).record_policy(signing_window)
    click.echo(f"policy recorded at seq {entry.seq}, receipt {entry.receipt}: signing window {signing_window} s")


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
    cl = _closed(inst.init_instance(instance).charity)
    if cl.is_fresh():
        seed_demo(cl, donations, keys_dir=Path(instance) / "demo-keys")
    _summary(cl)


@main.command()
@instance_option
def status(instance):
    """Print the log's size, latest checkpoint and verification result."""
    _summary(_closed(inst.open_instance(instance, with_key=False)))


@main.command()
@instance_option
@click.option("--log-key", help="Pin the log's verifier key instead of trusting the genesis entry's.")
def verify(instance, log_key):
    """Re-verify every entry, tree node and checkpoint; exit 1 at the first fault."""
    ledger = _closed(inst.open_instance(instance, with_key=False)).ledger
    report = verify_log(ledger.store, ledger.registry, log_key)
    click.echo(
        f"ok: {report.size} entries, {report.checkpoints} checkpoints, "
        f"root {base64.b64encode(report.root).decode()}, log key {report.log_key}"
    )
    for seq, size in report.oversize:  # appended before the limit: the log verifies (exit 0), docs/entries.md
        click.echo(f"warning: seq {seq} is {size:,} bytes, over the 65,535-byte entry limit of tiles", err=True)


@main.command()
@instance_option
def checkpoint(instance):
    """Print the latest signed checkpoint (a C2SP signed note)."""
    click.echo(_closed(inst.open_instance(instance, with_key=False)).ledger.checkpoint(), nl=False)


@main.command()
@instance_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes.")
@click.option(
    "--threads", default=8, show_default=True, type=click.IntRange(1, 256),
    help="Requests each worker runs at once (threads); a worker's donations that arrive together commit together.",
)
@click.option("--demo", is_flag=True, help="Create the instance if missing and seed a demo into an empty log.")
@click.option(
    "--lock-timeout", type=click.FloatRange(0.1, 20), envvar="LUODI_WRITE_LOCK_TIMEOUT",
    help=f"Seconds a write waits for the write lock before it is answered 503 [default: {DEFAULT_LOCK_TIMEOUT:g}].",
)
@click.option(
    "--read-only", is_flag=True, envvar="LUODI_READ_ONLY",
    help="Serve reads only, without the log key: every write is answered 503.",
)
@click.option(
    "--access-log", is_flag=True, envvar="LUODI_ACCESS_LOG",
    help="Write a line per request to standard output (off by default: a front proxy keeps one).",
)
def serve(instance, host, port, workers, threads, demo, lock_timeout, read_only, access_log):
    """Serve the HTTP API with gunicorn."""
    import os

    from .server import Server

    if demo and read_only:
        raise click.ClickException("--demo writes a demo: it cannot be served --read-only")
    if demo:
        cl = inst.init_instance(instance).charity
        if cl.is_fresh():
            seed_demo(cl, keys_dir=Path(instance) / "demo-keys")
            admin = create_token(cl.stores.tokens, "admin")
            intake = create_token(cl.stores.tokens, "intake")
            tokens = Path(instance) / DEMO_TOKENS
            inst.write_private_file(tokens, f"demo admin token:  {admin}\ndemo intake token: {intake}\n")
            # Not on the terminal: a server's output is often kept in a log.
            click.echo(f"demo tokens written to {tokens} (mode 0600; only their hashes are kept in the database)")
        cl.stores.close()
    # Refuse early, with one line, if the instance is not usable (or not writable unless --read-only).
    inst.check_serving(instance, lock_timeout=lock_timeout or DEFAULT_LOCK_TIMEOUT, read_only=read_only)
    if refused := inst.witness_policy_error(instance):  # docs/witnessing.md
        click.echo(f"Error: {refused}", err=True)
        sys.exit(2)
    # The workers' apps read these (see api/__init__.py); unset, the instance's config.py decides.
    if lock_timeout is not None:
        os.environ["LUODI_WRITE_LOCK_TIMEOUT"] = repr(lock_timeout)
    os.environ["LUODI_WORKERS"] = str(workers)  # each worker enforces its share of an in-memory rate limit
    if read_only:
        os.environ["LUODI_READ_ONLY"] = "true"
    mode = " read-only" if read_only else ""
    click.echo(f"serving {instance}{mode} on http://{host}:{port}/ (API explorer at /docs)")
    Server(str(Path(instance).resolve()), host, port, workers, threads, access_log=access_log).run()


@main.group()
def token():
    """Bearer tokens for the write API."""


@token.command("create")
@instance_option
@click.option("--role", required=True, type=click.Choice(ROLES), help="admin or intake.")
@click.option("--charity", help="Limit an intake token to one charity's projects.")
@click.option("--rate", help="This token's own write limit, e.g. '5000 per minute' [default: the server's for its role].")
def token_create(instance, role, charity, rate):
    """Print a new bearer token once; only its hash is stored."""
    stores = _closed(inst.open_stores(instance))
    click.echo(create_token(stores.tokens, role, charity, stores.books.view(), rate))


@token.command("list")
@instance_option
def token_list(instance):
    """List the tokens by id, role, charity and creation time (never the tokens)."""
    for t in list_tokens(_closed(inst.open_stores(instance)).tokens):
        click.echo(f"{t.id}  {t.role:<6}  {t.charity or '-'}  {t.created}  {t.rate or '-'}")


@token.command("revoke")
@instance_option
@click.argument("token_id")
def token_revoke(instance, token_id):
    """Revoke a token by its id (from 'luodi token list'): it stops working at once."""
    t = revoke_token(_closed(inst.open_stores(instance)).tokens, token_id)
    click.echo(f"revoked {t.id} ({t.role}{', ' + t.charity if t.charity else ''})")


@main.group()
def project():
    """The operator's project tasks."""


@project.command("close")
@instance_option
@click.argument("project_id")
@click.option("--reason", required=True, help="Why the project closes (public, in the log).")
def project_close(instance, project_id, reason):
    """Close a project: later donations and disbursements to it are refused."""
    entry = _closed(inst.open_instance(instance)).close_project(project_id, reason)
    click.echo(f"project {project_id} closed at seq {entry.seq}, receipt {entry.receipt}")


@main.group()
def donor():
    """What the intake sent about donors (never in the log)."""


@donor.command("show")
@instance_option
@click.argument("receipt")
def donor_show(instance, receipt):
    """Print what the intake sent about the donor of a gift, as JSON (null once erased)."""
    personal = _closed(inst.open_instance(instance, with_key=False)).personal_data(receipt)
    click.echo(json.dumps(personal, ensure_ascii=False, sort_keys=True))


@donor.command("erase")
@instance_option
@click.argument("receipt")
def donor_erase(instance, receipt):
    """Erase what the intake sent about a donor and the kept salt; the log stays as it is."""
    erased = _closed(inst.open_instance(instance, with_key=False)).erase_personal_data(receipt)
    click.echo(f"erased the personal data of {receipt}" if erased else f"nothing to erase for {receipt}")


@main.command()
@click.option("--name", required=True, help="The key name, e.g. hope-foundation/finance-1.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the private key (mode 0600).")
def keygen(name, out):
    """Make a charity signing key pair: write the private key, print the verifier key."""
    signer = Signer.generate(name)
    write_key_file(out, signer)
    click.echo(signer.verifier.to_string())


@main.command()
@click.option("--key", "keys", required=True, multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A charity private key file; repeat for m-of-n.")
@click.option("--url", required=True, help="The Luodi server, e.g. http://127.0.0.1:8000.")
@click.option("--project", required=True, help="The project id.")
@click.option("--amount", required=True, help="Decimal amount, e.g. 1200.00.")
@click.option("--payee", required=True, help="Who is paid.")
@click.option("--purpose", required=True, help="What the money pays for.")
@click.option("--period", nargs=2, help="Start and end dates (YYYY-MM-DD) the payment covers; default: today.")
@click.option("--evidence", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="An invoice or contract file to hash into the payload; repeatable.")
def disburse(keys, url, project, amount, payee, purpose, period, evidence):
    """Hash the evidence, sign a disbursement with the charity's keys, and post it."""
    from .client import Client

    client = Client(url)
    found = client.get_json(f"/v1/projects/{project}")
    today = utc_now()[:10]
    payload = P.disbursement(
        charity=found["charity"], project=project, currency=found["currency"], payee=payee, purpose=purpose,
        period=tuple(period) if period else (today, today), lines=[(purpose, amount)], amount=amount,
        evidence=[(P.hash_file(f), Path(f).name) for f in evidence],
    )
    signers = [read_key_file(k) for k in keys]
    answer = client.post_json(
        f"/v1/projects/{project}/disbursements", {"payload": payload, "signatures": [P.sign(payload, s) for s in signers]}
    )
    click.echo(f"disbursement appended at seq {answer['seq']}, receipt {answer['leaf_hash']}")


def _summary(cl: CharityLedger) -> None:
    from rich.console import Console
    from rich.table import Table

    ledger = cl.ledger
    report = verify_log(ledger.store, ledger.registry)
    audit_books(cl.stores)  # raises at the first disagreement
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
    for p in cl.projects():
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


# Commands that live in modules of their own.
from .cli_audit import audit  # noqa: E402
from .cli_db import db_copy  # noqa: E402
from .cli_import import import_file  # noqa: E402
from .cli_receipt import verify_receipt  # noqa: E402
from .cli_tiles import tiles  # noqa: E402
from .cli_witness import witness  # noqa: E402

for _command in (audit, verify_receipt, import_file, tiles, witness):
    main.add_command(_command)
db.add_command(db_copy)
