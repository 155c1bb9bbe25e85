"""Storage faults in one process, on real SQLite files: a write that cannot get
the write lock in time, or meets a read-only file, a full disk or an I/O error,
is refused with 503 (``Unavailable``, with ``Retry-After``) and writes nothing;
reads go on meanwhile; the next write after the fault clears succeeds without
a restart.  (``tests/test_e2e_storage_faults.py`` does the same through gunicorn.)"""

from __future__ import annotations

import logging
import shutil
import threading
import time

import pytest
from api_helpers import assert_problem, make_api  # noqa: F401
from storage_faults import FailingConnection, bounded, held_lock, storage_error, unwritable
from test_group_commit import Held, _committed

from api.instance import KEY_NAME
from ledger.charity.service import open_charity_ledger
from ledger.errors import Unavailable
from ledger.stores.sqlite import open_sqlite

pytestmark = pytest.mark.sqlite_only("faults made on SQLite's files and locks (flock, chmod, a failing sqlite3 connection)")

LOCK_TIMEOUT = 0.5


@pytest.fixture
def make_db(tmp_path, signer):
    """make_db(lock_timeout=LOCK_TIMEOUT) -> (ledger, its Database), on a new file with its genesis entry."""
    opened = []

    def factory(lock_timeout: float = LOCK_TIMEOUT, name: str = "faults"):
        stores = open_sqlite(tmp_path / f"{name}.sqlite", upgrade=True, lock_timeout=lock_timeout)
        opened.append(stores)
        return open_charity_ledger(stores, signer, create=True).ledger, stores.db

    yield factory
    for stores in opened:
        stores.close()


def _refused(ledger, text: str = "refused") -> Unavailable:
    size, checkpoint = ledger.size(), ledger.checkpoint()
    with pytest.raises(Unavailable) as caught:
        bounded(lambda: ledger.append("note", {"text": text}))
    assert (ledger.size(), ledger.checkpoint()) == (size, checkpoint), "a refused write wrote something"
    return caught.value


# -- locks ---------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["flock", "exclusive"])
def test_a_lock_held_by_another_process_refuses_a_write_in_time_and_writes_nothing(make_db, kind):
    ledger, db = make_db()
    with held_lock(kind, db.path):
        err = _refused(ledger)
        assert err.status == 503 and err.slug == "unavailable"
        assert err.retry_after == 1 and "busy" in err.detail and "nothing was written" in err.detail
    entry = ledger.append("note", {"text": "after the lock is released"})
    assert entry.seq == 1 and ledger.size() == 2


def test_reads_are_answered_while_a_write_waits_for_the_lock(make_db):
    ledger, db = make_db(lock_timeout=20)
    written = []
    with held_lock("flock", db.path):
        writer = threading.Thread(target=lambda: written.append(ledger.append("note", {"text": "w"})))
        writer.start()
        # the writer holds the process's write lock while it waits for the flock
        while db._lock.acquire(blocking=False):
            db._lock.release()
            assert writer.is_alive()
            time.sleep(0.001)
        # a thread that has never read opens its read connection now, and reads
        assert bounded(lambda: (ledger.size(), ledger.checkpoint().splitlines()[1])) == (1, "1")
        assert writer.is_alive(), "the write did not wait for the lock"
    writer.join(30)  # released within its lock timeout: the waiting write lands
    assert not writer.is_alive() and [e.seq for e in written] == [1]


# -- storage failures ---------------------------------------------------------------------


def test_a_storage_failure_in_one_job_of_a_group_fails_the_whole_group(make_ledger):
    """The failure is translated at the transaction's boundary, not inside the job:
    a job's own refusal (a LuodiError) would let the group's other jobs commit."""
    ledger = make_ledger()
    db = ledger.store.db
    held = Held(ledger)
    held.hold_first()

    def fill_the_disk(w):
        w.append("note", {"text": "b"})
        conn = w.txn.conn
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: SQLITE_FULL
        conn.execute("CREATE TABLE filler AS WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                     "WHERE i < 64) SELECT randomblob(4096) FROM n")

    held.queue({
        "a": lambda w: w.append("note", {"text": "a"}),
        "b": fill_the_disk,
        "c": lambda w: w.append("note", {"text": "c"}),
    })
    results = held.finish()
    assert not isinstance(results["first"], BaseException)
    for name in "abc":
        assert isinstance(results[name], Unavailable), results[name]
        assert "full" in results[name].detail and results[name].retry_after == 30
    assert [text for _, text in _committed(db.path)] == [None, "first"]  # genesis, then the first group only
    # the next write opens a new connection, on which the file may grow again
    assert ledger.append("note", {"text": "d"}).seq == 2


def test_an_io_error_at_commit_answers_503_and_the_next_write_reconnects(make_db):
    ledger, db = make_db()
    db.conn = FailingConnection(db.conn, "COMMIT", storage_error("disk I/O error", "SQLITE_IOERR_WRITE"))
    err = _refused(ledger)
    assert "I/O error" in err.detail and "SQLITE_IOERR_WRITE" in err.detail and err.retry_after == 30
    assert ledger.append("note", {"text": "after"}).seq == 1


