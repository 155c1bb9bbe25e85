"""Whole-log verification: one streaming pass in O(log n) memory.

:func:`verify_stream` checks a stream of stored rows and checkpoints, from
any source, and imports nothing of a database; :func:`verify_log` feeds it
a log store's rows inside one snapshot.  For every entry it re-derives the
canonical bytes, the leaf hash and the ``prev`` link, checks the entry's own
rules and that time never goes back.  It rebuilds the Merkle tree as a
compact range, compares the interior nodes each stored row carries with the
ones the entry really completes, and checks every stored checkpoint's
signature (with the log key of the genesis entry, or a pinned one) and root.
The first fault raises :class:`LogCorrupted` with the seq where it lies.

The per-entry work (:func:`check_chunk`: parse, canonical form, rules, leaf
hash, chain links) is pure and runs on chunks of rows, in this process or, for
large logs, in worker processes on every core; the tree and the checkpoints are
checked here, in order, as the chunks come back.  At most ``2 * workers``
chunks are in flight, so memory stays flat as the log grows.
"""

from __future__ import annotations

import hmac
import multiprocessing
import os
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from ..errors import LogCorrupted, LuodiError
from .checkpoint import open_checkpoint
from .entry import GENESIS_PREV, Entry, parse_entry
from .kinds import Registry
from .merkle import Frontier, leaf_hash, pack_nodes
from .note import Verifier
from .store import LogStore, Row
from .tiles import MAX_ENTRY_BYTES

CHUNK = 2048
PARALLEL_FROM = 50_000  # below this many entries, starting workers costs more than it saves


@dataclass(frozen=True)
class VerifyReport:
    size: int
    root: bytes
    checkpoints: int
    origin: str
    log_key: str
    # (seq, bytes) of entries over the 65,535-byte limit of a tlog-tiles entry bundle,
    # appended before the log enforced it: the log verifies, but cannot be served as tiles
    oversize: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class ChunkResult:
    """What :func:`check_chunk` learned from consecutive rows, up to the first fault."""

    leaf_hashes: list[bytes]
    first_prev: str | None
    first_time: str | None
    last_time: str | None
    genesis: tuple[str, str] | None  # (origin, log key) if the chunk holds seq 0
    error: tuple[int, str] | None
    entries: list[Entry] | None = None  # the parsed entries, when asked for (``keep``)


def check_chunk(rows: list[tuple[int, bytes | None, bytes]], registry: Registry, keep: bool = False) -> ChunkResult:
    """Check rows ``(seq, stored leaf hash, canonical bytes)`` of consecutive seqs.

    Everything that needs no state from before the chunk is checked here; the
    caller links ``first_prev`` and ``first_time`` to the previous chunk (:class:`Chain`).
    A stored leaf hash of None is not compared (entries read from a server's
    export carry none); ``keep`` returns the parsed entries as well.
    """
    hashes: list[bytes] = []
    kept: list[Entry] | None = [] if keep else None
    first_prev = first_time = last_time = None
    genesis = None
    error = None
    prev = None
    for seq, stored_hash, canonical in rows:
        if not isinstance(canonical, bytes) or not (stored_hash is None or isinstance(stored_hash, bytes)):
            error = (seq, "stored row does not hold bytes (the column types were changed)")
            break
        try:
            entry = parse_entry(canonical, registry)
        except LuodiError as exc:
            error = (seq, f"entry is invalid: {exc.detail}")
            break
        if entry.seq != seq:
            error = (seq, f"entry stored at seq {seq} says seq {entry.seq}")
            break
        if stored_hash is not None and not hmac.compare_digest(entry.leaf_hash, stored_hash):
            error = (seq, "stored leaf hash does not match the entry's bytes")
            break
        if prev is None:
            first_prev, first_time = entry.prev, entry.time
        elif entry.prev != prev:
            error = (seq, f"prev is {entry.prev}, but entry {seq - 1} has receipt {prev}")
            break
        elif entry.time < last_time:
            error = (seq, f"time {entry.time} is before the previous entry's {last_time}")
            break
        if (entry.kind == "genesis") != (seq == 0):
            error = (seq, "the first entry is not the genesis entry" if seq == 0 else "a second genesis entry")
            break
        if seq == 0:
            genesis = (entry.body["origin"], entry.body["log_key"])
        hashes.append(entry.leaf_hash)
        if kept is not None:
            kept.append(entry)
        prev = entry.receipt
        last_time = entry.time
    return ChunkResult(hashes, first_prev, first_time, last_time, genesis, error, kept)


