"""Migration 0005 scopes intake keys per charity: every key keeps its receipt and gains
the charity of its donation's project, and a migration that cannot do so leaves nothing."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from conftest import REGISTRY
from factories import OTHER_CHARITY, OTHER_PROJECT, intake_keys_before_0005, make_charity_ledger, migrations_up_to

from ledger.charity.audit import audit_books
from ledger.charity.service import open_charity_ledger
from ledger.log.verify import verify_log
from ledger.stores.sqlite import open_sqlite
from migrations import sqlite as migrations

pytestmark = pytest.mark.sqlite_only("migrations/sqlite: a database of an older SQLite schema")

NAME = "0005_intake_keys_per_charity"


def _schema(path, table: str = "intake_keys") -> tuple:
    with closing(sqlite3.connect(path)) as conn:
        sql = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()[0]
        return conn.execute(f"PRAGMA table_info('{table}')").fetchall(), "WITHOUT ROWID" in sql


def _rows(path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute(sql).fetchall())


@pytest.fixture
def before_0005(make_charity, monkeypatch):
    """A database at migration 0004 holding two charities' donations, written as the driver
    of that schema did; returns its path, its intake_keys rows and the receipt of each key."""
    real_load = migrations.load

    monkeypatch.setattr(migrations, "load", migrations_up_to(4))
    with intake_keys_before_0005(monkeypatch):
        setup = make_charity_ledger(make_charity, name="old")  # CHARITY's project, three donations
        setup.register_other()
        setup.donate("40.00", project=OTHER_PROJECT, intake_key="river-intake-0001")
        path = setup.ledger.store.path
        rows = _rows(path, "SELECT * FROM intake_keys")
        setup.charity.stores.close()
    monkeypatch.setattr(migrations, "load", real_load)
    assert [len(r) for r in rows] == [2] * 4
    return path, rows, setup


def test_migration_0005_gives_each_key_its_charity_and_matches_a_fresh_install(before_0005, tmp_path):
    path, rows, setup = before_0005
    stores = open_sqlite(path, upgrade=True)
    try:
        assert stores.migrations_applied == [
            NAME, "0006_policy", "0007_charity_entries", "0008_token_rates", "0009_cosigned_checkpoints"
        ]
        migrated = _rows(path, "SELECT * FROM intake_keys")
        charity_of = {d.entry.leaf_hash: d.entry.body["project"] for d in setup.donations}
        assert sorted((k, r) for _, k, r in migrated) == rows  # every key and receipt kept
        for charity, _, receipt in migrated:
            assert charity == (OTHER_CHARITY if charity_of[receipt] == OTHER_PROJECT else setup.charity_id)
        fresh = open_sqlite(tmp_path / "fresh.sqlite", upgrade=True)
        fresh.close()
        assert _schema(path) == _schema(tmp_path / "fresh.sqlite")
        assert _schema(path)[1]  # WITHOUT ROWID, keyed by (charity, intake_key)
        assert verify_log(stores.log, REGISTRY).size == setup.ledger.size()
        audit_books(stores)  # the migrated index equals the books replayed from the log
        # And the key CHARITY used is now free for the other charity, and only there.
        cl = open_charity_ledger(stores, setup.ledger.signer, clock=setup.clock)
        used = setup.donations[0].entry.body["intake_key"]
        gift = cl.record_donation(OTHER_PROJECT, "1.00", "cash", "PAY-X", "donor-x", "2026-11-29", used)
        assert not gift.replayed and cl.books.intake(OTHER_CHARITY, used) == gift.entry.leaf_hash
        audit_books(stores)
    finally:
        stores.close()


def test_migration_0005_that_cannot_place_a_key_leaves_nothing(before_0005):
    path, rows, _ = before_0005
    with closing(sqlite3.connect(path)) as conn:  # a key whose donation the books do not have
        conn.execute("INSERT INTO intake_keys (intake_key, receipt) VALUES ('stray-key-0001', ?)", (b"\x01" * 32,))
        conn.commit()
    schema = _schema(path)
    with pytest.raises(ValueError, match="1 intake key\\(s\\) have no donation in the books"):
        open_sqlite(path, upgrade=True)
    assert _schema(path) == schema  # the old table, as it was
    assert len(_rows(path, "SELECT * FROM intake_keys")) == len(rows) + 1
    assert NAME not in [r[0] for r in _rows(path, "SELECT name FROM _sqlite_migrations")]
    assert not _rows(path, "SELECT name FROM sqlite_master WHERE name = 'intake_keys_rebuilt'")
