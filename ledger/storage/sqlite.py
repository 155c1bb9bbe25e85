"""SQLite storage: WAL mode, ``synchronous=FULL``, the append lock is BEGIN IMMEDIATE.

Each entry row carries the Merkle nodes it completed (see
:mod:`ledger.storage.base`), so an append writes one row per entry and a
proof's nodes, leaves included, come back from one ``seq IN (...)`` query on
the primary key.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

import migrations

from ..errors import InstanceError, NotFound
from ..merkle import Node
from .base import AppendTransaction, Storage

BUSY_TIMEOUT_MS = 60_000
CACHE_KIB = 65536
STREAM_CACHE_KIB = 2048
# Read pages straight from the OS page cache.  A connection's own cache is
# dropped whenever another process commits, and re-reading it page by page with
# pread() was the largest system cost of appends from several workers.
MMAP_BYTES = 1 << 34
_sql_cache: dict[int, str] = {}


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise InstanceError(f"{path} is not a usable SQLite database: {exc}") from exc
    if mode.lower() != "wal":
        conn.close()
        raise InstanceError(f"could not put {path} in WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    # Erased personal data must not linger in free pages, whatever SQLite's build default.
    conn.execute("PRAGMA secure_delete = ON")
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
    # A group commit's savepoints journal the pages they change: in memory, not in a temp file.
    conn.execute("PRAGMA temp_store = MEMORY")
    return conn


@contextmanager
def _file_lock(path: Path):
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _rows_sql(n: int) -> str:
    sql = _sql_cache.get(n)
    if sql is None:
        sql = _sql_cache[n] = f"SELECT seq, leaf_hash, tree FROM entries WHERE seq IN ({','.join('?' * n)})"
    return sql


def _fetch_nodes(conn: sqlite3.Connection, wanted: Iterable[Node]) -> dict[Node, bytes]:
    wanted = list(wanted)
    if not wanted:
        return {}
    seqs = list({((index + 1) << level) - 1 for level, index in wanted})
    rows = {seq: (leaf, tree) for seq, leaf, tree in conn.execute(_rows_sql(len(seqs)), seqs)}
    found = {}
    for level, index in wanted:
        row = rows.get(((index + 1) << level) - 1)
        if row is None:
            raise NotFound(f"the tree has no node (level {level}, index {index})")
        if level == 0:
            found[(0, index)] = row[0]
        else:
            h = row[1][32 * (level - 1) : 32 * level]
            if len(h) != 32:
                raise NotFound(f"the tree has no node (level {level}, index {index})")
            found[(level, index)] = h
    return found


def _tokens(conn: sqlite3.Connection) -> list[tuple[bytes, str, str | None, str]]:
    return conn.execute("SELECT token_hash, role, charity, created FROM tokens ORDER BY created, token_hash").fetchall()


class _SQLiteAppend(AppendTransaction):
    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn

    def tip(self):
        row = self.conn.execute("SELECT seq, leaf_hash, canonical FROM entries ORDER BY seq DESC LIMIT 1").fetchone()
        if row is None:
            return 0, None, None
        return row[0] + 1, row[1], row[2]

    def nodes(self, wanted):
        return _fetch_nodes(self.conn, wanted)

    def leaf_hashes(self, start, stop):
        rows = self.conn.execute("SELECT leaf_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq", (start, stop))
        return [r[0] for r in rows]

    def books(self, window_seconds):
        from ..books import Books

        return Books(self.conn, window_seconds)

    @contextmanager
    def savepoint(self):
        self.conn.execute("SAVEPOINT part")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK TO part")
            self.conn.execute("RELEASE part")
            raise
        self.conn.execute("RELEASE part")

    def add_token(self, token_hash, role, charity, created):
        self.conn.execute(
            "INSERT INTO tokens (token_hash, role, charity, created) VALUES (?, ?, ?, ?)",
            (token_hash, role, charity, created),
        )

    def tokens(self):
        return _tokens(self.conn)

    def remove_token(self, token_hash):
        self.conn.execute("DELETE FROM tokens WHERE token_hash = ?", (token_hash,))

    def write(self, entries, checkpoint):
        self.conn.executemany("INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (?, ?, ?, ?)", entries)
        self.conn.execute("INSERT INTO checkpoints (tree_size, note) VALUES (?, ?)", checkpoint)


class SQLiteStorage(Storage):
    """One write connection, guarded by a lock, and a read connection per thread."""

    def __init__(self, path: str | Path, *, upgrade: bool = False):
        self.path = Path(path)
        if not upgrade and not self.path.exists():
            raise InstanceError(f"no database at {self.path}: run 'luodi init' first")
        self.conn = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self._lock = threading.RLock()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self.migrations_applied: list[str] = []
        try:
            if upgrade:
                self.migrations_applied = self.upgrade()
            elif migrations.load().pending(self.db):
                raise InstanceError(f"database {self.path} needs migrations: run 'luodi db upgrade'")
        except BaseException:
            self.conn.close()
            raise

    def upgrade(self) -> list[str]:
        with self._lock:
            return migrations.apply(self.db)

    @contextmanager
    def append_transaction(self):
        # Writers queue on an flock first: SQLite's own busy handler sleeps in
        # growing steps (1, 2, 5, 10 ms ...) while another process holds the
        # write lock, whereas a blocked flock wakes the moment it is released.
        # BEGIN IMMEDIATE still guards against writers that skip the flock.
        with self._lock, _file_lock(self._lock_path):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteAppend(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection: WAL gives it committed data only, never
        an append that another thread has under way (and may roll back)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
            with self._lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def snapshot(self, streaming: bool = False):
        conn = self._reader()
        if conn.in_transaction:
            yield
            return
        if streaming:
            # A scan reads every page once: neither cache them nor map them.
            conn.execute(f"PRAGMA cache_size = -{STREAM_CACHE_KIB}")
            conn.execute("PRAGMA mmap_size = 0")
        conn.execute("BEGIN")
        try:
            # The first read pins the WAL snapshot for the whole block.
            conn.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
            yield
        finally:
            conn.execute("ROLLBACK")
            if streaming:
                conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")

    def size(self) -> int:
        row = self._reader().execute("SELECT max(seq) FROM entries").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def entry_bytes(self, seq):
        row = self._reader().execute("SELECT canonical FROM entries WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]

    def entry_by_hash(self, leaf_hash):
        row = self._reader().execute("SELECT canonical FROM entries WHERE leaf_hash = ?", (leaf_hash,)).fetchone()
        return None if row is None else row[0]

    def seq_of(self, leaf_hash):
        row = self._reader().execute("SELECT seq FROM entries WHERE leaf_hash = ?", (leaf_hash,)).fetchone()
        return None if row is None else row[0]

    def nodes(self, wanted):
        return _fetch_nodes(self._reader(), wanted)

    def checkpoint(self, size=None):
        if size is None:
            sql, args = "SELECT tree_size, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1", ()
        else:
            sql, args = "SELECT tree_size, note FROM checkpoints WHERE tree_size = ?", (size,)
        row = self._reader().execute(sql, args).fetchone()
        return None if row is None else (row[0], row[1])

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes, bytes]]:
        cur = self._reader().execute(
            "SELECT seq, leaf_hash, tree, canonical FROM entries WHERE seq >= ? ORDER BY seq", (start,)
        )
        while rows := cur.fetchmany(4096):
            yield from rows

    def iter_checkpoints(self):
        cur = self._reader().execute("SELECT tree_size, note FROM checkpoints ORDER BY tree_size")
        while rows := cur.fetchmany(256):
            yield from rows

    def books(self, window_seconds):
        from ..books import Books

        return Books(self._reader(), window_seconds)

    def token(self, token_hash: bytes):
        return self._reader().execute(
            "SELECT token_hash, role, charity FROM tokens WHERE token_hash = ?", (token_hash,)
        ).fetchone()

    def tokens(self):
        return _tokens(self._reader())

    def scrub(self) -> None:
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        self.conn.close()
