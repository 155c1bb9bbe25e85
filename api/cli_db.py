"""``luodi db copy``: move an instance's log, books, private rows and tokens from its
SQLite file to another database (:mod:`ledger.charity.transfer`).

The source is opened read-only (SQLite's own read-only mode), so it can be an
instance that is still serving; what is copied is one snapshot of it.  The
copy is restartable: run it again after an interruption and it goes on from
the last commit the target holds.  Exit 0 when copied; 1 when the source does
not verify (naming the seq); 2 for a refusal (a target that holds another log,
a source that is not a SQLite file or holds no log) or an unreachable target.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import click

from ledger.charity.store import Stores
from ledger.charity.transfer import BATCH, check_source, copy_instance
from ledger.errors import InstanceError, LuodiError, VerificationFailed
from ledger.stores.sqlite import open_sqlite

from . import instance as inst
from .database_url import check_url, redact

_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


class _Failed(click.ClickException):
    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.exit_code = code


def _is_url(text: str) -> bool:
    return bool(_SCHEME.match(text))


def open_target(target: str, source: Path) -> Stores:
    """The stores of the database to copy into (a PostgreSQL URL, else a SQLite
    file), created or brought up to date."""
    if _is_url(target):
        from ledger.stores.postgres import open_postgres  # only a server target needs psycopg

        return open_postgres(check_url(target, "--to"), upgrade=True)
    path = Path(target)
    if path.exists() and source.exists() and os.path.samefile(path, source):
        raise InstanceError("--to names the source file itself")
    return open_sqlite(path, upgrade=True)


@click.command("copy")
@click.option("--from", "source", required=True, type=click.Path(dir_okay=False),
              help="The instance's SQLite database file (e.g. instance/luodi.sqlite), read, never written.")
@click.option("--to", "target", required=True,
              help="The database to copy into: a PostgreSQL URL (postgresql://...), or a SQLite file.")
@click.option("--batch", default=BATCH, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Entries per target transaction (whole commits of the source).")
def db_copy(source, target, batch):
    """Copy an instance's log (verbatim: the same checkpoints and roots), books, donor
    private rows and tokens into an empty database; restartable."""
    try:
        if _is_url(source):
            raise InstanceError(f"--from takes the instance's SQLite file, not a URL ({redact(source)})")
        src = inst.open_database_copy(source)
        try:
            with src.log.snapshot(streaming=True):  # one state of the source, verified, then copied
                checked = check_source(src)
                dst = open_target(target, Path(source))
                try:
                    report = copy_instance(src, dst, verified=checked, batch=batch, progress=_Progress(target))
                finally:
                    dst.close()
        finally:
            src.close()
    except VerificationFailed as exc:
        raise _Failed(f"the source does not verify: {exc.detail}", 1) from exc
    except LuodiError as exc:
        raise _Failed(exc.detail, 2) from exc
    click.echo(f"source: {source}, {checked.size} entries and {checked.checkpoints} checkpoints, verified")
    if report.resumed_from == report.size:
        click.echo("the target already held the whole log (a copy made before): nothing more to copy of it")
    elif report.resumed_from:
        click.echo(f"the target already held the first {report.resumed_from} entries: went on from there")
    click.echo(
        f"private rows: {report.privates} copied"
        + (f", {report.privates_erased} erased (erased in the source since)" if report.privates_erased else "")
        + f"; tokens: {report.tokens_added} copied"
        + (f", {report.tokens_removed} removed (revoked in the source since)" if report.tokens_removed else "")
        + (f"; cosigned checkpoints: {report.cosigned} copied" if report.cosigned else "")
    )
    click.echo(f"copied: {report.size} entries, root {report.root_b64} (the source's latest checkpoint, verbatim)")


class _Progress:
    """A line at each tenth of the log, no more."""

    def __init__(self, target: str):
        self.target = redact(target)
        self.next = 0

    def __call__(self, done: int, total: int) -> None:
        if done >= self.next and done < total:
            click.echo(f"copying to {self.target}: {done} of {total} entries")
            self.next = done + max(total // 10, 1)
