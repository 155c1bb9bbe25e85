"""C2SP tlog-tiles (https://c2sp.org/tlog-tiles): the log as static resources.

Pure: paths, tile arithmetic, entry bundles, the bytes a log serves, and a
client (:class:`TileReader`) that reads a tree through a ``fetch(path)`` the
caller supplies (HTTP, a folder, a CDN).  No I/O here.

The spec's words, section by section (``tlog-tiles.md``):

- *Merkle Tree*: a tile at level ``L`` (0 to 63) and index ``N`` is up to 256
  consecutive Merkle Tree Hashes; hash ``i`` of tile ``N`` at level ``L`` is
  ``MTH(D[(N*256+i) * 256**L : (N*256+i+1) * 256**L])``, that is the perfect
  RFC 9162 subtree at height ``8*L`` and index ``N*256+i``
  (:func:`tile_nodes`, in the ``(level, index)`` of :mod:`ledger.log.merkle`).
  Its path is ``tile/<L>/<N>[.p/<W>]``, ``N`` in zero-padded 3-digit elements,
  all but the last prefixed ``x`` (``x001/x234/067``) (:func:`tile_path`).
- *Partial Tiles*: the partial tile at level ``L`` of a tree of size ``s`` has
  ``floor(s / 256**L) mod 256`` hashes; empty tiles are never served
  (:func:`tiles_for_size`, :func:`tile_width`).
- *Log entries*: ``tile/entries/<N>[.p/<W>]`` is the entries of the level-0
  tile ``N``, each behind a big-endian uint16 length (:func:`encode_bundle`),
  so no entry may exceed 65,535 bytes (:data:`MAX_ENTRY_BYTES`).
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import NamedTuple

from ..errors import BadTile, EntryTooLarge, LogCorrupted, NoSuchTile
from .merkle import (
    HASH_SIZE,
    Node,
    leaf_hash,
)

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT  # 256 hashes, 8,192 bytes in a full tile
MAX_LEVEL = 63
MAX_ENTRY_BYTES = 0xFFFF  # a bundle's uint16 length prefix
ENTRIES = "entries"
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE

_PATH = re.compile(r"tile/(0|[1-9][0-9]?|entries)/((?:x[0-9]{3}/)*[0-9]{3})(?:\.p/([1-9][0-9]{0,2}))?")


class Tile(NamedTuple):
    """A hash tile (``level`` 0 to 63) or an entry bundle (``level`` = ``"entries"``)."""

    level: int | str
    index: int
    width: int = TILE_WIDTH

    @property
    def path(self) -> str:
        return any_path(self.level, self.index, self.width)

    @property
    def full(self) -> bool:
        return self.width == TILE_WIDTH


# -- paths --------------------------------------------------------------------------


def _index_path(index: int) -> str:
    """``N`` as the spec writes it: 1234067 -> ``x001/x234/067``."""
    groups = []
    while True:
        groups.append(f"{index % 1000:03d}")
        index //= 1000
        if not index:
            break
    groups.reverse()
    return "/".join(["x" + g for g in groups[:-1]] + [groups[-1]])


def any_path(level, index: int, width: int) -> str:
    if not (level == ENTRIES or (type(level) is int and 0 <= level <= MAX_LEVEL)):
        raise ValueError(f"a tile level is 0 to {MAX_LEVEL} or {ENTRIES!r}, not {level!r}")
    if type(index) is not int or index < 0:
        raise ValueError(f"a tile index is a non-negative integer, not {index!r}")
    if type(width) is not int or not 1 <= width <= TILE_WIDTH:
        raise ValueError(f"a tile width is 1 to {TILE_WIDTH}, not {width!r}")
    path = f"tile/{level}/{_index_path(index)}"
    return path if width == TILE_WIDTH else f"{path}.p/{width}"


def tile_path(level: int, index: int, width: int = TILE_WIDTH) -> str:
    """``tile/<L>/<N>[.p/<W>]`` (tlog-tiles, *Merkle Tree*)."""
    if level == ENTRIES:
        raise ValueError("an entry bundle's path is entries_path()")
    return any_path(level, index, width)


def entries_path(index: int, width: int = TILE_WIDTH) -> str:
    """``tile/entries/<N>[.p/<W>]`` (tlog-tiles, *Log entries*)."""
    return any_path(ENTRIES, index, width)


def parse_tile_path(path: str) -> Tile:
    """The tile a path names, refusing every form the spec rules out (leading zeros in
    ``L`` or ``W``, ``L`` over 63, ``W`` of 0 or over 255, an element without its
    ``x`` or with one too many, a non-canonical ``x000/`` head) with :class:`NoSuchTile`."""
    m = _PATH.fullmatch(path) if isinstance(path, str) else None
    if m is None:
        raise NoSuchTile(f"{path!r} is not a tlog-tiles path")
    level_text, index_text, width_text = m.groups()
    level = ENTRIES if level_text == ENTRIES else int(level_text)
    width = TILE_WIDTH if width_text is None else int(width_text)
    if level != ENTRIES and level > MAX_LEVEL:
        raise NoSuchTile(f"tile level {level} is over {MAX_LEVEL}")
    if width_text is not None and width >= TILE_WIDTH:
        raise NoSuchTile(f"a partial tile's width is 1 to {TILE_WIDTH - 1}, not {width}")
    elements = index_text.split("/")
    if len(elements) > 1 and elements[0] == "x000":
        raise NoSuchTile(f"{path!r}: the tile index has a leading zero element")
    index = int("".join(e.lstrip("x") for e in elements)) if len(elements) <= 7 else 1 << 64
    if index >= 1 << 64:
        raise NoSuchTile(f"{path!r}: a tile index is below 2**64")
    return Tile(level, index, width)


# -- tile arithmetic ----------------------------------------------------------------


def tile_width(level, index: int, size: int) -> int:
    """How many hashes (or entries) tile ``index`` at ``level`` holds in the tree of
    ``size``: 256 when full, 1-255 when partial, 0 when the tree has no such tile."""
    count = size >> (TILE_HEIGHT * (0 if level == ENTRIES else level))
    return max(0, min(TILE_WIDTH, count - index * TILE_WIDTH))


def tiles_between(old_size: int, new_size: int, entries: bool = True) -> list[Tile]:
    """The tiles (and, with ``entries``, entry bundles) that the tree of ``new_size``
    has and the tree of ``old_size`` has not, with the same width: what an
    incremental export writes.  Level by level: the tile that was partial at
    ``old_size`` and every tile after it; a level whose hash count did not change,
    and every level above it, is unchanged."""
    if not (isinstance(old_size, int) and isinstance(new_size, int) and 0 <= old_size <= new_size):
        raise ValueError(f"no tiles between sizes {old_size} and {new_size}")
    out = []
    level = 0
    while True:
        before, after = old_size >> (TILE_HEIGHT * level), new_size >> (TILE_HEIGHT * level)
        if before == after:
            return out
        for n in range(before >> TILE_HEIGHT, (after + TILE_WIDTH - 1) >> TILE_HEIGHT):
            width = min(TILE_WIDTH, after - n * TILE_WIDTH)
            out.append(Tile(level, n, width))
            if level == 0 and entries:
                out.append(Tile(ENTRIES, n, width))
        level += 1


def tiles_for_size(size: int, entries: bool = True) -> list[Tile]:
    """Every tile (and entry bundle) of the tree of ``size``, full and partial
    (tlog-tiles, *Partial Tiles*: a tree of 70,000 has 273 full and one partial
    (112) level-0 tiles, one full and one partial (17) level-1 tiles, one partial
    (1) level-2 tile)."""
    return tiles_between(0, size, entries)


def edge_tiles(size: int) -> list[Tile]:
    """The partial (rightmost) hash tiles of the tree of ``size``, lowest level first:
    the tree's root is the fold of their hashes (see :meth:`TileReader.tree_root`)."""
    out = []
    level = 0
    while count := size >> (TILE_HEIGHT * level):
        if count % TILE_WIDTH:
            out.append(Tile(level, count >> TILE_HEIGHT, count % TILE_WIDTH))
        level += 1
    return out


