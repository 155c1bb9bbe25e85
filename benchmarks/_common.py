"""Shared pieces of the benchmark scripts: fixtures, timing and a fresh ledger."""

from __future__ import annotations

import os
import random
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ledger.charity.service import open_charity_ledger
from ledger.log.ledger import Ledger
from ledger.log.note import Signer
from ledger.stores.sqlite import open_sqlite

CAMPAIGNS = ["99 Giving Day matching", "rural online teaching", "livestream farm produce", "winter relief"]


def items(n: int, start: int = 0, seed: int = 7) -> list[tuple[str, dict]]:
    """Donation-sized 'note' entries (about 230 canonical bytes each)."""
    rng = random.Random(seed + start)
    return [
        (
            "note",
            {
                "text": f"donation {start + i}: {rng.randint(1, 99999)}.{rng.randint(0, 99):02d} CNY to "
                f"{rng.choice(CAMPAIGNS)} via wechat, receipt {rng.getrandbits(64):016x}"
            },
        )
        for i in range(n)
    ]


@contextmanager
def workdir():
    path = Path(tempfile.mkdtemp(prefix="luodi-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def new_ledger(path: Path) -> Ledger:
    """A new ledger as luodi runs it: the charity registry, with the books as its append hook."""
    stores = open_sqlite(path, upgrade=True)
    return open_charity_ledger(stores, Signer.generate("bench.luodi.example/log"), create=True).ledger


def open_ledger(path: Path) -> Ledger:
    """An existing ledger, opened without its key (for reads)."""
    return open_charity_ledger(open_sqlite(path)).ledger


def fill(ledger: Ledger, n: int, batch: int = 10_000) -> None:
    done = ledger.size() - 1
    while done < n:
        k = min(batch, n - done)
        ledger.append_batch(items(k, start=done))
        done += k


class Timer:
    def __enter__(self):
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start


def row(*cells) -> None:
    print(" | ".join(str(c) for c in cells))


OUT = Path(os.environ.get("LUODI_BENCH_OUT") or Path(__file__).resolve().parent / "out")


def cached_ledger_path(n: int) -> Path:
    """A ledger of n entries (plus genesis) under benchmarks/out/, built once and reused."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"ledger-{n}.sqlite"
    if not path.exists():
        tmp = OUT / f"ledger-{n}.building.sqlite"
        for p in OUT.glob(f"ledger-{n}.building.sqlite*"):
            p.unlink()
        ledger = new_ledger(tmp)
        fill(ledger, n)
        ledger.store.db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        ledger.store.close()
        tmp.rename(path)
    open_sqlite(path, upgrade=True).close()  # a ledger built by an older version gets its migrations once
    return path
