"""The PostgreSQL driver's named, ordered, transactional schema migrations.

They are the one source of the PostgreSQL schema, as ``migrations/sqlite/``
is of SQLite's.  Each module ``mNNNN_name.py`` here holds ``STATEMENTS``, a
list of SQL statements.  They run in order of NNNN, each migration in one
transaction together with its record in ``luodi_migrations``, so one that
fails leaves nothing behind and runs again next time.  A session-level
advisory lock makes servers that start at once apply them one at a time.

The tables are created in the first schema of the connection's
``search_path`` (``public`` unless the database URL says otherwise, e.g.
``?options=-csearch_path%3Dluodi``).
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from dataclasses import dataclass

_MODULE = re.compile(r"m(\d{4}_[a-z0-9_]+)")
TABLE = "luodi_migrations"
_CREATE_TABLE = (
    f"CREATE TABLE IF NOT EXISTS {TABLE} (name text COLLATE \"C\" PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)
# pg_advisory_lock's key for migrations, per schema (the appends' lock is another).
_LOCK = "SELECT pg_advisory_lock(hashtextextended(current_schema() || ':luodi:migrations', 0))"
_UNLOCK = "SELECT pg_advisory_unlock(hashtextextended(current_schema() || ':luodi:migrations', 0))"


@dataclass(frozen=True)
class Migration:
    name: str
    statements: tuple[str, ...]


def load() -> list[Migration]:
    found = []
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if _MODULE.fullmatch(m.name))
    for module_name in names:
        module = importlib.import_module(f"{__name__}.{module_name}")
        found.append(Migration(_MODULE.fullmatch(module_name).group(1), tuple(module.STATEMENTS)))
    return found


def applied(conn) -> set[str]:
    """The names recorded as applied (none in a database Luodi has never migrated)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]
    if not exists:
        return set()
    return {row[0] for row in conn.execute(f"SELECT name FROM {TABLE}")}  # noqa: S608 - a constant


def pending(conn) -> list[str]:
    done = applied(conn)
    return [m.name for m in load() if m.name not in done]


def apply(conn) -> list[str]:
    """Apply pending migrations on ``conn`` (in autocommit mode); return the names applied."""
    conn.execute(_LOCK)
    try:
        with conn.transaction():
            conn.execute(_CREATE_TABLE)
        done = applied(conn)
        names = []
        for migration in load():
            if migration.name in done:
                continue
            with conn.transaction():
                for statement in migration.statements:
                    conn.execute(statement)
                conn.execute(f"INSERT INTO {TABLE} (name) VALUES (%s)", (migration.name,))  # noqa: S608
            names.append(migration.name)
        return names
    finally:
        conn.execute(_UNLOCK)
