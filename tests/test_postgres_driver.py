"""The PostgreSQL driver itself (ledger/stores/postgres/): what the shared tests,
run on both backends, cannot see from the protocols.

- its schema refuses rewrites (UPDATE, DELETE, TRUNCATE, gaps) from any SQL client;
- several stores on one database (as several servers) append one chain;
- the append lock is waited for at most ``lock_timeout``, then 503 with nothing written;
- a proof's nodes come back in one query and scans go through a server-side cursor;
- failures (a lost connection, a statement timeout, a read-only transaction) are 503s,
  and the pool recovers by itself;
- migrations are recorded, applied once, and required.
"""

from __future__ import annotations

import os
import secrets
import tempfile
import threading
from urllib.parse import quote, urlencode

import psycopg
import pytest
from psycopg import pq

from ledger.charity.service import open_charity_ledger
from ledger.errors import InstanceError, Unavailable
from ledger.log.verify import verify_log
from ledger.stores.postgres import open_postgres
from ledger.stores.postgres.database import CONFLICT_RETRIES
from migrations import postgres as pg_migrations

from conftest import ORIGIN, REGISTRY, notes
from ledger.log.note import Signer


pytestmark = pytest.mark.postgres_only  # skipped by --backend sqlite


@pytest.fixture
def pg_schema_url(pg_url_with):
    return pg_url_with()


@pytest.fixture
def pg_url_with(postgres_server):
    """url(*settings, **params) -> this test's schema's URL, with server settings
    ("statement_timeout=50") and libpq parameters (application_name=...)."""
    schema = "d_" + secrets.token_hex(6)
    admin = psycopg.connect(postgres_server, autocommit=True)
    admin.execute(f"CREATE SCHEMA {schema}")

    def url(*settings, **params):
        options = " ".join(f"-c{s}" for s in (f"search_path={schema}", *settings))
        sep = "&" if "?" in postgres_server else "?"
        return postgres_server + sep + urlencode({"options": options, **params}, quote_via=quote)

    yield url
    admin.execute(f"DROP SCHEMA {schema} CASCADE")
    admin.close()


@pytest.fixture
def pg(pg_schema_url):
    """open(**kw) -> PostgresStores on this test's schema (migrated), closed afterwards."""
    opened = []

    def open_(**kwargs):
        kwargs.setdefault("upgrade", True)
        stores = open_postgres(pg_schema_url, **kwargs)
        opened.append(stores)
        return stores

    yield open_
    for stores in opened:
        stores.close()


@pytest.fixture
def raw(pg_schema_url):
    """A plain psycopg connection (autocommit) to this test's schema, as any SQL client."""
    with psycopg.connect(pg_schema_url, autocommit=True) as conn:
        yield conn


def _ledger(stores, signer=None, create=False):
    return open_charity_ledger(stores, signer or Signer.generate(ORIGIN), create=create).ledger


# -- the schema refuses rewrites ------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE entries SET canonical = canonical || 'x'::bytea WHERE seq = 0",
        "DELETE FROM entries WHERE seq = 1",
        "TRUNCATE entries",
        "UPDATE checkpoints SET note = note || 'x' WHERE tree_size = 1",
        "DELETE FROM checkpoints",
        "TRUNCATE checkpoints",
    ],
)
def test_history_cannot_be_rewritten_from_any_sql_client(pg, raw, statement):
    log = _ledger(pg(), create=True)
    log.append_batch(notes(2))
    before = (log.size(), log.checkpoint())
    with pytest.raises(psycopg.errors.IntegrityConstraintViolation, match="append-only"):
        raw.execute(statement)
    assert (log.size(), log.checkpoint()) == before
    assert verify_log(log.store, REGISTRY, log.verifier).size == 3


@pytest.mark.parametrize("seqs", [[5], [3, 5], [2], [3, 3]], ids=["gap", "gap-inside", "taken", "twice"])
def test_an_entry_out_of_seq_order_is_refused(pg, raw, seqs):
    log = _ledger(pg(), create=True)
    log.append_batch(notes(2))  # seqs 0-2
    rows = [(s, bytes([s]) * 32 + bytes([i]), b"", b"{}") for i, s in enumerate(seqs)]
    with pytest.raises(psycopg.errors.IntegrityError):
        with raw.cursor() as cur:
            cur.executemany(
                "INSERT INTO entries (seq, leaf_hash, tree, canonical) VALUES (%s, substring(%s from 1 for 32), %s, %s)",
                rows,
            )
    assert log.size() == 3


