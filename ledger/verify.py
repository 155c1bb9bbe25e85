"""Whole-log verification: one streaming pass in O(log n) memory.

For every stored entry it re-derives the canonical bytes, the leaf hash and the
``prev`` link, checks the entry's own rules and that time never goes back.  It
rebuilds the Merkle tree as a compact range, compares the interior nodes each
stored row carries with the ones the entry really completes, and checks every stored checkpoint's
signature (with the log key of the genesis entry, or a pinned one) and root.
The first fault raises :class:`LogCorrupted` with the seq where it lies.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

from .checkpoint import open_checkpoint
from .entry import GENESIS_PREV, parse_entry
from .errors import LogCorrupted, LuodiError
from .merkle import Frontier
from .note import Verifier
from .storage import Storage


@dataclass(frozen=True)
class VerifyReport:
    size: int
    root: bytes
    checkpoints: int
    origin: str
    log_key: str


def verify_log(storage: Storage, log_key: str | Verifier | None = None) -> VerifyReport:
    """Re-verify the whole stored log; return a report or raise :class:`LogCorrupted`.

    ``log_key`` pins the log's verifier key; by default the genesis entry's is
    used (and then an auditor should compare it with the key it trusts).
    """
    with storage.snapshot():
        return _verify(storage, log_key)


def _verify(storage: Storage, log_key) -> VerifyReport:
    pinned = Verifier.from_string(log_key) if isinstance(log_key, str) else log_key
    checkpoints = storage.iter_checkpoints()
    next_cp = next(checkpoints, None)
    frontier = Frontier()
    verifier = pinned
    origin = None
    prev = GENESIS_PREV
    last_time = ""
    seen_cps = 0
    expected = 0
    for seq, stored_hash, stored_tree, canonical in storage.iter_entries():
        if seq != expected:
            raise LogCorrupted(expected, f"entry {expected} is missing (next stored is {seq})")
        try:
            entry = parse_entry(canonical)
        except LuodiError as exc:
            raise LogCorrupted(seq, f"entry is invalid: {exc.detail}") from exc
        if entry.seq != seq:
            raise LogCorrupted(seq, f"entry stored at seq {seq} says seq {entry.seq}")
        if not hmac.compare_digest(entry.leaf_hash, stored_hash):
            raise LogCorrupted(seq, "stored leaf hash does not match the entry's bytes")
        if entry.prev != prev:
            raise LogCorrupted(seq, f"prev is {entry.prev}, but entry {seq - 1} has receipt {prev}")
        if entry.time < last_time:
            raise LogCorrupted(seq, f"time {entry.time} is before the previous entry's {last_time}")
        if seq == 0:
            if entry.kind != "genesis":
                raise LogCorrupted(0, "the first entry is not the genesis entry")
            origin = entry.body["origin"]
            genesis_key = Verifier.from_string(entry.body["log_key"])
            if pinned is not None and pinned != genesis_key:
                raise LogCorrupted(0, "the genesis entry names a different log key than the pinned one")
            verifier = genesis_key
        elif entry.kind == "genesis":
            raise LogCorrupted(seq, "a second genesis entry")
        prev = entry.receipt
        last_time = entry.time
        made = frontier.append(entry.leaf_hash)
        if not hmac.compare_digest(stored_tree, b"".join([m[2] for m in made])):
            raise LogCorrupted(seq, f"stored tree nodes completed by this entry do not match ({_which(made, stored_tree)})")
        expected = seq + 1
        while next_cp is not None and next_cp[0] == expected:
            _check_checkpoint(next_cp, frontier, verifier, origin)
            seen_cps += 1
            next_cp = next(checkpoints, None)
        if next_cp is not None and next_cp[0] < expected:
            raise LogCorrupted(max(next_cp[0] - 1, 0), f"checkpoint at tree size {next_cp[0]} is out of order")
    size = expected
    if next_cp is not None:
        raise LogCorrupted(max(size - 1, 0), f"checkpoint at tree size {next_cp[0]} is beyond the log's {size} entries")
    if size and seen_cps == 0:
        raise LogCorrupted(size - 1, "the log has no checkpoint")
    last = storage.checkpoint()
    if size and (last is None or last[0] != size):
        raise LogCorrupted(size - 1, "the newest entries are not covered by a checkpoint")
    return VerifyReport(size, frontier.root(), seen_cps, origin or "", verifier.to_string() if verifier else "")


def _which(made, stored: bytes) -> str:
    if len(stored) != 32 * len(made):
        return f"{len(stored) // 32} stored, {len(made)} expected"
    for i, (level, index, h) in enumerate(made):
        if not hmac.compare_digest(stored[32 * i : 32 * i + 32], h):
            return f"node level {level}, index {index}"
    return "unknown"  # pragma: no cover - compare_digest already differed


def _check_checkpoint(row, frontier: Frontier, verifier: Verifier, origin: str) -> None:
    size, note = row
    seq = size - 1
    try:
        cp = open_checkpoint(note, verifier, origin)
    except LuodiError as exc:
        raise LogCorrupted(seq, f"checkpoint at tree size {size}: {exc.detail}") from exc
    if cp.size != size:
        raise LogCorrupted(seq, f"checkpoint stored for tree size {size} says size {cp.size}")
    if not hmac.compare_digest(cp.root, frontier.root()):
        raise LogCorrupted(seq, f"checkpoint at tree size {size} has a root that does not match the entries")


__all__ = ["VerifyReport", "verify_log"]
