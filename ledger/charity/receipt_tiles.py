"""A donor's receipt proven from C2SP tlog-tiles (``luodi verify-receipt --tiles``).

After the receipt's own offline check (:mod:`ledger.charity.receipt_check`),
:func:`check_from_tiles` reads the log's current checkpoint and the few tiles it needs
through a ``fetch(path)`` (:mod:`api.tile_fetch`) and :class:`ledger.log.tile_reader.TileReader`:

- ``<prefix>/checkpoint`` is signed by the pinned key (no other) and, with a witness
  policy, carries a quorum of cosignatures (:func:`~.receipt_check.check_witnesses`);
- the gift, and each disbursement it paid for, is in that checkpoint's tree: its
  inclusion proof, assembled from the hash tiles, reaches the checkpoint's root (a gift
  that is not in the tree, or a tile served wrong, fails here);
- the receipt's own checkpoint is in that tree's history: the RFC 9162 consistency
  proof from its size, assembled from the tiles, verifies (a receipt from a fork fails).

Every failure is a :class:`ReceiptInvalid` whose part starts with ``tiles`` (or a
:class:`~ledger.errors.BadTile` naming the tile, a :class:`~ledger.errors.QuorumNotMet`);
tiles that are behind the receipt, or a host that does not serve them, are a
:class:`~ledger.errors.RemoteError` (not a verdict on the receipt).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import LuodiError, ProofError, ReceiptInvalid, RemoteError
from ..log.checkpoint import open_checkpoint
from ..log.merkle import verify_consistency, verify_inclusion
from ..log.note import Verifier
from ..log.policy import Policy
from ..log.tile_reader import Fetch, TileReader
from .receipt_check import CheckedReceipt, check_witnesses

CHECKPOINT = "checkpoint"


@dataclass
class TilesChecked:
    size: int
    root: bytes
    checkpoint: str
    seqs: tuple[int, ...]  # the entries proven included, gift first
    witnesses: dict[str, int] = field(default_factory=dict)
    base: str = ""
    requests: int = 0


def check_from_tiles(checked: CheckedReceipt, fetch: Fetch, verifier: Verifier,
                     policy: Policy | None = None) -> TilesChecked:
    """Prove ``checked`` (a receipt that passed its offline check) from the tiles ``fetch``
    reads, against their checkpoint; see the module."""
    data = fetch(CHECKPOINT)
    if data is None:
        raise RemoteError(f"no {CHECKPOINT} is served at {getattr(fetch, 'base', 'the tiles')}")
    try:
        note = data.decode("utf-8")
        cp = open_checkpoint(note, verifier)
    except (UnicodeDecodeError, LuodiError) as exc:
        detail = exc.detail if isinstance(exc, LuodiError) else "is not UTF-8 text"
        raise ReceiptInvalid("tiles.checkpoint", f"the checkpoint of the tiles does not verify with the pinned key: {detail}") from exc
    witnesses = check_witnesses(note, verifier, policy)
    if cp.size < checked.tree_size:
        raise RemoteError(
            f"the tiles' checkpoint is at tree size {cp.size}, behind the receipt's {checked.tree_size}: "
            "they cannot prove it yet (try again later, or another mirror)"
        )
    reader = TileReader(fetch, cp.size, cp.root)
    entries = [("tiles.inclusion", checked.entry)]
    entries += [(f"tiles.allocation[{i}]", a.disbursement) for i, a in enumerate(checked.allocations)]
    for part, entry in entries:
        try:
            verify_inclusion(entry.leaf_hash, entry.seq, cp.size, reader.inclusion_proof(entry.seq), cp.root)
        except ProofError as exc:
            raise ReceiptInvalid(
                part, f"seq {entry.seq} (receipt {entry.receipt}) is not in the tiles' tree of size {cp.size}: {exc.detail}"
            ) from exc
    try:
        verify_consistency(checked.tree_size, cp.size, checked.root, cp.root, reader.consistency_proof(checked.tree_size))
    except ProofError as exc:
        raise ReceiptInvalid(
            "tiles.consistency",
            f"the receipt's checkpoint (tree size {checked.tree_size}) is not in the history of the tiles' checkpoint "
            f"(tree size {cp.size}): a fork? {exc.detail}",
        ) from exc
    return TilesChecked(cp.size, cp.root, note, tuple(e.seq for _, e in entries), witnesses)
