"""One PostgreSQL database: its connection pool, the log's append lock and its migrations.

Appends from every thread of every server process are ordered by one
transaction-level advisory lock, taken first in each append transaction
(``pg_advisory_xact_lock``), in READ COMMITTED.  Why that is correct:

- the lock is held from before the append reads the log's tip until its
  transaction ends, and PostgreSQL releases a transaction's locks only after
  its commit is visible to new snapshots;
- in READ COMMITTED each statement takes a new snapshot, so every statement
  after the lock sees every append that held it before;
- so two appends never build on the same tip: the chain cannot fork, whatever
  number of servers append, on one machine or many.  The primary key on seq and
  the gap trigger (migration 0001) would refuse a fork anyway, rolling back
  the whole append, even from a writer that skipped the lock.

An append is acknowledged only after COMMIT returns, with ``synchronous_commit``
at least ``on`` (the driver raises an ``off`` setting to ``on`` on each
connection), so an acknowledged append is durable on the server and, with a
synchronous standby configured, on the standby too.  Group commit still
works within each server (:mod:`ledger.log.group_commit`): a group is one
append transaction.

Reads borrow a connection from the pool for each query (autocommit: each sees
the latest commit), or, inside :meth:`Database.snapshot`, hold one in a
REPEATABLE READ READ ONLY transaction, so that all their reads see one
committed state.  Whole-log scans use a server-side cursor, so their memory is
bounded whatever the log's size.

Failures (lost connections, a restarted or failed-over server, timeouts) are
translated into :class:`ledger.errors.Unavailable` (:mod:`.faults`); the pool
drops a broken connection, checks its idle ones after a disconnect and opens
new ones as needed, so a server recovers by itself.  The transactions this
driver runs on its own (tokens, migrations, erasure) are retried a bounded
number of times after a serialization failure or deadlock; an append cannot
meet one (it holds the append lock and runs in READ COMMITTED), and if it
did, its client would get 503 and retry.
"""

from __future__ import annotations

import itertools
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from migrations import postgres as pg_migrations

from ...errors import InstanceError, Unavailable
from .faults import is_conflict, is_disconnect, is_unavailable, translate

T = TypeVar("T")

DEFAULT_LOCK_TIMEOUT = 5.0
DEFAULT_POOL_SIZE = 12  # a server's threads, and a few for scans and the lock's queue
CONFLICT_RETRIES = 3  # a driver-run transaction is tried at most this many times more
READ_ONLY_DETAIL = "this database was opened for reads only; nothing was written"
SCAN_ROWS = 2048  # rows a server-side cursor fetches per round trip
_APPEND_LOCK_KEY = "SELECT hashtextextended(current_schema() || ':luodi:append', 0)"


