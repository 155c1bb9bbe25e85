"""The PostgreSQL driver, the server database: one database (one schema of it)
holds the log, the books and the tokens, and several API servers may append
to it at once (see :mod:`.database` for why the chain cannot fork; :mod:`.log`,
:mod:`.books`, :mod:`.tokens`; the schema is ``migrations/postgres/``).
psycopg 3 with a connection pool."""

from __future__ import annotations

from ...charity.store import Stores
from .books import PostgresBooksStore
from .database import DEFAULT_LOCK_TIMEOUT, DEFAULT_POOL_SIZE, Database, describe, is_database_url
from .log import PostgresLogStore
from .tokens import PostgresTokens


class PostgresStores(Stores):
    """The three stores of one PostgreSQL database."""

    def __init__(self, db: Database):
        super().__init__(PostgresLogStore(db), PostgresBooksStore(db), PostgresTokens(db))
        self.db = db

    @property
    def migrations_applied(self) -> list[str]:
        return self.db.migrations_applied


def open_postgres(
    url: str,
    *,
    upgrade: bool = False,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    read_only: bool = False,
    pool_size: int = DEFAULT_POOL_SIZE,
) -> PostgresStores:
    """Open the database at ``url`` (``postgresql://…``; libpq reads a password from
    PGPASSWORD or ~/.pgpass when the URL has none); ``upgrade`` applies pending
    migrations.  A write waits at most ``lock_timeout`` seconds for a connection and
    for the append lock; ``read_only`` refuses every write."""
    return PostgresStores(
        Database(url, upgrade=upgrade, lock_timeout=lock_timeout, read_only=read_only, pool_size=pool_size)
    )


__all__ = ["DEFAULT_LOCK_TIMEOUT", "PostgresStores", "describe", "is_database_url", "open_postgres"]
