"""One SQLite database file: its connections, its write lock and its migrations.

WAL mode with ``synchronous=FULL``.  Writes go through one connection,
guarded by a lock within the process and an flock across processes, in
``BEGIN IMMEDIATE`` transactions; each thread reads through its own
connection, so it sees committed data only.  The log store, the books store
and the token store of this driver share one :class:`Database`, so a read
snapshot covers all three.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from migrations import sqlite as sqlite_migrations

from ...errors import InstanceError

BUSY_TIMEOUT_MS = 60_000
CACHE_KIB = 65536
STREAM_CACHE_KIB = 2048
# Read pages straight from the OS page cache.  A connection's own cache is
# dropped whenever another process commits, and re-reading it page by page with
# pread() was the largest system cost of appends from several workers.
MMAP_BYTES = 1 << 34


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


class Database:
    """One write connection, guarded by a lock, and a read connection per thread."""

    def __init__(self, path: str | Path, *, upgrade: bool = False):
        self.path = Path(path)
        if not upgrade and not self.path.exists():
            raise InstanceError(f"no database at {self.path}: run 'luodi init' first")
        self.conn = connect(self.path)
        self._lock = threading.RLock()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self.migrations_applied: list[str] = []
        try:
            if upgrade:
                self.migrations_applied = self.upgrade()
            elif sqlite_migrations.load().pending(sqlite_utils.Database(self.conn)):
                raise InstanceError(f"database {self.path} needs migrations: run 'luodi db upgrade'")
        except BaseException:
            self.conn.close()
            raise

    def upgrade(self) -> list[str]:
        """Apply pending migrations (``migrations/sqlite/``); return the names applied."""
        with self._lock:
            return sqlite_migrations.apply(sqlite_utils.Database(self.conn))

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the write connection; commits durably on exit."""
        # Writers queue on an flock first: SQLite's own busy handler sleeps in
        # growing steps (1, 2, 5, 10 ms ...) while another process holds the
        # write lock, whereas a blocked flock wakes the moment it is released.
        # BEGIN IMMEDIATE still guards against writers that skip the flock.
        with self._lock, _file_lock(self._lock_path):
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection: WAL gives it committed data only, never
        a write that another thread has under way (and may roll back)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path)
            with self._lock:
                self._readers.append(conn)
        return conn

    @contextmanager
    def snapshot(self, streaming: bool = False) -> Iterator[None]:
        """This thread's reads inside the block see one committed state (the one
        its first read finds), whichever store of this database they go through."""
        conn = self.reader()
        if conn.in_transaction:
            yield
            return
        if streaming:
            # A scan reads every page once: neither cache them nor map them.
            conn.execute(f"PRAGMA cache_size = -{STREAM_CACHE_KIB}")
            conn.execute("PRAGMA mmap_size = 0")
        conn.execute("BEGIN")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            if streaming:
                conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
                conn.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")

    def scrub(self) -> None:
        """Make deleted rows unrecoverable from the files: with ``secure_delete``
        their pages are zeroed, and a truncating checkpoint empties the WAL."""
        with self._lock:
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        self.conn.close()
