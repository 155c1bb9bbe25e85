"""The SQLite driver, the embedded default: one database file holds the log,
the books and the tokens (see :mod:`.database`, :mod:`.log`, :mod:`.books`,
:mod:`.tokens`; the schema is ``migrations/sqlite/``)."""

from __future__ import annotations

from pathlib import Path

from ...charity.store import Stores
from .books import SQLiteBooksStore
from .database import DEFAULT_LOCK_TIMEOUT, Database
from .log import SQLiteLogStore
from .tokens import SQLiteTokens


class SQLiteStores(Stores):
    """The three stores of one SQLite file."""

    def __init__(self, db: Database):
        super().__init__(SQLiteLogStore(db), SQLiteBooksStore(db), SQLiteTokens(db))
        self.db = db

    @property
    def path(self) -> Path:
        return self.db.path

    @property
    def migrations_applied(self) -> list[str]:
        return self.db.migrations_applied


def open_sqlite(
    path: str | Path, *, upgrade: bool = False, lock_timeout: float = DEFAULT_LOCK_TIMEOUT, read_only: bool = False
) -> SQLiteStores:
    """Open the database at ``path``; ``upgrade`` creates it if needed and applies pending migrations.
    A write waits at most ``lock_timeout`` seconds for the write lock; ``read_only`` refuses every write."""
    return SQLiteStores(Database(path, upgrade=upgrade, lock_timeout=lock_timeout, read_only=read_only))


def open_sqlite_copy(path: str | Path) -> SQLiteStores:
    """Open a database file for an audit, so that nothing can write it (SQLite's
    read-only mode): every write is refused, and no migration is applied."""
    return SQLiteStores(Database(path, copy=True))


__all__ = ["DEFAULT_LOCK_TIMEOUT", "SQLiteStores", "open_sqlite", "open_sqlite_copy"]
