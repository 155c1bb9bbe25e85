"""A donor's receipt: the gift, where it went, and the proofs of both, assembled in one snapshot.

Everything in a :class:`Receipt` comes from one committed state of the log
and its books, so the disbursements that spent a gift are always inside the
tree the checkpoint signs.  (Read one after the other, a disbursement that
commits between the reads would name an entry beyond the checkpoint.)

A receipt read from the log also carries what a donor needs to check the
disbursements' signatures with no other request: the project's
``project.opened`` entry (it ties the project to its charity) and the
charity's ``charity.registered`` and ``charity.keys_rotated`` entries (the
keys the log recorded), each with its proof at the same tree size.
:mod:`ledger.charity.receipt_check` verifies the whole.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import NotFound
from ..log.entry import Entry
from ..log.ledger import Ledger
from ..log.tlog_proof import format_tlog_proof
from ..log.writer import Writer
from .allocation import DonationTrace


@dataclass(frozen=True)
class Spending:
    """A disbursement that spent part of a gift, with its inclusion proof at the receipt's tree size."""

    disbursement: Entry
    amount: int
    proof: list[bytes]


@dataclass(frozen=True)
class Proven:
    """An entry with its inclusion proof at the receipt's tree size."""

    entry: Entry
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
    # The project's opening and the charity's registration and key rotations (None and ()
    # in a receipt built from a writer: nothing has spent that gift yet).
    project_opening: Proven | None = None
    charity_entries: tuple[Proven, ...] = ()
    # With witnesses (receipt_of's ``cosigned``): True when ``checkpoint`` is a cosigned
    # checkpoint (one that met the log's witness policy), False when none covers the
    # receipt yet and it is the log-signed one; None without witnesses.
    cosigned: bool | None = None


def receipt_of(
    ledger: Ledger,
    receipt: str,
    trace_of: Callable[[str], DonationTrace],
    context_of: Callable[[str], tuple[int, list[int]]],
    cosigned: bool = False,
) -> Receipt:
    """The receipt of the donation with this receipt hash, against the latest
    checkpoint; ``trace_of`` reads where the gift went from the books, and
    ``context_of(project)`` the seq of the project's opening and the seqs of its
    charity's registration and key rotations.

    ``cosigned`` (the log has witnesses, docs/witnessing.md): against the latest
    cosigned checkpoint instead, if it covers the gift, its project's opening and
    every disbursement that spent it; else against the latest log-signed one, and
    the receipt says so (:attr:`Receipt.cosigned`)."""
    with ledger.snapshot():
        entry = ledger.entry_by_receipt(receipt)
        if entry.kind != "donation":
            raise NotFound(f"{entry.receipt} is a {entry.kind} entry, not a donation")
        trace = trace_of(receipt)
        note, cp = ledger.latest_checkpoint_note()
        size, witnessed = cp.size, None
        spent = [(ledger.entry_by_receipt(r), a) for r, a in trace.spent]
        opened, charity_seqs = context_of(trace.project)
        if cosigned:
            found = ledger.store.cosigned_checkpoint()
            witnessed = found is not None and found[0] > max([entry.seq, opened, *(d.seq for d, _ in spent)])
            if witnessed:
                size, note = found
        spending = tuple(Spending(d, amount, ledger.inclusion_proof(d.seq, size)) for d, amount in spent)
        proof = ledger.inclusion_proof(entry.seq, size)
        opening, *charity = (
            Proven(ledger.entry(seq), ledger.inclusion_proof(seq, size))
            for seq in (opened, *(s for s in charity_seqs if s < size))
        )
    return Receipt(
        entry, size, proof, note, ledger.verifier.to_string(), trace, spending, opening, tuple(charity), witnessed
    )


def receipt_from_writer(ledger: Ledger, w: Writer, entry: Entry) -> Receipt:
    """The receipt of a donation the committed writer ``w`` appended, at the checkpoint
    signed with it, from memory: at that size nothing has spent or refunded it."""
    return receipts_from_writer(ledger, w, [entry])[0]


def receipts_from_writer(ledger: Ledger, w: Writer, entries: list[Entry]) -> list[Receipt]:
    """:func:`receipt_from_writer` of many donations of one writer, their proofs together."""
    if not entries:
        return []
    size, note, log_key = w.checkpoint.size, w.note, ledger.verifier.to_string()
    return [
        Receipt(entry, size, proof, note, log_key,
                DonationTrace(entry.receipt, entry.body["project"], entry.body["currency"], entry.body["amount"]))
        for entry, proof in zip(entries, w.proofs([e.seq for e in entries]), strict=True)
    ]


def tlog_proof(r: Receipt) -> str:
    """The donation's inclusion as a C2SP tlog-proof: its extra data is the entry's
    canonical bytes, its index the seq.  It proves the gift is in the log only: the
    disbursements that spent it need the JSON receipt."""
    return format_tlog_proof(r.entry.seq, r.proof, r.checkpoint, r.entry.canonical)
