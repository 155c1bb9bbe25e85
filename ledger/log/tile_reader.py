"""The client side of C2SP tlog-tiles (https://c2sp.org/tlog-tiles): a tree read from
its tiles, as an auditor, a donor's receipt check or a monitor reads it from any
web host or CDN, with the proofs assembled by :mod:`ledger.log.merkle`'s plans.

Pure: the caller supplies ``fetch(path)``.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Iterator, MutableMapping

from ..errors import BadTile, LogCorrupted, ProofError, RemoteError
from .merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    assemble,
    consistency_plan,
    fold,
    inclusion_plan,
    leaf_hash,
    node_hash,
    perfect_nodes,
    plan_nodes,
)
from .tiles import (
    ENTRIES,
    TILE_HEIGHT,
    TILE_WIDTH,
    any_path,
    decode_bundle,
    edge_tiles,
    entries_path,
    tile_path,
    tile_width,
)

Fetch = Callable[[str], "bytes | None"]
LEVEL0_KEPT = 4096  # level-0 tiles a reader keeps hashed at once (a whole-log scan reads thousands)


def _heights(hashes: list[bytes]) -> list[list[bytes]]:
    """The tile's inner tree: ``out[r]`` is its perfect nodes of height ``r`` above
    the tile's hashes, left to right (256 hashes give heights 0 to 8)."""
    out = [hashes]
    while len(out[-1]) > 1:
        below = out[-1]
        out.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return out


