"""Opening a copy of a database file to audit it: nothing is ever written to it.

``luodi audit --db FILE`` reads a database file an auditor was handed.  It is
opened with SQLite's read-only mode (and ``immutable`` when no ``-wal`` file lies
beside it), so neither the file nor its folder changes, every write is
refused, and a file of an older schema is refused rather than upgraded.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from api.instance import DB_NAME, init_instance, open_database_copy
from ledger.charity.audit import audit_books
from ledger.charity.demo import seed_demo
from ledger.charity.kinds import registry
from ledger.errors import InstanceError, Unavailable
from ledger.log.verify import verify_log

pytestmark = pytest.mark.sqlite_only("a copy of a SQLite file, opened with SQLite's read-only mode")


def _files(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of the folder: its SHA-256 and its mtime in ns."""
    return {
        p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in sorted(folder.iterdir())
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    instance = tmp_path_factory.mktemp("copy") / "instance"
    cl = init_instance(instance).charity
    seed_demo(cl, 12)
    cl.stores.close()
    return instance / DB_NAME


def _copy(source: Path, folder: Path) -> Path:
    folder.mkdir()
    target = folder / "audit-me.sqlite"
    shutil.copyfile(source, target)
    os.chmod(target, 0o400)  # as an auditor may keep it: not even writable by its owner
    return target


def test_a_copy_is_audited_without_writing_anything(source, tmp_path):
    db = _copy(source, tmp_path / "copy")
    before = _files(db.parent)
    stores = open_database_copy(db)
    try:
        report = verify_log(stores.log, registry())
        books = audit_books(stores)
        with pytest.raises(Unavailable, match="reads only"), stores.db.write():
            pass  # pragma: no cover - refused before the block
    finally:
        stores.close()
    assert report.size == books.entries > 12 and books.donations == 12
    assert _files(db.parent) == before  # same bytes, same mtimes, no -wal/-shm/.lock beside it


def test_a_copy_with_its_wal_file_reads_the_committed_pages_in_it(source, tmp_path):
    """A copy taken while the server ran has a -wal file: what it commits is read, and the database stays unwritten."""
    folder = tmp_path / "live"
    folder.mkdir()
    db = folder / "live.sqlite"
    shutil.copyfile(source, db)
    # Commit one more entry into the WAL and keep it there (no checkpoint into the main file).
    writer = sqlite3.connect(str(db), isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("CREATE TABLE wal_only (x)")
    keep = sqlite3.connect(str(db))  # holds the WAL open while copying, as a running server would
    assert (folder / "live.sqlite-wal").stat().st_size > 0
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("live.sqlite", "live.sqlite-wal"):
        shutil.copyfile(folder / name, copy / name)
    writer.close()
    keep.close()
    main_before = hashlib.sha256((copy / "live.sqlite").read_bytes()).hexdigest()
    stores = open_database_copy(copy / "live.sqlite")
    try:
        tables = {r[0] for r in stores.db.reader().execute("SELECT name FROM sqlite_master")}
        assert "wal_only" in tables  # the committed page in the -wal file was read
        assert verify_log(stores.log, registry()).size > 12
    finally:
        stores.close()
    assert hashlib.sha256((copy / "live.sqlite").read_bytes()).hexdigest() == main_before


def test_a_copy_of_an_older_schema_is_refused_not_upgraded(source, tmp_path):
    db = tmp_path / "old.sqlite"
    shutil.copyfile(source, db)
    with closing(sqlite3.connect(str(db), isolation_level=None)) as conn:
        last = conn.execute("SELECT max(id) FROM _sqlite_migrations").fetchone()[0]
        conn.execute("DELETE FROM _sqlite_migrations WHERE id = ?", (last,))
        conn.execute("PRAGMA journal_mode = DELETE")  # no -wal left beside it
    before = _files(tmp_path)
    with pytest.raises(InstanceError, match="older luodi: upgrade a copy"):
        open_database_copy(db)
    assert _files(tmp_path) == before


@pytest.mark.parametrize("content", [None, b"not a database at all, just some bytes" * 200])
def test_a_missing_or_foreign_file_is_refused(tmp_path, content):
    path = tmp_path / "x.sqlite"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InstanceError, match="no database file|not a readable SQLite database"):
        open_database_copy(path)
