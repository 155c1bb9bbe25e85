"""The remote audit: check a charity log over its public API, trusting only the pinned key.

:func:`audit_remote` reads a :class:`Source` (the HTTP one is ``api.remote``)
and:

1. verifies the server's latest checkpoint with the pinned key and pins its size; with
   a witness policy (C2SP tlog-policy), checks that a quorum of its witnesses
   cosigned that checkpoint (:func:`ledger.charity.receipt_check.check_witnesses`);
2. streams the log up to exactly that size through a
   :class:`ledger.log.follow.Follower` (every entry's bytes, hash, link, time and
   kind rules; the genesis names the pinned key), and checks that the checkpoint
   signs those entries;
3. replays every accounting rule into its own books
   (:class:`ledger.charity.memory.MemoryBooks`, as :func:`ledger.charity.audit.audit_books`
   does: signatures against the keys the log registered, nonces and the signing
   window, balances, refunds, FIFO) and folds the same entries through
   :func:`ledger.charity.allocation.trace_fifo`;
4. with a saved monitor state (:mod:`ledger.log.monitor`), checks that the log
   did not shrink, extends the saved one entry for entry, and that the server's
   consistency proof from the saved checkpoint verifies;
5. compares what the server publishes with the replay: every project's totals,
   the figures and allocations of sampled receipts (with their inclusion proofs
   and checkpoint; then each receipt must also pass the donor's offline check,
   :func:`ledger.charity.receipt_check.check_receipt`), and the inclusion proofs
   of sampled entries.

A live server may grow meanwhile: an answer at a larger tree size is compared
after the audit caught up to it (verifying the new entries and a signed
checkpoint at that size).  Each answer causes at most one catch-up, so the
rounds are bounded by the requests.

Whatever the server sends that is not what it claims to be (a proof that is
not hex, a checkpoint that is not a signed note, a figure that is not a
string) fails the audit like a wrong figure: :class:`Misreported`, or
:class:`LogCorrupted` for an entry.  The source raises :class:`RemoteError`
only for transport failures and answers that are not JSON.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

from ..errors import LogCorrupted, LuodiError, Misreported, Overspend, ProofError, ReceiptInvalid
from ..log.checkpoint import Checkpoint
from ..log.entry import Entry
from ..log.follow import Follower
from ..log.merkle import verify_inclusion
from ..log.monitor import MonitorState
from ..log.policy import Policy
from .allocation import trace_fifo
from .books import Books, verify_signed
from .kinds import registry
from .memory import MemoryBooks
from .published import compare_projects, compare_receipt, hashes, obj
from .receipt_check import check_receipt, check_witnesses

DEFAULT_SAMPLE = 100
PROGRESS_EVERY = 4096


class Source(Protocol):
    """What a remote audit reads.  JSON answers come back decoded, unchecked."""

    def checkpoint(self) -> str: ...  # the latest signed checkpoint note

    def export(self, start: int, end: int) -> Iterator[bytes]: ...  # canonical entries [start, end)

    def consistency(self, first: int, second: int) -> dict: ...

    def inclusion(self, leaf_hash: str, tree_size: int) -> dict: ...

    def projects(self) -> dict: ...  # {"projects": [...], "tree_size": n, "checkpoint": note}

    def receipt(self, leaf_hash: str) -> dict: ...


@dataclass
class RemoteReport:
    entries: int = 0
    donations: int = 0
    disbursements: int = 0
    refunds: int = 0
    projects: int = 0
    tree_size: int = 0
    root: bytes = b""
    checkpoint: str = ""
    receipts_checked: int = 0
    proofs_checked: int = 0
    catch_ups: int = 0
    state_from: int | None = None  # the saved tree size, if a state was given
    state: MonitorState | None = None
    kinds: dict[str, int] = field(default_factory=dict)
    witnesses: dict[str, int] = field(default_factory=dict)  # policy witness -> cosignature time


class Sample:
    """A uniform sample of at most ``k`` items of a stream (``k`` None: all of them),
    by Li's Algorithm L: O(k) memory and O(k log(n/k)) random draws."""

    def __init__(self, k: int | None, rng: random.Random):
        self.k, self.rng, self.items, self.seen = k, rng, [], 0
        self._next = self._w = 0.0
        if k is not None and k > 0:
            self._w = math.exp(math.log(self._u()) / k)
            self._next = k + self._skip()

    def _u(self) -> float:
        while True:
            u = self.rng.random()
            if 0.0 < u < 1.0:
                return u

    def _skip(self) -> int:
        return math.floor(math.log(self._u()) / math.log(1.0 - self._w)) + 1 if self._w < 1.0 else 1

    def offer(self, item) -> None:
        self.seen += 1
        if self.k is None or len(self.items) < self.k:
            self.items.append(item)
        elif self.k and self.seen == self._next:
            self.items[self.rng.randrange(self.k)] = item
            self._w *= math.exp(math.log(self._u()) / self.k)
            self._next = self.seen + self._skip()


