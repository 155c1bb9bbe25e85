"""A receipt is assembled in one snapshot: a disbursement that spends the gift and commits
while the receipt is being read can never make it name an entry beyond its checkpoint.

Read one part after another, the receipt read the checkpoint, then the gift's
allocations, then built proofs at the checkpoint's size; a disbursement
committed between those reads made it fail with ``NotFound: seq N is not in a
tree of size N`` for a real gift.  Here the disbursement is committed, by
another connection to the same file, at each point between the receipt's reads.
"""

from __future__ import annotations

import pytest
from conftest import open_ledger, open_target, stores_of, target_of
from factories import sign_all

from ledger.charity.service import CharityLedger, open_charity_ledger
from ledger.log.checkpoint import open_checkpoint
from ledger.log.ledger import Ledger
from ledger.log.merkle import verify_inclusion


@pytest.fixture
def race(make_setup):
    """(setup, commit): ``commit()`` appends a disbursement that spends the first gift,
    through a second, independent ledger on the same database."""
    setup = make_setup(donations=("100.00", "50.00"))
    other_stores = open_target(target_of(setup.ledger))
    other = open_charity_ledger(other_stores, setup.ledger.signer, clock=setup.clock)
    done = []

    def commit():
        if not done:
            payload = setup.disbursement((("coats", "120.00"),))
            done.append(other.disburse(payload, sign_all(payload, *setup.keys[:2])))

    yield setup, commit, done
    other_stores.close()


def _check(receipt, ledger) -> None:
    cp = open_checkpoint(receipt.checkpoint, ledger.verifier)
    assert cp.size == receipt.tree_size
    verify_inclusion(receipt.entry.leaf_hash, receipt.entry.seq, cp.size, receipt.proof, cp.root)
    for s in receipt.spending:
        assert s.disbursement.seq < cp.size
        verify_inclusion(s.disbursement.leaf_hash, s.disbursement.seq, cp.size, s.proof, cp.root)


@pytest.mark.parametrize(
    "between",
    [
        (CharityLedger, "trace"),  # after the entry, before the books
        (Ledger, "latest_checkpoint_note"),  # after the books, before the checkpoint
        (Ledger, "inclusion_proof"),  # after the checkpoint, before the proofs
    ],
    ids=["entry-books", "books-checkpoint", "checkpoint-proofs"],
)
def test_a_disbursement_committed_between_the_reads_does_not_break_the_receipt(race, monkeypatch, between):
    setup, commit, done = race
    gift = setup.donations[0].entry
    size = setup.ledger.size()
    cls, name = between
    real = getattr(cls, name)

    def commit_then_read(self, *args, **kwargs):
        commit()
        return real(self, *args, **kwargs)

    monkeypatch.setattr(cls, name, commit_then_read)
    receipt = setup.charity.receipt(gift.receipt)
    monkeypatch.undo()
    assert done and done[0].seq == size  # the disbursement did commit, mid-receipt
    # The receipt is the state before it: all of it, consistently.
    assert receipt.tree_size == size
    assert receipt.checkpoint == setup.ledger.checkpoint(size)
    assert receipt.trace.spent == [] and receipt.spending == ()
    _check(receipt, setup.ledger)
    # And the next receipt shows the spending, with its proof, at the new checkpoint.
    after = setup.charity.receipt(gift.receipt)
    assert after.tree_size == size + 1
    assert [(s.disbursement.receipt, s.amount) for s in after.spending] == [(done[0].receipt, 10000)]
    _check(after, setup.ledger)


def test_a_receipt_read_through_another_process_handle_is_whole(race, tmp_path):
    """The same from the side of a reader that did not write anything itself."""
    setup, commit, done = race
    commit()
    reader = open_ledger(target_of(setup.ledger))
    try:
        cl = CharityLedger(reader, stores_of(reader))
        receipt = cl.receipt(setup.donations[1].entry.receipt)
        assert [s.amount for s in receipt.spending] == [2000]  # 100.00 + 20.00 of the second gift
        _check(receipt, reader)
    finally:
        reader.store.close()
