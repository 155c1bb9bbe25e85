"""Migration 0007 indexes each charity's registration and key rotations, back-filled from the
log, so that a receipt from an upgraded database carries them and checks out."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from conftest import REGISTRY
from factories import OTHER_CHARITY, charity_entries_before_0007, charity_signers, make_charity_ledger, sign_all
from sqlite_utils.migrations import Migrations

from api.views import receipt as receipt_json
from ledger.charity.audit import audit_books
from ledger.charity.receipt_check import check_receipt
from ledger.charity.service import open_charity_ledger
from ledger.log.entry import parse_entry
from ledger.stores.sqlite import open_sqlite
from migrations import sqlite as migrations

pytestmark = pytest.mark.sqlite_only("migrations/sqlite: a database of an older SQLite schema")

NAME = "0007_charity_entries"


def _index(path) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return sorted(conn.execute("SELECT charity, seq FROM charity_entries").fetchall())


def test_migration_0007_back_fills_registrations_and_rotations(make_charity, monkeypatch):
    real_load = migrations.load

    def before_0007() -> Migrations:
        m = Migrations("luodi")
        for migration in real_load()._migrations:
            if migration.name < NAME:
                m(name=migration.name)(migration.fn)
        return m

    monkeypatch.setattr(migrations, "load", before_0007)
    with charity_entries_before_0007(monkeypatch):
        setup = make_charity_ledger(make_charity, name="old")
        setup.register_other()
        new = charity_signers(setup.charity_id, 3, first=4)
        rotation = setup.rotation(new)
        rotated = setup.charity.rotate_keys(rotation, sign_all(rotation, *setup.keys[:2]))
        payload = setup.disbursement((("coats", "120.00"),))
        setup.charity.disburse(payload, sign_all(payload, *new[:2]))  # signed by the rotated keys
        path, signer, clock = setup.ledger.store.path, setup.ledger.signer, setup.clock
        gift = setup.donations[0]
        setup.charity.stores.close()
    with closing(sqlite3.connect(path)) as conn:
        assert not conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'charity_entries'").fetchall()

    monkeypatch.setattr(migrations, "load", real_load)
    stores = open_sqlite(path, upgrade=True)
    try:
        assert NAME in stores.migrations_applied
        entries = [(e.body.get("charity") or e.body["payload"]["charity"], e.seq)
                   for e in _entries(stores) if e.kind in ("charity.registered", "charity.keys_rotated")]
        assert _index(path) == sorted(entries) and (setup.charity_id, rotated.seq) in entries
        assert {c for c, _ in entries} == {setup.charity_id, OTHER_CHARITY}
        audit_books(stores)  # the back-filled index equals the books replayed from the log
        cl = open_charity_ledger(stores, signer, clock=clock)
        doc = receipt_json(cl.receipt(gift.entry.receipt))
        assert [r["seq"] for r in doc["charity"]["key_rotations"]] == [rotated.seq]
        checked = check_receipt(doc, cl.ledger.verifier)
        assert [a.amount for a in checked.allocations] == [10000]
    finally:
        stores.close()


def _entries(stores):
    return [parse_entry(row[3], REGISTRY) for row in stores.log.iter_entries()]
