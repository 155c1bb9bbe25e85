"""``luodi import``: stream a settlement file through the batch intake endpoint.

FILE is CSV (a header row) or NDJSON (``.ndjson``/``.jsonl``: one JSON object a
line).  Each row is one batch item: ``project``, ``amount``, ``channel``,
``payment_ref``, ``donor_ref``, ``value_date``, ``idempotency_key`` and an
optional ``personal`` (a JSON object; in CSV, its JSON text).  Rows are sent in
per-project batches of up to ``--batch`` items, in file order within a project,
to ``POST /v1/projects/<project>/donations/batch``.

Running it again after an interruption is safe: every row carries its own
idempotency key, so the rows already recorded come back as replays (the
original receipts), and nothing is recorded twice.

At the end it prints how many rows were recorded, replayed and refused, and
writes the refusals (file row, key, status, problem) to ``--refusals``
(default: beside FILE, ``FILE.refusals.csv``).  Exit 0: every row recorded or
replayed; 1: some rows were refused (see the refusals file); 2: usage and
network errors (a file missing or malformed, a server unreachable, a token
refused), with one line saying which.
"""

from __future__ import annotations

import csv
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import click

from .schemas import MAX_BATCH as MAX_BATCH_ITEMS

FIELDS = ("project", "amount", "channel", "payment_ref", "donor_ref", "value_date", "idempotency_key")
TIMEOUT_SECONDS = 120  # a batch of 1,000 commits at once
RETRIES = 5  # 503 (pushback) and 429 answers are retried after their Retry-After
NDJSON_SUFFIXES = (".ndjson", ".jsonl")


class _Refused(Exception):
    """A usage or network error: exit 2, one line."""


@dataclass
class Row:
    number: int  # the row's line in the file (CSV: of its first line; the header is line 1)
    item: dict | None  # the batch item; None if the row is refused before sending
    key: str = ""
    problem: dict | None = None


@dataclass
class Tally:
    recorded: int = 0
    replayed: int = 0
    refusals: list[Row] = field(default_factory=list)

    def count(self, row: Row, result: dict) -> None:
        status = result.get("status")
        if status == 201:
            self.recorded += 1
        elif status == 200:
            self.replayed += 1
        else:
            row.problem = result
            self.refusals.append(row)


def _item(number: int, raw: dict) -> Row:
    """The batch item of one row (the project stays beside it), or a row refused here."""
    key = raw.get("idempotency_key") if isinstance(raw.get("idempotency_key"), str) else ""
    missing = [f for f in FIELDS if raw.get(f) in (None, "")]
    if missing:
        return Row(number, None, key, _local(f"missing {', '.join(missing)}"))
    item = {f: raw[f] for f in FIELDS}
    personal = raw.get("personal")
    if isinstance(personal, str) and personal.strip():
        try:
            personal = json.loads(personal)
        except ValueError:
            return Row(number, None, key, _local("personal is not JSON text (an object of strings)"))
    if personal not in (None, ""):
        item["personal"] = personal
    return Row(number, item, key)


def _local(detail: str) -> dict:
    return {"status": 422, "type": "/problems/invalid-input", "title": "Invalid input", "detail": detail}