# -- several servers, one chain ---------------------------------------------------------------


def test_two_stores_on_one_database_append_one_chain(pg):
    """Two stores with pools of their own, as two servers, append from four threads each."""
    signer = Signer.generate(ORIGIN)
    first = _ledger(pg(), signer, create=True)
    second = _ledger(pg(), signer)
    errors = []

    def work(log, who):
        try:
            for i in range(10):
                log.append_batch(notes(3, f"{who}-{i}"))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(log, f"{n}{t}")) for n, log in enumerate((first, second)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert first.size() == second.size() == 1 + 2 * 4 * 10 * 3
    report = verify_log(second.store, REGISTRY, signer.verifier)
    assert report.size == first.size()
    assert first.root() == second.root()


def test_the_append_lock_is_waited_for_at_most_the_lock_timeout(pg, raw):
    stores = pg(lock_timeout=0.3)
    log = _ledger(stores, create=True)
    key = raw.execute("SELECT hashtextextended(current_schema() || ':luodi:append', 0)").fetchone()[0]
    before = (log.size(), log.checkpoint())
    with raw.transaction():
        raw.execute("SELECT pg_advisory_xact_lock(%s)", (key,))  # another server's append, stuck
        with pytest.raises(Unavailable, match="busy") as caught:
            log.append("note", {"text": "waits"})
    assert caught.value.retry_after >= 1
    assert (log.size(), log.checkpoint()) == before
    log.append("note", {"text": "goes through once the lock is free"})
    assert log.size() == before[0] + 1


# -- one query per proof, streaming scans ---------------------------------------------------------


def _round_trips(conn, work) -> int:
    fd, path = tempfile.mkstemp()
    try:
        conn.pgconn.trace(fd)
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)
        work()
        conn.pgconn.untrace()
        with open(path) as f:
            return sum(1 for line in f if "\tReadyForQuery\t" in line)
    finally:
        os.close(fd)
        os.unlink(path)


def test_a_proofs_nodes_come_back_in_one_query(pg):
    stores = pg()
    log = _ledger(stores, create=True)
    for _ in range(5):
        log.append_batch(notes(40))
    with stores.log.snapshot():
        conn = stores.db._local.conn
        nodes_wanted = [(0, 76), (1, 39), (2, 18), (3, 8), (4, 5), (5, 3)]
        trips = _round_trips(conn, lambda: stores.log.nodes(nodes_wanted))
    assert trips == 1


def test_a_whole_log_scan_uses_a_server_side_cursor(pg):
    stores = pg()
    log = _ledger(stores, create=True)
    log.append_batch(notes(50))
    with stores.log.snapshot(streaming=True):
        conn = stores.db._local.conn
        rows = stores.log.iter_entries()
        first = next(rows)
        open_cursors = conn.execute("SELECT name FROM pg_cursors").fetchall()
        rest = list(rows)
    assert first[0] == 0 and len(rest) == 50
    assert [name.startswith("luodi_scan_") for (name,) in open_cursors] == [True]


# -- failures -------------------------------------------------------------------------------------


def test_a_statement_timeout_is_a_503_and_writes_nothing(pg, pg_url_with):
    log = _ledger(pg(), create=True)
    slow = open_postgres(pg_url_with("statement_timeout=50"))
    try:
        with pytest.raises(Unavailable, match="time limit"):
            slow.db.read(lambda conn: conn.execute("SELECT pg_sleep(1)"))
    finally:
        slow.close()
    assert log.size() == 1


def test_a_lost_connection_is_a_503_then_the_pool_recovers(pg_url_with, raw):
    name = f"victim-{os.getpid()}-{threading.get_ident()}"
    stores = open_postgres(pg_url_with(application_name=name), upgrade=True)
    log = _ledger(stores, create=True)
    log.append_batch(notes(3))
    # An administrator (or a failover) ends every connection of the pool.
    killed = raw.execute(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = %s", (name,)
    ).fetchone()[0]
    assert killed >= 1
    assert log.size() == 4  # a read retries once on a fresh connection
    answers = []
    for i in range(5):
        try:
            log.append("note", {"text": f"after the loss {i}"})
            answers.append("ok")
        except Unavailable:
            answers.append("503")
    assert answers[-1] == "ok" and answers.count("503") <= 1
    assert log.size() == 4 + answers.count("ok")
    verify_log(log.store, REGISTRY, log.verifier)
    stores.close()


