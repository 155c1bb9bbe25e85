"""The SQLite driver's named, ordered, transactional schema migrations.

They are the one source of the SQLite schema (the log, the books, the tokens).
Each module ``mNNNN_name.py`` here defines ``migrate(db)`` for a
:class:`sqlite_utils.Database`.  They run in order of NNNN, each in one
transaction with its record in ``_sqlite_migrations`` (sqlite-utils'
:class:`~sqlite_utils.migrations.Migrations`), so a migration that fails
leaves nothing behind and runs again next time.
"""

from __future__ import annotations

import importlib
import pkgutil
import re

from sqlite_utils.migrations import Migrations

_MODULE = re.compile(r"m(\d{4}_[a-z0-9_]+)")


def load() -> Migrations:
    migrations = Migrations("luodi")
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if _MODULE.fullmatch(m.name))
    for module_name in names:
        module = importlib.import_module(f"{__name__}.{module_name}")
        migrations(name=_MODULE.fullmatch(module_name).group(1))(module.migrate)
    return migrations


def apply(db) -> list[str]:
    """Apply pending migrations; return the names applied."""
    migrations = load()
    pending = [m.name for m in migrations.pending(db)]
    migrations.apply(db)
    return pending
