"""The SQLite log store (:class:`ledger.log.store.LogStore`).

Each entry row carries the Merkle nodes it completed, packed
(:func:`ledger.log.merkle.pack_nodes`), so an append writes one row per entry
and a proof's nodes, leaves included, come back from one ``seq IN (...)``
query on the primary key: the node ``(level, index)`` lives in the row of
:func:`ledger.log.merkle.completing_leaf`.  Triggers (migration 0001) refuse
UPDATE, DELETE and gaps in seq.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from ...errors import NotFound
from ...log.merkle import Node, node_rows, pick_nodes
from ...log.store import LogStore, LogTxn, Row
from .database import Database

_sql_cache: dict[int, str] = {}


def _rows_sql(n: int) -> str:
    sql = _sql_cache.get(n)
    if sql is None:
        sql = _sql_cache[n] = f"SELECT seq, leaf_hash, tree FROM entries WHERE seq IN ({','.join('?' * n)})"
    return sql


def _fetch_nodes(conn: sqlite3.Connection, wanted: Iterable[Node]) -> dict[Node, bytes]:
    wanted = list(wanted)
    if not wanted:
        return {}
    seqs = node_rows(wanted)
    rows = {seq: (leaf, tree) for seq, leaf, tree in conn.execute(_rows_sql(len(seqs)), seqs)}
    try:
        return pick_nodes(wanted, rows)
    except LookupError as exc:
        raise NotFound(str(exc)) from None


def _iter_rows(conn: sqlite3.Connection, start: int) -> Iterator[Row]:
    cur = conn.execute("SELECT seq, leaf_hash, tree, canonical FROM entries WHERE seq >= ? ORDER BY seq", (start,))
    while rows := cur.fetchmany(4096):
        yield from rows


class SQLiteAppend(LogTxn):
    """The log's append transaction, on the database's write connection (which
    the books store of this driver writes through too)."""

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

    def rows(self, start):
        return _iter_rows(self.conn, start)

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

    def write(self, rows, checkpoint):
        self.conn.executemany("INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (?, ?, ?, ?)", rows)
        self.conn.execute("INSERT INTO checkpoints (tree_size, note) VALUES (?, ?)", checkpoint)


class SQLiteLogStore(LogStore):
    def __init__(self, db: Database):
        self.db = db

    @property
    def path(self):
        return self.db.path

    @contextmanager
    def append_transaction(self):
        with self.db.write() as conn:
            yield SQLiteAppend(conn)

    def snapshot(self, streaming: bool = False):
        return self.db.snapshot(streaming)

    def size(self) -> int:
        row = self.db.reader().execute("SELECT max(seq) FROM entries").fetchone()
        return 0 if row[0] is None else row[0] + 1

    def entry_bytes(self, seq):
        row = self.db.reader().execute("SELECT canonical FROM entries WHERE seq = ?", (seq,)).fetchone()
        return None if row is None else row[0]

    def entry_by_hash(self, leaf_hash):
        row = self.db.reader().execute("SELECT canonical FROM entries WHERE leaf_hash = ?", (leaf_hash,)).fetchone()
        return None if row is None else row[0]

    def nodes(self, wanted):
        return _fetch_nodes(self.db.reader(), wanted)

    def checkpoint(self, size=None):
        if size is None:
            sql, args = "SELECT tree_size, note FROM checkpoints ORDER BY tree_size DESC LIMIT 1", ()
        else:
            sql, args = "SELECT tree_size, note FROM checkpoints WHERE tree_size = ?", (size,)
        row = self.db.reader().execute(sql, args).fetchone()
        return None if row is None else (row[0], row[1])

    def add_cosigned_checkpoint(self, size, note):
        with self.db.write() as conn:
            cur = conn.execute("INSERT OR IGNORE INTO cosigned_checkpoints (tree_size, note) VALUES (?, ?)", (size, note))
            return cur.rowcount == 1

    def cosigned_checkpoint(self, size=None):
        if size is None:
            sql, args = "SELECT tree_size, note FROM cosigned_checkpoints ORDER BY tree_size DESC LIMIT 1", ()
        else:
            sql, args = "SELECT tree_size, note FROM cosigned_checkpoints WHERE tree_size = ?", (size,)
        row = self.db.reader().execute(sql, args).fetchone()
        return None if row is None else (row[0], row[1])

    def iter_entries(self, start: int = 0) -> Iterator[Row]:
        return _iter_rows(self.db.reader(), start)

    def iter_checkpoints(self):
        cur = self.db.reader().execute("SELECT tree_size, note FROM checkpoints ORDER BY tree_size")
        while rows := cur.fetchmany(256):
            yield from rows

    def close(self) -> None:
        self.db.close()
