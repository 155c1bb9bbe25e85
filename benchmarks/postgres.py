"""PostgreSQL beside SQLite (issue 13), measured side by side in one run.

* **Batch append**: the same note entries in the same batches, through
  ``Ledger.append_batch``, on each backend, against its plain insert of the
  very rows the driver stored.  PostgreSQL's baseline is a scratch table
  created ``LIKE entries INCLUDING ALL`` (the same columns, keys, unique index
  and checks; not the triggers) in the same database, one multi-row ``INSERT``
  per batch (split at PostgreSQL's 65,535 parameters), each batch its own
  committed transaction, with ``synchronous_commit = on``.  Target: ours >= 50%
  of it.  SQLite's baseline is benchmarks/append.py's "raw rows".
* **Inclusion proofs** at ``--entries`` (default 1,000,000): random indexes
  against the latest tree size, through a freshly opened Ledger (its caches
  empty), on one thread and on several; every 100th proof verified outside the
  timing.  Target: >= 10,000/s on PostgreSQL.
* **Whole-log verification** (``verify_log``) on one core and on every core,
  each in a fresh child process, beside a bare pass that streams the same rows
  and hashes each entry, nothing else.
* **Donation POSTs** (``--parts http``): ``luodi serve`` on a copy of an
  ``--http-entries``-donation instance, one server against two servers on one
  database (each server its own instance folder: the same log.key, the same
  database), loaded by two wrk processes at once; SQLite's one server beside
  them for reference.  No target: rates, p99, commits, and the CPU per request
  of the servers, of the database's backends and of PostgreSQL's shared
  processes.

The benchmark's databases are its own, created on the server ``--server``
names and called ``<prefix>_…`` (default ``luodi_bench_…``): the ledgers of
``--entries`` and of ``--http-entries`` are built once and kept (like
benchmarks/out/ for SQLite), named with a hash of the migrations so that a
changed schema is built anew; ``--cleanup`` drops every one at the end.

    python benchmarks/postgres.py [--entries 1000000] [--append-entries 200000]
        [--batches 100,1000,10000] [--proofs 50000] [--proof-threads 1,4]
        [--parts append,proofs,verify,http] [--http-entries 100000] [--seconds 10]
        [--connections 64] [--threads 8] [--server postgresql:///postgres]
        [--prefix luodi_bench] [--cleanup]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import subprocess
import sys
import threading
from pathlib import Path

from _common import (
    OUT,
    Timer,
    cached_ledger_path,
    cached_pg_ledger,
    items,
    new_ledger,
    new_pg_ledger,
    open_ledger,
    open_pg_ledger,
    pg_create,
    pg_databases,
    pg_drop,
    row,
    workdir,
)
from append import raw_insert

from ledger.log import merkle

MAX_PARAMS = 65_535  # PostgreSQL's limit on one statement's parameters


# -- batch append --------------------------------------------------------------------------------


def sqlite_append(work: list, batch: int, tmp: Path) -> tuple[float, float]:
    """(ours, raw rows) in entries/s on SQLite."""
    ledger = new_ledger(tmp / "ours.sqlite")
    with Timer() as ours:
        for i in range(0, len(work), batch):
            ledger.append_batch(work[i : i + batch])
    canonical = [r[-1] for r in ledger.store.iter_entries(1)]
    ledger.store.close()
    rows = [(seq, hashlib.sha256(b"\0" + c).digest(), c) for seq, c in enumerate(canonical, 1)]
    raw = raw_insert(
        tmp / "raw.sqlite", rows, batch,
        "CREATE TABLE entries (seq INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL UNIQUE, canonical BLOB NOT NULL)",
        "INSERT INTO entries VALUES (?, ?, ?)",
    )
    return len(work) / ours.seconds, raw


def insert_statements(rows: list[tuple], batch: int, table: str) -> list[list[tuple[str, list]]]:
    """Per batch, its multi-row INSERT statements (one unless the parameters overflow)."""
    width = len(rows[0])
    per = MAX_PARAMS // width
    shapes: dict[int, str] = {}
    out = []
    for i in range(0, len(rows), batch):
        chunk, statements = rows[i : i + batch], []
        for j in range(0, len(chunk), per):
            part = chunk[j : j + per]
            if len(part) not in shapes:
                one = "(" + ", ".join(["%s"] * width) + ")"
                shapes[len(part)] = f"INSERT INTO {table} VALUES " + ", ".join([one] * len(part))  # noqa: S608
            statements.append((shapes[len(part)], [v for r in part for v in r]))
        out.append(statements)
    return out


def pg_append(work: list, batch: int, server: str, prefix: str) -> tuple[float, float, float, str]:
    """(ours, one multi-row INSERT per batch, executemany per batch) in entries/s on
    PostgreSQL, and the durability settings seen."""
    import psycopg

    name = f"{prefix}_append"
    url = pg_create(server, name)
    try:
        ledger = new_pg_ledger(url)
        with Timer() as ours:
            for i in range(0, len(work), batch):
                ledger.append_batch(work[i : i + batch])
        ledger.store.close()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("SET synchronous_commit = on")
            settings = ", ".join(
                f"{k}={conn.execute(f'SHOW {k}').fetchone()[0]}" for k in ("synchronous_commit", "fsync", "wal_sync_method")
            )
            rows = conn.execute("SELECT * FROM entries WHERE seq >= 1 ORDER BY seq").fetchall()
            if len(rows) != len(work):
                raise SystemExit(f"the driver stored {len(rows)} entries of {len(work)}")
            conn.execute("CREATE TABLE raw_multi (LIKE entries INCLUDING ALL)")
            conn.execute("CREATE TABLE raw_many (LIKE entries INCLUDING ALL)")
            batches = insert_statements(rows, batch, "raw_multi")
            with Timer() as multi:
                for statements in batches:
                    with conn.transaction():
                        for sql, params in statements:
                            conn.execute(sql, params)
            many_sql = "INSERT INTO raw_many VALUES (" + ", ".join(["%s"] * len(rows[0])) + ")"  # noqa: S608
            with Timer() as many:
                for i in range(0, len(rows), batch):
                    with conn.transaction():
                        conn.cursor().executemany(many_sql, rows[i : i + batch])
            for table in ("raw_multi", "raw_many"):
                if conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] != len(rows):  # noqa: S608
                    raise SystemExit(f"the baseline {table} lost rows")
    finally:
        pg_drop(server, name)
    return len(work) / ours.seconds, len(work) / multi.seconds, len(work) / many.seconds, settings


def append_part(args) -> None:
    work = items(args.append_entries)
    results, settings = [], ""
    for batch in (int(b) for b in args.batches.split(",")):
        with workdir() as tmp:
            s_ours, s_raw = sqlite_append(work, batch, tmp)
        p_ours, p_multi, p_many, settings = pg_append(work, batch, args.server, args.prefix)
        results.append((batch, s_ours, s_raw, p_ours, p_multi, p_many))
    print(f"\n# batch append of {args.append_entries:,} entries, one transaction per batch; SQLite WAL + "
          f"synchronous=FULL; PostgreSQL {settings}")
    print("# target: PostgreSQL ours >= 50% of a plain insert of the same rows into a table LIKE entries "
          "(the faster of one multi-row INSERT and one executemany per batch)")
    row("batch", "SQLite ours", "SQLite raw rows", "ratio", "PostgreSQL ours", "multi-row INSERT", "executemany",
        "ratio to the faster (target >= 50%)", "PostgreSQL / SQLite")
    for batch, s_ours, s_raw, p_ours, p_multi, p_many in results:
        p_raw = max(p_multi, p_many)
        row(f"append {batch:>6}", f"{s_ours:,.0f}/s", f"{s_raw:,.0f}/s", f"{s_ours / s_raw:.1%}", f"{p_ours:,.0f}/s",
            f"{p_multi:,.0f}/s", f"{p_many:,.0f}/s",
            f"{p_ours / p_raw:.1%} ({'met' if p_ours >= 0.5 * p_raw else 'NOT met'})", f"{p_ours / s_ours:.2f}x")


# -- proofs ----------------------------------------------------------------------------------------


def _select_one(conn) -> None:
    conn.execute("SELECT 1").fetchone()


def proof_rate(open_, count: int, threads: int, seed: int, bare: bool = False) -> float:
    """Inclusion proofs/s through a freshly opened Ledger, on ``threads`` threads
    (``bare``: instead, round trips of ``SELECT 1`` through the driver's read
    path, the floor under any proof that reads the database once)."""
    ledger = open_()
    try:
        size = ledger.size()
        rng = random.Random(seed)
        indexes = [rng.randrange(size) for _ in range(count)]
        shares = [indexes[t::threads] for t in range(threads)]
        proofs: list[list] = [[] for _ in range(threads)]
        failed: list[BaseException] = []

        def work(t: int) -> None:
            try:
                if bare:
                    for _ in shares[t]:
                        ledger.store.db.read(_select_one)
                else:
                    proofs[t] = [ledger.inclusion_proof(i, size) for i in shares[t]]
            except BaseException as exc:  # noqa: BLE001 - reported below
                failed.append(exc)

        pool = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
        with Timer() as t:
            for p in pool:
                p.start()
            for p in pool:
                p.join()
        if failed:
            raise failed[0]
        if bare:
            return count / t.seconds
        root = ledger.root(size)
        for share, got in zip(shares, proofs, strict=True):
            for i, proof in list(zip(share, got, strict=True))[::100]:
                merkle.verify_inclusion(ledger.entry(i).leaf_hash, i, size, proof, root)
        return count / t.seconds
    finally:
        ledger.store.close()


def proofs_part(args, pg_url: str, sqlite_path: Path) -> None:
    threads = [int(t) for t in args.proof_threads.split(",")]
    rates = {}
    for n in threads:  # alternating backends, so that both see the machine alike
        rates["SQLite", n] = proof_rate(lambda: open_ledger(sqlite_path), args.proofs, n, args.entries)
        rates["PostgreSQL", n] = proof_rate(lambda: open_pg_ledger(pg_url), args.proofs, n, args.entries)
        rates["bare", n] = proof_rate(lambda: open_pg_ledger(pg_url), args.proofs, n, args.entries, bare=True)
    print(f"\n# {args.proofs:,} random inclusion proofs against the latest tree size at {args.entries:,} entries, "
          "through a freshly opened Ledger")
    print("# target: PostgreSQL >= 10,000 inclusion proofs/s at 1,000,000 entries")
    print("# for scale: round trips of a bare SELECT 1 through the driver's read path, the floor of one query per proof")
    row("proofs", "threads", "SQLite", "PostgreSQL", "PostgreSQL / SQLite", "target", "PostgreSQL SELECT 1",
        "proofs / SELECT 1")
    for n in threads:
        s, p, b = rates["SQLite", n], rates["PostgreSQL", n], rates["bare", n]
        row("inclusion", n, f"{s:,.0f}/s", f"{p:,.0f}/s", f"{p / s:.2f}x",
            ">= 10,000/s: " + ("met" if p >= 10_000 else "NOT met"), f"{b:,.0f}/s", f"{p / b:.2f}x")


# -- whole-log verification -----------------------------------------------------------------------

CHILD = r"""
import hashlib, json, sys, time
from ledger.charity.kinds import registry
from ledger.log.verify import verify_log
backend, where, mode = sys.argv[1:4]
if backend == "sqlite":
    from ledger.stores.sqlite import open_sqlite
    stores = open_sqlite(where)
