"""``luodi audit``: check a log and its books, from a server's public API, a database
file, or the operator's own instance.

- ``--url URL --log-key VKEY [--state FILE] [--receipts N|all] [--json]``: a
  remote audit over the public API (:mod:`ledger.charity.remote_audit` over
  :class:`api.remote.HttpSource`); with ``--state`` it also runs as a monitor.
- ``--tiles URL|DIR --log-key VKEY [--state FILE]``: the same audit from C2SP
  tlog-tiles alone (``/checkpoint``, ``/tile/entries/…``, ``/tile/<L>/…``), served by
  a Luodi server, any static web host or a local folder of ``luodi tiles export``
  (:mod:`ledger.charity.tile_audit` over :mod:`api.tile_fetch`); no ``/v1`` API is
  asked, so there are no published figures to compare.
- ``--witness VKEY… [--quorum K]`` or ``--policy FILE`` (with ``--url`` or
  ``--tiles``): the audited checkpoint must carry the cosignatures of a quorum
  of witnesses (C2SP tlog-cosignature, tlog-policy; :mod:`api.cli_policy`).
- ``--db FILE --log-key VKEY [--json]``: a copy of a database file, opened
  read-only (whole-log verification, then the books replayed and compared with
  the file's own index).
- ``--instance DIR``: the operator's instance, as before.

Exit 0 when everything checked out; 1 at the first verification failure
(:class:`ledger.errors.VerificationFailed`), naming the seq, the receipt and
what was wrong; 2 for usage and network errors.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import time
from pathlib import Path

import click

from ledger.charity.audit import audit_books
from ledger.charity.kinds import registry
from ledger.charity.remote_audit import DEFAULT_SAMPLE, audit_remote
from ledger.errors import InvalidInput, LuodiError, MalformedNote, VerificationFailed
from ledger.log.monitor import MonitorState, load_state, save_state
from ledger.log.note import Verifier
from ledger.log.verify import verify_log

from . import instance as inst
from .cli_policy import load_policy, witness_options

USAGE, FAILED = 2, 1


class _Receipts(click.ParamType):
    name = "N|all"

    def convert(self, value, param, ctx):
        if value is None or isinstance(value, int):
            return value
        if str(value).lower() == "all":
            return None
        try:
            n = int(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'all'", param, ctx)
        if n < 0:
            self.fail("must be 0 or more", param, ctx)
        return n


@click.command("audit")
@click.option("--url", help="Audit the server at this URL over its public API (needs --log-key).")
@click.option("--tiles", help="Audit from C2SP tlog-tiles alone, at this URL prefix or folder (needs --log-key).")
@click.option("--db", "db_file", type=click.Path(dir_okay=False), help="Audit a copy of a database file, read-only (needs --log-key).")
@click.option(
    "--instance", envvar="LUODI_INSTANCE", default="instance", show_default=True, type=click.Path(file_okay=False),
    help="Audit the operator's own instance folder (when neither --url nor --db is given).",
)
@click.option("--log-key", help="The log's verifier key, as the charity or regulator published it: the only thing trusted.")
@click.option("--state", type=click.Path(dir_okay=False), help="With --url: the monitor's state file (last verified checkpoint).")
@click.option("--receipts", type=_Receipts(), default=str(DEFAULT_SAMPLE), show_default=True,
              help="With --url: how many random receipts to compare with the replay, or 'all'.")
@click.option("--json", "as_json", is_flag=True, help="Print a machine-readable report on stdout.")
@click.option("--timeout", type=click.FloatRange(1, 3600), default=30, show_default=True,
              help="With --url or --tiles: seconds each request may take to answer.")
@witness_options
def audit(url, tiles, db_file, instance, log_key, state, receipts, as_json, timeout, witnesses, quorum, policy_file):
    """Verify a log and recompute its books from the entries alone, trusting only the pinned key."""
    mode = "url" if url else "tiles" if tiles else "db" if db_file else "instance"
    out = _Output(as_json, mode)
    try:
        if sum(map(bool, (url, tiles, db_file))) > 1:
            raise click.UsageError("give one of --url, --tiles or --db")
        if mode not in ("url", "tiles") and state:
            raise click.UsageError("--state needs --url or --tiles")
        if mode not in ("url", "tiles") and (witnesses or quorum is not None or policy_file):
            raise click.UsageError("a witness policy (--witness, --quorum, --policy) needs --url or --tiles")
        if mode != "instance" and not log_key:
            raise click.UsageError(f"--{mode} needs --log-key: the key the charity or regulator published")
        pinned = _key(log_key) if log_key else None
        policy = load_policy(witnesses, quorum, policy_file, pinned) if pinned else None
        if mode == "url":
            report = _remote(url, pinned, state, receipts, timeout, out, policy)
        elif mode == "tiles":
            report = _tiles(tiles, pinned, state, timeout, out, policy)
        elif mode == "db":
            report = _local(inst.open_database_copy(db_file), pinned)
        else:
            cl = inst.open_instance(instance, with_key=False)
            try:
                report = _local(cl.stores, pinned)
            finally:
                cl.stores.close()
    except click.UsageError as exc:
        out.fail(USAGE, "usage", exc.format_message())
    except VerificationFailed as exc:
        out.fail(FAILED, exc.slug, exc.detail, exc.extra)
    except LuodiError as exc:
        out.fail(USAGE, exc.slug, exc.detail, exc.extra)
    out.done(report)


def _key(text: str) -> Verifier:
    try:
        return Verifier.from_string(text.strip())
    except MalformedNote as exc:
        raise click.UsageError(f"--log-key is not a verifier key (name+keyid+base64): {exc.detail}") from None


def _local(stores, pinned: Verifier | None) -> dict:
    kinds = registry()
    chain = verify_log(stores.log, kinds, pinned)
    books = audit_books(stores)
    with stores.log.snapshot():
        found = stores.log.checkpoint(chain.size)
    return {
        "entries": chain.size, "projects": books.projects, "donations": books.donations,
        "disbursements": books.disbursements, "refunds": books.refunds,
        "checkpoint": {"tree_size": chain.size, "root": base64.b64encode(chain.root).decode(),
                       "note": found[1] if found else None},
        "log_key": chain.log_key, "checkpoints_verified": chain.checkpoints,
    }


def _saved(state_file, pinned: Verifier):
    saved = load_state(state_file, pinned) if state_file else None
    if state_file and not os.access(Path(state_file).parent, os.W_OK | os.X_OK):
        raise InvalidInput(f"cannot write the state file {state_file}: its folder is missing or not writable")
    return saved


def _remote(url, pinned: Verifier, state_file, receipts, timeout, out, policy) -> dict:
    from .remote import HttpSource

    source = HttpSource(url, timeout)
    saved = _saved(state_file, pinned)
    with out.progress() as progress:
        report = audit_remote(source, pinned, saved=saved, receipts=receipts, progress=progress, policy=policy)
    return _result(source.base, "url", source.requests, report, pinned, policy, state_file)


def _tiles(location, pinned: Verifier, state_file, timeout, out, policy) -> dict:
    from ledger.charity.tile_audit import audit_tiles

    from .tile_fetch import tile_fetcher

    fetch = tile_fetcher(location, timeout)
    saved = _saved(state_file, pinned)
    with out.progress() as progress:
        report = audit_tiles(fetch, pinned, saved=saved, progress=progress, policy=policy)
    return _result(fetch.base, "tiles", fetch.requests, report, pinned, policy, state_file)


def _result(base: str, key: str, requests: int, report, pinned: Verifier, policy, state_file) -> dict:
    result = {
        key: base, "entries": report.entries, "projects": report.projects, "donations": report.donations,
        "disbursements": report.disbursements, "refunds": report.refunds,
        "checkpoint": {"tree_size": report.tree_size, "root": base64.b64encode(report.root).decode(),
                       "note": report.checkpoint},
        "log_key": pinned.to_string(), "receipts_checked": report.receipts_checked,
        "inclusion_proofs_checked": report.proofs_checked, "catch_ups": report.catch_ups,
        "requests": requests,
    }
    if policy is not None:
        result["witnesses"] = {"cosigned": dict(sorted(report.witnesses.items())), "policy": policy.describe()}
    if state_file:
        new = report.state
        try:
            save_state(state_file, MonitorState(new.log_key, base, new.size, new.root, new.checkpoint,
                                                new.last_receipt))
        except OSError as exc:
            raise InvalidInput(f"the audit passed, but the state file {state_file} could not be written: {exc}") from None
        result["state"] = {"file": str(state_file), "from": report.state_from, "to": new.size,
                           "advanced": report.state_from is None or new.size > report.state_from}
    return result


class _Output:
    def __init__(self, as_json: bool, mode: str):
        self.as_json, self.mode = as_json, mode
        self.started = time.monotonic()

    def fail(self, code: int, slug: str, detail: str, extra: dict | None = None):
        if self.as_json:
            error = {"type": slug, "detail": detail, **{k: v for k, v in (extra or {}).items() if k != "detail"}}
            click.echo(json.dumps({"ok": False, "exit": code, "mode": self.mode, "error": error}, sort_keys=True))
        else:
            label = "audit FAILED" if code == FAILED else "error"
            click.echo(f"{label}: {detail}", err=True)
        sys.exit(code)

    def done(self, report: dict):
        report["seconds"] = round(time.monotonic() - self.started, 3)
        if self.as_json:
            click.echo(json.dumps({"ok": True, "exit": 0, "mode": self.mode, **report}, sort_keys=True))
            return
        cp = report["checkpoint"]
        click.echo(
            f"ok: {report['entries']} entries verified; books recomputed: {report['projects']} projects, "
            f"{report['donations']} donations, {report['disbursements']} disbursements, {report['refunds']} refunds"
        )
        click.echo(f"checkpoint verified with the pinned key: tree size {cp['tree_size']}, root {cp['root']}")
        if "witnesses" in report:
            w = report["witnesses"]
            click.echo(f"witnesses: cosigned by {', '.join(w['cosigned']) or 'none'}; the policy needs {w['policy']}")
        if self.mode == "tiles":
            click.echo(
                f"tiles equal the log: every entry bundle against its level-0 tile, the root, "
                f"{report['inclusion_proofs_checked']} inclusion proofs built from the hash tiles"
            )
        elif self.mode == "url":
            click.echo(
                f"server's figures equal the replay: every project's totals, {report['receipts_checked']} receipts, "
                f"{report['inclusion_proofs_checked']} inclusion proofs"
            )
        if self.mode in ("url", "tiles"):
            st = report.get("state")
            if st is not None:
                if st["from"] is None:
                    click.echo(f"state: started at tree size {st['to']} ({st['file']})")
                elif st["advanced"]:
                    click.echo(f"state: advanced from tree size {st['from']} to {st['to']}, consistency proven ({st['file']})")
                else:
                    click.echo(f"state: unchanged at tree size {st['to']}, the log did not grow ({st['file']})")
        else:
            click.echo("the file's own index equals the replay")

    def progress(self) -> "_Progress":
        return _Progress(sys.stderr)


class _Progress:
    """Entries followed per second: a rich progress bar on a terminal, else a plain
    line at most every few seconds (on stderr, so that --json stays clean)."""

    EVERY = 5.0

    def __init__(self, stream):
        self.stream = stream
        self.tty = stream.isatty()
        self.bar = self.task = None
        self.started = self.last = time.monotonic()

    def __enter__(self):
        if self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(
                TextColumn("following the log"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[rate]} entries/s"), TimeElapsedColumn(),
                console=Console(file=self.stream), transient=True,
            )
            self.bar.start()
            self.task = self.bar.add_task("log", total=None, rate="-")
        return self.update

    def update(self, done: int, total: int) -> None:
        now = time.monotonic()
        rate = done / (now - self.started) if now > self.started else 0.0
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total, rate=f"{rate:,.0f}")
        elif now - self.last >= self.EVERY or done == total:
            self.last = now
            click.echo(f"followed {done} of {total} entries ({rate:,.0f} entries/s)", err=True)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.stop()
        return False
