"""The RFC 9162 §2.1 Merkle tree: hashing, proofs and their verification.

Hashes are ``bytes``.  A leaf hash is ``SHA-256(0x00 || data)`` and an interior
node ``SHA-256(0x01 || left || right)`` (RFC 9162 §2.1.1).

Stored trees keep only *perfect* subtrees: the node ``(level, index)`` is the
root of leaves ``[index * 2**level, (index + 1) * 2**level)``.  Every subtree
an RFC 9162 proof names is either perfect or the ragged right edge of the tree,
and a ragged range is the fold of at most log2(n) perfect ones.  So a proof is
planned here as lists of perfect nodes (:func:`inclusion_plan`,
:func:`consistency_plan`), fetched by the storage in one query, and folded by
:func:`assemble`.  Nothing is recomputed from the leaves.

The verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step, with the
length checks of transparency-dev/merkle in front, and compare hashes in
constant time.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping, Sequence

from ..errors import ProofError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_sha256 = hashlib.sha256

Node = tuple[int, int]  # (level, index) of a perfect subtree


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 §2.1.1: MTH({d}) = SHA-256(0x00 || d)."""
    return _sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 §2.1.1: SHA-256(0x01 || left || right)."""
    return _sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(lo: int, hi: int) -> list[Node]:
    """Decompose leaves ``[lo, hi)`` into perfect subtrees, left to right.

    ``lo`` must be aligned the way RFC 9162's recursion leaves it, which holds
    for every range a proof or a tree size names.
    """
    out = []
    while lo < hi:
        size = hi - lo
        level = size.bit_length() - 1
        if lo:
            level = min(level, (lo & -lo).bit_length() - 1)
        out.append((level, lo >> level))
        lo += 1 << level
    return out


def fold(hashes: Sequence[bytes]) -> bytes:
    """Combine the perfect subtrees of a range, right to left, into its root."""
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = _sha256(b"\x01" + left + h).digest()
    return h


def root(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH of the given leaf hashes (RFC 9162 §2.1.1); empty input gives SHA-256("")."""
    frontier = Frontier()
    for h in leaf_hashes:
        _check_hash(h, "leaf hash")
        frontier.append(h)
    return frontier.root()


class Frontier:
    """The compact range [0, size): the roots of its perfect subtrees, O(log n) hashes.

    ``append`` returns the interior nodes it completed as ``(level, index, hash)``
    so that a store can keep them.
    """

    __slots__ = ("size", "hashes")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()):
        if len(hashes) != bin(size).count("1"):
            raise ValueError("a frontier of size %d needs %d hashes" % (size, bin(size).count("1")))
        self.size = size
        self.hashes = list(hashes)

    def append(self, h: bytes) -> list[tuple[int, int, bytes]]:
        made = []
        index = self.size
        level = 0
        hashes = self.hashes
        while index & 1:
            h = _sha256(b"\x01" + hashes.pop() + h).digest()
            index >>= 1
            level += 1
            made.append((level, index, h))
        hashes.append(h)
        self.size += 1
        return made

    def root(self) -> bytes:
        return fold(self.hashes) if self.hashes else EMPTY_ROOT


# -- the nodes a leaf completes ---------------------------------------------------
#
# Appending leaf ``seq`` completes the perfect subtrees whose last leaf it is:
# levels 1, 2, ... up to the number of trailing one bits of ``seq``.  The log
# stores with each entry those hashes, bottom up, 32 bytes each ("packed"), so
# every node of the tree is stored once, with the leaf that completed it.


def completing_leaf(level: int, index: int) -> int:
    """The leaf whose append completes the perfect node ``(level, index)``."""
    return ((index + 1) << level) - 1


def pack_nodes(made: Sequence[tuple[int, int, bytes]]) -> bytes:
    """The nodes :meth:`Frontier.append` made, packed bottom up."""
    return b"".join([m[2] for m in made]) if made else b""


