"""Shared fixtures: every test gets its own database; fixtures return factories.

A test ledger is what ``luodi`` runs: the generic log with the charity
registry and the books as its append hook, on the SQLite driver.
"""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from ledger.charity.kinds import registry
from ledger.charity.service import CharityLedger, open_charity_ledger
from ledger.log.clock import format_time
from ledger.log.ledger import Ledger
from ledger.log.note import Signer
from ledger.stores.sqlite import SQLiteStores, open_sqlite

ORIGIN = "test.luodi.example/log"
REGISTRY = registry()  # the kinds of a charity log, as luodi writes it


class FixedClock:
    """A clock that ticks one millisecond per call from a fixed start."""

    def __init__(self, start_ms: int = 1_790_000_000_000):
        self._ticks = itertools.count(start_ms)

    def __call__(self) -> str:
        ms = next(self._ticks)
        return format_time(dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc))


def open_ledger(path, signer: Signer | None = None, *, create: bool = False, **kwargs) -> Ledger:
    """The charity ledger of the SQLite file at ``path`` (``create``: a new file and
    its genesis entry); close it with ``ledger.store.close()``."""
    stores = open_sqlite(path, upgrade=create)
    try:
        return open_charity_ledger(stores, signer, create=create, **kwargs).ledger
    except BaseException:
        stores.close()
        raise


def stores_of(ledger: Ledger) -> SQLiteStores:
    """The SQLite stores (log, books, tokens) a test ledger was opened on."""
    return SQLiteStores(ledger.store.db)


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def make_charity(tmp_path, signer):
    """make_charity(name="a", clock=None, signer_=None, **kw) -> a fresh CharityLedger with its genesis entry."""
    opened = []

    def factory(name: str = "ledger", clock=None, signer_=None, **kwargs) -> CharityLedger:
        stores = open_sqlite(tmp_path / f"{name}.sqlite", upgrade=True)
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
def make_books(tmp_path):
    """make_books(name="books", signer=None, **kw) -> (stores, CharityLedger) on a fresh file, closed afterwards."""
    from factories import open_books

    opened = []

    def factory(name: str = "books", signer: Signer | None = None, **kwargs):
        stores, cl = open_books(tmp_path / f"{name}.sqlite", signer, **kwargs)
        opened.append(stores)
        return stores, cl

    yield factory
    for stores in opened:
        stores.close()


def notes(n: int, prefix: str = "note") -> list[tuple[str, dict]]:
    """n append items of the generic 'note' kind."""
    return [("note", {"text": f"{prefix} {i}"}) for i in range(n)]