def read_rows(path: Path) -> list[Row]:
    try:
        with path.open(encoding="utf-8", newline="") as f:
            if path.suffix.lower() in NDJSON_SUFFIXES:
                return list(_ndjson(f))
            return list(_csv(f, path))
    except OSError as exc:
        raise _Refused(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise _Refused(f"{path} is not UTF-8 text") from exc
    except csv.Error as exc:
        raise _Refused(f"{path} is not CSV: {exc}") from exc


def _ndjson(f) -> Iterator[Row]:
    for number, line in enumerate(f, 1):
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
        except ValueError:
            yield Row(number, None, "", _local("not JSON"))
            continue
        if not isinstance(raw, dict):
            yield Row(number, None, "", _local("not a JSON object"))
            continue
        yield _item(number, raw)


def _csv(f, path: Path) -> Iterator[Row]:
    reader = csv.DictReader(f)
    header = reader.fieldnames or []
    missing = [c for c in FIELDS if c not in header]
    if missing:
        raise _Refused(f"{path} lacks the column{'s' if len(missing) > 1 else ''} {', '.join(missing)} (header: {', '.join(header) or 'none'})")
    number = reader.line_num + 1
    for raw in reader:
        yield _item(number, raw)
        number = reader.line_num + 1


def batches(rows: list[Row], size: int) -> Iterator[tuple[str, list[Row]]]:
    """Per-project batches of at most ``size`` rows, in the order their last row appears."""
    pending: dict[str, list[Row]] = {}
    for row in rows:
        if row.item is None:
            continue
        batch = pending.setdefault(row.item["project"], [])
        batch.append(row)
        if len(batch) == size:
            yield row.item["project"], pending.pop(row.item["project"])
    yield from pending.items()


class Sender:
    def __init__(self, url: str, token: str, timeout: float):
        self.base, self.token, self.timeout = url.rstrip("/"), token, timeout

    def send(self, project: str, rows: list[Row]) -> list[dict]:
        """One result per row, or one problem for them all (a project refused whole: 403, 404, 409, 422)."""
        body = {"donations": [{k: v for k, v in r.item.items() if k != "project"} for r in rows]}
        path = f"/v1/projects/{urllib.parse.quote(project, safe='')}/donations/batch"
        data = json.dumps(body).encode()
        for attempt in range(RETRIES + 1):
            req = urllib.request.Request(self.base + path, data=data, method="POST")
            req.add_header("Content-Type", "application/json")
            req.add_header("Authorization", f"Bearer {self.token}")
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    results = json.loads(resp.read())["results"]
                    if len(results) != len(rows):
                        raise _Refused(f"{self.base} answered {len(results)} results for {len(rows)} donations")
                    return results
            except urllib.error.HTTPError as exc:
                problem = _problem(exc)
                if exc.code in (429, 503) and attempt < RETRIES:
                    time.sleep(min(float(exc.headers.get("Retry-After") or 1), 30))
                    continue
                if exc.code in (403, 404, 409, 422):
                    return [problem] * len(rows)
                raise _Refused(f"{self.base} answered {exc.code}: {problem.get('detail', exc.reason)}") from exc
            except (urllib.error.URLError, OSError, ValueError, KeyError, TypeError) as exc:
                raise _Refused(f"cannot reach {self.base}: {getattr(exc, 'reason', exc)}") from exc
        raise AssertionError("unreachable")


def _problem(exc: urllib.error.HTTPError) -> dict:
    try:
        problem = json.loads(exc.read())
        if isinstance(problem, dict):
            return problem
    except ValueError:
        pass
    return {"status": exc.code, "title": str(exc.reason), "detail": f"{exc.code} {exc.reason}"}


class _Progress:
    """A rich progress bar on a terminal; else a plain line (on stderr) after each batch."""

    def __init__(self, total: int):
        self.total, self.done, self.bar = total, 0, None
        self.started = time.monotonic()
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self.bar = Progress(TextColumn("importing"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                console=Console(file=sys.stderr), transient=True)
            self.bar.start()
            self.task = self.bar.add_task("import", total=total)

    def advance(self, n: int, project: str) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(self.task, completed=self.done)
        else:
            rate = self.done / max(time.monotonic() - self.started, 1e-6)
            click.echo(f"sent {self.done} of {self.total} rows ({project}; {rate:,.0f} rows/s)", err=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def write_refusals(path: Path, refusals: list[Row]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f)
        out.writerow(["row", "idempotency_key", "status", "type", "detail"])
        for r in sorted(refusals, key=lambda r: r.number):
            p = r.problem or {}
            out.writerow([r.number, r.key, p.get("status", ""), p.get("type", ""), p.get("detail", "")])


@click.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--url", required=True, help="the Luodi server, e.g. https://ledger.example.org")
@click.option("--token", required=True, envvar="LUODI_TOKEN", help="an intake (or admin) token [env LUODI_TOKEN]")
@click.option("--batch", "batch_size", type=click.IntRange(1, MAX_BATCH_ITEMS), default=MAX_BATCH_ITEMS,
              show_default=True, help="donations per request")
@click.option("--refusals", type=click.Path(path_type=Path), default=None,
              help="where to write the refused rows (CSV) [default: FILE.refusals.csv]")
@click.option("--timeout", type=float, default=TIMEOUT_SECONDS, show_default=True, help="seconds per request")
def import_file(file: Path, url: str, token: str, batch_size: int, refusals: Path | None, timeout: float):
    """Record the donations of a settlement FILE (.csv or .ndjson) through the batch endpoint.

    Safe to run again after an interruption: each row's idempotency_key makes a row
    already recorded a replay.  Exit 0: all recorded or replayed; 1: some refused;
    2: a usage or network error."""
    refusals = refusals or file.with_name(file.name + ".refusals.csv")
    tally = Tally()
    try:
        rows = read_rows(file)
        tally.refusals += [r for r in rows if r.item is None]
        sender, progress = Sender(url, token, timeout), _Progress(len(rows))
        try:
            for project, batch in batches(rows, batch_size):
                for row, result in zip(batch, sender.send(project, batch)):
                    tally.count(row, result)
                progress.advance(len(batch), project)
        finally:
            progress.close()
        write_refusals(refusals, tally.refusals)
    except _Refused as exc:
        click.echo(f"luodi import: {exc}", err=True)
        sys.exit(2)
    except OSError as exc:
        click.echo(f"luodi import: cannot write {refusals}: {exc.strerror or exc}", err=True)
        sys.exit(2)
    click.echo(f"recorded {tally.recorded}, replayed {tally.replayed}, refused {len(tally.refusals)}"
               f" (refusals: {refusals})")
    sys.exit(1 if tally.refusals else 0)
