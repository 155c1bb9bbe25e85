"""What a PostgreSQL failure means to a client: the errors of psycopg and its
pool translated into :class:`ledger.errors.Unavailable` (503 with ``Retry-After``).

A lost connection, a server shutting down or starting up, a failover to a
standby that is still read-only, a full disk, a statement timeout, a lock not
had in time, a pool with no free connection, a serialization failure or a
deadlock: none is a bug of the server nor of the request, and a retry later may
well succeed.  Every one happens before the commit is acknowledged, so the
transaction is rolled back and nothing was written.  (A connection lost *during*
COMMIT leaves the outcome unknown to this process; the client gets 503 all the
same, and its retry with the same intake key is answered from the log if the
commit did land.)  Other errors, such as a constraint, stay what they are.
"""

from __future__ import annotations

import math

import psycopg
from psycopg import errors as pg_errors
from psycopg_pool import PoolTimeout

from ...errors import Unavailable

# Seconds a client should wait before it retries after the database failed.
STORAGE_RETRY_AFTER = 5
# ...and after a conflict between transactions, which clears at once.
CONFLICT_RETRY_AFTER = 1

# SQLSTATE classes and codes that say "not now": 08 connection exception, 53 insufficient
# resources, 57P0x operator intervention (shutdown, crash, cannot connect now), 58 system error.
_UNAVAILABLE_CLASSES = ("08", "53", "58", "57P")
_CONFLICTS = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)


def is_conflict(exc: BaseException) -> bool:
    """A serialization failure or deadlock: the transaction may simply be run again."""
    return isinstance(exc, _CONFLICTS)


def is_unavailable(exc: BaseException) -> bool:
    """A failure of the database server or the way to it, not of the statement."""
    if isinstance(exc, (PoolTimeout, pg_errors.LockNotAvailable, pg_errors.QueryCanceled, pg_errors.ReadOnlySqlTransaction)):
        return True
    if is_conflict(exc):
        return True
    if isinstance(exc, psycopg.OperationalError):
        return True  # psycopg's class for connection failures and the 08/53/57/58 classes
    state = getattr(exc, "sqlstate", None) or ""
    return isinstance(exc, psycopg.Error) and state.startswith(_UNAVAILABLE_CLASSES)


def is_disconnect(exc: BaseException) -> bool:
    """The connection itself failed: the pool's other idle connections may be stale too."""
    return isinstance(exc, psycopg.OperationalError) and not isinstance(
        exc, (pg_errors.QueryCanceled, pg_errors.LockNotAvailable, *_CONFLICTS)
    )


def busy(lock_timeout: float, holder: str = "another writer") -> Unavailable:
    return Unavailable(
        f"the database is busy: {holder} has held the log's append lock for over {lock_timeout:g} s; nothing was written",
        retry_after=max(1, math.ceil(lock_timeout)),
    )


def translate(exc: BaseException, lock_timeout: float, write: bool = True) -> Unavailable:
    """The 503 for a failure :func:`is_unavailable` accepts."""
    tail = "; nothing was written" if write else ""
    if isinstance(exc, PoolTimeout):
        return Unavailable(
            f"no database connection could be had within {lock_timeout:g} s (all were busy, or the database "
            f"cannot be reached){tail}",
            retry_after=max(1, math.ceil(lock_timeout)),
        )
    if isinstance(exc, pg_errors.LockNotAvailable):
        return busy(lock_timeout)
    if is_conflict(exc):
        return Unavailable(f"the database refused a conflicting transaction ({_first_line(exc)}){tail}", retry_after=CONFLICT_RETRY_AFTER)
    if isinstance(exc, pg_errors.QueryCanceled):
        what = "a database statement ran past its time limit"
    elif isinstance(exc, pg_errors.ReadOnlySqlTransaction):
        what = "the database is read-only (a standby, or a failover under way)"
    else:
        what = "the database cannot be reached or failed"
    return Unavailable(f"{what} ({_first_line(exc)}){tail}", retry_after=STORAGE_RETRY_AFTER)


def _first_line(exc: BaseException) -> str:
    """The error's own message, first line only (never the connection string)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
