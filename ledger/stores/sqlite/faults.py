"""What a storage failure means to a client: the SQLite and OS errors of a
write, translated into :class:`ledger.errors.Unavailable` (503 with
``Retry-After``).

A busy lock, a read-only file, a full disk or an I/O error is not a bug of
the server nor of the request: its storage cannot take the write now, and a
retry later may well succeed (the driver reopens its write connection after
such a failure, see :class:`.database.Database`).  Other errors, such as a
constraint or a corrupt file, stay what they are.
"""

from __future__ import annotations

import math
import sqlite3

from ...errors import Unavailable

# Seconds a client should wait before it retries a write that met a storage fault.
STORAGE_RETRY_AFTER = 30

_BUSY = {sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED}
_WHAT = {
    sqlite3.SQLITE_READONLY: "the database cannot be written (it is read-only)",
    sqlite3.SQLITE_FULL: "the disk holding the database is full",
    sqlite3.SQLITE_IOERR: "the database's storage failed (an I/O error)",
    sqlite3.SQLITE_CANTOPEN: "the database file cannot be opened",
    sqlite3.SQLITE_PROTOCOL: "the database's locking failed",
    sqlite3.SQLITE_NOLFS: "the database file is too large for this file system",
    sqlite3.SQLITE_PERM: "the database cannot be written (permission denied)",
}


def _code(exc: BaseException) -> int | None:
    code = getattr(exc, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF  # the primary code of an extended one


def is_storage_fault(exc: BaseException) -> bool:
    """A failure of the storage under the database, not of the statement."""
    if isinstance(exc, OSError):
        return True
    return isinstance(exc, sqlite3.Error) and (_code(exc) in _BUSY or _code(exc) in _WHAT)


def needs_reconnect(exc: BaseException) -> bool:
    """A storage fault after which the write connection is opened anew (a busy
    lock leaves the connection as it was)."""
    return is_storage_fault(exc) and _code(exc) not in _BUSY


def busy(lock_timeout: float, holder: str = "another writer") -> Unavailable:
    return Unavailable(
        f"the database is busy: {holder} has held its write lock for over {lock_timeout:g} s; nothing was written",
        retry_after=max(1, math.ceil(lock_timeout)),
    )


def storage_fault(exc: BaseException, lock_timeout: float) -> Unavailable:
    """The 503 for a storage fault (see :func:`is_storage_fault`)."""
    if isinstance(exc, OSError):
        what = f"the database's storage failed ({exc.strerror or exc})"
    else:
        code = _code(exc)
        if code in _BUSY:
            return busy(lock_timeout)
        name = getattr(exc, "sqlite_errorname", "")
        what = f"{_WHAT[code]}: {exc} ({name})"
    return Unavailable(f"{what}; nothing was written", retry_after=STORAGE_RETRY_AFTER)
