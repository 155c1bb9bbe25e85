"""A witness's own SQLite file (:class:`ledger.log.witness.WitnessStore`).

It holds nothing of a Luodi instance: per log origin, the latest checkpoint
the witness cosigned (``latest``), every checkpoint it ever cosigned
(``cosigned``, the history) and the validly signed checkpoints it refused as
inconsistent (``refused``, evidence of a log's misbehaviour).  A checkpoint
cosigned again at the same size (a log that resubmits its tree head) renews
``latest`` only, so that replaying a checkpoint cannot grow the file.  The file and
the files SQLite keeps beside it are private (mode 0600, refused when others
may read them), in WAL mode with ``synchronous=FULL`` (:func:`.database.connect`).

The schema is applied as named migrations of its own (sqlite-utils'
``_sqlite_migrations`` table, as ``migrations/sqlite/`` does for an instance's
database), in one transaction each.  Triggers hold the witness's promises even
against a raw SQL client: ``cosigned`` and ``refused`` are append-only; a
cosigned checkpoint never has a smaller size than one cosigned before for its
origin, nor the same size with another root; and ``latest`` is never deleted
nor moved back.

:meth:`SQLiteWitnessStore.advance` is one ``BEGIN IMMEDIATE`` transaction:
SQLite's write lock serialises it against every other writer, in this
process or another (several gunicorn workers), from the read of the latest
size to the commit.  The write of ``latest`` is also a compare-and-swap on
the size read, so that it cannot move a log back even if a writer skipped
the lock.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils
from sqlite_utils.migrations import Migrations

from ...errors import InstanceError, SizeMismatch
from ...log.witness import Cosigned, Refusal, WitnessStore, WitnessTxn, origin_hash
from .database import DEFAULT_LOCK_TIMEOUT, connect
from .faults import busy, is_storage_fault, storage_fault
from .files import refuse_loose_modes

MIGRATIONS = Migrations("luodi-witness")


@MIGRATIONS()
def m0001_witness(db) -> None:
    statements = [
        """CREATE TABLE cosigned (
            id INTEGER PRIMARY KEY,
            origin TEXT NOT NULL,
            size INTEGER NOT NULL CHECK (size >= 0),
            root BLOB NOT NULL CHECK (length(root) = 32),
            note TEXT NOT NULL,
            timestamp INTEGER NOT NULL CHECK (timestamp > 0)
        )""",
        "CREATE INDEX cosigned_by_origin ON cosigned (origin, size)",
        """CREATE TABLE latest (
            origin TEXT PRIMARY KEY,
            origin_hash TEXT NOT NULL UNIQUE CHECK (length(origin_hash) = 64),
            size INTEGER NOT NULL CHECK (size >= 0),
            root BLOB NOT NULL CHECK (length(root) = 32),
            note TEXT NOT NULL,
            timestamp INTEGER NOT NULL CHECK (timestamp > 0)
        )""",
        """CREATE TABLE refused (
            id INTEGER PRIMARY KEY,
            origin TEXT NOT NULL,
            old_size INTEGER NOT NULL,
            size INTEGER NOT NULL,
            stored_size INTEGER NOT NULL,
            reason TEXT NOT NULL,
            note TEXT NOT NULL UNIQUE,
            proof BLOB NOT NULL CHECK (length(proof) % 32 = 0),
            received_at INTEGER NOT NULL
        )""",
        """CREATE TRIGGER cosigned_never_back BEFORE INSERT ON cosigned
           WHEN NEW.size < (SELECT max(size) FROM cosigned WHERE origin = NEW.origin)
           BEGIN SELECT RAISE(ABORT, 'a witness never cosigns a smaller tree than it did before'); END""",
        """CREATE TRIGGER cosigned_one_root_per_size BEFORE INSERT ON cosigned
           WHEN EXISTS (SELECT 1 FROM cosigned WHERE origin = NEW.origin AND size = NEW.size AND root != NEW.root)
           BEGIN SELECT RAISE(ABORT, 'a witness never cosigns two roots for one size'); END""",
        """CREATE TRIGGER latest_never_back BEFORE UPDATE ON latest
           WHEN NEW.size < OLD.size OR (NEW.size = OLD.size AND NEW.root != OLD.root)
             OR NEW.timestamp < OLD.timestamp OR NEW.origin != OLD.origin OR NEW.origin_hash != OLD.origin_hash
           BEGIN SELECT RAISE(ABORT, 'latest only moves forward, on one root per size'); END""",
        """CREATE TRIGGER latest_no_delete BEFORE DELETE ON latest
           BEGIN SELECT RAISE(ABORT, 'latest is never deleted'); END""",
    ]
    for table in ("cosigned", "refused"):
        for op in ("UPDATE", "DELETE"):
            statements.append(
                f"""CREATE TRIGGER {table}_no_{op.lower()} BEFORE {op} ON {table}
                BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op} refused'); END"""
            )
    for statement in statements:
        db.execute(statement)


_COSIGNED = "SELECT origin, size, root, note, timestamp FROM latest"


def _cosigned(row) -> Cosigned | None:
    return None if row is None else Cosigned(row[0], row[1], bytes(row[2]), row[3], row[4])


