"""The ledger: appends entries in batches and answers with proofs and checkpoints.

Every committed batch is one storage transaction that holds the new entries,
the Merkle nodes they completed and a checkpoint signed over the new tree
size, so a reader never sees a tree head the log has not signed.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import cached_property
from typing import TypeVar

from .canonical import INT_MAX, parse_json
from .checkpoint import Checkpoint, open_checkpoint
from .books import DEFAULT_WINDOW_SECONDS
from .entry import GENESIS_PREV, Entry, body_bytes, check_time, load_entry, parse_entry, seal, utc_now
from .errors import InstanceError, InvalidEntry, InvalidInput, LogCorrupted, LuodiError, NotFound
from .group_commit import GroupCommit
from .kinds import ALLOCATION_POLICY, HASH_ALGORITHM
from .merkle import (
    Frontier,
    assemble,
    consistency_plan,
    inclusion_plan,
    perfect_nodes,
    plan_nodes,
    range_root,
)
from .note import Signer, Verifier
from .storage import Storage

MAX_BATCH = 100_000
# Tree nodes never change, so the upper levels (few, and in almost every proof)
# are kept in memory; the lower levels are read from storage.
CACHE_MIN_LEVEL = 6
CACHE_MAX_NODES = 1 << 17
FOLD_CACHE_MAX = 4096
# A writer whose last commit is at most this many entries behind the log
# extends its own frontier by the new leaves instead of reading the peaks back.
FRONTIER_CATCH_UP = 4096
T = TypeVar("T")


class Writer:
    """An open append (see :meth:`Ledger.writer`)."""

    def __init__(self, ledger: "Ledger", txn, genesis: bool):
        self.ledger = ledger
        self.txn = txn
        size, last_hash, last_bytes = txn.tip()
        if genesis != (size == 0):
            raise InvalidEntry("the genesis entry is seq 0 and only seq 0")
        self.prev = last_hash.hex() if last_hash else GENESIS_PREV
        last_time = parse_json(last_bytes)["time"] if last_bytes else ""
        # Fixed-width RFC 3339: string order is time order, so time never goes back.
        self.time = max(check_time(ledger.clock()), last_time)
        self.frontier = Frontier(size, ledger._frontier(txn, size))
        # The peaks at the start: with the nodes its rows complete, enough to prove
        # any entry this writer appends without reading the tree back (proof()).
        self._start_peaks = tuple(self.frontier.hashes)
        self.entries: list[Entry] = []
        self._rows: list[tuple[int, bytes, bytes, bytes]] = []
        self.note: str | None = None  # the signed checkpoint, once committed
        self.checkpoint: Checkpoint | None = None
        self.books = txn.books(ledger.window_seconds)
        self._catch_up(size)

    def _catch_up(self, size: int) -> None:
        """Bring the books up to the log if entries were appended without them."""
        applied = self.books.applied()
        if applied >= size - 1:
            return
        for seq, _, _, canonical in self.ledger.storage.iter_entries(applied + 1):
            try:
                self.books.apply(parse_entry(canonical))
            except LuodiError as exc:
                raise LogCorrupted(seq, f"the books refuse this stored entry: {exc.detail}") from exc
        self.books.mark_applied(size - 1)

    def append(self, kind: str, body: dict) -> Entry:
        if kind == "genesis":
            raise InvalidEntry("only the log itself writes the genesis entry")
        return self.append_checked(kind, body, body_bytes(kind, body))

    def append_checked(self, kind: str, body: dict, data: bytes) -> Entry:
        """Seal a body already checked by :func:`body_bytes`, apply the books' rules, stage it."""
        seq = self.frontier.size
        entry = seal(seq, self.prev, self.time, kind, body, data)
        self.books.apply(entry)
        made = self.frontier.append(entry.leaf_hash)
        self._rows.append((seq, entry.leaf_hash, b"".join([m[2] for m in made]), entry.canonical))
        self.entries.append(entry)
        self.prev = entry.receipt
        return entry

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """An exception inside the block undoes what it appended (rows, books and
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

    def proof(self, seq: int) -> list[bytes]:
        """RFC 9162 inclusion proof of an entry this writer appended, in the tree
        it commits, from memory.  Every node such a proof needs is either one
        of the peaks the writer started from (a left sibling whose parent spans
        the start) or a node completed by this writer's own appends."""
        size = self.frontier.size
        first = size - len(self._rows)
        if not first <= seq < size:
            raise NotFound(f"entry {seq} was not appended by this writer")
        plan = inclusion_plan(seq, size)
        peaks = dict(zip(perfect_nodes(0, first), self._start_peaks))
        nodes = {}
        for level, index in plan_nodes(plan):
            last = ((index + 1) << level) - 1  # the row that completed the node (the storage layout)
            if last < first:
                nodes[(level, index)] = peaks[(level, index)]
            else:
                _, leaf, tree, _ = self._rows[last - first]
                nodes[(level, index)] = leaf if level == 0 else tree[32 * (level - 1) : 32 * level]
        return assemble(plan, nodes)

    def commit(self) -> None:
        if not self._rows:
            return
        size = self.frontier.size
        signer = self.ledger.signer
        checkpoint = Checkpoint(signer.name, size, self.frontier.root())
        self.note = checkpoint.sign(signer)
        self.txn.write(self._rows, (size, self.note))
        self.books.mark_applied(size - 1)
        self.checkpoint = checkpoint


