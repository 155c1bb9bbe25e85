"""C2SP tlog-tiles, the pure part (ledger/log/tiles.py, ledger/log/tile_reader.py):
paths, partial-tile arithmetic, entry bundles, the bytes a log serves, and a client
that assembles RFC 9162 proofs from tiles and checks every tile it uses."""

from __future__ import annotations

import random

import pytest

from ledger.errors import BadTile, EntryTooLarge, LogCorrupted, NoSuchTile, ProofError, RemoteError
from ledger.log import merkle
from ledger.log.tile_reader import TileReader
from ledger.log.tiles import (
    ENTRIES,
    MAX_ENTRY_BYTES,
    Tile,
    decode_bundle,
    edge_tiles,
    encode_bundle,
    entries_path,
    export_tiles,
    hash_tile,
    parse_tile_path,
    tile_nodes,
    tile_path,
    tile_width,
    tiles_between,
    tiles_for_size,
)


class MemoryLog:
    """A log kept in plain Python, the way a store keeps it: rows and every perfect node."""

    def __init__(self, n: int = 0):
        self.frontier = merkle.Frontier()
        self.all_nodes: dict = {}
        self.rows: list = []
        self.grow(n)

    def grow(self, n: int) -> None:
        for _ in range(n):
            seq = len(self.rows)
            data = b'{"entry":%d}' % seq + b"x" * (seq % 300)
            h = merkle.leaf_hash(data)
            self.all_nodes[(0, seq)] = h
            made = self.frontier.append(h)
            for level, index, hh in made:
                self.all_nodes[(level, index)] = hh
            self.rows.append((seq, h, merkle.pack_nodes(made), data))

    def nodes(self, wanted):
        return {n: self.all_nodes[n] for n in wanted}

    def iter_entries(self, start):
        return iter(self.rows[start:])

    def root(self, size):
        return merkle.range_root(size, self.nodes(merkle.perfect_nodes(0, size)))

    def serve(self, size: int):
        """A fetch that answers any tile the tree of ``size`` has, as the HTTP API does."""

        def fetch(path):
            tile = parse_tile_path(path)
            if tile_width(tile.level, tile.index, size) < tile.width:
                return None
            if tile.level == ENTRIES:
                return encode_bundle(r[3] for r in self.rows[tile.index * 256 : tile.index * 256 + tile.width])
            return hash_tile(self.nodes, tile)

        return fetch

    def export(self, old: int, new: int) -> dict[str, bytes]:
        return {t.path: data for t, data in export_tiles(old, new, self.iter_entries, self.nodes)}


@pytest.fixture(scope="module")
def big():
    """70,000 entries: the spec's own example, with full and partial tiles at levels 0 to 2."""
    return MemoryLog(70_000)


# -- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args, path",
    [
        ((0, 0), "tile/0/000"),
        ((0, 1234067), "tile/0/x001/x234/067"),
        ((1, 1000), "tile/1/x001/000"),
        ((63, 7, 5), "tile/63/007.p/5"),
        ((2, 999, 255), "tile/2/999.p/255"),
    ],
)
def test_tile_paths_are_the_specs(args, path):
    assert tile_path(*args) == path
    level, index, *width = args
    assert parse_tile_path(path) == Tile(level, index, *width)
    assert entries_path(index, *width) == path.replace(f"tile/{level}/", "tile/entries/")
    assert parse_tile_path(entries_path(index, *width)) == Tile(ENTRIES, index, *width)


@pytest.mark.parametrize(
    "path",
    [
        "tile/00/000",  # leading zero in L
        "tile/01/000",
        "tile/64/000",  # L over 63
        "tile/-1/000",
        "tile/0/67",  # not 3 digits
        "tile/0/0067",
        "tile/0/001/067",  # all but the last element begin with x
        "tile/0/x001/x067",  # the last does not
        "tile/0/x000/067",  # a leading zero element
        "tile/0/000.p/0",  # W of 0
        "tile/0/000.p/256",  # W of 256: a full tile has no suffix
        "tile/0/000.p/05",  # leading zero in W
        "tile/0/000.p/",
        "tile/0/000.p",
        "tile/0/000/",
        "/tile/0/000",
        "tile/0/",
        "tile/Entries/000",
        "tile/entries/x000/000",
        "tile/0/٠٠٠",  # non-ASCII digits
        "tile/0/000.p/1 ",
        "tile/0/x999/x999/x999/x999/x999/x999/x999/999",  # an index of 2**64 and more
    ],
)
def test_malformed_tile_paths_are_refused(path):
    with pytest.raises(NoSuchTile):
        parse_tile_path(path)


def test_path_builders_refuse_nonsense():
    for args in [(64, 0), (0, -1), (0, 0, 0), (0, 0, 257), ("1", 0)]:
        with pytest.raises(ValueError):
            tile_path(*args)


# -- which tiles a tree has -----------------------------------------------------------------