def test_a_read_only_transaction_is_a_503(pg, pg_url_with):
    log = _ledger(pg(), create=True)
    standby_like = open_postgres(pg_url_with("default_transaction_read_only=on"))
    try:
        with pytest.raises(Unavailable, match="read-only"):
            standby_like.db.check_writable()
    finally:
        standby_like.close()
    assert log.size() == 1


def test_a_database_opened_read_only_refuses_every_write(pg):
    _ledger(pg(), create=True)
    reader = pg(upgrade=False, read_only=True)
    with pytest.raises(Unavailable, match="reads only"):
        reader.tokens.add(b"h" * 32, "admin", None, "2026-12-02T00:00:00.000Z")
    assert reader.tokens.all() == []


def test_commits_are_durable_even_if_the_server_default_is_not(pg_url_with):
    stores = open_postgres(pg_url_with("synchronous_commit=off"), upgrade=True)
    try:
        assert stores.db.read(lambda conn: conn.execute("SHOW synchronous_commit").fetchone()[0]) == "on"
    finally:
        stores.close()


def test_a_conflict_is_retried_a_bounded_number_of_times(pg):
    stores = pg()
    tries = []

    def conflicts_then(n):
        def work(conn):
            tries.append(1)
            if len(tries) <= n:
                conn.execute("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            return "done"

        return work

    assert stores.db.run_write(conflicts_then(CONFLICT_RETRIES)) == "done"
    assert len(tries) == CONFLICT_RETRIES + 1
    tries.clear()
    with pytest.raises(Unavailable, match="conflicting"):
        stores.db.run_write(conflicts_then(CONFLICT_RETRIES + 1))
    assert len(tries) == CONFLICT_RETRIES + 1


def test_no_server_is_a_503_at_open(tmp_path):
    with pytest.raises(Unavailable, match="cannot connect"):
        open_postgres(f"postgresql:///luodi?host={tmp_path}&port=1", lock_timeout=0.5)


# -- migrations ---------------------------------------------------------------------------------


def test_migrations_are_recorded_applied_once_and_required(pg_schema_url, raw):
    with pytest.raises(InstanceError, match="luodi db upgrade"):
        open_postgres(pg_schema_url)
    results = []

    def upgrade():
        stores = open_postgres(pg_schema_url, upgrade=True)
        results.append(stores.migrations_applied)
        stores.close()

    threads = [threading.Thread(target=upgrade) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    names = [m.name for m in pg_migrations.load()]
    assert sorted(results, key=len) == [[], [], names]  # one server applied them, the others waited
    assert [r[0] for r in raw.execute("SELECT name FROM luodi_migrations ORDER BY name")] == names
    open_postgres(pg_schema_url).close()  # no longer required


def test_erasing_a_private_row_vacuums_its_table(pg, raw):
    stores = pg()
    _ledger(stores, create=True)
    view = stores.books.view()
    with stores.log.append_transaction() as txn:  # the books' own row, written as an intake would
        stores.books.in_transaction(txn).put_private(b"r" * 32, b"s" * 16, b"f" * 32, '{"name": "Li Hua"}')
    assert view.private(b"r" * 32) is not None
    assert stores.books.erase_private(b"r" * 32) is True
    assert stores.books.erase_private(b"r" * 32) is False
    assert view.private(b"r" * 32) is None
    # VACUUM reports itself at once (a DELETE's own counts may reach the statistics later).
    vacuumed = raw.execute(
        "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'donor_private' AND schemaname = current_schema()"
    ).fetchone()[0]
    assert vacuumed


def test_a_disbursement_spends_hundreds_of_donations_oldest_first(pg):
    """The FIFO allocation reads the unspent donations a page at a time inside the
    append (64, then 256 ...), while it spends them: no donation is skipped or spent twice."""
    from factories import disburse, donate, open_project, register

    stores = pg()
    cl = open_charity_ledger(stores, Signer.generate(ORIGIN), create=True)
    ck = register(cl, "hope")
    open_project(cl, "wells", ck)
    receipts = [donate(cl, "wells", "1.00").receipt.entry.receipt for _ in range(150)]
    disburse(cl, "wells", ck, "140.50")
    view = stores.books.view()
    spent = [sum(a for _, a in view.allocations_of(bytes.fromhex(r))) for r in receipts]
    assert spent == [100] * 140 + [50] + [0] * 9
    assert [r.hex() for r, _ in view.unspent("wells")] == receipts[140:]
