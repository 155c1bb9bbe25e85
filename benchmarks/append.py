"""Batch-append throughput and bytes on disk, against raw SQLite inserts.

Both baselines insert the same canonical rows in the same batches with the
same durability (WAL, synchronous=FULL, one transaction per batch):

* "raw rows": exactly the rows our entries table holds, (seq, leaf hash,
  canonical bytes) with the same UNIQUE index on the leaf hash that receipt
  lookups need.  This is the target's baseline (>= 30%).
* "bare rows": (seq, canonical bytes) into a table with no index at all, the
  cheapest possible write of the same bytes, printed for scale.

Also prints bytes on disk per entry against canonical bytes per entry
(target <= 2.5x).

    python benchmarks/append.py [--entries 200000] [--batches 100,1000,10000]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sqlite3

from _common import Timer, items, new_ledger, row, workdir


def disk_bytes(path) -> int:
    return sum(os.path.getsize(p) for p in (path, f"{path}-wal") if os.path.exists(p))


def raw_insert(path, rows, batch, schema, sql) -> float:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA cache_size = -65536")
    conn.execute(schema)
    with Timer() as t:
        for i in range(0, len(rows), batch):
            conn.execute("BEGIN")
            conn.executemany(sql, rows[i : i + batch])
            conn.execute("COMMIT")
    conn.close()
    return len(rows) / t.seconds


def measure(n: int, batch: int) -> None:
    work = items(n)
    with workdir() as tmp:
        ledger = new_ledger(tmp / "ours.sqlite")
        with Timer() as ours:
            for i in range(0, n, batch):
                ledger.append_batch(work[i : i + batch])
        ledger.store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        canonical = [row[-1] for row in ledger.store.iter_entries(1)]
        ours_disk = disk_bytes(tmp / "ours.sqlite") / n
        ledger.store.close()
        canonical_per_entry = sum(map(len, canonical)) / n
        full_rows = [(seq, hashlib.sha256(b"\0" + c).digest(), c) for seq, c in enumerate(canonical, 1)]
        raw_rate = raw_insert(
            tmp / "raw.sqlite",
            full_rows,
            batch,
            "CREATE TABLE entries (seq INTEGER PRIMARY KEY, leaf_hash BLOB NOT NULL UNIQUE, canonical BLOB NOT NULL)",
            "INSERT INTO entries VALUES (?, ?, ?)",
        )
        bare_rate = raw_insert(
            tmp / "bare.sqlite",
            [(seq, c) for seq, _, c in full_rows],
            batch,
            "CREATE TABLE entries (seq INTEGER PRIMARY KEY, canonical BLOB NOT NULL)",
            "INSERT INTO entries VALUES (?, ?)",
        )
    ours_rate = n / ours.seconds
    row(
        f"batch {batch:>6}",
        f"{ours_rate:>9,.0f}/s",
        f"{raw_rate:>9,.0f}/s",
        f"{ours_rate / raw_rate:>5.0%}",
        f"{bare_rate:>9,.0f}/s",
        f"{ours_rate / bare_rate:>5.0%}",
        f"{ours_disk:.0f} B / {canonical_per_entry:.0f} B = {ours_disk / canonical_per_entry:.2f}x",
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=200_000)
    ap.add_argument("--batches", default="100,1000,10000")
    args = ap.parse_args()
    print(f"# batch append of {args.entries:,} entries; WAL + synchronous=FULL; one transaction per batch")
    print("# targets: ours >= 30% of raw rows; bytes on disk per entry <= 2.5x canonical bytes")
    row("batch", "ours", "raw rows", "ratio", "bare rows", "ratio", "disk per entry / canonical")
    for batch in (int(b) for b in args.batches.split(",")):
        measure(args.entries, batch)


if __name__ == "__main__":
    main()