else:
    from ledger.stores.postgres import open_postgres
    stores = open_postgres(where, read_only=True)
store = stores.log
t = time.perf_counter()
if mode == "verify1":
    size = verify_log(store, registry(), workers=1).size
elif mode == "verify":
    size = verify_log(store, registry()).size
else:  # the same scan verification makes, hashing only
    size = 0
    with store.snapshot(streaming=True):
        for _, _, _, data in store.iter_entries():
            hashlib.sha256(b"\x00" + data).digest()
            size += 1
seconds = time.perf_counter() - t
stores.close()
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec from the forking parent
with open("/proc/self/status") as f:
    peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print(json.dumps({"size": size, "seconds": seconds, "maxrss_kib": peak}))
"""


def child(backend: str, where: str, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, backend, where, mode], check=True, capture_output=True,
                         text=True).stdout
    return json.loads(out)


def verify_part(args, pg_url: str, sqlite_path: Path) -> None:
    runs = {}
    for mode in ("sha", "verify1", "verify"):  # alternating backends
        runs["SQLite", mode] = child("sqlite", str(sqlite_path), mode)
        runs["PostgreSQL", mode] = child("postgres", pg_url, mode)
    cores = os.cpu_count()
    print(f"\n# whole-log verification (verify_log) at {args.entries:,} entries, each run a fresh child process")
    row("verify", "bare scan + SHA-256 s", "verify 1 core s", "ratio", f"verify {cores} cores s", f"entries/s ({cores} cores)",
        "peak RSS 1 core", "1 core vs SQLite")
    for backend in ("SQLite", "PostgreSQL"):
        sha, one, all_ = (runs[backend, m] for m in ("sha", "verify1", "verify"))
        if not sha["size"] == one["size"] == all_["size"]:
            raise SystemExit(f"{backend}: sizes differ: {sha['size']}, {one['size']}, {all_['size']}")
        row(backend, f"{sha['seconds']:.3f}", f"{one['seconds']:.2f}", f"{one['seconds'] / sha['seconds']:.1f}x",
            f"{all_['seconds']:.2f}", f"{one['size'] / all_['seconds']:,.0f}", f"{one['maxrss_kib'] / 1024:.1f} MiB",
            f"{one['seconds'] / runs['SQLite', 'verify1']['seconds']:.2f}x")


# -- the run ----------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="entries for proofs and verification (default 1000000)")
    ap.add_argument("--append-entries", type=int, default=200_000, help="entries appended per batch size (default 200000)")
    ap.add_argument("--batches", default="100,1000,10000", help="batch sizes (default 100,1000,10000)")
    ap.add_argument("--proofs", type=int, default=50_000, help="inclusion proofs per measurement (default 50000)")
    ap.add_argument("--proof-threads", default="1,4", help="threads asking proofs, one measurement each (default 1,4)")
    ap.add_argument("--parts", default="append,proofs,verify,http", help="which parts (default all)")
    ap.add_argument("--http-entries", type=int, default=100_000, help="donations in the HTTP instance (default 100000)")
    ap.add_argument("--seconds", type=float, default=10.0, help="measured seconds per HTTP phase (default 10)")
    ap.add_argument("--connections", type=int, default=64, help="concurrent HTTP connections in all (default 64)")
    ap.add_argument("--threads", type=int, default=8, help="threads per server worker (default 8)")
    ap.add_argument("--server", default=os.environ.get("LUODI_BENCH_POSTGRES", "postgresql:///postgres"),
                    help="a URL of the PostgreSQL server, used to create and drop the benchmark's databases")
    ap.add_argument("--prefix", default="luodi_bench", help="the benchmark's databases are <prefix>_... (default luodi_bench)")
    ap.add_argument("--cleanup", action="store_true", help="drop every <prefix>_... database at the end")
    args = ap.parse_args()
    parts = [p for p in args.parts.split(",") if p]
    if unknown := set(parts) - {"append", "proofs", "verify", "http"}:
        raise SystemExit(f"unknown parts: {', '.join(sorted(unknown))}")
    print(f"# PostgreSQL beside SQLite; {os.cpu_count()} cores shared by everything; python {sys.version.split()[0]}; "
          f"SQLite ledgers under {OUT}, PostgreSQL databases {args.prefix}_* on {args.server}")
    try:
        if "append" in parts:
            append_part(args)
        if "proofs" in parts or "verify" in parts:
            sqlite_path = cached_ledger_path(args.entries)
            pg_url = cached_pg_ledger(args.server, args.prefix, args.entries)
            if "proofs" in parts:
                proofs_part(args, pg_url, sqlite_path)
            if "verify" in parts:
                verify_part(args, pg_url, sqlite_path)
        if "http" in parts:
            from _pg_http import http_part

            http_part(args)
    finally:
        if args.cleanup:
            for name in pg_databases(args.server, args.prefix):
                pg_drop(args.server, name)


if __name__ == "__main__":
    main()
