"""A donor's receipt: the gift, where it went, and the proofs of both, assembled in one snapshot.

Everything in a :class:`Receipt` comes from one committed state of the log
and its books, so the disbursements that spent a gift are always inside the
tree the checkpoint signs.  (Read one after the other, a disbursement that
commits between the reads would name an entry beyond the checkpoint.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NotFound
from ..log.entry import Entry
from ..log.ledger import Ledger
from ..log.writer import Writer
from .allocation import DonationTrace


@dataclass(frozen=True)
class Spending:
    """A disbursement that spent part of a gift, with its inclusion proof at the receipt's tree size."""

    disbursement: Entry
    amount: int
    proof: list[bytes]


@dataclass(frozen=True)
class Receipt:
    entry: Entry  # the donation
    tree_size: int
    proof: list[bytes]  # the donation's RFC 9162 inclusion proof at tree_size
    checkpoint: str  # the signed checkpoint note at tree_size
    log_key: str
    trace: DonationTrace
    spending: tuple[Spending, ...] = ()


def receipt_of(ledger: Ledger, receipt: str, trace_of: Callable[[str], DonationTrace]) -> Receipt:
    """The receipt of the donation with this receipt hash, against the latest
    checkpoint; ``trace_of`` reads where the gift went from the books."""
    with ledger.snapshot():
        entry = ledger.entry_by_receipt(receipt)
        if entry.kind != "donation":
            raise NotFound(f"{entry.receipt} is a {entry.kind} entry, not a donation")
        trace = trace_of(receipt)
        note, cp = ledger.latest_checkpoint_note()
        spending = tuple(
            Spending(d, amount, ledger.inclusion_proof(d.seq, cp.size))
            for d, amount in ((ledger.entry_by_receipt(r), a) for r, a in trace.spent)
        )
        proof = ledger.inclusion_proof(entry.seq, cp.size)
    return Receipt(entry, cp.size, proof, note, ledger.verifier.to_string(), trace, spending)


def receipt_from_writer(ledger: Ledger, w: Writer, entry: Entry) -> Receipt:
    """The receipt of a donation the committed writer ``w`` appended, at the checkpoint
    signed with it, from memory: at that size nothing has spent or refunded it."""
    body = entry.body
    trace = DonationTrace(entry.receipt, body["project"], body["currency"], body["amount"])
    return Receipt(entry, w.checkpoint.size, w.proof(entry.seq), w.note, ledger.verifier.to_string(), trace)