class Chain:
    """What links a checked chunk to the entries before it: the previous entry's
    receipt, the last time, and the genesis entry's origin and log key (which must
    be the pinned key, when one is pinned).  O(1) memory."""

    __slots__ = ("pinned", "verifier", "origin", "prev", "last_time")

    def __init__(self, pinned: Verifier | None = None):
        self.pinned = pinned
        self.verifier = pinned
        self.origin: str | None = None
        self.prev = GENESIS_PREV
        self.last_time = ""

    def link(self, result: ChunkResult, seq: int) -> None:
        """Link ``result``, whose first entry is ``seq``; raise :class:`LogCorrupted` at a broken link.

        (The chunk's own fault, ``result.error``, is the caller's to raise once it
        has used the entries before it.)"""
        if result.genesis is not None:
            self.origin = result.genesis[0]
            genesis_key = Verifier.from_string(result.genesis[1])
            if self.pinned is not None and self.pinned != genesis_key:
                raise LogCorrupted(
                    0, "the genesis entry names a different log key than the pinned one", _hex(result.leaf_hashes)
                )
            self.verifier = genesis_key
        if result.leaf_hashes:
            if result.first_prev != self.prev:
                raise LogCorrupted(
                    seq, f"prev is {result.first_prev}, but entry {seq - 1} has receipt {self.prev}",
                    result.leaf_hashes[0].hex(),
                )
            if result.first_time < self.last_time:
                raise LogCorrupted(
                    seq, f"time {result.first_time} is before the previous entry's {self.last_time}",
                    result.leaf_hashes[0].hex(),
                )
            self.prev, self.last_time = result.leaf_hashes[-1].hex(), result.last_time


def _hex(hashes: list[bytes]) -> str | None:
    return hashes[0].hex() if hashes else None


Run = Callable[[Iterator[list]], Iterator[ChunkResult]]


def verify_log(
    store: LogStore, registry: Registry, log_key: str | Verifier | None = None, workers: int | None = None
) -> VerifyReport:
    """Re-verify the whole stored log; return a report or raise :class:`LogCorrupted`.

    ``log_key`` pins the log's verifier key; by default the genesis entry's is
    used (and then an auditor should compare it with the key it trusts).
    ``workers`` is the number of processes for the per-entry checks (default:
    every core for large logs, else 1, which runs everything in this process).
    """
    with store.snapshot(streaming=True):
        if workers is None:
            workers = (os.cpu_count() or 1) if store.size() >= PARALLEL_FROM else 1
        rows, checkpoints = store.iter_entries(), store.iter_checkpoints()
        if workers <= 1:
            return verify_stream(rows, checkpoints, registry, log_key)
        # fork: workers need nothing but this module's pure functions, start fast
        # and never touch the parent's database connection (they leave by _exit).
        ctx = multiprocessing.get_context("fork" if threading.active_count() == 1 else "forkserver")
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
            run = lambda chunks: _in_pool(pool, chunks, registry, 2 * workers)  # noqa: E731
            return verify_stream(rows, checkpoints, registry, log_key, run)


