"""The log as C2SP tlog-tiles over HTTP (api/tiles.py), on every backend: /checkpoint is
/v1/checkpoint; every tile and bundle of the tree is served with the spec's type and
immutable caching, and nothing else is (404 problems); a client reading only tiles gets
the proofs of the proofs API.  And the 65,535-byte entry limit at the HTTP edge: a
disbursement whose entry would be one byte over is a 422, and writes nothing."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass

import pytest
from api_helpers import PROJECT, assert_problem, close_app, make_api  # noqa: F401  (make_api is a fixture)
from factories import CHARITY
from test_tiles_limit import sized_disbursement

from api import create_app
from api.cli_tiles import export_folder
from api.instance import init_instance, open_instance
from ledger.log import merkle
from ledger.log.checkpoint import open_checkpoint
from ledger.log.ledger import Ledger
from ledger.log.tile_reader import TileReader
from ledger.log.tiles import ENTRIES, MAX_ENTRY_BYTES, Tile, encode_bundle, hash_tile, tiles_for_size

IMMUTABLE = "public, max-age=31536000, immutable"
SIZE = 300


@dataclass
class Served:
    client: object
    app: object
    reader: Ledger  # a key-less ledger on the same database, for checks


@pytest.fixture(scope="module")
def env(module_backend, tmp_path_factory):
    """A bare instance of SIZE entries (its genesis, its policy and notes) and its app."""
    path = tmp_path_factory.mktemp("tiles-api") / "instance"
    cl = init_instance(path, database=module_backend.database("tiles")).charity
    try:
        cl.ledger.append_batch([("note", {"text": f"note {i}"}) for i in range(SIZE - cl.ledger.size())])
    finally:
        cl.stores.close()
    app = create_app({"TESTING": True, "INSTANCE": str(path), "RATELIMIT_ENABLED": False})
    reader = open_instance(path, with_key=False).ledger
    yield Served(app.test_client(), app, reader)
    reader.store.close()
    close_app(app)


def fetch_from(client, fetched=None):
    def fetch(path):
        if fetched is not None:
            fetched.append(path)
        resp = client.get("/" + path)
        return None if resp.status_code == 404 else resp.get_data()

    return fetch


def test_checkpoint_and_tiles_are_served_as_the_spec_says(env):
    tiles, v1 = env.client.get("/checkpoint"), env.client.get("/v1/checkpoint")
    assert tiles.status_code == 200 and tiles.get_data() == v1.get_data() == env.reader.checkpoint().encode()
    assert tiles.headers["Content-Type"] == v1.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert tiles.headers["Cache-Control"] == v1.headers["Cache-Control"] == "no-cache"
    reader = env.reader
    counted = []
    app_store = None
    served = tiles_for_size(SIZE) + [Tile(0, 1, 10), Tile(ENTRIES, 0, 1)]  # and narrower partial ones
    for tile in served:
        resp = env.client.get("/" + tile.path, headers={"Accept-Encoding": "identity"})
        assert resp.status_code == 200, (tile, resp.get_data())
        assert resp.headers["Content-Type"] == "application/octet-stream"
        assert resp.headers["Cache-Control"] == IMMUTABLE and resp.headers["ETag"]
        if tile.level == ENTRIES:
            start = tile.index * 256
            assert resp.get_data() == encode_bundle(reader.export(start, start + tile.width))
        else:
            assert resp.get_data() == hash_tile(reader.store.nodes, tile)
        if app_store is None:  # count the storage queries of a hash tile from now on
            app_store = env.app.extensions["luodi"]["books"].ledger.store
            real = app_store.nodes
            app_store.nodes = lambda wanted, real=real: counted.append(1) or real(wanted)
    del app_store.nodes  # the store's own method again
    assert served[0].level == 0 and len(counted) == len([t for t in served[1:] if t.level != ENTRIES]) == 3
    etag = resp.headers["ETag"]
    assert env.client.get("/" + tile.path, headers={"If-None-Match": etag}).status_code == 304
    # bundles are gzipped for the clients that accept it
    plain = env.client.get("/tile/entries/000", headers={"Accept-Encoding": "identity"})
    zipped = env.client.get("/tile/entries/000", headers={"Accept-Encoding": "gzip, identity"})
    assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
    assert zipped.headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in zipped.headers["Vary"]
    assert gzip.decompress(zipped.get_data()) == plain.get_data() and len(zipped.get_data()) < len(plain.get_data())
    assert zipped.headers["ETag"] != plain.headers["ETag"]
    assert "Content-Encoding" not in env.client.get("/tile/0/000", headers={"Accept-Encoding": "gzip"}).headers


    # nothing else is a tile: beyond the tree (300 entries: a full level-0 tile, a partial one of 44,
    # a partial level-1 tile of 1), or malformed
    for path in ("tile/0/002", "tile/0/001", "tile/0/001.p/45", "tile/entries/001.p/45", "tile/entries/001",
                 "tile/1/000", "tile/1/000.p/2", "tile/2/000.p/1", "tile/00/000", "tile/0/000.p/256",
                 "tile/0/000.p/0", "tile/0/x000/000", "tile/0/1", "tile/64/000", "tile/entries", "tile/"):
        resp = env.client.get("/" + path)
        assert_problem(resp, 404, "no-such-tile" if path != "tile/" else None)
        assert "immutable" not in resp.headers.get("Cache-Control", ""), path


def test_a_tile_reader_over_http_gets_the_proofs_apis_answers(env):
    cp = open_checkpoint(env.client.get("/checkpoint").get_data(as_text=True), env.reader.verifier)
    fetched: list[str] = []
    reader = TileReader(fetch_from(env.client, fetched), cp.size, cp.root)
    for seq in (0, 255, 256, 299):
        leaf = env.reader.entry(seq).leaf_hash
        answer = env.client.get(f"/v1/proofs/inclusion?leaf_hash={leaf.hex()}&tree_size={cp.size}").get_json()
        assert [h.hex() for h in reader.inclusion_proof(seq)] == answer["audit_path"]
    for old in (1, 256, 299):
        answer = env.client.get(f"/v1/proofs/consistency?first={old}&second={cp.size}").get_json()
        proof = reader.consistency_proof(old)
        assert [h.hex() for h in proof] == answer["consistency"]
        merkle.verify_consistency(old, cp.size, env.reader.root(old), cp.root, proof)
    assert list(reader.entries(250, 300)) == list(env.reader.export(250, 300))
    assert sorted(set(fetched)) == ["tile/0/000", "tile/0/001.p/44", "tile/1/000.p/1", "tile/entries/000",
                                    "tile/entries/001.p/44"]


# -- the entry limit at the HTTP edge -------------------------------------------------------------


def sized(env, want: int) -> str:
    """A disbursement request (compact JSON) whose entry, appended next, is ``want`` bytes."""
    seq, prev = env.size(), env.reader.entry(env.size() - 1).receipt
    body = sized_disbursement(env.keys[:2], want, seq, prev, CHARITY, PROJECT)
    return json.dumps(body, separators=(",", ":"))


def test_an_entry_over_the_limit_is_refused_with_nothing_written(make_api):
    env = make_api()  # a charity with money to disburse
    url = f"/v1/projects/{PROJECT}/disbursements"
    over = sized(env, MAX_ENTRY_BYTES + 1)
    with env.unchanged():
        resp = env.client.post(url, data=over, content_type="application/json")
    problem = assert_problem(resp, 422, "entry-too-large")
    assert "65,536 bytes" in problem["detail"] and "65,535-byte limit" in problem["detail"]
    at_limit = sized(env, MAX_ENTRY_BYTES)
    resp = env.client.post(url, data=at_limit, content_type="application/json")
    assert resp.status_code == 201, resp.get_data(as_text=True)
    seq = env.size() - 1
    assert len(env.reader.entry(seq).canonical) == MAX_ENTRY_BYTES
    bundle = env.client.get(f"/tile/entries/000.p/{seq + 1}", headers={"Accept-Encoding": "gzip"})
    assert gzip.decompress(bundle.get_data())[-MAX_ENTRY_BYTES - 2 :][:2] == b"\xff\xff"


def test_the_export_writes_what_the_api_serves(env, tmp_path):
    """On every backend: luodi tiles export reads the log through the same store calls."""
    done = export_folder(env.reader, tmp_path / "www")
    assert (done.old_size, done.new_size, done.files) == (0, SIZE, len(tiles_for_size(SIZE)) + 1)
    for tile in tiles_for_size(SIZE):
        served = env.client.get("/" + tile.path, headers={"Accept-Encoding": "identity"}).get_data()
        assert (tmp_path / "www" / tile.path).read_bytes() == served, tile
    assert (tmp_path / "www" / "checkpoint").read_bytes() == env.client.get("/checkpoint").get_data()