def packed_node(packed: bytes, level: int) -> bytes | None:
    """The node at ``level`` (1 and up) among a leaf's packed nodes, or None."""
    h = packed[HASH_SIZE * (level - 1) : HASH_SIZE * level]
    return h if len(h) == HASH_SIZE else None


def node_rows(wanted: Iterable[Node]) -> list[int]:
    """The seqs of the entry rows that hold the nodes ``wanted`` (:func:`completing_leaf`)."""
    return list({completing_leaf(level, index) for level, index in wanted})


def pick_nodes(wanted: Iterable[Node], rows: Mapping[int, tuple[bytes, bytes]]) -> dict[Node, bytes]:
    """The nodes ``wanted`` from the rows :func:`node_rows` named, as ``{seq: (leaf hash,
    packed nodes)}``: what a driver answers for :meth:`ledger.log.store.LogStore.nodes`.
    Raises :class:`LookupError` naming the first node no row holds."""
    found = {}
    for level, index in wanted:
        row = rows.get(completing_leaf(level, index))
        h = None if row is None else row[0] if level == 0 else packed_node(row[1], level)
        if h is None:
            raise LookupError(f"the tree has no node (level {level}, index {index})")
        found[(level, index)] = h
    return found


# -- proof planning -----------------------------------------------------------


