"""Migration 0004 rebuilds the books' keyed tables WITHOUT ROWID and keeps every row."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from conftest import REGISTRY
from factories import books_rows, intake_keys_before_0005, make_charity_ledger, migrations_up_to, sign_all

from ledger.charity.audit import audit_books
from ledger.log.verify import verify_log
from ledger.stores.sqlite import open_sqlite
from ledger.stores.sqlite.books import BOOKS_TABLES, KEYED_TABLES
from migrations import sqlite as migrations

pytestmark = pytest.mark.sqlite_only("migrations/sqlite: a database of an older SQLite schema")


LATER = {"policy", "charity_entries"}  # made by migrations 0006 and 0007


def _shape(path) -> dict:
    """Columns, indexes and rowid-ness of every books table."""
    with closing(sqlite3.connect(path)) as conn:
        shape = {}
        for table in BOOKS_TABLES:
            found = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
            if found is None and table in LATER:
                continue
            sql = found[0]
            indexes = sorted(
                (row[1], row[2], row[4], tuple(c[2] for c in conn.execute(f"PRAGMA index_info('{row[1]}')")))
                for row in conn.execute(f"PRAGMA index_list('{table}')")
            )
            shape[table] = (conn.execute(f"PRAGMA table_info('{table}')").fetchall(), "WITHOUT ROWID" in sql, indexes)
        return shape


def test_migration_0004_keeps_every_row_and_matches_a_fresh_install(make_charity, tmp_path, monkeypatch):
    real_load = migrations.load
    monkeypatch.setattr(migrations, "load", migrations_up_to(3))
    with intake_keys_before_0005(monkeypatch):
        setup = make_charity_ledger(make_charity, name="old")  # charity, project, three donations
        books = setup.charity
        other = setup.register_other()
        payload = setup.disbursement((("coats", "120.00"),))
        books.disburse(payload, sign_all(payload, *setup.keys[:2]))  # allocations and a nonce
        books.refund(setup.donations[2].entry.receipt, "5.00", "returned at the donor's request")
        path, size = setup.ledger.store.path, setup.ledger.size()
        before = books_rows(setup.ledger)
        assert all(not rowid for _, rowid, _ in _shape(path).values())  # the 0003 schema: rowid tables
        assert before["allocations"] and before["nonces"] and before["donor_private"] and other
        setup.charity.stores.close()

    monkeypatch.setattr(migrations, "load", migrations_up_to(4))  # this migration, not the later ones
    storage = open_sqlite(path, upgrade=True)
    try:
        assert storage.migrations_applied == ["0004_books_without_rowid"]
        conn = storage.db.conn
        after = {t: sorted(conn.execute(f"SELECT * FROM {t}").fetchall()) for t in BOOKS_TABLES if t not in LATER}  # noqa: S608
        assert after == before
        migrated = _shape(path)
        assert {t for t, (_, rowid, _) in migrated.items() if rowid} == set(KEYED_TABLES) - LATER
        fresh = open_sqlite(tmp_path / "fresh.sqlite", upgrade=True)
        fresh.close()
        assert migrated == _shape(tmp_path / "fresh.sqlite")
        assert verify_log(storage.log, REGISTRY).size == size
    finally:
        storage.close()
    monkeypatch.setattr(migrations, "load", real_load)
    storage = open_sqlite(path, upgrade=True)  # and on to today's schema
    try:
        audit_books(storage)  # the index still equals the books recomputed from the log
    finally:
        storage.close()