def is_database_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def describe(url: str) -> str:
    """The database a URL names, for messages: ``host/dbname``, never a password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "a PostgreSQL database"
    host = info.get("host") or "local socket"
    return f"PostgreSQL database {info.get('dbname') or info.get('user') or '(default)'} on {host}"


def _configure(conn: psycopg.Connection) -> None:
    """Each new connection: autocommit (transactions are explicit), durable commits."""
    conn.autocommit = True
    if conn.execute("SHOW synchronous_commit").fetchone()[0] == "off":
        conn.execute("SET synchronous_commit = on")


class Database:
    """A pool of connections to one PostgreSQL database (a schema of it: the first
    of the URL's ``search_path``).

    ``lock_timeout``: how long a write waits for a connection and for the append
    lock before it is refused with :class:`Unavailable`.  ``read_only``: every
    write is refused so."""

    def __init__(
        self,
        url: str,
        *,
        upgrade: bool = False,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
        read_only: bool = False,
        pool_size: int = DEFAULT_POOL_SIZE,
    ):
        if not is_database_url(url):
            raise InstanceError("a PostgreSQL database URL starts with postgresql://")
        if not lock_timeout > 0:
            raise InstanceError(f"the write lock timeout must be a positive number of seconds, not {lock_timeout!r}")
        if read_only and upgrade:
            raise InstanceError("a read-only database cannot be upgraded")
        self.name = describe(url)
        self.lock_timeout = float(lock_timeout)
        self._lock_ms = max(1, int(self.lock_timeout * 1000))
        self.read_only = read_only
        self._local = threading.local()
        self._checking = threading.Lock()
        # Named in pg_stat_activity, unless the URL names itself.
        named = {} if "application_name" in psycopg.conninfo.conninfo_to_dict(url) else {"application_name": "luodi"}
        self._url = url
        self._connect_args = {**named, "connect_timeout": max(2, math.ceil(self.lock_timeout))}
        self._readers: list[psycopg.Connection] = []
        self._readers_lock = threading.Lock()
        self.pool = ConnectionPool(
            url, kwargs=self._connect_args, min_size=1, max_size=max(2, pool_size), timeout=self.lock_timeout,
            configure=_configure, name="luodi", open=False,
        )
        try:
            self.pool.open(wait=True, timeout=self.lock_timeout)
        except PoolTimeout as exc:
            self.pool.close(timeout=0)
            raise Unavailable(f"cannot connect to the {self.name} within {self.lock_timeout:g} s", retry_after=5) from exc
        self.migrations_applied: list[str] = []
        try:
            with self.pool.connection() as conn:
                self._lock_key = conn.execute(_APPEND_LOCK_KEY).fetchone()[0]
                if upgrade:
                    self.migrations_applied = self._retrying(lambda: pg_migrations.apply(conn))
                elif pg_migrations.pending(conn):
                    raise InstanceError(f"the {self.name} needs migrations: run 'luodi db upgrade'")
        except BaseException:
            self.pool.close(timeout=0)
            raise

    def upgrade(self) -> list[str]:
        with self.pool.connection() as conn:
            return self._retrying(lambda: pg_migrations.apply(conn))

    # -- writes -------------------------------------------------------------------

    @contextmanager
    def write(self, append: bool = True) -> Iterator[psycopg.Connection]:
        """A transaction that commits durably on exit; ``append`` takes the log's
        append lock first (see the module's doc).  Raises :class:`Unavailable`,
        with nothing written, when no connection or lock is had within
        ``lock_timeout`` or the database fails."""
        if self.read_only:
            raise Unavailable(READ_ONLY_DETAIL)
        # One round trip opens it: the isolation level whatever the server's default,
        # the wait for locks bounded, and the append lock.
        begin = f"BEGIN ISOLATION LEVEL READ COMMITTED; SELECT set_config('lock_timeout', '{self._lock_ms}ms', true)"
        if append:
            begin += f"; SELECT pg_advisory_xact_lock({int(self._lock_key)})"
        try:
            with self.pool.connection() as conn:
                conn.execute(begin)
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if not conn.broken and conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        conn.execute("ROLLBACK")
                    raise
        except BaseException as exc:
            translated = self._translate(exc)
            if translated is exc:
                raise
            raise translated from exc

    def _retrying(self, work: Callable[[], T]) -> T:
        """Run a driver-owned transaction, again after a serialization failure or deadlock."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                return work()
            except (psycopg.Error, Unavailable) as exc:
                cause = exc.__cause__ if isinstance(exc, Unavailable) else exc
                if not is_conflict(cause) or attempt == CONFLICT_RETRIES:
                    raise
        raise AssertionError("unreachable")

    def run_write(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work`` in a write transaction of its own (no append lock), retried after a conflict."""

        def once() -> T:
            with self.write(append=False) as conn:
                return work(conn)

        return self._retrying(once)

    def check_writable(self) -> None:
        """Raise :class:`Unavailable` unless a write would reach the database now
        (a standby after a failover is read-only, for one)."""
        with self.write(append=False) as conn:
            conn.execute("CREATE TEMPORARY TABLE luodi_write_check (x int) ON COMMIT DROP")
            conn.execute("INSERT INTO luodi_write_check VALUES (1)")

    # -- reads --------------------------------------------------------------------

    def _reader(self) -> psycopg.Connection:
        """This thread's read connection (opened on first use, and again after a loss):
        a read costs no pool checkout, as on SQLite each thread reads through its own."""
        conn = getattr(self._local, "reader", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._url, **self._connect_args)
            _configure(conn)
            self._local.reader = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def _drop_reader(self) -> None:
        conn = getattr(self._local, "reader", None)
        self._local.reader = None
        if conn is not None:
            conn.close()
            with self._readers_lock:
                self._readers.remove(conn)

    def read(self, work: Callable[[psycopg.Connection], T]) -> T:
        """``work(conn)`` on this thread's snapshot's connection or its read connection
        (autocommit: each statement sees the latest commit); tried once more on a new
        connection if the first was lost (a server restarted since it was opened)."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            return work(pinned)
        for attempt in (1, 2):
            try:
                return work(self._reader())
            except BaseException as exc:
                if attempt == 1 and is_disconnect(exc):
                    self._drop_reader()
                    continue
                if is_disconnect(exc):
                    self._drop_reader()
                self._reraise(exc)
        raise AssertionError("unreachable")

    def scan(self, query: str, args: tuple = (), rows: int = SCAN_ROWS) -> Iterator[tuple]:
        """Rows of ``query`` through a server-side cursor, ``rows`` per round trip."""
        pinned = getattr(self._local, "conn", None)
        if pinned is not None:
            yield from _server_cursor(pinned, query, args, rows)
            return
        try:
            with self.pool.connection() as conn, conn.transaction():
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                yield from _server_cursor(conn, query, args, rows)
        except BaseException as exc:
            self._reraise(exc)

    @contextmanager
    def snapshot(self, streaming: bool = False) -> Iterator[None]:
        """This thread's reads inside the block see one committed state, whichever
        store of this database they go through: its read connection, in a REPEATABLE
        READ READ ONLY transaction.  (``streaming`` changes nothing here: scans go
        through a server-side cursor and hold no cache.)"""
        if getattr(self._local, "conn", None) is not None:
            yield
            return
        for attempt in (1, 2):
            try:
                conn = self._reader()
                conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                break
            except BaseException as exc:
                if is_disconnect(exc):
                    self._drop_reader()
                    if attempt == 1:
                        continue
                self._reraise(exc)
        self._local.conn = conn
        try:
            yield
        except BaseException as exc:
            self._end_snapshot(conn)
            self._reraise(exc)
        else:
            self._end_snapshot(conn)

    def _end_snapshot(self, conn: psycopg.Connection) -> None:
        self._local.conn = None
        if conn.broken:
            self._drop_reader()
            return
        try:
            conn.execute("ROLLBACK")
        except psycopg.Error:
            self._drop_reader()

    # -- failures and closing -------------------------------------------------------

    def _translate(self, exc: BaseException, write: bool = True) -> BaseException:
        if isinstance(exc, Unavailable) or not is_unavailable(exc):
            return exc
        if is_disconnect(exc):
            self._check_idle()
        return translate(exc, self.lock_timeout, write)

    def _reraise(self, exc: BaseException, write: bool = False):
        translated = self._translate(exc, write)
        if translated is exc:
            raise exc
        raise translated from exc

    def _check_idle(self) -> None:
        """After a lost connection, have the pool test its idle connections (in the
        background) and replace the broken ones, so the next requests find good ones."""
        if self._checking.acquire(blocking=False):
            def check():
                try:
                    self.pool.check()
                except Exception:  # noqa: BLE001 - the next request will find out
                    pass
                finally:
                    self._checking.release()

            threading.Thread(target=check, name="luodi-pool-check", daemon=True).start()

    def close(self) -> None:
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()
        self._local = threading.local()
        self.pool.close()


_cursor_names = itertools.count()


def _server_cursor(conn: psycopg.Connection, query: str, args: tuple, rows: int) -> Iterator[tuple]:
    with conn.cursor(name=f"luodi_scan_{next(_cursor_names)}") as cur:
        cur.itersize = rows
        cur.execute(query, args)
        yield from cur
