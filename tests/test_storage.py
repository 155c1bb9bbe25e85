"""Storage: all-or-nothing batches and the clock, on every backend; SQLite's own
pragmas, migrations and append-only triggers, by raw SQL on its file, on SQLite
only (the PostgreSQL driver's migrations and triggers have tests of their own)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from backends import integrity_errors
from conftest import REGISTRY, FixedClock, notes
from sqlite_utils.migrations import Migrations

from ledger.errors import InstanceError, InvalidEntry, InvalidInput
from ledger.log.checkpoint import open_checkpoint
from ledger.log.ledger import MAX_BATCH, Ledger
from ledger.log.verify import verify_log
from ledger.stores.sqlite import open_sqlite
from migrations import sqlite as migrations

MIGRATION_NAMES = [m.name for m in migrations.load()._migrations]


def raw(path) -> sqlite3.Connection:
    """A plain sqlite3 connection in autocommit mode, as any SQL client would use."""
    return sqlite3.connect(str(path), isolation_level=None)


def table_names(path) -> set[str]:
    with closing(raw(path)) as conn:
        return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def recorded(path) -> list[tuple[str, str]]:
    with closing(raw(path)) as conn:
        return conn.execute("SELECT migration_set, name FROM _sqlite_migrations ORDER BY id").fetchall()


def state(ledger: Ledger) -> tuple[int, tuple[int, str] | None, int]:
    return ledger.size(), ledger.store.checkpoint(), len(list(ledger.store.iter_checkpoints()))


# -- pragmas -------------------------------------------------------------------


@pytest.mark.sqlite_only("SQLite's pragmas")
def test_wal_mode_and_synchronous_full(ledger):
    conn = ledger.store.db.conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    # WAL is a property of the file: a fresh connection sees it too.
    with closing(raw(ledger.store.path)) as other:
        assert other.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


@pytest.mark.sqlite_only("a SQLite file")
def test_missing_database_is_not_created_without_upgrade(tmp_path):
    path = tmp_path / "nope.sqlite"
    with pytest.raises(InstanceError, match="luodi init"):
        open_sqlite(path)
    assert not path.exists()


# -- migrations ------------------------------------------------------------------


@pytest.mark.sqlite_only("migrations/sqlite")
def test_migrations_recorded_and_applied_once(tmp_path):
    path = tmp_path / "m.sqlite"
    first = open_sqlite(path, upgrade=True)
    try:
        assert first.migrations_applied == MIGRATION_NAMES
        assert "0001_initial" in MIGRATION_NAMES
        assert {"entries", "checkpoints", "_sqlite_migrations"} <= table_names(path)
    finally:
        first.close()
    assert recorded(path) == [("luodi", name) for name in MIGRATION_NAMES]

    again = open_sqlite(path, upgrade=True)
    try:
        assert again.migrations_applied == []
        assert again.db.upgrade() == []
    finally:
        again.close()
    assert recorded(path) == [("luodi", name) for name in MIGRATION_NAMES]
    open_sqlite(path).close()  # nothing pending: opens without upgrade


def _with_extra(monkeypatch, name, fn):
    real_load = migrations.load

    def load() -> Migrations:
        m = real_load()
        m(name=name)(fn)
        return m

    monkeypatch.setattr(migrations, "load", load)


@pytest.mark.sqlite_only("migrations/sqlite")
def test_failing_migration_leaves_nothing_and_runs_again(tmp_path, monkeypatch, signer):
    path = tmp_path / "m.sqlite"
    storage = open_sqlite(path, upgrade=True)
    ledger = Ledger.create(storage.log, REGISTRY, signer, clock=FixedClock())
    ledger.append_batch(notes(5))
    storage.close()

    def broken(db):
        db.execute("CREATE TABLE extra (x INTEGER)")
        db.execute("INSERT INTO extra VALUES (1)")
        db.execute("DROP TRIGGER entries_no_delete")
        db.execute("DELETE FROM entries WHERE seq = 5")
        raise RuntimeError("migration blew up half way")

    _with_extra(monkeypatch, "0999_broken", broken)
    with pytest.raises(RuntimeError, match="half way"):
        open_sqlite(path, upgrade=True)

    assert "extra" not in table_names(path)
    assert recorded(path) == [("luodi", name) for name in MIGRATION_NAMES]
    with closing(raw(path)) as conn:
        triggers = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")}
        assert "entries_no_delete" in triggers
        assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 6
    # Still pending, so a plain open refuses...
    with pytest.raises(InstanceError, match="db upgrade"):
        open_sqlite(path)

    # ...and once fixed it runs next time, exactly once.
    monkeypatch.undo()

    def fixed(db):
        db.execute("CREATE TABLE extra (x INTEGER)")

    _with_extra(monkeypatch, "0999_broken", fixed)
    storage = open_sqlite(path, upgrade=True)
    try:
        assert storage.migrations_applied == ["0999_broken"]
        assert verify_log(storage.log, REGISTRY).size == 6
    finally:
        storage.close()
    assert "extra" in table_names(path)
    assert recorded(path)[-1] == ("luodi", "0999_broken")


@pytest.mark.sqlite_only("migrations/sqlite")
def test_first_migration_failing_on_fresh_db_leaves_no_schema(tmp_path, monkeypatch):
    path = tmp_path / "fresh.sqlite"

    def load() -> Migrations:
        m = Migrations("luodi")

        @m(name="0001_initial")
        def initial(db):
            db.execute("CREATE TABLE entries (seq INTEGER PRIMARY KEY)")
            raise ValueError("no")

        return m

    monkeypatch.setattr(migrations, "load", load)
    with pytest.raises(ValueError):
        open_sqlite(path, upgrade=True)
    assert "entries" not in table_names(path)
    assert recorded(path) == []


# -- triggers ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE entries SET canonical = X'00' WHERE seq = 1",
        "UPDATE entries SET leaf_hash = zeroblob(32) WHERE seq = 2",
        "UPDATE entries SET tree = X'' WHERE seq = 3",
        "UPDATE entries SET seq = 100 WHERE seq = 4",
        "DELETE FROM entries WHERE seq = 4",
        "DELETE FROM entries",
        "UPDATE checkpoints SET note = 'x' WHERE tree_size = 5",
        "UPDATE checkpoints SET tree_size = 6 WHERE tree_size = 5",
        "DELETE FROM checkpoints WHERE tree_size = 5",
        "DELETE FROM checkpoints",
    ],
)
@pytest.mark.sqlite_only("SQLite's triggers, by raw SQL on its file")
def test_triggers_refuse_rewriting_history(ledger, sql):
    ledger.append_batch(notes(4))
    before = [list(ledger.store.iter_entries()), list(ledger.store.iter_checkpoints())]
    with closing(raw(ledger.store.path)) as conn:
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute(sql)
    assert [list(ledger.store.iter_entries()), list(ledger.store.iter_checkpoints())] == before
    verify_log(ledger.store, REGISTRY)


@pytest.mark.sqlite_only("SQLite's triggers, by raw SQL on its file")
def test_node_hashes_cannot_be_rewritten(ledger):
    """Interior Merkle nodes live with the entries (or in their own table); either way they are append-only."""
    ledger.append_batch(notes(7))
    with closing(raw(ledger.store.path)) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "nodes" in tables:  # pragma: no cover - the older schema
            statements = ["UPDATE nodes SET hash = zeroblob(32)", "DELETE FROM nodes"]
        else:
            statements = ["UPDATE entries SET tree = zeroblob(32) WHERE seq = 7"]
        for sql in statements:
            with pytest.raises(sqlite3.IntegrityError):
                conn.execute(sql)
    verify_log(ledger.store, REGISTRY)


@pytest.mark.sqlite_only("SQLite's triggers, by raw SQL on its file")
def test_insert_order_trigger_refuses_gap_and_past(ledger):
    ledger.append_batch(notes(3))  # size 4
    leaf = b"\x11" * 32
    with closing(raw(ledger.store.path)) as conn:
        for seq in (5, 100, -1):
            with pytest.raises(sqlite3.IntegrityError, match="without gaps"):
                conn.execute("INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (?, ?, X'', X'7b7d')", (seq, leaf))
        with pytest.raises(sqlite3.IntegrityError):
            conn.execute("INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (2, ?, X'', X'7b7d')", (leaf,))
        # The next seq is accepted by the trigger (rolled back here): it refuses gaps, not appends.
        conn.execute("BEGIN")
        conn.execute("INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (4, ?, X'', X'7b7d')", (leaf,))
        assert conn.execute("SELECT max(seq) FROM entries").fetchone()[0] == 4
        conn.execute("ROLLBACK")
    assert ledger.size() == 4


# -- batches ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        ("note", {"text": ""}),
        ("note", {"text": "x", "extra": 1}),
        ("nosuchkind", {"text": "x"}),
        ("note", ["not", "an", "object"]),
        ("note", {"text": float("nan")}),
        ("note",),
        ("note", {"text": "x"}, "extra"),
        "note",
        None,
    ],
)
def test_batch_with_bad_third_item_writes_nothing(ledger, bad):
    ledger.append_batch(notes(3, "first"))
    before = state(ledger)
    items = notes(2, "ok") + [bad] + notes(2, "later")
    with pytest.raises(InvalidEntry, match="entry 2 of the batch"):
        ledger.append_batch(items)
    assert state(ledger) == before
    # The store is not left locked: the next append works.
    ledger.append_batch(notes(2, "after"))
    assert ledger.size() == before[0] + 2


def test_failure_inside_the_transaction_rolls_back(ledger, monkeypatch):
    ledger.append_batch(notes(3))
    before = state(ledger)

    def boom(self, signer):
        raise RuntimeError("signing failed after the rows were staged")

    monkeypatch.setattr("ledger.log.checkpoint.Checkpoint.sign", boom)
    with pytest.raises(RuntimeError, match="signing failed"):
        ledger.append_batch(notes(50, "lost"))
    monkeypatch.undo()
    assert state(ledger) == before
    ledger.append_batch(notes(2, "after"))
    assert ledger.size() == before[0] + 2
    assert verify_log(ledger.store, REGISTRY).size == before[0] + 2


def test_storage_failure_on_write_rolls_back(ledger):
    ledger.append_batch(notes(3))
    before = state(ledger)
    with ledger.store.append_transaction() as txn:
        size, _, _ = txn.tip()
        assert size == before[0]
    with pytest.raises(integrity_errors()):
        with ledger.store.append_transaction() as txn:
            # A checkpoint row that already exists: the entries staged before it must go too.
            leaf = b"\x22" * 32
            txn.write([(size, leaf, b"", b"{}")], (before[1][0], "dup"))
    assert state(ledger) == before
    verify_log(ledger.store, REGISTRY)


def test_empty_batch_refused(ledger):
    before = state(ledger)
    with pytest.raises(InvalidInput):
        ledger.append_batch([])
    with pytest.raises(InvalidInput):
        ledger.append_batch(iter(()))
    assert state(ledger) == before


def test_oversized_batch_refused(ledger):
    before = state(ledger)
    with pytest.raises(InvalidInput, match=str(MAX_BATCH)):
        ledger.append_batch([("note", {"text": "x"})] * (MAX_BATCH + 1))
    assert state(ledger) == before


def test_batch_containing_genesis_refused(ledger):
    before = state(ledger)
    genesis = ledger.genesis
    with pytest.raises(InvalidEntry, match="genesis"):
        ledger.append_batch(notes(2) + [("genesis", genesis.body)])
    with pytest.raises(InvalidEntry, match="genesis"):
        ledger.append("genesis", genesis.body)
    assert state(ledger) == before


def test_append_batch_returns_chained_entries(ledger):
    first = ledger.append_batch(notes(3, "a"))
    second = ledger.append_batch(notes(40, "b"))
    one = ledger.append("note", {"text": "single"})
    entries = first + second + [one]
    assert [e.seq for e in entries] == list(range(1, 45))
    assert entries[0].prev == ledger.genesis.receipt
    for before, after in zip(entries, entries[1:]):
        assert after.prev == before.receipt
    for e in entries:
        assert ledger.entry(e.seq) == e
        assert ledger.store.entry_bytes(e.seq) == e.canonical
        assert ledger.entry_by_receipt(e.receipt) == e
    assert [e.body["text"] for e in second] == [f"b {i}" for i in range(40)]
    # One checkpoint per batch, at the batch's end, over the root of that size.
    sizes = [size for size, _ in ledger.store.iter_checkpoints()]
    assert sizes == [1, 4, 44, 45]
    cp = open_checkpoint(ledger.checkpoint(), ledger.verifier)
    assert (cp.size, cp.root) == (45, ledger.root())
    assert open_checkpoint(ledger.checkpoint(4), ledger.verifier).root == ledger.root(4)


class ListClock:
    def __init__(self, times):
        self.times = list(times)
        self.calls = 0

    def __call__(self):
        t = self.times[min(self.calls, len(self.times) - 1)]
        self.calls += 1
        return t


def test_time_never_goes_backwards(make_ledger):
    clock = ListClock(
        [
            "2026-05-01T12:00:10.000Z",
            "2026-05-01T12:00:09.999Z",
            "2026-05-01T11:00:00.000Z",
            "2025-12-31T23:59:59.999Z",
            "2026-05-01T12:00:11.500Z",
            "2026-05-01T12:00:11.000Z",
        ]
    )
    ledger = make_ledger(clock=clock)
    assert ledger.genesis.time == "2026-05-01T12:00:10.000Z"
    batches = [ledger.append_batch(notes(3, f"b{i}")) for i in range(5)]
    assert clock.calls == 6
    times = [[e.time for e in batch] for batch in batches]
    assert times == [
        ["2026-05-01T12:00:10.000Z"] * 3,
        ["2026-05-01T12:00:10.000Z"] * 3,
        ["2026-05-01T12:00:10.000Z"] * 3,
        ["2026-05-01T12:00:11.500Z"] * 3,
        ["2026-05-01T12:00:11.500Z"] * 3,
    ]
    verify_log(ledger.store, REGISTRY)


@pytest.mark.parametrize(
    "bad_time",
    [
        "2026-05-01 12:00:00",
        "2026-05-01T12:00:00Z",
        "2026-05-01T12:00:00.000+00:00",
        "2026-02-30T12:00:00.000Z",
        "2026-05-01T25:00:00.000Z",
        "",
        None,
        1790000000000,
    ],
)
def test_bad_clock_value_refused(ledger, bad_time):
    ledger.append_batch(notes(2))
    before = state(ledger)
    ledger.clock = lambda: bad_time
    with pytest.raises(InvalidEntry, match="time"):
        ledger.append_batch(notes(3))
    assert state(ledger) == before
    ledger.clock = FixedClock(1_800_000_000_000)
    ledger.append_batch(notes(1))
    assert ledger.size() == before[0] + 1


def test_bad_clock_refused_for_genesis(backend, signer):
    storage = backend.open("g", upgrade=True)
    try:
        with pytest.raises(InvalidEntry):
            Ledger.create(storage.log, REGISTRY, signer, clock=lambda: "yesterday")
        assert storage.log.size() == 0
        assert storage.log.checkpoint() is None
    finally:
        storage.close()