def test_the_specs_examples_of_partial_tiles():
    hash_tiles = [t for t in tiles_for_size(70_000) if t.level != ENTRIES]
    full0 = [t for t in hash_tiles if t.level == 0 and t.full]
    assert len(full0) == 273
    assert [t for t in hash_tiles if not (t.level == 0 and t.full)] == [
        Tile(0, 273, 112),
        Tile(1, 0),
        Tile(1, 1, 17),
        Tile(2, 0, 1),
    ]
    assert edge_tiles(70_000) == [Tile(0, 273, 112), Tile(1, 1, 17), Tile(2, 0, 1)]
    assert tiles_for_size(256, entries=False) == [Tile(0, 0), Tile(1, 0, 1)]
    assert tiles_for_size(0) == [] and tiles_for_size(1) == [Tile(0, 0, 1), Tile(ENTRIES, 0, 1)]
    bundles = [t for t in tiles_for_size(70_000) if t.level == ENTRIES]
    assert bundles == [Tile(ENTRIES, t.index, t.width) for t in hash_tiles if t.level == 0]


def test_tiles_between_is_what_changed():
    rng = random.Random(14)
    sizes = [0, 1, 255, 256, 257, 511, 512, 65535, 65536, 65537, 70_000] + [rng.randrange(200_000) for _ in range(8)]
    for old in sizes:
        for new in sizes:
            if old <= new:
                assert set(tiles_between(old, new)) == set(tiles_for_size(new)) - set(tiles_for_size(old)), (old, new)
    with pytest.raises(ValueError):
        tiles_between(5, 4)


def test_a_tiles_hashes_are_the_specs_merkle_tree_hashes(big):
    """Hash i of tile n at level l is MTH(D[(n*256+i) * 256**l : (n*256+i+1) * 256**l])."""
    leaves = [r[1] for r in big.rows]
    for level, n, i in [(0, 3, 7), (1, 0, 255), (1, 1, 16), (2, 0, 0)]:
        lo, hi = (n * 256 + i) * 256**level, (n * 256 + i + 1) * 256**level
        (node,) = tile_nodes(level, n, 256)[i : i + 1]
        assert big.all_nodes[node] == merkle.root(leaves[lo:hi])
    tile = hash_tile(big.nodes, Tile(1, 1, 17))
    assert len(tile) == 17 * 32 and tile[:32] == merkle.root(leaves[65536 : 65536 + 256])


# -- entry bundles ---------------------------------------------------------------------------


def test_bundles_carry_uint16_lengths():
    entries = [b"", b"a", b"x" * MAX_ENTRY_BYTES]
    data = encode_bundle(entries)
    assert data[:5] == b"\x00\x00\x00\x01a" and data[5:7] == b"\xff\xff"
    assert decode_bundle(data, 3) == entries


def test_bundle_refusals():
    with pytest.raises(EntryTooLarge, match="entry 1 .* 65,536 bytes"):
        encode_bundle([b"ok", b"x" * (MAX_ENTRY_BYTES + 1)])
    data = encode_bundle([b"one", b"two"])
    for bad, width, why in [
        (data + b"\x00", 2, "cut off"),
        (data + b"\x00\x00", 2, "trailing"),
        (data[:-1], 2, "remain"),
        (data, 3, "holds 2 entries, expected 3"),
        (data, 1, "trailing"),
        (b"", 1, "holds 0"),
    ]:
        with pytest.raises(BadTile, match=why):
            decode_bundle(bad, width)


# -- export and the reader ----------------------------------------------------------------


def _fetcher(files: dict[str, bytes], log: list[str] | None = None):
    def fetch(path):
        if log is not None:
            log.append(path)
        return files.get(path)

    return fetch


