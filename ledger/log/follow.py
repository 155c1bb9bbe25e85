"""Follow a log from outside: check entries as they arrive, in O(log n) memory.

A :class:`Follower` is what an auditor or a monitor that holds nothing but the
log's pinned verifier key runs over a server's export.  Feed it canonical entry
bytes in seq order (:meth:`Follower.feed`); each entry gets the checks of
whole-log verification (:func:`ledger.log.verify.check_chunk`, linked with
:class:`ledger.log.verify.Chain`): canonical form, its kind's rules, the leaf
hash, the ``prev`` link, time never going back, and a genesis entry that names
the pinned key (never the other way round: the genesis key is not trusted).
The tree is kept as a compact range (:class:`ledger.log.merkle.Frontier`).

A signed checkpoint is checked against the pinned key only
(:meth:`Follower.open_checkpoint`), and its size and root against the entries
followed so far (:meth:`Follower.check_checkpoint`).  Feeding more entries later
catches up to a larger tree.

Every fault raises :class:`LogCorrupted` naming the seq and, when the entry's
bytes are at hand, its receipt hash.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Iterator

from ..errors import LogCorrupted, LuodiError, Misreported
from .checkpoint import Checkpoint, open_checkpoint
from .entry import Entry
from .kinds import Registry
from .merkle import Frontier, leaf_hash
from .note import Verifier
from .verify import CHUNK, Chain, check_chunk


class Follower:
    """A log followed entry by entry from seq 0, trusting only ``log_key``."""

    def __init__(self, registry: Registry, log_key: str | Verifier, chunk: int = CHUNK):
        self.registry = registry
        self.verifier = Verifier.from_string(log_key) if isinstance(log_key, str) else log_key
        self.chain = Chain(self.verifier)
        self.frontier = Frontier()
        self.chunk = chunk

    @property
    def size(self) -> int:
        """How many entries have been followed (and checked)."""
        return self.frontier.size

    @property
    def last_receipt(self) -> str | None:
        """The receipt hash of the last entry followed (None before the genesis)."""
        return self.chain.prev if self.size else None

    def root(self) -> bytes:
        return self.frontier.root()

    def feed(self, lines: Iterable[bytes]) -> Iterator[Entry]:
        """Check canonical entries that continue the log, yielding each parsed
        entry once it and every entry before it passed.

        Entries are checked in chunks, so an entry is yielded after the rest of
        its chunk was checked; a fault raises after the good entries before it
        were yielded."""
        batch: list[bytes] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= self.chunk:
                yield from self._check(batch)
                batch = []
        if batch:
            yield from self._check(batch)

    def _check(self, batch: list[bytes]) -> list[Entry]:
        start = self.frontier.size
        result = check_chunk([(start + i, None, c) for i, c in enumerate(batch)], self.registry, keep=True)
        self.chain.link(result, start)
        append = self.frontier.append
        for h in result.leaf_hashes:
            append(h)
        if result.error is not None:
            seq, detail = result.error
            data = batch[seq - start]
            raise LogCorrupted(seq, detail, leaf_hash(data).hex() if isinstance(data, bytes) else None)
        return result.entries

    def open_checkpoint(self, note) -> Checkpoint:
        """Verify a signed checkpoint note with the pinned key, and no other; parse it.

        Its origin must be the pinned key's name (and the genesis entry's origin,
        once followed).  Anything that is not such a note is a verification failure."""
        if isinstance(note, bytes):
            try:
                note = note.decode("utf-8")
            except UnicodeDecodeError:
                raise Misreported("the checkpoint is not UTF-8 text", part="checkpoint") from None
        if not isinstance(note, str):
            raise Misreported("the checkpoint is not a signed note (not text)", part="checkpoint")
        try:
            return open_checkpoint(note, self.verifier, self.chain.origin)
        except LuodiError as exc:
            raise Misreported(
                f"the checkpoint does not verify with the pinned log key: {exc.detail}", part="checkpoint"
            ) from exc

    def check_checkpoint(self, note) -> Checkpoint:
        """Verify ``note`` (:meth:`open_checkpoint`) and that it signs exactly the
        entries followed so far: the same size and the same root."""
        cp = self.open_checkpoint(note)
        size = self.frontier.size
        if cp.size != size:
            raise LogCorrupted(
                max(min(cp.size, size) - 1, 0),
                f"the checkpoint says tree size {cp.size}, but {size} entries were followed",
                self.last_receipt,
            )
        if not hmac.compare_digest(cp.root, self.frontier.root()):
            raise LogCorrupted(
                size - 1, f"the checkpoint at tree size {size} has a root that does not match the entries",
                self.last_receipt,
            )
        return cp