def tile_nodes(level, index: int, width: int = TILE_WIDTH) -> list[Node]:
    """The perfect Merkle nodes a hash tile holds, in order: height ``8*level``,
    indices ``index*256`` to ``index*256 + width - 1`` (an entry bundle's are the
    leaves of level 0)."""
    height = TILE_HEIGHT * (0 if level == ENTRIES else level)
    first = index * TILE_WIDTH
    return [(height, first + i) for i in range(width)]


# -- entry bundles --------------------------------------------------------------------


def encode_bundle(entries: Iterable[bytes]) -> bytes:
    """An entry bundle: each entry behind its length as a big-endian uint16
    (tlog-tiles, *Log entries*); :class:`EntryTooLarge` for an entry over 65,535 bytes."""
    parts = []
    for i, entry in enumerate(entries):
        n = len(entry)
        if n > MAX_ENTRY_BYTES:
            raise EntryTooLarge(f"entry {i} of the bundle is {n:,} bytes, over the {MAX_ENTRY_BYTES:,}-byte limit")
        parts.append(n.to_bytes(2, "big"))
        parts.append(entry)
    return b"".join(parts)


def decode_bundle(data: bytes, width: int, path: str = "entry bundle") -> list[bytes]:
    """The ``width`` entries of a bundle; :class:`BadTile` (naming ``path``) for
    short data, trailing bytes or another count of entries."""
    out = []
    pos, end = 0, len(data)
    while pos < end:
        if pos + 2 > end:
            raise BadTile(path, f"a length prefix is cut off at byte {pos}")
        n = int.from_bytes(data[pos : pos + 2], "big")
        pos += 2
        if pos + n > end:
            raise BadTile(path, f"entry {len(out)} claims {n} bytes, but {end - pos} remain")
        out.append(bytes(data[pos : pos + n]))
        pos += n
        if len(out) > width:
            raise BadTile(path, f"trailing bytes after the {width} entries the bundle holds")
    if len(out) != width:
        raise BadTile(path, f"holds {len(out)} entries, expected {width}")
    return out