def test_a_real_io_error_under_an_open_connection(make_db):
    """Files made immutable under an open connection: its COMMIT fails with SQLITE_IOERR."""
    ledger, db = make_db()
    ledger.append("note", {"text": "the WAL exists"})
    with unwritable(db.path, db.path.with_name(db.path.name + "-wal")):
        err = _refused(ledger)
        assert "SQLITE_IOERR" in err.detail or "SQLITE_READONLY" in err.detail
        err = _refused(ledger)  # reconnected: now opened read-only
        assert "SQLITE_IOERR" in err.detail or "SQLITE_READONLY" in err.detail
    assert ledger.append("note", {"text": "after"}).seq == 2


def _new_log(path, signer) -> None:
    """A new database at ``path`` holding a log's genesis entry, closed."""
    stores = open_sqlite(path, upgrade=True)
    open_charity_ledger(stores, signer, create=True)
    stores.close()


def test_a_database_opened_read_only_recovers_once_it_can_be_written(tmp_path, signer):
    """SQLite opens a file it cannot write read-only without a word, and the
    connection stays so: only a new connection sees that the fault has cleared."""
    path = tmp_path / "ro.sqlite"
    _new_log(path, signer)
    with unwritable(path):
        stores = open_sqlite(path, lock_timeout=LOCK_TIMEOUT)
        ledger = open_charity_ledger(stores, signer).ledger
        try:
            err = _refused(ledger)
            assert "read-only" in err.detail and "SQLITE_READONLY" in err.detail
        except BaseException:
            stores.close()
            raise
    try:
        assert ledger.append("note", {"text": "writable again"}).seq == 1
    finally:
        stores.close()


@pytest.mark.parametrize("write_during_the_fault", [True, False])
def test_a_connection_opened_during_a_fault_is_not_kept_read_only(tmp_path, signer, write_during_the_fault):
    """A worker whose first request is a read, during the fault, opens its write
    connection then: its first write after the fault must still land."""
    path = tmp_path / "late.sqlite"
    _new_log(path, signer)
    with unwritable(path):
        stores = open_sqlite(path, lock_timeout=LOCK_TIMEOUT)
        ledger = open_charity_ledger(stores, signer).ledger
        assert ledger.size() == 1  # reads are served
        if write_during_the_fault:
            _refused(ledger)
    try:
        assert ledger.append("note", {"text": "the first write after the fault"}).seq == 1
    finally:
        stores.close()


def test_a_lock_file_that_cannot_be_opened_answers_503_then_recovers(make_db):
    ledger, db = make_db()
    lock = db.path.with_name(db.path.name + ".lock")
    lock.unlink(missing_ok=True)
    lock.mkdir()  # os.open(O_RDWR) of a directory fails: an OSError of the storage
    err = _refused(ledger)
    assert "storage failed" in err.detail
    lock.rmdir()
    assert ledger.append("note", {"text": "after"}).seq == 1


def test_check_writable_refuses_a_read_only_database_and_writes_nothing(tmp_path, signer):
    path = tmp_path / "check.sqlite"
    stores = open_sqlite(path, upgrade=True)
    open_charity_ledger(stores, signer, create=True)
    stores.db.check_writable()  # writable: nothing raised, nothing left behind
    assert stores.db.reader().execute("SELECT count(*) FROM sqlite_master WHERE name = 'luodi_write_check'").fetchone() == (0,)
    stores.close()
    with unwritable(path):
        stores = open_sqlite(path)
        try:
            with pytest.raises(Unavailable, match="read-only"):
                stores.db.check_writable()
        finally:
            stores.close()


def test_a_read_only_database_refuses_every_write(tmp_path, signer):
    path = tmp_path / "reads.sqlite"
    _new_log(path, signer)
    stores = open_sqlite(path, read_only=True)
    try:
        ledger = open_charity_ledger(stores, signer).ledger
        err = _refused(ledger)
        assert "reads only" in err.detail and err.retry_after is None
    finally:
        stores.close()


# -- over HTTP ------------------------------------------------------------------------------


def test_a_held_lock_answers_503_problem_with_retry_after_and_the_logged_request_id(make_api, caplog):
    env = make_api(config={"WRITE_LOCK_TIMEOUT": LOCK_TIMEOUT})
    env.client.get("/v1/checkpoint")  # the app opens its ledger
    db_path = env.app.extensions["luodi"]["books"].stores.path
    with held_lock("flock", db_path), env.unchanged(), caplog.at_level(logging.ERROR):
        resp = bounded(lambda: env.donate("fault-0001"))
        body = assert_problem(resp, 503, "unavailable")
        assert resp.headers["Retry-After"] == "1"
        assert body["request_id"] == resp.headers["X-Request-Id"]
        assert env.client.get("/v1/checkpoint").status_code == 200
    assert f"request {body['request_id']}: POST" in caplog.text
    assert any(r.exc_info and r.exc_info[0] is Unavailable for r in caplog.records)
    assert env.donate("fault-0001").status_code == 201


def test_a_read_only_app_answers_every_write_503_and_needs_no_key(make_api, tmp_path):
    path, known = make_api.instance("ro")
    shutil.move(path / KEY_NAME, tmp_path / "kept.key")
    app = make_api.app({"READ_ONLY": True}, path=path)
    client = app.test_client()
    assert client.get("/v1/checkpoint").status_code == 200
    before = client.get("/v1/checkpoint").get_data()
    resp = client.post("/v1/charities", json={}, headers={"Authorization": f"Bearer {known['tokens']['admin']}"})
    body = assert_problem(resp, 503, "unavailable")
    assert "reads only" in body["detail"] and "Retry-After" not in resp.headers
    assert client.get("/v1/checkpoint").get_data() == before
