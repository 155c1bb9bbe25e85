"""What a writer keeps in memory: proofs of its own entries, and the frontier it
carries from one commit to the next even when other processes append between."""

from __future__ import annotations

import pytest
from conftest import REGISTRY, notes, open_ledger, target_of

import ledger.log.ledger as log_module
from ledger.errors import NotFound
from ledger.log.entry import body_bytes
from ledger.log.merkle import verify_inclusion
from ledger.log.verify import verify_log


@pytest.mark.parametrize("start", [1, 2, 3, 5, 8, 13, 31, 32, 33, 64])
@pytest.mark.parametrize("count", [1, 2, 3, 7, 16, 33])
def test_writer_proves_its_own_entries_from_memory_as_storage_would(make_ledger, start, count):
    ledger = make_ledger()
    if start > 1:
        ledger.append_batch(notes(start - 1, "before"))
    with ledger.writer() as w:
        for i in range(count):
            w.append("note", {"text": f"mine {i}"})
    size = start + count
    root = ledger.root(size)
    for entry in w.entries:
        proof = w.proof(entry.seq)
        assert proof == ledger.inclusion_proof(entry.seq, size)
        verify_inclusion(entry.leaf_hash, entry.seq, size, proof, root)


@pytest.mark.parametrize("start", [1, 6, 32, 45])
@pytest.mark.parametrize("count", [1, 5, 19, 64])
def test_writer_proves_a_batch_together_as_one_by_one(make_ledger, start, count):
    """proofs() shares the fold of the ragged edge between the proofs of a batch;
    append_many_checked seals and stages as append would, one by one."""
    ledger = make_ledger()
    if start > 1:
        ledger.append_batch(notes(start - 1, "before"))
    items = notes(count, "mine")
    with ledger.writer() as w:
        first = w.append("note", {"text": "single"})
        many = w.append_many_checked([(kind, body, body_bytes(kind, body, REGISTRY)) for kind, body in items])
    assert [e.seq for e in many] == list(range(start + 1, start + 1 + count))
    assert many[0].prev == first.receipt and all(b.prev == a.receipt for a, b in zip(many, many[1:]))
    size = start + 1 + count
    seqs = [e.seq for e in w.entries]
    assert w.proofs(seqs) == [ledger.inclusion_proof(s, size) for s in seqs] == [w.proof(s) for s in seqs]
    verify_log(ledger.store, REGISTRY, workers=1)


def test_writer_proof_skips_entries_a_savepoint_undid(ledger):
    with ledger.writer() as w:
        w.append("note", {"text": "kept 1"})
        with pytest.raises(NotFound):
            with w.savepoint():
                w.append("note", {"text": "undone"})
                raise NotFound("refused")
        kept = w.append("note", {"text": "kept 2"})
    assert kept.seq == 2
    assert w.proof(2) == ledger.inclusion_proof(2, 3)


@pytest.mark.parametrize("seq", [0, 3, -1])
def test_writer_proof_refuses_entries_it_did_not_append(ledger, seq):
    ledger.append("note", {"text": "earlier"})  # seq 1
    with ledger.writer() as w:
        w.append("note", {"text": "mine"})  # seq 2
    with pytest.raises(NotFound):
        w.proof(seq)


def test_frontier_carried_across_commits_of_two_processes(make_ledger, signer, monkeypatch):
    a = make_ledger()
    b = open_ledger(target_of(a), signer)
    try:
        a.append_batch(notes(5, "a0"))
        b.append_batch(notes(3, "b0"))  # b has no frontier yet: reads the peaks
        a.append_batch(notes(2, "a1"))  # a extends its frontier by b's 3 leaves
        b.append("note", {"text": "b1"})
        monkeypatch.setattr(log_module, "FRONTIER_CATCH_UP", 2)
        b.append_batch(notes(4, "b2"))  # b is 1 behind: extends
        a.append("note", {"text": "a2"})  # a is 5 behind, more than 2: reads the peaks
        report = verify_log(a.store, REGISTRY)  # every stored node and checkpoint root is right
        assert report.size == 1 + 5 + 3 + 2 + 1 + 4 + 1
        assert a.root() == b.root()
    finally:
        b.store.close()


def test_a_rolled_back_writer_leaves_the_carried_frontier_alone(ledger):
    ledger.append("note", {"text": "one"})
    with pytest.raises(RuntimeError):
        with ledger.writer() as w:
            w.append("note", {"text": "never"})
            raise RuntimeError("abort")
    ledger.append("note", {"text": "two"})
    assert verify_log(ledger.store, REGISTRY).size == 3