class Ledger:
    def __init__(
        self,
        storage: Storage,
        signer: Signer | None = None,
        clock: Callable[[], str] = utc_now,
        window_seconds: int = DEFAULT_WINDOW_SECONDS,
    ):
        self.storage = storage
        self.signer = signer
        self.clock = clock
        self.window_seconds = window_seconds
        self._genesis: Entry | None = None
        self._known_size = 0  # the log only grows, so sizes up to this need no query
        self._node_cache: dict = {}
        self._checkpoint_cache: tuple[str, Checkpoint] | None = None
        self._group = GroupCommit()
        self._frontier_cache: tuple[int, list[bytes]] | None = None
        self._fold_cache: dict[tuple, bytes] = {}

    # -- identity ------------------------------------------------------------

    @classmethod
    def create(cls, storage: Storage, signer: Signer, **kwargs) -> "Ledger":
        """Open a ledger, writing its genesis entry if the store is empty."""
        ledger = cls(storage, signer, **kwargs)
        if storage.size() == 0:
            body = {
                "origin": signer.name,
                "log_key": signer.verifier.to_string(),
                "hash": HASH_ALGORITHM,
                "allocation": ALLOCATION_POLICY,
            }
            ledger._append([("genesis", body)], genesis=True)
        ledger.check_signer()
        return ledger

    @property
    def genesis(self) -> Entry:
        if self._genesis is None:
            data = self.storage.entry_bytes(0)
            if data is None:
                raise InstanceError("the ledger has no genesis entry")
            self._genesis = parse_entry(data)
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
                checked.append((kind, body, body_bytes(kind, body)))
            except InvalidEntry as exc:
                raise InvalidEntry(f"entry {i} of the batch: {exc.detail}") from exc
            except (TypeError, ValueError) as exc:
                raise InvalidEntry(f"entry {i} of the batch is not a (kind, body) pair") from exc

        def work(w: Writer) -> list[Entry]:
            return [w.append_checked(kind, body, data) for kind, body, data in checked]

        if genesis:
            with self.writer(_genesis=True) as w:
                return work(w)
        return self.in_group(work)[0]

    def in_group(self, work: Callable[["Writer"], T]) -> tuple[T, "Writer"]:
        """Run ``work(writer)`` in this process's next group commit, together with
        whatever other threads append at the same moment (see
        :mod:`ledger.group_commit`); return its result and the committed writer."""
        return self._group.run(self, work)

    @contextmanager
    def writer(self, _genesis: bool = False) -> Iterator["Writer"]:
        """Hold the append lock: entries appended through the writer commit
        together, with one new checkpoint, when the block ends; an exception
        rolls back everything, the books included.  A writer that appends
        nothing writes nothing."""
        if self.signer is None:
            raise InstanceError("this ledger was opened without its signing key")
        with self.storage.append_transaction() as txn:
            w = Writer(self, txn, _genesis)
            yield w
            w.commit()
        if w._rows:
            # This process signed it: no need to verify it again when asked for it.
            self._checkpoint_cache = (w.note, w.checkpoint)
            self._known_size = max(self._known_size, w.frontier.size)
            self._frontier_cache = (w.frontier.size, list(w.frontier.hashes))

    def _frontier(self, txn, size: int) -> list[bytes]:
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

    def size(self) -> int:
        return self.storage.size()

    def entry(self, seq: int) -> Entry:
        """A stored entry, as stored.  Reads trust the rules checked when it was
        appended; re-checking them is :func:`ledger.verify.verify_log`'s job, and
        whoever reads it can re-hash the canonical bytes themselves."""
        data = self.storage.entry_bytes(seq) if isinstance(seq, int) and 0 <= seq <= INT_MAX else None
        if data is None:
            raise NotFound(f"no entry with seq {seq}")
        return load_entry(data)

    def entry_by_receipt(self, receipt: str) -> Entry:
        try:
            leaf = bytes.fromhex(receipt) if isinstance(receipt, str) and len(receipt) == 64 else b""
        except ValueError:
            leaf = b""
        if len(leaf) != 32 or receipt != receipt.lower():
            raise InvalidInput("a receipt hash is 64 lowercase hex digits")
        data = self.storage.entry_by_hash(leaf)
        if data is None:
            raise NotFound(f"no entry with receipt hash {receipt}")
        entry = load_entry(data)
        if not hmac.compare_digest(entry.leaf_hash, leaf):
            raise NotFound(f"no entry with receipt hash {receipt}")
        return entry

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
            found = self.storage.nodes(missing)
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
        found = self.storage.checkpoint(size)
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
        size = self._tree_size(size)
        if not isinstance(seq, int) or not 0 <= seq < size:
            raise NotFound(f"seq {seq} is not in a tree of size {size}")
        return self._assemble(inclusion_plan(seq, size))

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
