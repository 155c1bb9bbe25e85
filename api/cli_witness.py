"""``luodi witness``: run a C2SP transparency-log witness (docs/witnessing.md,
"Running a witness").

- ``keygen --name NAME --out FILE``: a new witness key (Ed25519,
  ``cosignature/v1``); the private key goes to FILE (mode 0600, never
  overwritten), the verifier key (type 0x04) is printed for logs to pin.
- ``serve --key FILE --log VKEY [--log VKEY ...] [--db FILE] ...``: serve
  ``POST /add-checkpoint`` and ``GET /<origin hash>/checkpoint`` with gunicorn
  (:mod:`api.witness_app`), cosigning the checkpoints of the logs given by
  their verifier keys (each key's name is its log's origin; give several keys
  of one origin for a log that rotates its key).  The witness keeps its state
  in its own SQLite file, created if missing.
- ``show [--db FILE] [--key FILE]``: the witness's key, and per log the latest
  checkpoint it cosigned and the checkpoints it refused as inconsistent.

A refusal prints one line ``Error: ...`` and exits 2.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import click

from ledger.errors import LuodiError
from ledger.log.cosignature import Cosigner
from ledger.log.keyfile import read_key_file, write_key_file
from ledger.log.note import Verifier
from ledger.log.witness import origin_hash, trusted_logs
from ledger.stores.sqlite import DEFAULT_LOCK_TIMEOUT
from ledger.stores.sqlite.witness import SQLiteWitnessStore

DEFAULT_DB = "witness.sqlite"
DEFAULT_PORT = 7380


class _Refused(click.ClickException):
    exit_code = 2


class _WitnessGroup(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except LuodiError as exc:
            raise _Refused(exc.detail) from exc


@click.group(cls=_WitnessGroup)
def witness():
    """A C2SP transparency-log witness: it cosigns a log's checkpoints only if each is
    consistent with the last one it cosigned, so that a log cannot show two histories."""


@witness.command()
@click.option("--name", required=True, help="The witness's name, a schema-less URL such as witness.example.org/w1.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Where to write the private key (mode 0600).")
def keygen(name, out):
    """Make a witness key: write the private key, print the verifier key."""
    cosigner = Cosigner.generate(name)
    write_key_file(out, cosigner)
    click.echo(cosigner.verifier.to_string())


def _cosigner(path: str) -> Cosigner:
    return read_key_file(path, "witness key", parse=Cosigner.from_string)


def _logs(vkeys: tuple[str, ...]) -> dict:
    verifiers = []
    for vkey in vkeys:
        try:
            verifiers.append(Verifier.from_string(vkey.strip()))
        except LuodiError as exc:
            raise _Refused(f"--log {vkey!r} is not a log's verifier key (name+keyid+base64 of type 0x01): {exc.detail}")
    return trusted_logs(verifiers)


db_option = click.option(
    "--db", default=DEFAULT_DB, show_default=True, type=click.Path(dir_okay=False),
    help="The witness's own SQLite file (mode 0600; created if missing).",
)


@witness.command()
@click.option("--key", required=True, type=click.Path(dir_okay=False), help="The witness's private key file (mode 0600).")
@click.option("--log", "logs", required=True, multiple=True, metavar="VKEY",
              help="A log's verifier key; its name is the log's origin. Repeat for each log, or each key of a log.")
@db_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=DEFAULT_PORT, show_default=True, type=click.IntRange(1, 65535), help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64), help="gunicorn worker processes.")
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 256), help="Requests each worker runs at once.")
@click.option("--lock-timeout", default=DEFAULT_LOCK_TIMEOUT, show_default=True, type=click.FloatRange(0.1, 20),
              help="Seconds a request waits for the database's write lock before it is answered 503.")
@click.option("--access-log", is_flag=True, help="Write a line per request to standard output.")
def serve(key, logs, db, host, port, workers, threads, lock_timeout, access_log):
    """Serve POST /add-checkpoint and GET /<origin hash>/checkpoint with gunicorn."""
    from .witness_app import WitnessServer, WitnessSettings

    cosigner = _cosigner(key)
    followed = _logs(logs)
    SQLiteWitnessStore(db, create=True, lock_timeout=lock_timeout).close()  # made and migrated before the workers
    settings = WitnessSettings(cosigner, followed, Path(db).resolve(), lock_timeout)
    click.echo(f"witness {cosigner.verifier.to_string()}")
    for origin, keys in followed.items():
        click.echo(f"follows {origin} ({len(keys)} key{'s' if len(keys) > 1 else ''}; /{origin_hash(origin)}/checkpoint)")
    click.echo(f"serving on http://{host}:{port}/add-checkpoint, state in {db}")
    WitnessServer(settings, host, port, workers, threads, access_log=access_log).run()


@witness.command()
@db_option
@click.option("--key", type=click.Path(dir_okay=False), help="The witness's private key file: print its verifier key.")
def show(db, key):
    """Print the witness's key, the latest checkpoint it cosigned for each log, and the refusals it kept."""
    if key:
        click.echo(f"witness {_cosigner(key).verifier.to_string()}")
    store = SQLiteWitnessStore(db)
    try:
        latest = store.origins()
        refused = store.refusals()
    finally:
        store.close()
    if not latest:
        click.echo("no checkpoint cosigned yet")
    for c in latest:
        when = datetime.fromtimestamp(c.timestamp, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        count = sum(1 for r in refused if r.origin == c.origin)
        click.echo(f"{c.origin}: size {c.size}, cosigned {when}, {count} refused as inconsistent"
                   f" (/{origin_hash(c.origin)}/checkpoint)")
    for r in refused:
        click.echo(f"refused {r.origin} size {r.size} (old {r.old_size}, held {r.stored_size}): {r.reason}")