# -- the server side --------------------------------------------------------------------

Nodes = Callable[[list[Node]], Mapping[Node, bytes]]


def hash_tile(nodes: Nodes, tile: Tile) -> bytes:
    """A hash tile's bytes from ``nodes(wanted)`` (a log store's or ledger's
    ``nodes``: one storage query), which raises for nodes the tree lacks."""
    wanted = tile_nodes(tile.level, tile.index, tile.width)
    found = nodes(wanted)
    return b"".join([found[n] for n in wanted])


def export_tiles(
    old_size: int, new_size: int, rows: Callable[[int], Iterable[tuple]], nodes: Nodes
) -> Iterator[tuple[Tile, bytes]]:
    """Every tile and bundle of :func:`tiles_between` ``(old_size, new_size)`` with its
    bytes: level-0 tiles and bundles from one pass over ``rows(start)`` (a store's
    ``iter_entries``: ``(seq, leaf hash, packed nodes, canonical bytes)`` in seq
    order), each entry re-hashed against its stored leaf hash; the few tiles above
    from ``nodes``.  Refuses a log that has an entry over 65,535 bytes
    (:class:`EntryTooLarge`, naming its seq)."""
    todo = tiles_between(old_size, new_size)
    level0 = [t for t in todo if t.level == 0]
    if level0:
        n = level0[0].index
        start = expected = n * TILE_WIDTH
        leaves: list[bytes] = []
        bundle: list[bytes] = []
        for seq, leaf, _, canonical in rows(start):
            if seq >= new_size:
                break
            if seq != expected:
                raise LogCorrupted(expected, f"the log's rows skip from seq {expected} to {seq}")
            if len(canonical) > MAX_ENTRY_BYTES:
                raise EntryTooLarge(
                    f"seq {seq} is {len(canonical):,} bytes, over the {MAX_ENTRY_BYTES:,}-byte limit of an "
                    "entry bundle (C2SP tlog-tiles): this log cannot be served as tiles"
                )
            if not hmac.compare_digest(leaf_hash(canonical), leaf):
                raise LogCorrupted(seq, "the stored leaf hash is not the hash of the entry's bytes")
            leaves.append(leaf)
            bundle.append(canonical)
            expected += 1
            if len(leaves) == TILE_WIDTH or expected == new_size:
                yield Tile(0, n, len(leaves)), b"".join(leaves)
                yield Tile(ENTRIES, n, len(bundle)), encode_bundle(bundle)
                n += 1
                leaves, bundle = [], []
        if expected != new_size:
            raise LogCorrupted(expected, f"the log ends at seq {expected}, before tree size {new_size}")
    for tile in todo:
        if tile.level not in (0, ENTRIES):
            yield tile, hash_tile(nodes, tile)