def _in_pool(pool, chunks, registry: Registry, depth: int) -> Iterator[ChunkResult]:
    pending: deque = deque()
    for chunk in chunks:
        pending.append(pool.submit(check_chunk, chunk, registry))
        if len(pending) >= depth:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def verify_stream(
    rows: Iterable[Row],
    checkpoints: Iterable[tuple[int, str]],
    registry: Registry,
    log_key: str | Verifier | None = None,
    run: Run | None = None,
) -> VerifyReport:
    """Verify rows ``(seq, stored leaf hash, stored nodes, canonical bytes)`` in
    seq order and the signed checkpoints ``(tree size, note)`` in size order,
    as a log store holds them; return a report or raise :class:`LogCorrupted`.

    ``run`` maps chunks of ``(seq, leaf hash, canonical)`` to their
    :class:`ChunkResult` (default: :func:`check_chunk`, here and in order)."""
    pinned = Verifier.from_string(log_key) if isinstance(log_key, str) else log_key
    if run is None:
        run = lambda chunks: (check_chunk(c, registry) for c in chunks)  # noqa: E731
    trees: deque[tuple[list, list]] = deque()  # stored nodes and rows of chunks in flight, in order
    state = {"expected": 0, "gap": False}
    oversize = []

    def chunks():
        batch, tree = [], []
        for seq, stored_hash, stored_tree, canonical in rows:
            if seq != state["expected"]:
                state["gap"] = True
                break  # reported after the rows before it are checked
            state["expected"] = seq + 1
            if isinstance(canonical, bytes) and len(canonical) > MAX_ENTRY_BYTES:
                oversize.append((seq, len(canonical)))
            batch.append((seq, stored_hash, canonical))
            tree.append(stored_tree)
            if len(batch) == CHUNK:
                trees.append((tree, batch))
                yield batch
                batch, tree = [], []
        if batch:
            trees.append((tree, batch))
            yield batch

    checkpoints = iter(checkpoints)
    next_cp = next(checkpoints, None)
    frontier = Frontier()
    chain = Chain(pinned)
    seen_cps, last_cp = 0, None
    for result in run(chunks()):
        stored_trees, batch = trees.popleft()
        start = frontier.size
        chain.link(result, start)
        verifier, origin = chain.verifier, chain.origin
        # leaf_hashes is shorter than stored_trees when the chunk stopped at a fault.
        for leaf, stored_tree in zip(result.leaf_hashes, stored_trees, strict=False):
            seq = frontier.size
            made = frontier.append(leaf)
            if not isinstance(stored_tree, bytes) or not hmac.compare_digest(stored_tree, pack_nodes(made)):
                raise LogCorrupted(
                    seq, f"stored tree nodes of this entry do not match ({_which(made, stored_tree)})", leaf.hex()
                )
            while next_cp is not None and next_cp[0] <= frontier.size:
                if next_cp[0] < frontier.size:
                    raise LogCorrupted(max(next_cp[0] - 1, 0), f"checkpoint at tree size {next_cp[0]} is out of order")
                _check_checkpoint(next_cp, frontier, verifier, origin)
                seen_cps, last_cp = seen_cps + 1, next_cp[0]
                next_cp = next(checkpoints, None)
        if result.error is not None:
            seq, detail = result.error
            data = batch[seq - start][2]
            raise LogCorrupted(seq, detail, leaf_hash(data).hex() if isinstance(data, bytes) else None)
    size = frontier.size
    if size != state["expected"]:  # pragma: no cover - an error above always fires first
        raise LogCorrupted(size, "verification stopped early")
    if state["gap"]:
        raise LogCorrupted(size, f"entry {size} is missing (the store holds later entries)")
    if next_cp is not None:
        raise LogCorrupted(max(size - 1, 0), f"checkpoint at tree size {next_cp[0]} is beyond the log's {size} entries")
    if size and last_cp != size:
        raise LogCorrupted(size - 1, "the newest entries are not covered by a checkpoint")
    verifier = chain.verifier
    key = verifier.to_string() if verifier else ""
    return VerifyReport(size, frontier.root(), seen_cps, chain.origin or "", key, tuple(oversize))


def _which(made, stored) -> str:
    if not isinstance(stored, bytes):
        return "not stored as bytes"
    if len(stored) != 32 * len(made):
        return f"{len(stored) // 32} stored, {len(made)} expected"
    for i, (level, index, h) in enumerate(made):
        if not hmac.compare_digest(stored[32 * i : 32 * i + 32], h):
            return f"node level {level}, index {index}"
    return "unknown"  # pragma: no cover - compare_digest already differed


def _check_checkpoint(row, frontier: Frontier, verifier: Verifier | None, origin: str | None) -> None:
    size, note = row
    seq = size - 1
    if verifier is None:
        raise LogCorrupted(seq, "checkpoint before any genesis entry")
    try:
        cp = open_checkpoint(note, verifier, origin)
    except LuodiError as exc:
        raise LogCorrupted(seq, f"checkpoint at tree size {size}: {exc.detail}") from exc
    if cp.size != size:
        raise LogCorrupted(seq, f"checkpoint stored for tree size {size} says size {cp.size}")
    if not hmac.compare_digest(cp.root, frontier.root()):
        raise LogCorrupted(seq, f"checkpoint at tree size {size} has a root that does not match the entries")