def inclusion_plan(index: int, size: int) -> list[list[Node]]:
    """PATH(index, D[size]) of RFC 9162 §2.1.3.1 as ranges of perfect nodes, bottom up.

    Below level ``inner`` (where the paths to ``index`` and to ``size - 1`` meet)
    the proof holds the siblings of the path, all perfect but the topmost one,
    which may be the ragged right edge; above it, the left siblings on the
    border.  This is the same path as the RFC's recursion, computed directly.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not below tree size {size}")
    inner = (index ^ (size - 1)).bit_length()
    # Below level inner - 1 every sibling lies left of size - 1's subtree: perfect.
    plan = [[(level, (index >> level) ^ 1)] for level in range(inner - 1)]
    if inner:
        level = inner - 1
        sibling = (index >> level) ^ 1
        lo = sibling << level
        plan.append([(level, sibling)] if lo + (1 << level) <= size else perfect_nodes(lo, size))
    rest = index >> inner
    level = inner
    while rest:
        if rest & 1:
            plan.append([(level, rest ^ 1)])
        rest >>= 1
        level += 1
    return plan


def lower_plan(index: int, levels: int) -> list[list[Node]]:
    """The first ``levels`` ranges of :func:`inclusion_plan` when leaf ``index``'s
    block of ``2**levels`` leaves lies wholly inside the tree: the siblings of its
    path inside that block, bottom up, whatever the tree size."""
    return [[(level, (index >> level) ^ 1)] for level in range(levels)]


def consistency_plan(size1: int, size2: int) -> list[list[Node]]:
    """PROOF(size1, D[size2]) of RFC 9162 §2.1.4.1 as ranges of perfect nodes."""
    if not 0 < size1 <= size2:
        raise ProofError(f"no consistency proof from size {size1} to size {size2}")
    ranges = []
    lo, hi, complete = 0, size2, True
    while size1 != hi:
        k = _split(hi - lo)
        if size1 <= lo + k:
            ranges.append(perfect_nodes(lo + k, hi))
            hi = lo + k
        else:
            ranges.append(perfect_nodes(lo, lo + k))
            lo += k
            complete = False
    if not complete:
        ranges.append(perfect_nodes(lo, hi))
    ranges.reverse()
    return ranges


def plan_nodes(plan: Iterable[Sequence[Node]], folded: Mapping[tuple, bytes] | None = None) -> set[Node]:
    """Every perfect node a plan needs, for one storage query (but the nodes of
    ragged ranges whose fold is already in ``folded``)."""
    return {n for rng in plan if not (folded and len(rng) > 1 and tuple(rng) in folded) for n in rng}


def assemble(
    plan: Iterable[Sequence[Node]], hashes: Mapping[Node, bytes], folded: dict[tuple, bytes] | None = None
) -> list[bytes]:
    """Turn a plan into proof hashes, folding ragged ranges.

    ``folded`` keeps folds by range: a tree's ragged right edge is the same in
    every proof that crosses it, and its nodes never change."""
    out = []
    for rng in plan:
        if len(rng) == 1:
            out.append(hashes[rng[0]])
            continue
        h = folded.get(tuple(rng)) if folded is not None else None
        if h is None:
            h = fold([hashes[n] for n in rng])
            if folded is not None:
                folded[tuple(rng)] = h
        out.append(h)
    return out


def range_root(size: int, hashes: Mapping[Node, bytes]) -> bytes:
    """The root of the tree of ``size`` leaves from its perfect nodes."""
    if size == 0:
        return EMPTY_ROOT
    return fold([hashes[n] for n in perfect_nodes(0, size)])


# -- verification ---------------------------------------------------------------


def _check_hash(h, what: str) -> None:
    if not isinstance(h, (bytes, bytearray)) or len(h) != HASH_SIZE:
        raise ProofError(f"{what} is not a {HASH_SIZE}-byte hash")


def _check_proof(proof, want: int) -> None:
    if len(proof) != want:
        raise ProofError(f"proof has {len(proof)} hashes, expected {want}")
    for i, p in enumerate(proof):
        _check_hash(p, f"proof hash {i}")


def inclusion_proof_length(index: int, size: int) -> int:
    """Hash count of PATH(index, D[size])."""
    inner = (index ^ (size - 1)).bit_length()
    return inner + bin(index >> inner).count("1")


def consistency_proof_length(size1: int, size2: int) -> int:
    """Hash count of PROOF(size1, D[size2]) for 0 < size1 <= size2."""
    return len(consistency_plan(size1, size2))


def _same(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def verify_inclusion(leaf_hash: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> None:
    """RFC 9162 §2.1.3.2.  Returns None, or raises :class:`ProofError`."""
    _check_hash(leaf_hash, "leaf hash")
    _check_hash(root, "root")
    if not (isinstance(index, int) and isinstance(tree_size, int)) or index < 0:
        raise ProofError("index and tree size must be non-negative integers")
    if index >= tree_size:
        raise ProofError(f"index {index} is not below tree size {tree_size}")
    _check_proof(proof, inclusion_proof_length(index, tree_size))
    fn, sn = index, tree_size - 1
    r = bytes(leaf_hash)
    for p in proof:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof does not reach the root (sn != 0)")
    if not _same(r, root):
        raise ProofError("calculated root does not match the given root")


def verify_consistency(size1: int, size2: int, root1: bytes, root2: bytes, proof: Sequence[bytes]) -> None:
    """RFC 9162 §2.1.4.2.  Returns None, or raises :class:`ProofError`.

    Equal sizes take an empty proof and equal roots, as in transparency-dev/merkle
    (RFC 9162's PROOF(m, D[m]) is empty).
    """
    _check_hash(root1, "first root")
    _check_hash(root2, "second root")
    if not (isinstance(size1, int) and isinstance(size2, int)):
        raise ProofError("sizes must be integers")
    if size1 == 0:
        raise ProofError("no consistency proof from an empty tree")
    if size1 > size2:
        raise ProofError(f"first size {size1} is larger than second size {size2}")
    if size1 == size2:
        _check_proof(proof, 0)
        if not _same(root1, root2):
            raise ProofError("equal sizes but different roots")
        return
    _check_proof(proof, consistency_proof_length(size1, size2))
    path = list(proof)
    if size1 & (size1 - 1) == 0:  # step 2: size1 is an exact power of two
        path.insert(0, bytes(root1))
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:  # step 4
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("proof does not reach the root (sn != 0)")
    ok1 = _same(fr, root1)
    ok2 = _same(sr, root2)
    if not ok1:
        raise ProofError("calculated first root does not match")
    if not ok2:
        raise ProofError("calculated second root does not match")
