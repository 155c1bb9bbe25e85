"""The Ledger read API: proofs that verify, and clean refusals for everything else."""

from __future__ import annotations

import pytest
from conftest import ORIGIN, REGISTRY, FixedClock, notes

from ledger.errors import InstanceError, InvalidInput, NotFound
from ledger.log.checkpoint import open_checkpoint
from ledger.log.ledger import Ledger
from ledger.log.merkle import verify_consistency, verify_inclusion
from ledger.log.note import Signer

BATCHES = [1, 6, 13, 2, 20]  # sizes after each: 2, 8, 21, 23, 43


@pytest.fixture
def built(ledger):
    entries = [ledger.genesis]
    for n, size in enumerate(BATCHES):
        entries += ledger.append_batch(notes(size, f"batch{n}"))
    return ledger, entries


def test_proofs_verify_for_every_seq_and_size(built):
    ledger, entries = built
    size = ledger.size()
    assert size == len(entries) == 1 + sum(BATCHES)
    roots = {n: ledger.root(n) for n in range(1, size + 1)}
    for n in range(1, size + 1):
        for seq in range(n):
            verify_inclusion(entries[seq].leaf_hash, seq, n, ledger.inclusion_proof(seq, n), roots[n])
        for m in range(1, n + 1):
            verify_consistency(m, n, roots[m], roots[n], ledger.consistency_proof(m, n))
    # Defaults are the current size.
    verify_inclusion(entries[3].leaf_hash, 3, size, ledger.inclusion_proof(3), roots[size])
    verify_consistency(5, size, roots[5], roots[size], ledger.consistency_proof(5))


@pytest.mark.parametrize(
    ("seq", "size"),
    [(43, None), (100, None), (5, 5), (0, 0), (-1, None), (-1, 10), (3, 44), (3, 1000), (0, -1), ("1", None), (1.0, None), (None, None)],
)
def test_inclusion_proof_refusals(built, seq, size):
    ledger, _ = built
    assert ledger.size() == 43
    with pytest.raises(NotFound):
        ledger.inclusion_proof(seq, size)


@pytest.mark.parametrize(
    ("size1", "size2"),
    [(0, None), (0, 10), (-1, None), (11, 10), (44, None), (5, 44), (1, 1000), (3, -1), ("3", None), (None, 10), (2.0, None)],
)
def test_consistency_proof_refusals(built, size1, size2):
    ledger, _ = built
    with pytest.raises(NotFound):
        ledger.consistency_proof(size1, size2)


def test_sizes_beyond_the_log_are_refused_even_after_growth(built):
    """The cached known size must not let a size past the real log through."""
    ledger, _ = built
    ledger.inclusion_proof(0, 43)
    with pytest.raises(NotFound):
        ledger.root(44)
    ledger.append_batch(notes(1, "more"))
    assert ledger.root(44) == ledger.root()
    with pytest.raises(NotFound):
        ledger.inclusion_proof(0, 45)


def test_entry_lookups(built):
    ledger, entries = built
    for e in entries:
        assert ledger.entry(e.seq) == e
        assert ledger.entry_by_receipt(e.receipt) == e
    for seq in (-1, 43, 10**6, "1", None):
        with pytest.raises(NotFound):
            ledger.entry(seq)


@pytest.mark.parametrize(
    "receipt",
    [
        "",
        "zz" * 32,
        "g" + "0" * 63,
        "0" * 63,
        "0" * 65,
        "0" * 128,
        " " + "0" * 63,
        "00 " * 21 + "0",
        "é" * 64,
        None,
        42,
        b"0" * 64,
    ],
)
def test_entry_by_receipt_refuses_malformed(built, receipt):
    ledger, _ = built
    with pytest.raises(InvalidInput) as info:
        ledger.entry_by_receipt(receipt)
    assert not isinstance(info.value, NotFound)


def test_entry_by_receipt_refuses_uppercase_of_a_real_receipt(built):
    ledger, entries = built
    receipt = entries[7].receipt
    assert receipt != receipt.upper()
    with pytest.raises(InvalidInput):
        ledger.entry_by_receipt(receipt.upper())


def test_entry_by_receipt_unknown(built):
    ledger, entries = built
    with pytest.raises(NotFound):
        ledger.entry_by_receipt("0" * 64)
    flipped = entries[7].receipt[:-1] + ("0" if entries[7].receipt[-1] != "0" else "1")
    with pytest.raises(NotFound):
        ledger.entry_by_receipt(flipped)


def test_checkpoints_only_at_batch_boundaries(built):
    ledger, _ = built
    boundaries = [1, 2, 8, 21, 23, 43]
    assert [s for s, _ in ledger.store.iter_checkpoints()] == boundaries
    for size in boundaries:
        cp = open_checkpoint(ledger.checkpoint(size), ledger.verifier)
        assert (cp.origin, cp.size, cp.root) == (ORIGIN, size, ledger.root(size))
    for size in (0, 3, 7, 9, 22, 42, 44, -1):
        with pytest.raises(NotFound):
            ledger.checkpoint(size)
    assert ledger.checkpoint() == ledger.checkpoint(43)
    assert ledger.latest_checkpoint().size == 43


def test_ledger_without_signer_reads_but_cannot_append(built):
    ledger, _ = built
    reader = Ledger(ledger.store, REGISTRY)
    assert reader.size() == 43
    assert reader.root() == ledger.root()
    assert reader.latest_checkpoint().size == 43
    for attempt in (lambda: reader.append("note", {"text": "x"}), lambda: reader.append_batch(notes(3))):
        with pytest.raises(InstanceError, match="signing key"):
            attempt()
    assert ledger.size() == 43
    assert ledger.store.checkpoint()[0] == 43


def test_create_with_a_different_signer_refused(backend, signer):
    storage = backend.open("l", upgrade=True)
    log = storage.log
    try:
        Ledger.create(log, REGISTRY, signer, clock=FixedClock()).append_batch(notes(3))
        genesis = log.entry_bytes(0)
        for other in (Signer.generate(ORIGIN), Signer.generate("other.example/log")):
            with pytest.raises(InstanceError, match="not the log key"):
                Ledger.create(log, REGISTRY, other)
            wrong = Ledger(log, REGISTRY, other)
            with pytest.raises(InstanceError):
                wrong.check_signer()
        assert log.size() == 4
        assert log.entry_bytes(0) == genesis
        # The right key still opens it, without writing a second genesis.
        again = Ledger.create(log, REGISTRY, signer)
        assert again.size() == 4
        assert again.origin == ORIGIN
    finally:
        storage.close()


def test_empty_store_has_no_genesis(backend):
    storage = backend.open("empty", upgrade=True)
    try:
        reader = Ledger(storage.log, REGISTRY)
        with pytest.raises(InstanceError, match="genesis"):
            reader.genesis
        with pytest.raises(NotFound):
            reader.checkpoint()
        with pytest.raises(NotFound):
            reader.inclusion_proof(0)
        assert reader.size() == 0
    finally:
        storage.close()
