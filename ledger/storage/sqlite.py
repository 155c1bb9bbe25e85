"""SQLite storage: WAL mode, ``synchronous=FULL``, append lock via BEGIN IMMEDIATE.

Node ids pack ``(level, index)`` as ``level << 40 | index`` in an INTEGER
PRIMARY KEY, so a proof's nodes come back from one indexed ``IN`` query; level
0 (the leaf hashes) is read from the entries table in the same statement.
"""

from __future__ import annotations

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

LEVEL_SHIFT = 40
BUSY_TIMEOUT_MS = 60_000


def node_id(level: int, index: int) -> int:
    return (level << LEVEL_SHIFT) | index


def connect(path: str | Path) -> sqlite3.Connection:
    conn = sqlite3.connect(str(path), isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if mode.lower() != "wal" and str(path) != ":memory:":
        raise InstanceError(f"could not put {path} in WAL mode (got {mode})")
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA cache_size = -65536")
    return conn


def _fetch_nodes(conn: sqlite3.Connection, wanted: Iterable[Node]) -> dict[Node, bytes]:
    leaves, upper = [], []
    for level, index in wanted:
        (upper if level else leaves).append(node_id(level, index))
    if not leaves and not upper:
        return {}
    parts, args = [], []
    if upper:
        parts.append(f"SELECT id, hash FROM nodes WHERE id IN ({','.join('?' * len(upper))})")
        args += upper
    if leaves:
        parts.append(f"SELECT seq, leaf_hash FROM entries WHERE seq IN ({','.join('?' * len(leaves))})")
        args += leaves
    mask = (1 << LEVEL_SHIFT) - 1
    found = {(i >> LEVEL_SHIFT, i & mask): h for i, h in conn.execute(" UNION ALL ".join(parts), args)}
    if len(found) != len(leaves) + len(upper):
        raise NotFound("the tree does not have every node asked for")
    return found


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

    def write(self, entries, nodes, checkpoint):
        c = self.conn
        c.executemany("INSERT INTO entries (seq, leaf_hash, canonical) VALUES (?, ?, ?)", entries)
        c.executemany(
            "INSERT INTO nodes (id, hash) VALUES (?, ?)",
            [((level << LEVEL_SHIFT) | index, h) for level, index, h in nodes],
        )
        c.execute("INSERT INTO checkpoints (tree_size, note) VALUES (?, ?)", checkpoint)


class SQLiteStorage(Storage):
    """One connection, guarded by a lock for use from several threads."""

    def __init__(self, path: str | Path, *, upgrade: bool = False):
        self.path = Path(path)
        if not upgrade and not self.path.exists():
            raise InstanceError(f"no database at {self.path}: run 'luodi init' first")
        self.conn = connect(self.path)
        self.db = sqlite_utils.Database(self.conn)
        self._lock = threading.RLock()
        self.migrations_applied: list[str] = []
        if upgrade:
            self.migrations_applied = self.upgrade()
        elif migrations.load().pending(self.db):
            raise InstanceError(f"database {self.path} needs migrations: run 'luodi db upgrade'")

    def upgrade(self) -> list[str]:
        with self._lock:
            return migrations.apply(self.db)

    @contextmanager
    def append_transaction(self):
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield _SQLiteAppend(self.conn)
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")

    @contextmanager
    def snapshot(self):
        with self._lock:
            if self.conn.in_transaction:
                yield
                return
            self.conn.execute("BEGIN")
            try:
                # A read makes SQLite take the WAL snapshot now.
                self.conn.execute("SELECT 1 FROM entries LIMIT 1").fetchall()
                yield
            finally:
                self.conn.execute("ROLLBACK")

    def size(self) -> int:
        row = self.conn.execute("SELECT max(seq) FROM entries").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def entry_bytes(self, seq):
        row = self.conn.execute("SELECT canonical FROM entries WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]

    def seq_of(self, leaf_hash):
        row = self.conn.execute("SELECT seq FROM entries WHERE leaf_hash = ?", (leaf_hash,)).fetchone()
        return None if row is None else row[0]

    def nodes(self, wanted):
        return _fetch_nodes(self.conn, wanted)

    def checkpoint(self, size=None):
        if size is None:
            sql, args = "SELECT tree_size, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1", ()
        else:
            sql, args = "SELECT tree_size, note FROM checkpoints WHERE tree_size = ?", (size,)
        row = self.conn.execute(sql, args).fetchone()
        return None if row is None else (row[0], row[1])

    def iter_entries(self, start: int = 0) -> Iterator[tuple[int, bytes, bytes]]:
        cur = self.conn.execute("SELECT seq, leaf_hash, canonical FROM entries WHERE seq >= ? ORDER BY seq", (start,))
        while rows := cur.fetchmany(4096):
            yield from rows

    def iter_level(self, level: int) -> Iterator[tuple[int, bytes]]:
        lo = level << LEVEL_SHIFT
        cur = self.conn.execute(
            "SELECT id - ?, hash FROM nodes WHERE id >= ? AND id < ? ORDER BY id", (lo, lo, lo + (1 << LEVEL_SHIFT))
        )
        while rows := cur.fetchmany(1024):
            yield from rows

    def iter_checkpoints(self):
        yield from self.conn.execute("SELECT tree_size, note FROM checkpoints ORDER BY tree_size")

    def node_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM nodes").fetchone()[0]

    def close(self) -> None:
        self.conn.close()
