"""The storage backends the suite runs on: SQLite files, and PostgreSQL schemas.

``pytest --backend sqlite|postgres|all`` (default ``all``) picks them.  A test
whose fixtures include ``backend`` (conftest.py) runs once per chosen backend,
with the ids ``[sqlite]`` and ``[postgres]``; the storage fixtures
(``make_charity``, ``make_books``, ``make_api``, ...) ask for it, so a test
that uses them runs on both.  A test about SQLite itself carries
``@pytest.mark.sqlite_only("why")`` and runs on SQLite only.

PostgreSQL: the server at ``LUODI_TEST_DATABASE_URL`` (default
``postgresql:///luodi_test``, the local socket).  It is tried once per test
process; unreachable, every PostgreSQL test is skipped with the URL, the
error and what to do, except under ``CI=true``, where they fail.  Each
database a test opens is a schema of its own, ``t_<random>``, named by
libpq's ``options=-csearch_path=…`` in the URL the code is given (the driver
keeps its tables in the first schema of the search path), and dropped with
``DROP SCHEMA … CASCADE`` when the test ends.
"""

from __future__ import annotations

import os
import secrets
import weakref
from pathlib import Path

import pytest

from api.database_url import is_database_url, redact
from ledger.charity.store import Stores
from ledger.stores.sqlite import SQLiteStores, open_sqlite

SQLITE, POSTGRES = "sqlite", "postgres"
BACKENDS = (SQLITE, POSTGRES)
TEST_URL_ENV = "LUODI_TEST_DATABASE_URL"
DEFAULT_TEST_URL = "postgresql:///luodi_test"
CONNECT_TIMEOUT = 5  # seconds to reach the test server
DROP_LOCK_TIMEOUT = "30s"  # a schema still locked by a leaked connection fails the test's teardown


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def server_url() -> str:
    """The test server's URL (``LUODI_TEST_DATABASE_URL``, else the default)."""
    return os.environ.get(TEST_URL_ENV, "").strip() or DEFAULT_TEST_URL


def schema_url(base: str, schema: str) -> str:
    """``base`` with libpq's ``options`` set so that ``schema`` is first on the search path."""
    return f"{base}{'&' if '?' in base else '?'}options=-csearch_path%3D{schema}"


def server_error(url: str) -> str | None:
    """None if a connection to ``url`` works, else what went wrong."""
    try:
        import psycopg
    except ImportError as exc:  # pragma: no cover - psycopg is in install_requires
        return f"psycopg cannot be imported: {exc}"
    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure means: no server for the tests
        return f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    return None


def unreachable(url: str, error: str) -> str:
    return (
        f"PostgreSQL is not reachable at {redact(url)} ({error}). Start a server and create that database "
        f"(apt-get install postgresql; pg_ctlcluster <version> main start; createuser -s $USER and createdb "
        f"luodi_test as user postgres), or point {TEST_URL_ENV} at one; --backend sqlite leaves PostgreSQL out"
    )


def _admin(url: str):
    import psycopg

    return psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT, autocommit=True)


# -- what a test opens, and on which database ------------------------------------------------------

# The stores a test opened through these helpers, and the database they are on
# (a SQLite path or a PostgreSQL URL), by the stores' log store.
_OPENED: "weakref.WeakKeyDictionary[object, tuple[Stores, Path | str]]" = weakref.WeakKeyDictionary()


def register(stores: Stores, target: Path | str) -> Stores:
    _OPENED[stores.log] = (stores, target)
    return stores


def open_target(target: Path | str, **kwargs) -> Stores:
    """The stores of ``target``: a PostgreSQL URL, else a SQLite file."""
    if isinstance(target, str) and is_database_url(target):
        from ledger.stores.postgres import open_postgres

        return register(open_postgres(target, **kwargs), target)
    return register(open_sqlite(target, **kwargs), Path(target))


def _log_store(target):
    """The log store of a Ledger, a CharityLedger, a Stores or a log store."""
    if isinstance(target, Stores):
        return target.log
    target = getattr(target, "ledger", target)
    return getattr(target, "store", target)


def stores_of(target) -> Stores:
    """The stores (log, books, tokens) a ledger was opened on."""
    log = _log_store(target)
    found = _OPENED.get(log)
    if found is not None:
        return found[0]
    return SQLiteStores(log.db)


def target_of(target) -> Path | str:
    """The database a ledger (or its stores) is on: a SQLite path or a PostgreSQL URL,
    to open it again."""
    log = _log_store(target)
    found = _OPENED.get(log)
    if found is not None:
        return found[1]
    return log.path


def is_postgres(target) -> bool:
    return isinstance(target_of(target), str)


# -- the backends ------------------------------------------------------------------------------------


class Backend:
    """Where a test's databases are: ``target(name)`` is one (distinct names, distinct databases)."""

    name: str

    def target(self, name: str = "ledger") -> Path | str:
        raise NotImplementedError

    def database(self, name: str = "instance") -> str | None:
        """What ``init_instance(database=…)`` takes for an instance named ``name``: None on SQLite."""
        raise NotImplementedError

    def init_args(self, name: str = "instance") -> list[str]:
        """The ``luodi init`` options that put an instance named ``name`` on this backend."""
        url = self.database(name)
        return [] if url is None else ["--database", url]

    def open(self, name: str = "ledger", **kwargs) -> Stores:
        return open_target(self.target(name), **kwargs)

    def __repr__(self) -> str:
        return f"<{self.name} backend>"


