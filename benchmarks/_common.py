"""Shared pieces of the benchmark scripts: fixtures, timing and a fresh ledger."""

from __future__ import annotations

import hashlib
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


# -- PostgreSQL (issue 13) ---------------------------------------------------------------------
# The benchmarks' databases are their own: created on the server the URL names, named
# ``<prefix>_<what>``, never the tests' database.  psycopg and the driver are imported here
# only when a benchmark asks for PostgreSQL.


def pg_url(server_url: str, dbname: str) -> str:
    """``server_url`` (postgresql://user@host:port/anydb?params) with its database replaced."""
    from urllib.parse import quote, urlsplit

    parts = urlsplit(server_url)
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{parts.netloc}/{quote(dbname)}{query}"  # urlunsplit drops an empty host's //


def pg_admin(server_url: str):
    """An autocommit connection for CREATE/DROP DATABASE (to the URL's own database)."""
    import psycopg

    return psycopg.connect(server_url, autocommit=True, connect_timeout=5)


def pg_databases(server_url: str, prefix: str) -> list[str]:
    with pg_admin(server_url) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE %s", (prefix.replace("_", r"\_") + r"\_%",))
        return sorted(r[0] for r in rows)


def pg_create(server_url: str, name: str, template: str | None = None) -> str:
    """A new, empty database (or a copy of ``template``), dropped first if it exists; its URL."""
    from psycopg import sql

    with pg_admin(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        if template is None:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        else:
            conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template)))
    return pg_url(server_url, name)


def pg_drop(server_url: str, name: str) -> None:
    from psycopg import sql

    with pg_admin(server_url) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def pg_exists(server_url: str, name: str) -> bool:
    with pg_admin(server_url) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is not None


def new_pg_ledger(url: str) -> Ledger:
    """A new ledger on the PostgreSQL database at ``url``, as luodi runs it (see :func:`new_ledger`)."""
    from ledger.stores.postgres import open_postgres

    stores = open_postgres(url, upgrade=True)
    return open_charity_ledger(stores, Signer.generate("bench.luodi.example/log"), create=True).ledger


def open_pg_ledger(url: str) -> Ledger:
    from ledger.stores.postgres import open_postgres

    return open_charity_ledger(open_postgres(url)).ledger


def schema_tag() -> str:
    """A short hash of the PostgreSQL migrations' statements: a cached database is
    named with it, so that a migration changed in place is never measured stale."""
    from migrations import postgres as pg_migrations

    text = repr([(m.name, m.statements) for m in pg_migrations.load()])
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def cached_pg_ledger(server_url: str, prefix: str, n: int) -> str:
    """The URL of a database holding a ledger of n entries (plus genesis), the same
    entries as :func:`cached_ledger_path`'s, built once and kept as
    ``<prefix>_log_<n>_<schema tag>``."""
    name = f"{prefix}_log_{n}_{schema_tag()}"
    if not pg_exists(server_url, name):
        building = f"{name}_building"
        url = pg_create(server_url, building)
        ledger = new_pg_ledger(url)
        with Timer() as t:
            fill(ledger, n)
        ledger.store.close()
        from psycopg import sql

        with pg_admin(server_url) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(building), sql.Identifier(name)))
        import sys

        print(f"# built {name} ({n:,} entries) in {t.seconds:.0f} s", file=sys.stderr)
    from ledger.stores.postgres import open_postgres

    url = pg_url(server_url, name)
    open_postgres(url, upgrade=True).close()  # a ledger built by an older version gets its migrations once
    return url
