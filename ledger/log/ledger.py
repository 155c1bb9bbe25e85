"""The ledger: a transparency log that appends entries in batches and answers with proofs and checkpoints.

Every committed batch is one storage transaction that holds the new entries,
the Merkle nodes they completed and a checkpoint signed over the new tree
size, so a reader never sees a tree head the log has not signed.  The
ledger is generic: the kinds it accepts come from its :class:`Registry`, and
a personality's rules run as its :class:`~ledger.log.hook.AppendHook`.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from functools import cached_property
from typing import TypeVar

from ..errors import InstanceError, InvalidEntry, InvalidInput, NotFound
from .canonical import INT_MAX
from .checkpoint import Checkpoint, open_checkpoint
from .clock import utc_now
from .entry import Entry, body_bytes, load_entry, parse_entry, receipt_bytes
from .group_commit import GroupCommit
from .hook import AppendHook
from .kinds import Registry
from .merkle import (
    Frontier,
    assemble,
    consistency_plan,
    inclusion_plan,
    lower_plan,
    perfect_nodes,
    plan_nodes,
    range_root,
)
from .note import Signer, Verifier
from .store import LogStore, LogTxn
from .writer import Writer

MAX_BATCH = 100_000
# Tree nodes never change, so the upper levels (few, and in almost every proof)
# are kept in memory; the lower levels are read from storage.
CACHE_MIN_LEVEL = 6
CACHE_MAX_NODES = 1 << 17
FOLD_CACHE_MAX = 4096
# An inclusion proof of a leaf whose block of 2**CACHE_MIN_LEVEL leaves is complete
# splits in two: its lowest CACHE_MIN_LEVEL hashes (the siblings inside the block)
# depend on the leaf alone, the rest on the block and the tree size alone.  Both
# halves are kept, bounded: the upper half of every block is shared by all its
# leaves, and the entries every receipt of a project carries (its opening, its
# charity's registration) are proved again and again.
UPPER_CACHE_MAX = 1 << 14
LOWER_CACHE_MAX = 4096
# Entries read by seq, kept whole (bounded): every receipt of a project reads the
# same few (its opening, its charity's registration).
ENTRY_CACHE_MAX = 1024
# A writer whose last commit is at most this many entries behind the log
# extends its own frontier by the new leaves instead of reading the peaks back.
FRONTIER_CATCH_UP = 4096
T = TypeVar("T")


class Ledger:
    def __init__(
        self,
        store: LogStore,
        registry: Registry,
        signer: Signer | None = None,
        *,
        clock: Callable[[], str] = utc_now,
        hook: AppendHook | None = None,
    ):
        self.store = store
        self.registry = registry
        self.signer = signer
        self.clock = clock
        self.hook = hook
        self._genesis: Entry | None = None
        self._known_size = 0  # the log only grows, so sizes up to this need no query
        self._node_cache: dict = {}
        self._checkpoint_cache: tuple[str, Checkpoint] | None = None
        self._group = GroupCommit()
        self._frontier_cache: tuple[int, list[bytes]] | None = None
        self._fold_cache: dict[tuple, bytes] = {}
        self._upper_cache: dict[tuple[int, int], list[bytes]] = {}
        self._lower_cache: dict[int, list[bytes]] = {}
        self._entry_cache: dict[int, Entry] = {}

    # -- identity ------------------------------------------------------------

    @classmethod
    def create(cls, store: LogStore, registry: Registry, signer: Signer, **kwargs) -> "Ledger":
        """Open a ledger, writing its genesis entry if the store is empty."""
        ledger = cls(store, registry, signer, **kwargs)
        if store.size() == 0:
            ledger._append([("genesis", registry.genesis_body(signer.verifier))], genesis=True)
        ledger.check_signer()
        return ledger

    @property
    def genesis(self) -> Entry:
        if self._genesis is None:
            data = self.store.entry_bytes(0)
            if data is None:
                raise InstanceError("the ledger has no genesis entry")
            self._genesis = parse_entry(data, self.registry)
        return self._genesis

    @property
    def origin(self) -> str:
        return self.genesis.body["origin"]

    @cached_property
    def verifier(self) -> Verifier:
        """The log's key, as its genesis entry names it (which never changes)."""
        return Verifier.from_string(self.genesis.body["log_key"])

    def check_signer(self) -> None:
        if self.signer is not None and self.signer.verifier.to_string() != self.genesis.body["log_key"]:
            raise InstanceError("the signing key is not the log key named in the genesis entry")

    # -- appending -------------------------------------------------------------

    def append(self, kind: str, body: dict) -> Entry:
        return self.append_batch([(kind, body)])[0]

    def append_batch(self, items: Iterable[tuple[str, dict]]) -> list[Entry]:
        """Append entries as one all-or-nothing, durable transaction with a new checkpoint."""
        return self._append(list(items))

    def _append(self, items: list[tuple[str, dict]], genesis: bool = False) -> list[Entry]:
        if not items:
            raise InvalidInput("an append batch needs at least one entry")
        if len(items) > MAX_BATCH:
            raise InvalidInput(f"an append batch holds at most {MAX_BATCH} entries")
        checked = []
        for i, item in enumerate(items):
            try:
                kind, body = item
                if kind == "genesis" and not genesis:
                    raise InvalidEntry("only the log itself writes the genesis entry")
                checked.append((kind, body, body_bytes(kind, body, self.registry)))
            except InvalidEntry as exc:
                raise InvalidEntry(f"entry {i} of the batch: {exc.detail}") from exc
            except (TypeError, ValueError) as exc:
                raise InvalidEntry(f"entry {i} of the batch is not a (kind, body) pair") from exc
        if self.hook is not None:
            for kind, body, _ in checked:  # what needs no log state costs no lock time
                self.hook.check(kind, body, self.clock)

        def work(w: Writer) -> list[Entry]:
            return [w.append_checked(kind, body, data) for kind, body, data in checked]

        if genesis:
            with self.writer(_genesis=True) as w:
                return work(w)
        return self.in_group(work)[0]

    def in_group(self, work: Callable[[Writer], T]) -> tuple[T, Writer]:
        """Run ``work(writer)`` in this process's next group commit, together with
        whatever other threads append at the same moment (see
        :mod:`ledger.log.group_commit`); return its result and the committed writer."""
        return self._group.run(self.writer, work)

    def coming(self) -> AbstractContextManager[None]:
        """Announce an append this thread is about to make, so that a group being
        formed waits for it rather than for a full group (see
        :meth:`ledger.log.group_commit.GroupCommit.coming`)."""
        return self._group.coming()

    def bound_group_commit(self, **bounds) -> None:
        """Set the group commit's bounds (``max_group``, ``max_queue``, ``max_wait``,
        ``group_wait``: see :class:`~ledger.log.group_commit.GroupCommit`); call it
        before the first append."""
        self._group = GroupCommit(**bounds)

    @contextmanager
    def writer(self, _genesis: bool = False) -> Iterator[Writer]:
        """Hold the append lock: entries appended through the writer commit
        together, with one new checkpoint, when the block ends; an exception
        rolls back everything, the hook's writes included.  A writer that
        appends nothing writes nothing."""
        if self.signer is None:
            raise InstanceError("this ledger was opened without its signing key")
        with self.store.append_transaction() as txn:
            w = Writer(txn, self.registry, self.signer, self.clock, self.hook, self.peaks, _genesis)
            yield w
            w.commit()
        if w.note is not None:
            # This process signed it: no need to verify it again when asked for it.
            self._checkpoint_cache = (w.note, w.checkpoint)
            self._known_size = max(self._known_size, w.frontier.size)
            self._frontier_cache = (w.frontier.size, list(w.frontier.hashes))

    def peaks(self, txn: LogTxn, size: int) -> list[bytes]:
        """The peaks of the tree of ``size``: from the last frontier this process
        committed, extended by the few leaves other processes appended since, or
        else read from the stored nodes."""
        cached = self._frontier_cache
        if cached is not None and cached[0] <= size <= cached[0] + FRONTIER_CATCH_UP:
            frontier = Frontier(*cached)
            for leaf in txn.leaf_hashes(cached[0], size):
                frontier.append(leaf)
            if frontier.size == size:
                return frontier.hashes
        wanted = perfect_nodes(0, size)
        found = txn.nodes(wanted)
        return [found[n] for n in wanted]

    # -- reading ---------------------------------------------------------------

    def snapshot(self, streaming: bool = False) -> AbstractContextManager[None]:
        """Reads inside the block see one committed state (see :meth:`LogStore.snapshot`)."""
        return self.store.snapshot(streaming)

    def size(self) -> int:
        return self.store.size()

    def entry(self, seq: int) -> Entry:
        """A stored entry, as stored.  Reads trust the rules checked when it was
        appended; re-checking them is :func:`ledger.log.verify.verify_log`'s job, and
        whoever reads it can re-hash the canonical bytes themselves.

        An entry never changes once committed, so the last few read are kept
        (bounded): the same object may be handed to several callers, who must
        not change its body."""
        if not isinstance(seq, int) or not 0 <= seq <= INT_MAX:
            raise NotFound(f"no entry with seq {seq}")
        cache = self._entry_cache
        found = cache.get(seq)
        if found is None:
            found = self._read_entry(seq)
            if len(cache) >= ENTRY_CACHE_MAX:
                cache = self._entry_cache = {}
            cache[seq] = found
        return found

    def _read_entry(self, seq: int) -> Entry:
        data = self.store.entry_bytes(seq)
        if data is None:
            raise NotFound(f"no entry with seq {seq}")
        return load_entry(data)

    def entry_by_receipt(self, receipt: str) -> Entry:
        leaf = receipt_bytes(receipt)
        data = self.store.entry_by_hash(leaf)
        if data is None:
            raise NotFound(f"no entry with receipt hash {receipt}")
        entry = load_entry(data)
        if not hmac.compare_digest(entry.leaf_hash, leaf):
            raise NotFound(f"no entry with receipt hash {receipt}")
        return entry

    def page(self, start: int, limit: int) -> tuple[list[Entry], int | None]:
        """Up to ``limit`` entries from ``start``, in one snapshot, and the seq the
        next page starts at (None after the last entry)."""
        with self.snapshot():
            size = self.size()
            # read past the entry cache: a page would only push out the entries asked again and again
            entries = [self._read_entry(seq) for seq in range(start, min(size, start + limit))]
        end = start + len(entries)
        return entries, (end if end < size else None)

    def export(self, start: int = 0, size: int | None = None) -> Iterator[bytes]:
        """The canonical bytes of entries ``start`` up to ``size`` (default: every
        entry from ``start``), in seq order, from one snapshot.

        A ``size`` beyond the log, or a ``start`` beyond ``size``, raises
        :class:`NotFound` here, before the stream starts (the log only grows, so
        a size checked now is still there when the entries are read)."""
        end = self._tree_size(size) if size is not None else None
        if not isinstance(start, int) or not 0 <= start <= (self.size() if end is None else end):
            limit = "the log's size" if end is None else f"the tree size {end}"
            raise NotFound(f"start {start} is beyond {limit}")
        return self._export(start, end)

    def _export(self, start: int, end: int | None) -> Iterator[bytes]:
        with self.snapshot(streaming=True):
            for seq, _, _, canonical in self.store.iter_entries(start):
                if end is not None and seq >= end:
                    break
                yield canonical

    def prove_inclusion(self, receipt: str, size: int | None = None) -> tuple[Entry, int, list[bytes]]:
        """The entry with this receipt hash, the tree size (default: the latest
        checkpoint's) and the entry's RFC 9162 inclusion proof in that tree."""
        entry = self.entry_by_receipt(receipt)
        size = size or self.latest_checkpoint().size
        if entry.seq >= size:
            raise NotFound(f"leaf {entry.seq} is not in a tree of size {size}")
        return entry, size, self.inclusion_proof(entry.seq, size)

    def prove_consistency(self, first: int, second: int | None = None) -> tuple[int, list[bytes]]:
        """The second tree size (default: the latest checkpoint's) and the RFC 9162
        consistency proof from ``first`` to it."""
        second = second or self.latest_checkpoint().size
        if first > second:
            raise NotFound(f"no consistency proof from size {first} to the smaller size {second}")
        return second, self.consistency_proof(first, second)

    def _tree_size(self, size: int | None) -> int:
        if size is not None and isinstance(size, int) and 0 <= size <= self._known_size:
            return size
        current = self._known_size = self.size()
        if size is None:
            return current
        if not isinstance(size, int) or not 0 <= size <= current:
            raise NotFound(f"tree size {size} is not between 0 and {current}")
        return size

    def _nodes(self, wanted) -> dict:
        """Perfect nodes by (level, index): upper levels from memory, the rest in one query."""
        cache = self._node_cache
        hit, missing = {}, []
        for node in wanted:
            h = cache.get(node)
            if h is None:
                missing.append(node)
            else:
                hit[node] = h
        if missing:
            found = self.store.nodes(missing)
            if len(cache) > CACHE_MAX_NODES:
                cache.clear()
            for node, h in found.items():
                if node[0] >= CACHE_MIN_LEVEL:
                    cache[node] = h
            hit.update(found)
        return hit

    def root(self, size: int | None = None) -> bytes:
        size = self._tree_size(size)
        return range_root(size, self._nodes(perfect_nodes(0, size)))

    def checkpoint(self, size: int | None = None) -> str:
        """The signed checkpoint note at ``size`` (a batch boundary), or the latest."""
        found = self.store.checkpoint(size)
        if found is None:
            raise NotFound("no checkpoint" if size is None else f"no checkpoint at tree size {size}")
        return found[1]

    def latest_checkpoint_note(self) -> tuple[str, Checkpoint]:
        """The latest signed checkpoint, as its note and parsed."""
        note = self.checkpoint()
        cached = self._checkpoint_cache
        if cached is None or cached[0] != note:
            cached = self._checkpoint_cache = (note, open_checkpoint(note, self.verifier))
        return cached

    def latest_checkpoint(self) -> Checkpoint:
        return self.latest_checkpoint_note()[1]

    def inclusion_proof(self, seq: int, size: int | None = None) -> list[bytes]:
        """RFC 9162 PATH(seq, D[size]), from its two halves (see ``UPPER_CACHE_MAX``)
        when they are kept; one storage query at most."""
        size = self._tree_size(size)
        if not isinstance(seq, int) or not 0 <= seq < size:
            raise NotFound(f"seq {seq} is not in a tree of size {size}")
        block = seq >> CACHE_MIN_LEVEL
        if (block + 1) << CACHE_MIN_LEVEL > size:  # the last, incomplete block
            return self._assemble(inclusion_plan(seq, size))
        upper = self._upper_cache.get((block, size))
        lower = self._lower_cache.get(seq)
        if upper is None:
            plan = inclusion_plan(seq, size)
            if lower is None:
                proof = self._assemble(plan)
                lower, upper = proof[:CACHE_MIN_LEVEL], proof[CACHE_MIN_LEVEL:]
                self._keep_lower(seq, lower)
            else:
                upper = self._assemble(plan[CACHE_MIN_LEVEL:])
            if len(self._upper_cache) >= UPPER_CACHE_MAX:
                self._upper_cache = {}
            self._upper_cache[(block, size)] = upper
        elif lower is None:
            lower = self._keep_lower(seq, self._assemble(lower_plan(seq, CACHE_MIN_LEVEL)))
        return lower + upper

    def _keep_lower(self, seq: int, lower: list[bytes]) -> list[bytes]:
        if len(self._lower_cache) >= LOWER_CACHE_MAX:
            self._lower_cache = {}
        self._lower_cache[seq] = lower
        return lower

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        size2 = self._tree_size(size2)
        if not isinstance(size1, int) or not 0 < size1 <= size2:
            raise NotFound(f"no consistency proof from size {size1} to size {size2}")
        return self._assemble(consistency_plan(size1, size2))

    def _assemble(self, plan: list) -> list[bytes]:
        """A plan's hashes, with the folds of ragged ranges kept (bounded).  A full
        cache is replaced, not cleared, so a proof under way in another thread
        keeps the folds it counted on."""
        folded = self._fold_cache
        if len(folded) >= FOLD_CACHE_MAX:
            folded = self._fold_cache = {}
        return assemble(plan, self._nodes(plan_nodes(plan, folded)), folded)