class SQLiteBackend(Backend):
    name = SQLITE

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def target(self, name: str = "ledger") -> Path:
        return self.folder / f"{name}.sqlite"

    def database(self, name: str = "instance") -> None:
        return None


class PostgresBackend(Backend):
    """A schema of its own on the test server for each name a test asks for."""

    name = POSTGRES

    def __init__(self, base_url: str):
        self.base_url = base_url
        self.schemas: dict[str, str] = {}

    def target(self, name: str = "ledger") -> str:
        schema = self.schemas.get(name)
        if schema is None:
            schema = f"t_{secrets.token_hex(6)}"
            with _admin(self.base_url) as conn:
                conn.execute(f"CREATE SCHEMA {schema}")
            self.schemas[name] = schema
        return schema_url(self.base_url, schema)

    def database(self, name: str = "instance") -> str:
        return self.target(name)

    def drop(self) -> None:
        if not self.schemas:
            return
        with _admin(self.base_url) as conn:
            conn.execute(f"SET lock_timeout = '{DROP_LOCK_TIMEOUT}'")
            for schema in self.schemas.values():
                conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        self.schemas.clear()


# -- pytest's side ---------------------------------------------------------------------------------


def chosen(config) -> tuple[str, ...]:
    value = config.getoption("backend")
    return BACKENDS if value == "all" else (value,)


def sqlite_only_reason(node) -> str | None:
    marker = node.get_closest_marker("sqlite_only")
    if marker is None:
        return None
    reason = marker.args[0] if marker.args else marker.kwargs.get("reason")
    if not reason:
        raise pytest.UsageError(f"{node.nodeid}: @pytest.mark.sqlite_only needs a reason")
    return reason


def parametrize(metafunc) -> None:
    """Run a test that uses the ``backend`` fixture (or ``module_backend``, one backend
    for a module's worth of tests) once per chosen backend."""
    for name, scope in (("backend", "function"), ("module_backend", "module")):
        if name not in metafunc.fixturenames:
            continue
        backends = chosen(metafunc.config)
        reason = sqlite_only_reason(metafunc.definition)
        if reason is not None:
            marks = () if SQLITE in backends else (pytest.mark.skip(reason=f"SQLite only: {reason}"),)
            params = [pytest.param(SQLITE, id=SQLITE, marks=marks)]
        else:
            params = [pytest.param(b, id=b) for b in backends]
        metafunc.parametrize(name, params, indirect=True, scope=scope)


def skip_unchosen(config, items) -> None:
    """A SQLite-only test that does not use ``backend`` is skipped when SQLite is not
    chosen; a ``postgres_only`` test (the driver's own) when PostgreSQL is not."""
    backends = chosen(config)
    if POSTGRES not in backends:
        for item in items:
            if item.get_closest_marker("postgres_only") is not None:
                item.add_marker(pytest.mark.skip(reason="PostgreSQL only, and --backend sqlite"))
    if SQLITE in backends:
        return
    for item in items:
        reason = sqlite_only_reason(item)
        names = getattr(item, "fixturenames", ())
        if reason is not None and "backend" not in names and "module_backend" not in names:
            item.add_marker(pytest.mark.skip(reason=f"SQLite only: {reason}"))


# -- reading a database beside the code under test ------------------------------------------------


def integrity_errors() -> tuple[type[BaseException], ...]:
    """What a constraint or trigger refusal raises, on either backend."""
    import sqlite3

    import psycopg

    return (sqlite3.IntegrityError, psycopg.IntegrityError)


def raw_rows(target, sql: str) -> list[tuple]:
    """The rows of a read-only ``sql`` on the database a ledger (or a Stores, or a path
    or URL) is on, run with a connection of its own (the tables have the same names
    on both backends)."""
    where = target if isinstance(target, (str, Path)) else target_of(target)
    if isinstance(where, str):
        import psycopg

        with psycopg.connect(where, autocommit=True) as conn:
            return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row) for row in conn.execute(sql)]
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(where)) as conn:
        return conn.execute(sql).fetchall()


def committed(target) -> list[tuple[int, bytes]]:
    """(seq, canonical bytes) of every committed entry, read with a connection of its own."""
    return raw_rows(target, "SELECT seq, canonical FROM entries ORDER BY seq")


def execute(target, *statements: tuple[str, tuple]) -> None:
    """Run ``(sql, args)`` statements (``?`` placeholders) in one transaction of a
    connection of our own, behind the back of the code under test: a tamperer's edit."""
    where = target if isinstance(target, (str, Path)) else target_of(target)
    if isinstance(where, str):
        import psycopg

        with psycopg.connect(where) as conn:  # commits on leaving the block
            for sql, args in statements:
                conn.execute(sql.replace("?", "%s"), args)
        return
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(where)) as conn:
        for sql, args in statements:
            conn.execute(sql, args)
        conn.commit()


# What a child process's script runs to open the database a test hands it (a path or a URL).
CHILD_OPEN = """
def open_database(target, **kwargs):
    if target.startswith(("postgresql://", "postgres://")):
        from ledger.stores.postgres import open_postgres
        return open_postgres(target, **kwargs)
    from ledger.stores.sqlite import open_sqlite
    return open_sqlite(target, **kwargs)
"""
