"""The halves of inclusion proofs and the entries the ledger keeps in memory
(ledger/log/ledger.py): every proof equals RFC 9162's reference whatever the
caches hold, and warm caches save storage queries (counted, never timed).

SQLite only: the queries are counted with SQLite's trace callback, on one log
file built once for the module."""

from __future__ import annotations

import random
import re
from contextlib import contextmanager

import pytest
from conftest import open_ledger
from test_merkle import MTH, PATH

import ledger.log.ledger as log_module
from ledger.log import merkle
from ledger.log.note import Signer

BLOCK = 1 << log_module.CACHE_MIN_LEVEL
# Sizes on both sides of block edges and of powers of two.
SIZES = [1, 2, 63, 64, 65, 100, 127, 128, 129, 191, 192, 193, 255, 256, 257, 300]


@pytest.fixture(scope="module")
def log_file(tmp_path_factory):
    """(path, canonical bytes of every entry) of a 300-entry log, appended in odd batches."""
    path = tmp_path_factory.mktemp("caches") / "log.sqlite"
    ledger = open_ledger(path, Signer.generate("caches.luodi.example/log"), create=True)
    done = 1
    for k in (1, 62, 65, 1, 2, 100, 68):
        ledger.append_batch([("note", {"text": f"gift {done + i}"}) for i in range(k)])
        done += k
    assert ledger.size() == max(SIZES)
    data = [ledger.entry(seq).canonical for seq in range(ledger.size())]
    ledger.store.close()
    return path, data


@pytest.fixture
def fresh(log_file):
    """A ledger opened anew on the log (its caches empty), and the entries' bytes."""
    path, data = log_file
    ledger = open_ledger(path)
    yield ledger, data
    ledger.store.close()


@contextmanager
def statements(ledger):
    """The SQL statements this thread's reads run inside the block."""
    conn = ledger.store.db.reader()
    run: list[str] = []
    conn.set_trace_callback(run.append)
    try:
        yield run
    finally:
        conn.set_trace_callback(None)


@pytest.mark.parametrize("kept", [None, 1])  # the real bounds, and caches replaced at every insertion
def test_inclusion_proofs_equal_the_reference_whatever_the_caches_hold(fresh, monkeypatch, kept):
    ledger, data = fresh
    if kept is not None:
        monkeypatch.setattr(log_module, "UPPER_CACHE_MAX", kept)
        monkeypatch.setattr(log_module, "LOWER_CACHE_MAX", kept)
    reference: dict = {}

    def check(m: int, n: int) -> None:
        if (m, n) not in reference:
            reference[(m, n)] = PATH(m, data[:n])
        proof = ledger.inclusion_proof(m, n)
        assert proof == reference[(m, n)], (m, n)
        proof.append(b"x" * 32)  # the caller's list is its own: changing it changes no later proof

    # Growing sizes: each new size finds the lower halves of the leaves kept, the upper ones not ...
    pairs = [(m, n) for n in SIZES for m in range(n)]
    for m, n in pairs:
        check(m, n)
    # ... then everything again in a random order: kept halves of every kind, mixed.
    random.Random(9162).shuffle(pairs)
    for m, n in pairs:
        check(m, n)
    for n in (64, 257, 300):
        root = MTH(data[:n])
        for m in (0, 63, n - 1):
            merkle.verify_inclusion(merkle.leaf_hash(data[m]), m, n, ledger.inclusion_proof(m, n), root)


def test_a_proof_asked_again_costs_no_query(fresh):
    ledger, _ = fresh
    assert ledger.inclusion_proof(0, 1) == []  # (the ledger learns the log's size)
    with statements(ledger) as run:
        first = ledger.inclusion_proof(70, 300)
    assert len(run) == 1  # one query for every node of the proof
    with statements(ledger) as run:
        assert ledger.inclusion_proof(70, 300) == first
    assert run == []
    with statements(ledger) as run:
        ledger.inclusion_proof(71, 300)  # the same block at the same size: its upper half is kept
    assert len(run) == 1
    assert len(run[0].split(" IN ", 1)[1].split(",")) == log_module.CACHE_MIN_LEVEL  # its lower half only
    with statements(ledger) as run:
        ledger.inclusion_proof(299, 300)  # the last, incomplete block takes the general path
        ledger.inclusion_proof(299, 300)
    assert len(run) == 2


def test_an_entry_read_again_costs_no_query_and_a_page_keeps_none(fresh):
    ledger, data = fresh
    with statements(ledger) as run:
        assert ledger.entry(5).canonical == data[5]
        assert ledger.entry(5).canonical == data[5]
    assert len(run) == 1
    entries, _ = ledger.page(100, 50)
    assert [e.canonical for e in entries] == data[100:150]
    with statements(ledger) as run:
        ledger.entry(120)
    assert len(run) == 1  # pages are read past the cache: they would push out the entries asked again


def test_a_receipt_reads_the_log_three_times_once_the_project_is_known(make_setup):
    setup = make_setup(donations=())
    books, ledger = setup.charity, setup.ledger
    with ledger.writer() as w:
        gifts = [
            books.record_donation_in(w, setup.project, "1.00", "wechat", f"PAY-{i}", f"donor-{i}", "2026-09-21", f"k-{i:06d}")
            for i in range(3 * BLOCK)
        ]
    books.receipt(gifts[0].entry.receipt)  # the project's opening and the charity's registration, proved once
    for gift in (gifts[BLOCK + 3], gifts[-1]):  # a complete block, and the last one
        with statements(ledger) as run:
            r = books.receipt(gift.entry.receipt)
        assert r.entry == gift.entry and r.project_opening is not None
        log_reads = [sql for sql in run if re.search(r"\bFROM (entries|checkpoints)\b", sql)]
        # the entry by its hash, the latest checkpoint, the nodes of the gift's proof
        assert len(log_reads) == 3, log_reads
        assert len(run) <= 8, run  # with BEGIN, ROLLBACK and the books' three reads
