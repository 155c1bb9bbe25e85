"""One SQLite database file: its connections, its write lock and its migrations.

WAL mode with ``synchronous=FULL``.  Writes go through one connection,
guarded by a lock within the process and an flock across processes, in
``BEGIN IMMEDIATE`` transactions; each thread reads through its own
connection, so it sees committed data only.  The log store, the books store
and the token store of this driver share one :class:`Database`, so a read
snapshot covers all three.

A writer waits at most ``lock_timeout`` seconds for each of the locks (the
process's, the flock, SQLite's own), then gets :class:`ledger.errors.Unavailable`
with nothing written; readers never wait on them (WAL).  A write that meets a
storage fault (read-only file, full disk, I/O error) is rolled back and
answered the same way, and the next write opens a new write connection: SQLite
opens a file it cannot write read-only without saying so, and a connection
stays so, so a server recovers by itself only if it reconnects.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlite_utils

from migrations import sqlite as sqlite_migrations

from ...errors import InstanceError, Unavailable
from .faults import busy, is_storage_fault, needs_reconnect, storage_fault
from .files import private_umask

# How long a writer waits for the write lock by default, well under gunicorn's
# 60 s worker timeout (a request may wait for two rounds: see ``write``).
DEFAULT_LOCK_TIMEOUT = 5.0
# Polling the flock: first and longest sleep between tries (seconds).
_FLOCK_FIRST_SLEEP = 0.0002
_FLOCK_MAX_SLEEP = 0.002
READ_ONLY_DETAIL = "this database was opened for reads only; nothing was written"
CACHE_KIB = 65536
STREAM_CACHE_KIB = 2048
# Read pages straight from the OS page cache.  A connection's own cache is
# dropped whenever another process commits, and re-reading it page by page with
# pread() was the largest system cost of appends from several workers.
MMAP_BYTES = 1 << 34


def connect(path: str | Path, lock_timeout: float = DEFAULT_LOCK_TIMEOUT) -> sqlite3.Connection:
    """A connection in WAL mode; files it creates are private (mode 0600)."""
    try:
        with private_umask():
            conn = sqlite3.connect(str(path), isolation_level=None, timeout=lock_timeout, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {_ms(lock_timeout)}")
                mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            except BaseException:
                conn.close()
                raise
    except sqlite3.DatabaseError as exc:
        if is_storage_fault(exc):
            raise storage_fault(exc, lock_timeout) from exc
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


def connect_copy(path: Path) -> sqlite3.Connection:
    """A connection that can only read ``path`` and never writes it: SQLite's
    ``mode=ro``, plus ``immutable=1`` when no ``-wal`` file lies beside it (then
    SQLite creates no ``-shm`` file either).  With a ``-wal`` file, its committed
    pages are read too, and SQLite may need a ``-shm`` file beside it."""
    if not path.is_file():
        raise InstanceError(f"no database file at {path}")
    wal = path.with_name(path.name + "-wal")
    flags = "mode=ro" if wal.exists() else "mode=ro&immutable=1"
    uri = f"{path.resolve().as_uri()}?{flags}"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA query_only = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise InstanceError(f"{path} is not a readable SQLite database: {exc}") from exc
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    return conn


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@contextmanager
def _file_lock(path: Path, deadline: float, lock_timeout: float):
    """The flock that queues writers across processes, waited for until ``deadline``
    (polled: a blocking flock cannot be given up)."""
    with private_umask():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        pause = _FLOCK_FIRST_SLEEP
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise busy(lock_timeout, f"another process (on {path.name})") from None
                time.sleep(min(pause, left))
                pause = min(2 * pause, _FLOCK_MAX_SLEEP)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


class Database:
    """One write connection, guarded by a lock, and a read connection per thread.

    ``lock_timeout``: how long a write waits for each lock before it is refused
    with :class:`Unavailable`.  ``read_only``: every write is refused so.
    ``copy``: a database file to audit (a copy of an instance's, say), opened
    so that nothing can write it (:func:`connect_copy`); implies ``read_only``."""

    def __init__(
        self,
        path: str | Path,
        *,
        upgrade: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        read_only: bool = False,
        copy: bool = False,
    ):
        self.path = Path(path)
        self.copy = copy
        read_only = read_only or copy
        if not upgrade and not self.path.exists():
            advice = "" if copy else ": run 'luodi init' first"
            raise InstanceError(f"no database {'file ' if copy else ''}at {self.path}{advice}")
        if not lock_timeout > 0:
            raise InstanceError(f"the write lock timeout must be a positive number of seconds, not {lock_timeout!r}")
        if read_only and upgrade:
            raise InstanceError("a read-only database cannot be upgraded")
        self.lock_timeout = float(lock_timeout)
        self.read_only = read_only
        self._broken = False  # reconnect before the next write (after a storage fault, say)
        self._open_write_connection()
        self._lock = threading.RLock()
        self._lock_path = self.path.with_name(self.path.name + ".lock")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self.migrations_applied: list[str] = []
        try:
            if upgrade:
                self.migrations_applied = self.upgrade()
            elif sqlite_migrations.load().pending(sqlite_utils.Database(self.conn)):
                if copy:
                    raise InstanceError(
                        f"database {self.path} was written by an older luodi: upgrade a copy of it "
                        "('luodi db upgrade' on an instance folder holding the copy) and audit that"
                    )
                raise InstanceError(f"database {self.path} needs migrations: run 'luodi db upgrade'")
        except BaseException:
            self.conn.close()
            raise

    def upgrade(self) -> list[str]:
        """Apply pending migrations (``migrations/sqlite/``); return the names applied."""
        with self._lock:
            try:
                return sqlite_migrations.apply(sqlite_utils.Database(self.conn))
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the write connection; commits durably on exit.

        Raises :class:`Unavailable`, with nothing written, when a lock is not
        free within ``lock_timeout`` or the storage fails: this is the
        transaction's boundary, so a storage failure anywhere in the body
        (a group commit's several jobs included) fails all of it."""
        if self.read_only:
            raise Unavailable(READ_ONLY_DETAIL)
        # Each lock is waited for until one deadline, so a write is answered
        # within lock_timeout (a group commit's follower may wait for its
        # leader's round first: two rounds at most).
        deadline = time.monotonic() + self.lock_timeout
        if not self._lock.acquire(timeout=self.lock_timeout):
            raise busy(self.lock_timeout, "another thread of this process")
        try:
            # Writers queue on an flock first: SQLite's own busy handler sleeps in
            # growing steps (1, 2, 5, 10 ms ...) while another process holds the
            # write lock.  BEGIN IMMEDIATE still guards against writers that skip
            # the flock, with SQLite's busy timeout set to what is left.
            with _file_lock(self._lock_path, deadline, self.lock_timeout):
                conn = self._write_connection()
                try:
                    conn.execute(f"PRAGMA busy_timeout = {_ms(deadline - time.monotonic())}")
                    conn.execute("BEGIN IMMEDIATE")
                except sqlite3.Error as exc:
                    if needs_reconnect(exc):
                        self._drop_connection()
                    raise self._translate(exc) from exc
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException as exc:
                    if not _rollback(conn) or needs_reconnect(exc):
                        self._drop_connection()
                    if is_storage_fault(exc):
                        raise storage_fault(exc, self.lock_timeout) from exc
                    raise
        except OSError as exc:  # the lock file could not be opened or locked
            raise storage_fault(exc, self.lock_timeout) from exc
        finally:
            self._lock.release()

    def _translate(self, exc: sqlite3.Error) -> Exception:
        return storage_fault(exc, self.lock_timeout) if is_storage_fault(exc) else exc

    def _drop_connection(self) -> None:
        """Close the write connection after a storage fault, at once: whatever
        locks it still holds must not keep other processes' writers waiting."""
        self._broken = True
        try:
            self.conn.close()
        except sqlite3.Error:
            pass

    def _open_write_connection(self) -> None:
        if self.copy:  # never written: this connection only reads (the migrations check)
            self.conn, self._broken = connect_copy(self.path), False
            return
        self.conn = connect(self.path, self.lock_timeout)
        # SQLite opens a file it cannot write read-only, silently, and the connection
        # stays so: one opened during a fault (by a worker's first read, say) is
        # opened again before each write until the file can be written.
        self._broken = not os.access(self.path, os.W_OK)

    def _write_connection(self) -> sqlite3.Connection:
        """The write connection, opened anew after a storage fault."""
        if self._broken:
            try:
                self.conn.close()  # if a fault has not closed it already
            except sqlite3.Error:
                pass
            self._open_write_connection()
        return self.conn

    def check_writable(self) -> None:
        """Raise :class:`Unavailable` unless a write would reach the file now: a
        trial table, created and rolled back (SQLite opens a file it cannot
        write read-only and says so only at the first write)."""
        try:
            with self.write() as conn:
                conn.execute("CREATE TABLE luodi_write_check (x)")
                raise _TrialDone
        except _TrialDone:
            pass

    def reader(self) -> sqlite3.Connection:
        """This thread's read connection: WAL gives it committed data only, never
        a write that another thread has under way (and may roll back)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect_copy(self.path) if self.copy else connect(self.path, self.lock_timeout)
            self._local.conn = conn
            with self._readers_lock:  # not the write lock: readers never wait for writers
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
            self._write_connection().execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        self.conn.close()


class _TrialDone(Exception):
    """Ends :meth:`Database.check_writable`'s trial write: roll it back."""


def _rollback(conn: sqlite3.Connection) -> bool:
    """Roll back what is open (after a failed COMMIT there may be nothing); False
    if that failed too, and the connection must be reopened."""
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            return False  # the first failure is the one raised
    return True