def test_proofs_from_tiles_are_the_logs(big):
    files = big.export(0, 70_000)
    assert set(files) == {t.path for t in tiles_for_size(70_000)}
    rng = random.Random(9)
    for size in [1, 2, 255, 256, 257, 65536, 65537, 69_999, 70_000]:
        root = big.root(size)
        reader = TileReader(_fetcher(files) if size == 70_000 else big.serve(size), size, root)
        assert reader.tree_root() == root
        for index in {0, size - 1, size // 2, rng.randrange(size)}:
            proof = reader.inclusion_proof(index)
            plan = merkle.inclusion_plan(index, size)
            assert proof == merkle.assemble(plan, big.nodes(merkle.plan_nodes(plan)))
            merkle.verify_inclusion(big.rows[index][1], index, size, proof, root)
        for old in {1, size // 3 or 1, size - 1 or 1, size}:
            proof = reader.consistency_proof(old)
            merkle.verify_consistency(old, size, big.root(old), root, proof)


def test_entries_from_bundles_are_checked(big):
    files = big.export(0, 600)
    reader = TileReader(_fetcher(files), 600, big.root(600))
    assert list(reader.entries(250, 520)) == [r[3] for r in big.rows[250:520]]
    assert list(reader.entries()) == [r[3] for r in big.rows[:600]]
    bad = dict(files)
    bundle = decode_bundle(files["tile/entries/001"], 256)
    bundle[44] = b"a forged entry"
    bad["tile/entries/001"] = encode_bundle(bundle)
    with pytest.raises(LogCorrupted, match="seq 300") as err:
        list(TileReader(_fetcher(bad), 600, big.root(600)).entries(0, 600))
    assert err.value.seq == 300
    with pytest.raises(ValueError):
        list(TileReader(_fetcher(files), 600).entries())  # no root to check them against


def test_incremental_export_writes_the_changes_only(big):
    whole = big.export(0, 70_000)
    first = big.export(0, 69_000)
    second = big.export(69_000, 70_000)
    # level 0: tiles 269 (was partial) to 273 and their bundles; level 1: tile 1 (13 -> 17 hashes)
    assert sorted(second) == sorted(t.path for t in tiles_between(69_000, 70_000)) and len(second) == 11
    for path, data in second.items():
        assert whole[path] == data
    assert set(first) | set(second) >= set(whole)


def test_a_partial_tile_gone_is_read_from_the_full_one(big):
    files = big.export(0, 70_000)
    size = 300  # its partial tiles (tile/0/001.p/44, tile/1/000.p/1) were never exported
    fetched: list[str] = []
    reader = TileReader(_fetcher(files, fetched), size, big.root(size))
    assert list(reader.entries(290, 300)) == [r[3] for r in big.rows[290:300]]
    merkle.verify_inclusion(big.rows[299][1], 299, size, reader.inclusion_proof(299), big.root(size))
    assert "tile/0/001.p/44" in fetched and "tile/0/001" in fetched and "tile/entries/001" in fetched
    missing = {p: d for p, d in files.items() if not p.startswith("tile/0/001")}
    with pytest.raises(RemoteError, match="tile/0/001.p/44"):
        TileReader(_fetcher(missing), size, big.root(size)).inclusion_proof(299)


def test_tiles_are_fetched_once_and_cached(big):
    files = big.export(0, 70_000)
    fetched: list[str] = []
    cache: dict = {}
    reader = TileReader(_fetcher(files, fetched), 70_000, big.root(70_000), cache)
    reader.inclusion_proof(5)
    first = len(fetched)
    reader.inclusion_proof(6)
    assert len(fetched) == first == len(set(fetched))  # level 0, 1 and the edge tiles, once each
    TileReader(_fetcher(files, fetched), 70_000, big.root(70_000), cache).inclusion_proof(7)
    assert len(fetched) == first  # a shared cache: no fetch at all


def test_a_bad_tile_is_caught(big):
    files = big.export(0, 70_000)
    root = big.root(70_000)
    short = dict(files, **{"tile/0/005": files["tile/0/005"][:-1]})
    with pytest.raises(BadTile, match="tile/0/005: is 8191 bytes, not 8192"):
        TileReader(_fetcher(short), 70_000, root).inclusion_proof(5 * 256)
    forged = dict(files, **{"tile/0/005": b"\x01" * 32 + files["tile/0/005"][32:]})
    with pytest.raises(BadTile, match="tile/0/005: does not hash to hash 5 of its tile at level 1"):
        TileReader(_fetcher(forged), 70_000, root).inclusion_proof(5 * 256 + 1)
    edge = dict(files, **{"tile/1/001.p/17": b"\x02" * 32 + files["tile/1/001.p/17"][32:]})
    with pytest.raises(BadTile, match="do not fold to the root"):
        TileReader(_fetcher(edge), 70_000, root).inclusion_proof(3)
    with pytest.raises(BadTile, match="do not fold to the root"):
        TileReader(_fetcher(files), 70_000, big.root(69_999)).tree_root()
    # without a root the reader trusts what it fetched, and the proof it gives fails to verify
    proof = TileReader(_fetcher(forged), 70_000).inclusion_proof(5 * 256 + 1)
    with pytest.raises(ProofError):
        merkle.verify_inclusion(big.rows[5 * 256 + 1][1], 5 * 256 + 1, 70_000, proof, root)
    with pytest.raises(ProofError):
        TileReader(_fetcher(files), 10).node(0, 10)


def test_export_refuses_an_entry_over_the_limit_naming_its_seq():
    log = MemoryLog(300)
    seq, _, packed, _ = log.rows[260]
    data = b"y" * (MAX_ENTRY_BYTES + 1)
    log.rows[260] = (seq, merkle.leaf_hash(data), packed, data)
    log.export(0, 256)  # the bundles before it are fine
    with pytest.raises(EntryTooLarge, match="seq 260 is 65,536 bytes"):
        log.export(0, 300)
    other = MemoryLog(10)
    other.rows[7] = (7, b"\x00" * 32, other.rows[7][2], other.rows[7][3])
    with pytest.raises(LogCorrupted, match="seq 7: the stored leaf hash"):
        other.export(0, 10)
    del other.rows[4]
    with pytest.raises(LogCorrupted, match="skip from seq 4 to 5"):
        other.export(0, 10)