class _Txn(WitnessTxn):
    def __init__(self, conn: sqlite3.Connection, origin: str):
        self.conn = conn
        self.origin = origin
        self._latest = _cosigned(conn.execute(_COSIGNED + " WHERE origin = ?", (origin,)).fetchone())

    @property
    def latest(self) -> Cosigned | None:
        return self._latest

    def record(self, cosigned: Cosigned) -> None:
        c, latest = cosigned, self._latest
        if c.origin != self.origin:
            raise ValueError(f"this transaction writes {self.origin!r}, not {c.origin!r}")
        if latest is None or c.size != latest.size:  # the history holds each tree the witness moved to once
            self.conn.execute(
                "INSERT INTO cosigned (origin, size, root, note, timestamp) VALUES (?, ?, ?, ?, ?)",
                (c.origin, c.size, c.root, c.note, c.timestamp),
            )
        if latest is None:
            self.conn.execute(
                "INSERT INTO latest (origin, origin_hash, size, root, note, timestamp) VALUES (?, ?, ?, ?, ?, ?)",
                (c.origin, origin_hash(c.origin), c.size, c.root, c.note, c.timestamp),
            )
            return
        swapped = self.conn.execute(  # compare-and-swap on the size this transaction read
            "UPDATE latest SET size = ?, root = ?, note = ?, timestamp = ? WHERE origin = ? AND size = ?",
            (c.size, c.root, c.note, c.timestamp, c.origin, latest.size),
        ).rowcount
        if swapped != 1:
            stored = self.conn.execute("SELECT size FROM latest WHERE origin = ?", (c.origin,)).fetchone()
            raise SizeMismatch(stored[0])

    def refuse(self, refusal: Refusal) -> None:
        r = refusal
        self.conn.execute(
            "INSERT OR IGNORE INTO refused (origin, old_size, size, stored_size, reason, note, proof, received_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (r.origin, r.old_size, r.size, r.stored_size, r.reason, r.note, b"".join(r.proof), r.received_at),
        )


class SQLiteWitnessStore(WitnessStore):
    """The witness's SQLite file; ``create`` makes it (mode 0600) and applies its
    migrations.  A write waits at most ``lock_timeout`` seconds for the write lock,
    then is refused with :class:`ledger.errors.Unavailable` (503)."""

    def __init__(self, path: str | Path, *, create: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT):
        self.path = Path(path)
        self.lock_timeout = float(lock_timeout)
        if not create and not self.path.exists():
            raise InstanceError(f"no witness database at {self.path}")
        refuse_loose_modes(self.path)
        self._lock = threading.Lock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self.conn = connect(self.path, self.lock_timeout)
        try:
            db = sqlite_utils.Database(self.conn)
            if MIGRATIONS.pending(db):
                if not create:
                    raise InstanceError(f"witness database {self.path} needs migrations: open it with create")
                MIGRATIONS.apply(db)
            if not {"cosigned", "latest", "refused"} <= set(db.table_names()):
                raise InstanceError(f"{self.path} is not a witness database")
        except sqlite3.DatabaseError as exc:
            self.conn.close()
            raise InstanceError(f"{self.path} is not a usable witness database: {exc}") from exc
        except BaseException:
            self.conn.close()
            raise

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A ``BEGIN IMMEDIATE`` transaction on the write connection, committed on exit."""
        if not self._lock.acquire(timeout=self.lock_timeout):
            raise busy(self.lock_timeout, "another thread of this process")
        try:
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise (storage_fault(exc, self.lock_timeout) if is_storage_fault(exc) else exc) from exc
            try:
                yield self.conn
                self.conn.execute("COMMIT")
            except BaseException as exc:
                if self.conn.in_transaction:
                    self.conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error) and is_storage_fault(exc):
                    raise storage_fault(exc, self.lock_timeout) from exc
                raise
        finally:
            self._lock.release()

    @contextmanager
    def advance(self, origin: str) -> Iterator[WitnessTxn]:
        with self._write() as conn:
            yield _Txn(conn, origin)

    def _reader(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = connect(self.path, self.lock_timeout)
            self._readers.append(conn)
        return conn

    def latest(self, origin: str) -> Cosigned | None:
        return _cosigned(self._reader().execute(_COSIGNED + " WHERE origin = ?", (origin,)).fetchone())

    def latest_by_hash(self, hex_hash: str) -> Cosigned | None:
        return _cosigned(self._reader().execute(_COSIGNED + " WHERE origin_hash = ?", (hex_hash,)).fetchone())

    def origins(self) -> list[Cosigned]:
        return [_cosigned(r) for r in self._reader().execute(_COSIGNED + " ORDER BY origin")]

    def refusals(self, origin: str | None = None) -> list[Refusal]:
        rows = self._reader().execute(
            "SELECT origin, old_size, size, stored_size, reason, note, proof, received_at FROM refused"
            + (" WHERE origin = ?" if origin is not None else "") + " ORDER BY id",
            (origin,) if origin is not None else (),
        )
        return [
            Refusal(o, old, size, stored, reason, note, tuple(bytes(p[i : i + 32]) for i in range(0, len(p), 32)), at)
            for o, old, size, stored, reason, note, p, at in rows
        ]

    def close(self) -> None:
        for conn in self._readers:
            conn.close()
        self._readers.clear()
        self._local = threading.local()
        self.conn.close()
