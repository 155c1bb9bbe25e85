"""Shared fixtures: every test gets its own database; fixtures return factories."""

from __future__ import annotations

import itertools

import pytest

from ledger import Ledger
from ledger.note import Signer
from ledger.storage import SQLiteStorage

ORIGIN = "test.luodi.example/log"


class FixedClock:
    """A clock that ticks one millisecond per call from a fixed start."""

    def __init__(self, start_ms: int = 1_790_000_000_000):
        self._ticks = itertools.count(start_ms)

    def __call__(self) -> str:
        import datetime as dt

        from ledger.entry import format_time

        ms = next(self._ticks)
        return format_time(dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc))


@pytest.fixture
def signer() -> Signer:
    return Signer.generate(ORIGIN)


@pytest.fixture
def make_ledger(tmp_path, signer):
    """make_ledger(name="a", clock=None, signer=None) -> a fresh Ledger with its genesis entry."""
    opened = []

    def factory(name: str = "ledger", clock=None, signer_=None) -> Ledger:
        storage = SQLiteStorage(tmp_path / f"{name}.sqlite", upgrade=True)
        opened.append(storage)
        kwargs = {"clock": clock} if clock is not None else {}
        return Ledger.create(storage, signer_ or signer, **kwargs)

    yield factory
    for storage in opened:
        storage.close()


@pytest.fixture
def ledger(make_ledger) -> Ledger:
    return make_ledger()


def notes(n: int, prefix: str = "note") -> list[tuple[str, dict]]:
    """n append items of the generic 'note' kind."""
    return [("note", {"text": f"{prefix} {i}"}) for i in range(n)]