class RemoteAudit:
    def __init__(
        self,
        source: Source,
        log_key,
        *,
        saved: MonitorState | None = None,
        receipts: int | None = DEFAULT_SAMPLE,
        proofs: int = DEFAULT_SAMPLE,
        rng: random.Random | None = None,
        progress: Callable[[int, int], None] | None = None,
        policy: Policy | None = None,
    ):
        self.source = source
        self.policy = policy
        self.follower = Follower(registry(), log_key)
        self.saved = saved
        self.mem = MemoryBooks()
        self.books = Books(self.mem)
        rng = rng or random.SystemRandom()
        self.donations = Sample(receipts, rng)
        self.entries_sample = Sample(proofs, rng)
        self.progress = progress or (lambda done, total: None)
        self.report = RemoteReport(state_from=saved.size if saved else None)
        self.kinds: dict[str, int] = {}
        self.target = 0
        self.cp: Checkpoint | None = None  # the last checkpoint verified against the entries
        self.note = ""

    # -- following --------------------------------------------------------------------

    def _export(self, end: int) -> Iterator[Entry]:
        """Follow and replay the entries from the current size up to ``end``."""
        start = self.follower.size
        if end <= start:
            return
        self.target = max(self.target, end)
        lines = self.source.export(start, end)
        expected = iter(range(start, end))

        def counted() -> Iterator[bytes]:
            for line in lines:
                if next(expected, None) is None:
                    raise Misreported(f"the export sent more entries than the {end} asked for")
                yield line

        books, mem, kinds = self.books, self.mem, self.kinds
        donations, entries, progress = self.donations, self.entries_sample, self.progress
        for entry in self.follower.feed(counted()):
            seq = entry.seq
            try:
                verify_signed(entry.kind, entry.body)  # what the server checked before its lock
                books.apply(entry)
            except LuodiError as exc:
                raise LogCorrupted(seq, f"the accounting rules refuse this entry: {exc.detail}", entry.receipt) from exc
            mem.mark_applied(seq)
            kinds[entry.kind] = kinds.get(entry.kind, 0) + 1
            if entry.kind == "donation":
                donations.offer(entry.leaf_hash)
            entries.offer((seq, entry.leaf_hash))
            if seq % PROGRESS_EVERY == 0:
                progress(seq + 1, self.target)
            yield entry
        if self.follower.size != end:
            raise Misreported(
                f"the export ended at seq {self.follower.size}, before the tree size {end} it was asked for",
                seq=self.follower.size,
            )
        progress(end, self.target)

    def _catch_up(self, note, claimed_size, what: str) -> Iterator[Entry]:
        """Verify ``note`` with the pinned key, follow the log to its size and check its root.

        ``claimed_size`` is the tree size the answer states beside the note."""
        cp = self.follower.open_checkpoint(note)
        if cp.size != claimed_size:
            raise Misreported(f"{what}: says tree size {claimed_size}, but its checkpoint is at {cp.size}")
        if cp.size < self.follower.size:
            raise Misreported(
                f"{what}: answers at tree size {cp.size}, older than the tree size {self.follower.size} "
                "already verified (a rollback)"
            )
        if cp.size > self.follower.size:
            self.report.catch_ups += 1
            yield from self._export(cp.size)
        self.cp, self.note = self.follower.check_checkpoint(note), note

    # -- the audit ------------------------------------------------------------------------

    def _stream(self) -> Iterator[Entry]:
        """Every entry, in order, as the audit follows them; the comparisons run
        between them, at the tree sizes the server's answers name."""
        note = self.source.checkpoint()
        pinned = self.follower.open_checkpoint(note)
        self._pin(note, pinned)
        saved = self.saved
        if saved is not None:
            saved.check_grown(pinned.size)
            yield from self._export(saved.size)
            saved.check_prefix(self.follower.size, self.follower.root(), self.follower.last_receipt)
        yield from self._export(pinned.size)
        self.cp, self.note = self.follower.check_checkpoint(note), note
        if saved is not None and pinned.size > saved.size:
            saved.check_consistency(pinned.size, pinned.root, self._consistency(saved.size, pinned.size))
        yield from self._compare_published()
        self._check_inclusions()

    def _pin(self, note, cp: Checkpoint) -> None:
        """The audited checkpoint (verified with the pinned key) meets the witness policy
        (C2SP tlog-policy), if one was given."""
        self.report.witnesses = check_witnesses(note, self.follower.verifier, self.policy)

    def _consistency(self, first: int, second: int) -> list[bytes]:
        """The server's RFC 9162 consistency proof from ``first`` to ``second`` (unverified)."""
        doc = obj(self.source.consistency(first, second), "the consistency proof answer")
        if doc.get("first") != first or doc.get("second") != second:
            raise Misreported(
                f"asked for the consistency proof from {first} to {second}, the server answered "
                f"from {doc.get('first')!r} to {doc.get('second')!r}"
            )
        return hashes(doc.get("consistency"), f"consistency proof from {first} to {second}")

    def _inclusion(self, seq: int, receipt: str, size: int, what: str) -> list[bytes]:
        """The server's inclusion proof of entry ``seq`` at ``size`` (unverified)."""
        doc = obj(self.source.inclusion(receipt, size), what)
        if doc.get("leaf_index") != seq or doc.get("tree_size") != size:
            raise Misreported(
                f"{what}: the server answered for leaf_index {doc.get('leaf_index')!r} "
                f"and tree_size {doc.get('tree_size')!r}, not {seq} and {size}",
                seq=seq, part="inclusion",
            )
        return hashes(doc.get("audit_path"), what)

    def _compare_published(self) -> Iterator[Entry]:
        """What the server publishes beside the log (its projects, sampled receipts) equals the replay."""
        yield from self._compare_projects()
        for receipt in sorted(self.donations.items):  # sorted: no order leaks from the sample
            yield from self._compare_receipt(receipt)

    def _compare_projects(self) -> Iterator[Entry]:
        doc = obj(self.source.projects(), "the /v1/projects answer")
        size = doc.get("tree_size")
        if type(size) is not int:
            raise Misreported("/v1/projects: tree_size is not an integer")
        yield from self._catch_up(doc.get("checkpoint"), size, "/v1/projects")
        self.report.projects = compare_projects(doc.get("projects"), self.mem, size)

    def _compare_receipt(self, key: bytes) -> Iterator[Entry]:
        receipt = key.hex()
        doc = obj(self.source.receipt(receipt), f"the receipt of {receipt}")
        seq = self.mem.donation(key).seq
        what = f"receipt {receipt} (seq {seq})"
        size = doc.get("tree_size")
        if type(size) is not int:
            raise Misreported(f"{what}: tree_size is not an integer", seq=seq, part="tree_size")
        try:
            yield from self._catch_up(doc.get("checkpoint"), size, what)
        except Misreported as exc:
            raise Misreported(exc.detail if exc.detail.startswith(what) else f"{what}: {exc.detail}",
                              seq=seq, part="checkpoint") from exc
        compare_receipt(doc, self.mem, key, size, self.cp.root)  # the books are now at the receipt's tree size
        try:  # and what a donor checks offline: the charity's logged keys, the signatures, the sums
            check_receipt(doc, self.follower.verifier)
        except ReceiptInvalid as exc:
            raise Misreported(f"{what}: {exc.detail}", seq=seq, part=exc.part) from exc
        self.report.receipts_checked += 1

    def _check_inclusions(self) -> None:
        size, root = self.follower.size, self.follower.root()
        for seq, key in sorted(self.entries_sample.items):
            receipt = key.hex()
            what = f"inclusion proof of seq {seq} (receipt {receipt})"
            path = self._inclusion(seq, receipt, size, what)
            try:
                verify_inclusion(key, seq, size, path, root)
            except ProofError as exc:
                raise Misreported(f"{what} at tree size {size}: {exc.detail}", seq=seq, part="inclusion") from exc
            self.report.proofs_checked += 1

    def run(self) -> RemoteReport:
        stream = self._stream()
        try:
            traces = trace_fifo(stream)
        except Overspend as exc:  # the books refuse an overspend first; a cross-check
            seq = self.follower.size - 1
            raise LogCorrupted(seq, f"the FIFO fold refuses this entry: {exc.detail}") from exc
        for receipt, trace in traces.items():
            donation = self.mem.donation(bytes.fromhex(receipt))
            if self.mem.allocations_of(bytes.fromhex(receipt)) != trace.spent or (
                donation.spent, donation.refunded) != (trace.spent_total, trace.refunded):
                raise LogCorrupted(donation.seq, "the books replay and the FIFO fold disagree", receipt)
        r = self.report
        r.entries = self.follower.size
        r.kinds = dict(self.kinds)
        r.donations = self.kinds.get("donation", 0)
        r.disbursements = self.kinds.get("disbursement", 0)
        r.refunds = self.kinds.get("refund", 0)
        r.tree_size, r.root, r.checkpoint = self.cp.size, self.cp.root, self.note
        r.state = MonitorState(
            self.follower.verifier.to_string(), self.saved.url if self.saved else "", self.cp.size, self.cp.root,
            self.note, self.follower.last_receipt,
        )
        return r


def audit_remote(source: Source, log_key, **kwargs) -> RemoteReport:
    """Audit the log behind ``source`` with only ``log_key`` trusted (see the module);
    return a report, or raise :class:`VerificationFailed` at the first fault."""
    return RemoteAudit(source, log_key, **kwargs).run()
