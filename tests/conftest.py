"""Shared fixtures: every test gets its own database; fixtures return factories.

A test ledger is what ``luodi`` runs: the generic log with the charity
registry and the books as its append hook, on the backend the ``backend``
fixture names: a SQLite file or a PostgreSQL schema (``--backend``, see
:mod:`backends`).  Every fixture here that opens storage asks for it, so a
test that uses one runs on each chosen backend.
"""

from __future__ import annotations

import datetime as dt
import itertools

import backends
import pytest
from backends import SQLITE, open_target, stores_of, target_of  # noqa: F401  (re-exported to the tests)

from ledger.charity.kinds import registry
from ledger.charity.service import CharityLedger, open_charity_ledger
from ledger.log.clock import format_time
from ledger.log.ledger import Ledger
from ledger.log.note import Signer

ORIGIN = "test.luodi.example/log"
REGISTRY = registry()  # the kinds of a charity log, as luodi writes it


class FixedClock:
    """A clock that ticks one millisecond per call from a fixed start."""

    def __init__(self, start_ms: int = 1_790_000_000_000):
        self._ticks = itertools.count(start_ms)

    def __call__(self) -> str:
        ms = next(self._ticks)
        return format_time(dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc))


def open_ledger(target, signer: Signer | None = None, *, create: bool = False, **kwargs) -> Ledger:
    """The charity ledger of the database ``target`` (a SQLite path or a PostgreSQL URL,
    as ``backend.target(name)`` or ``target_of(ledger)`` give; ``create``: a new database
    and its genesis entry); close it with ``ledger.store.close()``."""
    stores = open_target(target, upgrade=create)
    try:
        return open_charity_ledger(stores, signer, create=create, **kwargs).ledger
    except BaseException:
        stores.close()
        raise


# -- the backends (see backends.py) ----------------------------------------------------------------


def pytest_addoption(parser):
    parser.addoption(
        "--backend", choices=("sqlite", "postgres", "all"), default="all",
        help="the storage backends the tests that use storage run on (default: all); PostgreSQL at "
        f"${backends.TEST_URL_ENV} (default {backends.DEFAULT_TEST_URL})",
    )


def pytest_generate_tests(metafunc):
    backends.parametrize(metafunc)


def pytest_collection_modifyitems(config, items):
    backends.skip_unchosen(config, items)


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The test server's URL, once it answers; else every PostgreSQL test is skipped
    (failed under CI=true) with the reason."""
    url = backends.server_url()
    error = backends.server_error(url)
    if error is not None:
        reason = backends.unreachable(url, error)
        if backends.in_ci():
            pytest.fail(f"CI=true: {reason}", pytrace=False)
        pytest.skip(reason)
    return url


def _backend(request, folder):
    if request.param == SQLITE:
        yield backends.SQLiteBackend(folder)
        return
    pg = backends.PostgresBackend(request.getfixturevalue("postgres_server"))
    try:
        yield pg
    finally:
        pg.drop()


@pytest.fixture
def backend(request, tmp_path):
    """The backend this run of the test is on (a :class:`backends.Backend`)."""
    yield from _backend(request, tmp_path)


@pytest.fixture(scope="module")
def module_backend(request, tmp_path_factory):
    """The backend of a module's worth of tests that share one instance (a live server, say)."""
    yield from _backend(request, tmp_path_factory.mktemp("backend"))


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def make_charity(backend, signer):
    """make_charity(name="a", clock=None, signer_=None, **kw) -> a fresh CharityLedger with its genesis entry."""
    opened = []

    def factory(name: str = "ledger", clock=None, signer_=None, **kwargs) -> CharityLedger:
        stores = backend.open(name, upgrade=True)
        opened.append(stores)
        if clock is not None:
            kwargs["clock"] = clock
        return open_charity_ledger(stores, signer_ or signer, create=True, **kwargs)

    yield factory
    for stores in opened:
        stores.close()


@pytest.fixture
def make_ledger(make_charity):
    """make_ledger(name="a", clock=None, signer_=None) -> a fresh Ledger with its genesis entry."""

    def factory(name: str = "ledger", clock=None, signer_=None, **kwargs) -> Ledger:
        return make_charity(name, clock, signer_, **kwargs).ledger

    return factory


@pytest.fixture
def ledger(make_ledger) -> Ledger:
    return make_ledger()


@pytest.fixture
def make_setup(make_charity):
    """make_setup(name=..., clock=..., donations=..., currency=...) -> a CharitySetup (see factories.py)."""
    from factories import make_charity_ledger

    return lambda **kwargs: make_charity_ledger(make_charity, **kwargs)


@pytest.fixture
def make_books(backend):
    """make_books(name="books", signer=None, **kw) -> (stores, CharityLedger) on a fresh database, closed afterwards."""
    from factories import open_books

    opened = []

    def factory(name: str = "books", signer: Signer | None = None, **kwargs):
        stores, cl = open_books(backend.target(name), signer, **kwargs)
        opened.append(stores)
        return stores, cl

    yield factory
    for stores in opened:
        stores.close()


def notes(n: int, prefix: str = "note") -> list[tuple[str, dict]]:
    """n append items of the generic 'note' kind."""
    return [("note", {"text": f"{prefix} {i}"}) for i in range(n)]