class TileReader:
    """A tree of ``size`` entries read from its tiles (a checkpoint of that size the
    caller has verified already).

    ``fetch(path)`` returns a resource's bytes (decoded of any Content-Encoding),
    or None when the log does not have it (a 404); it raises for anything else.
    ``root``, the checkpoint's root hash, makes the reader check every tile before
    using it: the rightmost (partial) tiles must fold to ``root``, and each full tile
    must hash to its hash in the tile above; :meth:`entries` needs it.  A partial
    tile the log no longer serves is read from the full tile instead (tlog-tiles,
    *Partial Tiles*).  ``cache`` (a mapping by path) keeps fetched tiles, which
    never change, across readers; ``fetches`` counts the calls to ``fetch``.
    """

    def __init__(
        self,
        fetch: Fetch,
        size: int,
        root: bytes | None = None,
        cache: MutableMapping[str, bytes] | None = None,
    ):
        if not isinstance(size, int) or size < 0:
            raise ValueError(f"a tree size is a non-negative integer, not {size!r}")
        self.fetch = fetch
        self.size = size
        self.root = root
        self.cache: MutableMapping[str, bytes] = {} if cache is None else cache
        self.fetches = 0
        self._tiles: dict[tuple[int, int], list[list[bytes]]] = {}
        self._root: bytes | None = None

    def _get(self, path: str, keep: bool = True) -> bytes | None:
        data = self.cache.get(path)
        if data is None:
            self.fetches += 1
            data = self.fetch(path)
            if data is not None and keep:
                self.cache[path] = data
        return data

    def _read(self, level, index: int, width: int, keep: bool = True) -> tuple[str, bytes]:
        """The bytes of a tile or bundle of this tree, the full one in place of a partial
        one the log no longer serves."""
        path = any_path(level, index, width)
        data = self._get(path, keep)
        if data is None and width < TILE_WIDTH:
            full = self._get(any_path(level, index, TILE_WIDTH), keep)
            if full is not None:
                return any_path(level, index, TILE_WIDTH), full
        if data is None:
            raise RemoteError(f"{path}: the log does not serve it, and its tree of size {self.size} has it")
        return path, data

    def _hashes(self, level: int, index: int, width: int) -> list[bytes]:
        path, data = self._read(level, index, width)
        want = HASH_SIZE * (TILE_WIDTH if path == tile_path(level, index) else width)
        if len(data) != want:
            raise BadTile(path, f"is {len(data)} bytes, not {want}")
        return [data[i : i + HASH_SIZE] for i in range(0, width * HASH_SIZE, HASH_SIZE)]

    def _tile(self, level: int, index: int) -> list[list[bytes]]:
        """The inner tree of a hash tile of this tree, checked (with ``root``)."""
        found = self._tiles.get((level, index))
        if found is not None:
            return found
        width = tile_width(level, index, self.size)
        if width == 0:
            raise ProofError(f"a tree of size {self.size} has no tile {level}/{index}")
        if width < TILE_WIDTH:
            self.tree_root()  # fetches and checks every partial tile
            return self._tiles[(level, index)]
        found = _heights(self._hashes(level, index, width))
        if self.root is not None:
            above = self._tile(level + 1, index >> TILE_HEIGHT)[0][index % TILE_WIDTH]
            if not hmac.compare_digest(found[TILE_HEIGHT][0], above):
                raise BadTile(
                    tile_path(level, index),
                    f"does not hash to hash {index % TILE_WIDTH} of its tile at level {level + 1}",
                )
        if level == 0 and len(self._tiles) >= LEVEL0_KEPT:
            self._tiles = {k: v for k, v in self._tiles.items() if k[0]}
        self._tiles[(level, index)] = found
        return found

    def tree_root(self) -> bytes:
        """The root of the tree, folded from its partial tiles (and checked against
        ``root`` when given): compare it with the checkpoint's."""
        if self._root is not None:
            return self._root
        edges = {(t.level, t.index): _heights(self._hashes(t.level, t.index, t.width)) for t in edge_tiles(self.size)}
        hashes = []
        for height, index in perfect_nodes(0, self.size):
            level, r = divmod(height, TILE_HEIGHT)
            first = index << r
            hashes.append(edges[(level, first >> TILE_HEIGHT)][r][(first % TILE_WIDTH) >> r])
        got = fold(hashes) if hashes else EMPTY_ROOT
        if self.root is not None and not hmac.compare_digest(got, self.root):
            paths = ", ".join(t.path for t in edge_tiles(self.size))
            raise BadTile(paths, f"the partial tiles do not fold to the root of the checkpoint of size {self.size}")
        self._tiles.update(edges)
        self._root = got
        return got

    def node(self, height: int, index: int) -> bytes:
        """The perfect node ``(height, index)`` of :mod:`ledger.log.merkle`, hashed
        inside the tile that holds it."""
        if not (0 <= height and 0 <= index and (index + 1) << height <= self.size):
            raise ProofError(f"a tree of size {self.size} has no node (level {height}, index {index})")
        level, r = divmod(height, TILE_HEIGHT)
        first = index << r
        return self._tile(level, first >> TILE_HEIGHT)[r][(first % TILE_WIDTH) >> r]

    def _assemble(self, plan) -> list[bytes]:
        return assemble(plan, {n: self.node(*n) for n in plan_nodes(plan)})

    def inclusion_proof(self, index: int) -> list[bytes]:
        """RFC 9162 PATH(index, D[size]) from the tiles (:func:`~ledger.log.merkle.inclusion_plan`)."""
        return self._assemble(inclusion_plan(index, self.size))

    def consistency_proof(self, old_size: int) -> list[bytes]:
        """RFC 9162 PROOF(old_size, D[size]) from the tiles (:func:`~ledger.log.merkle.consistency_plan`)."""
        return self._assemble(consistency_plan(old_size, self.size))

    def entries(self, start: int = 0, stop: int | None = None) -> Iterator[bytes]:
        """The entries ``start <= seq < stop`` (default: to the end), from the entry
        bundles, each checked against its leaf hash in the level-0 tile
        (:class:`LogCorrupted` naming the seq); needs ``root``.  Bundles are not cached."""
        stop = self.size if stop is None else stop
        if not (isinstance(start, int) and isinstance(stop, int) and 0 <= start <= stop <= self.size):
            raise ProofError(f"no entries [{start}, {stop}) in a tree of size {self.size}")
        if self.root is None:
            raise ValueError("reading entries from tiles needs the checkpoint's root")
        for n in range(start >> TILE_HEIGHT, (stop + TILE_WIDTH - 1) >> TILE_HEIGHT):
            width = tile_width(0, n, self.size)
            path, data = self._read(ENTRIES, n, width, keep=False)
            bundle = decode_bundle(data, TILE_WIDTH if path == entries_path(n) else width, path)
            leaves = self._tile(0, n)[0]
            base = n * TILE_WIDTH
            for i in range(max(start, base) - base, min(stop, base + width) - base):
                if not hmac.compare_digest(leaf_hash(bundle[i]), leaves[i]):
                    raise LogCorrupted(
                        base + i, f"the entry in {path} does not hash to its leaf hash in the level-0 tile"
                    )
                yield bundle[i]
