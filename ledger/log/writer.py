"""An open append: seals entries, runs the personality's hook on each, and commits them
with the Merkle nodes they complete and one new signed checkpoint."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from ..errors import EntryTooLarge, InvalidEntry, LogCorrupted, LuodiError, NotFound
from .canonical import parse_json
from .checkpoint import Checkpoint
from .clock import check_time
from .entry import GENESIS_PREV, Entry, body_bytes, parse_entry, seal
from .hook import AppendHook, OpenHook
from .kinds import Registry
from .merkle import HASH_SIZE, Frontier, fold, pack_nodes, perfect_nodes
from .note import Signer
from .store import LogTxn, Row
from .tiles import MAX_ENTRY_BYTES

Peaks = Callable[[LogTxn, int], list[bytes]]


def _fits(entry: Entry) -> Entry:
    """Refuse an entry whose canonical bytes a C2SP tlog-tiles entry bundle cannot
    carry (a uint16 length: 65,535 bytes at most, docs/entries.md)."""
    if len(entry.canonical) > MAX_ENTRY_BYTES:
        raise EntryTooLarge(
            f"the entry would be {len(entry.canonical):,} bytes of canonical JSON, over the "
            f"{MAX_ENTRY_BYTES:,}-byte limit of an entry (a tlog-tiles entry bundle's uint16 length)"
        )
    return entry


class Writer:
    """An open append, opened by :meth:`ledger.log.ledger.Ledger.writer` inside
    the append transaction ``txn``, with the ledger's settings.

    ``peaks(txn, size)`` gives the roots of the perfect subtrees of the tree
    of ``size`` (the ledger keeps them between commits).  ``hook`` is the
    personality's :class:`~ledger.log.hook.OpenHook` for this append (None for
    a bare log); work done inside the writer may read and write through it, in
    the same transaction."""

    def __init__(
        self,
        txn: LogTxn,
        registry: Registry,
        signer: Signer,
        clock: Callable[[], str],
        hook: AppendHook | None,
        peaks: Peaks,
        genesis: bool = False,
    ):
        self.registry = registry
        self.signer = signer
        self.txn = txn
        size, last_hash, last_bytes = txn.tip()
        if genesis != (size == 0):
            raise InvalidEntry("the genesis entry is seq 0 and only seq 0")
        self.prev = last_hash.hex() if last_hash else GENESIS_PREV
        last_time = parse_json(last_bytes)["time"] if last_bytes else ""
        # Fixed-width RFC 3339: string order is time order, so time never goes back.
        self.time = max(check_time(clock()), last_time)
        self.frontier = Frontier(size, peaks(txn, size))
        # The peaks at the start: with the nodes its rows complete, enough to prove
        # any entry this writer appends without reading the tree back (proof()).
        self._start_peaks = tuple(self.frontier.hashes)
        self.entries: list[Entry] = []
        self._rows: list[Row] = []
        self.note: str | None = None  # the signed checkpoint, once committed
        self._levels_kept: list[dict[int, bytes]] | None = None  # proofs' nodes, once committed
        self.checkpoint: Checkpoint | None = None
        self._check = hook.check if hook is not None else None
        self.hook: OpenHook | None = hook.open(txn) if hook is not None else None
        if self.hook is not None:
            self._catch_up(size)

    def _catch_up(self, size: int) -> None:
        """Bring the hook up to the log if entries were appended without it."""
        applied = self.hook.applied()
        if applied >= size - 1:
            return
        for seq, _, _, canonical in self.txn.rows(applied + 1):
            try:
                entry = parse_entry(canonical, self.registry)
                self._check(entry.kind, entry.body, lambda at=entry.time: at)  # checked at its own time
                self.hook.apply(entry)
            except LuodiError as exc:
                raise LogCorrupted(seq, f"the books refuse this stored entry: {exc.detail}") from exc
        self.hook.mark_applied(size - 1)

    def append(self, kind: str, body: dict) -> Entry:
        if kind == "genesis":
            raise InvalidEntry("only the log itself writes the genesis entry")
        data = body_bytes(kind, body, self.registry)
        if self._check is not None:
            self._check(kind, body, lambda: self.time)
        return self.append_checked(kind, body, data)

    def append_checked(self, kind: str, body: dict, data: bytes) -> Entry:
        """Seal a body already checked by :func:`body_bytes` and the hook's
        :meth:`~ledger.log.hook.AppendHook.check`, run the hook on it, stage it."""
        seq = self.frontier.size
        entry = _fits(seal(seq, self.prev, self.time, kind, body, data))
        if self.hook is not None:
            self.hook.apply(entry)
        made = self.frontier.append(entry.leaf_hash)
        self._rows.append((seq, entry.leaf_hash, pack_nodes(made), entry.canonical))
        self.entries.append(entry)
        self.prev = entry.receipt
        return entry

    def append_many_checked(self, items: list[tuple[str, dict, bytes]]) -> list[Entry]:
        """:meth:`append_checked` of many ``(kind, body, canonical body)``, sealed in
        order and handed to the hook together (:meth:`OpenHook.apply_batch`): if it
        refuses them, none is staged."""
        seq, prev, time = self.frontier.size, self.prev, self.time
        entries = []
        for kind, body, data in items:
            entry = _fits(seal(seq, prev, time, kind, body, data))
            entries.append(entry)
            prev = entry.receipt
            seq += 1
        if self.hook is not None and entries:
            self.hook.apply_batch(entries)
        rows, frontier = self._rows, self.frontier
        for entry in entries:
            rows.append((entry.seq, entry.leaf_hash, pack_nodes(frontier.append(entry.leaf_hash)), entry.canonical))
        self.entries.extend(entries)
        self.prev = prev
        return entries

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """An exception inside the block undoes what it appended (rows, hook and
        tree), and only that; the writer goes on from where the block began."""
        size, hashes, count, prev = self.frontier.size, list(self.frontier.hashes), len(self.entries), self.prev
        with self.txn.savepoint():
            try:
                yield
            except BaseException:
                self.frontier = Frontier(size, hashes)
                del self.entries[count:], self._rows[count:]
                self.prev = prev
                raise

    def staged(self, leaf_hash: bytes) -> Entry | None:
        """An entry appended earlier in this writer, by its leaf hash."""
        return next((e for e in self.entries if e.leaf_hash == leaf_hash), None)

    def proof(self, seq: int) -> list[bytes]:
        """RFC 9162 inclusion proof of an entry this writer appended, in the tree
        it commits, from memory.  Every node such a proof needs is either one
        of the peaks the writer started from (a left sibling whose parent spans
        the start) or a node completed by this writer's own appends."""
        return self.proofs([seq])[0]

    def proofs(self, seqs: Iterable[int]) -> list[list[bytes]]:
        """:meth:`proof` of each of ``seqs``: the path of :func:`~ledger.log.merkle.inclusion_plan`,
        its nodes looked up by level and index in the writer's nodes (:meth:`_levels`),
        and the fold of the tree's ragged right edge, which a batch's proofs share,
        computed once."""
        size = self.frontier.size
        first = size - len(self._rows)
        levels = self._levels()
        folded: dict[int, bytes] = {}
        out = []
        for seq in seqs:
            if not first <= seq < size:
                raise NotFound(f"entry {seq} was not appended by this writer")
            # Below level inner - 1 every sibling is perfect; there, the sibling may be the
            # ragged right edge; above it, the left siblings on the border.
            inner = (seq ^ (size - 1)).bit_length()
            proof = [levels[level][(seq >> level) ^ 1] for level in range(inner - 1)]
            if inner:
                level = inner - 1
                sibling = (seq >> level) ^ 1
                lo = sibling << level
                if lo + (1 << level) <= size:
                    proof.append(levels[level][sibling])
                else:
                    h = folded.get(lo)
                    if h is None:
                        h = folded[lo] = fold([levels[lv][ix] for lv, ix in perfect_nodes(lo, size)])
                    proof.append(h)
            rest, level = seq >> inner, inner
            while rest:
                if rest & 1:
                    proof.append(levels[level][rest ^ 1])
                rest >>= 1
                level += 1
            out.append(proof)
        return out

    def _levels(self) -> list[dict[int, bytes]]:
        """The nodes a proof of this writer's entries may need, by level then index: the
        peaks it started from, its leaves and the nodes they completed.  Kept once
        committed (nothing is appended or undone after that)."""
        if self._levels_kept is not None:
            return self._levels_kept
        size = self.frontier.size
        levels: list[dict[int, bytes]] = [{} for _ in range(size.bit_length() + 1)]
        first = size - len(self._rows)
        for (level, index), h in zip(perfect_nodes(0, first), self._start_peaks, strict=True):
            levels[level][index] = h
        leaves = levels[0]
        for seq, leaf, packed, _ in self._rows:
            leaves[seq] = leaf
            for k in range(len(packed) // HASH_SIZE):  # the nodes of levels 1, 2 ... that leaf seq completed
                levels[k + 1][((seq + 1) >> (k + 1)) - 1] = packed[k * HASH_SIZE : (k + 1) * HASH_SIZE]
        if self.note is not None:
            self._levels_kept = levels
        return levels

    def commit(self) -> None:
        if not self._rows:
            return
        size = self.frontier.size
        checkpoint = Checkpoint(self.signer.name, size, self.frontier.root())
        self.note = checkpoint.sign(self.signer)
        self.txn.write(self._rows, (size, self.note))
        if self.hook is not None:
            self.hook.mark_applied(size - 1)
        self.checkpoint = checkpoint
