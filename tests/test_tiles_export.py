"""``luodi tiles export DIR`` (api/cli_tiles.py): the log as C2SP tlog-tiles files,
written incrementally and atomically, the checkpoint last, and served by a real
nginx (Debian's) with the tile-origin block of docs/tiles.md, as a CDN origin
would: a client that reads only tiles through it gets the proofs the API gives.

SQLite only: this is about the files and the web server; test_tiles_http.py serves
tiles from both backends, and the export reads the log through the same store calls.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_e2e_gunicorn import HOST, free_port
from test_nginx_front import NGINX, Nginx

from api import create_app
from api.cli import main
from api.instance import init_instance, open_instance
from ledger.log import merkle
from ledger.log.checkpoint import open_checkpoint
from ledger.log.tile_reader import TileReader
from ledger.log.tiles import tiles_between, tiles_for_size

pytestmark = pytest.mark.sqlite_only("the exported files and the web server that serves them")
DOC = Path(__file__).resolve().parent.parent / "docs" / "tiles.md"
IMMUTABLE = "public, max-age=31536000, immutable"


def grow(instance: Path, n: int, prefix: str = "note", to: int | None = None) -> int:
    """Append ``n`` notes (or up to ``to`` entries) in one commit; the log's new size."""
    cl = open_instance(instance)
    try:
        n = n if to is None else to - cl.ledger.size()
        cl.ledger.append_batch([("note", {"text": f"{prefix} {i}"}) for i in range(n)])
        return cl.ledger.size()
    finally:
        cl.stores.close()


def export(instance: Path, folder: Path, code: int = 0) -> str:
    done = CliRunner().invoke(main, ["tiles", "export", "--instance", str(instance), str(folder)])
    assert done.exit_code == code, done.output
    return done.output


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An instance exported at 600, 700 and 1,000 entries; what each export wrote."""
    root = tmp_path_factory.mktemp("tiles")
    instance, folder = root / "instance", root / "www"
    init_instance(instance)
    runs = []
    for target in (600, 700, 1000):
        size = grow(instance, 0, to=target)
        before = files_of(folder) if folder.exists() else {}
        out = export(instance, folder)
        runs.append((size, out, before, files_of(folder)))
    return {"instance": instance, "folder": folder, "runs": runs}


def test_exports_write_only_what_changed_and_the_checkpoint_last(exported):
    instance, folder = exported["instance"], exported["folder"]
    (s1, out1, _, after1), (s2, out2, before2, after2), (s3, out3, before3, after3) = exported["runs"]
    assert (s1, s2, s3) == (600, 700, 1000)
    assert set(after1) == {t.path for t in tiles_for_size(600)} | {"checkpoint"}
    assert f"exported tree size 600 (the folder held 0): {len(after1)} files" in out1
    for (old, new), out, before, after in [((600, 700), out2, before2, after2), ((700, 1000), out3, before3, after3)]:
        written = {t.path for t in tiles_between(old, new)} | {"checkpoint"}
        assert f"(the folder held {old}): {len(written)} files" in out
        # every other file is byte for byte what the last export left
        assert {p: d for p, d in after.items() if p not in written} == {p: d for p, d in before.items()
                                                                         if p in after and p not in written}
    # 600 -> 700: level 0 tile 2 grew (88 -> 188 entries), and its bundle; level 1 stayed at 2 hashes
    assert sorted(set(after2) - set(after1)) == ["tile/0/002.p/188", "tile/entries/002.p/188"]
    # 700 -> 1000: tile 2 became full; its partial of 88 is deleted, the one the last checkpoint named is kept
    assert "superseded partial tiles deleted" in out3 and ", 2 superseded" in out3
    assert "tile/0/002.p/88" not in after3 and "tile/entries/002.p/88" not in after3
    assert after3["tile/0/002.p/188"] == after2["tile/0/002.p/188"] and "tile/0/002" in after3
    cl = open_instance(instance, with_key=False)
    try:
        assert after3["checkpoint"] == cl.ledger.checkpoint().encode()
    finally:
        cl.stores.close()
    for path in folder.rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path
        assert not path.name.startswith("."), path  # no temporary file left behind
    assert "0 files" in export(instance, folder)  # nothing new: nothing written


def test_export_refuses_another_logs_folder_a_fork_and_a_shorter_log(tmp_path, exported):
    instance, folder = exported["instance"], exported["folder"]
    before = files_of(folder)
    other = tmp_path / "other"
    init_instance(other)
    out = export(other, folder, code=2)
    assert "is not a checkpoint of this log" in out and len(out.strip().splitlines()) == 1
    assert files_of(folder) == before
    # two copies of the log that go different ways after 1,000 entries: same key, two histories
    fork_a, fork_b, seen_a = tmp_path / "a", tmp_path / "b", tmp_path / "www-a"
    shutil.copytree(instance, fork_a)
    shutil.copytree(instance, fork_b)
    grow(fork_a, 5, prefix="a")
    grow(fork_b, 5, prefix="b")
    export(fork_a, seen_a)
    exported_a = files_of(seen_a)
    out = export(fork_b, seen_a, code=2)
    assert "another root at tree size 1005 than this log: a fork" in out and len(out.strip().splitlines()) == 1
    out = export(instance, seen_a, code=2)  # the log itself, 1,000 entries: the folder is ahead of it
    assert "is at tree size 1005, beyond this log's 1000: not a prefix of this log" in out
    assert files_of(seen_a) == exported_a


# -- served by nginx, as a CDN origin -------------------------------------------------------------


def tile_origin_conf(folder: Path, port: int, root: Path) -> Path:
    """docs/tiles.md's nginx block with this test's port and folder, in a whole nginx.conf."""
    blocks = re.findall(r"```nginx\n(.*?)```", DOC.read_text(), re.S)
    assert len(blocks) == 1, "docs/tiles.md should hold one nginx block"
    block = blocks[0]
    for old, new in (("listen 8080;", f"listen {HOST}:{port};"), ("root /srv/luodi/tiles;", f"root {root};")):
        assert old in block, f"the documented block no longer says {old!r}"
        block = block.replace(old, new)
    temp = "\n".join(f"    {kind}_temp_path {folder}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                                            "uwsgi", "scgi"))
    conf = folder / "nginx.conf"
    conf.write_text(
        ("user root;\n" if os.geteuid() == 0 else "")
        + f"daemon off;\npid {folder}/nginx.pid;\nerror_log {folder}/error.log;\nevents {{ worker_connections 64; }}\n"
        f"http {{\n    access_log off;\n{temp}\n{block}\n}}\n"
    )
    return conf


def get(url: str, gzip_ok: bool = True):
    """(status, headers, body decoded of its Content-Encoding)."""
    req = urllib.request.Request(url, headers={"Accept-Encoding": "gzip, identity" if gzip_ok else "identity"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, headers, body = resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        status, headers, body = exc.code, exc.headers, exc.read()
    if headers.get("Content-Encoding") == "gzip":
        body = gzip.decompress(body)
    return status, headers, body


@pytest.fixture(scope="module")
def origin(exported, tmp_path_factory):
    if NGINX is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true: Debian's nginx is not installed (.ci/run installs it)", pytrace=False)
        pytest.skip("Debian's nginx is not installed (.ci/run installs it)")
    folder = tmp_path_factory.mktemp("tile-origin")
    port = free_port()
    with Nginx(tile_origin_conf(folder, port, exported["folder"]), port):
        yield f"http://{HOST}:{port}"


def fetcher(base: str, fetched: list[str]):
    def fetch(path: str) -> bytes | None:
        fetched.append(path)
        status, _, body = get(f"{base}/{path}")
        if status == 404:
            return None
        assert status == 200, (path, status)
        return body

    return fetch


def test_nginx_serves_the_folder_with_the_specs_types_and_cache_headers(origin, exported):
    folder = exported["folder"]
    status, headers, body = get(f"{origin}/checkpoint")
    assert status == 200 and body == (folder / "checkpoint").read_bytes()
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert headers["Cache-Control"] == "public, max-age=3"
    status, headers, body = get(f"{origin}/tile/1/000.p/3")
    assert status == 200 and len(body) == 3 * 32 and body == (folder / "tile/1/000.p/3").read_bytes()
    assert headers["Content-Type"] == "application/octet-stream" and headers["Cache-Control"] == IMMUTABLE
    status, headers, body = get(f"{origin}/tile/entries/001")
    assert status == 200 and headers["Content-Encoding"] == "gzip" and "Accept-Encoding" in headers["Vary"]
    assert body == (folder / "tile/entries/001").read_bytes() and headers["Cache-Control"] == IMMUTABLE
    status, headers, body = get(f"{origin}/tile/entries/001", gzip_ok=False)
    assert status == 200 and "Content-Encoding" not in headers and body == (folder / "tile/entries/001").read_bytes()
    for missing in ("tile/0/004", "tile/0/003.p/233", "tile/x", "luodi.sqlite", "tile/.x.tmp"):
        status, headers, _ = get(f"{origin}/{missing}")
        assert status == 404 and "immutable" not in headers.get("Cache-Control", ""), missing
    (folder / "tile" / ".half-written.tmp").write_bytes(b"x")
    assert get(f"{origin}/tile/.half-written.tmp")[0] == 404
    (folder / "tile" / ".half-written.tmp").unlink()


def test_proofs_from_tiles_through_nginx_are_the_apis(origin, exported):
    from api_helpers import close_app

    instance = exported["instance"]
    app = create_app({"TESTING": True, "INSTANCE": str(instance), "RATELIMIT_ENABLED": False})
    client = app.test_client()
    cl = open_instance(instance, with_key=False)
    try:
        ledger = cl.ledger
        cp = open_checkpoint(get(f"{origin}/checkpoint")[2].decode(), ledger.verifier)
        assert cp.size == 1000
        fetched: list[str] = []
        cache: dict = {}
        reader = TileReader(fetcher(origin, fetched), cp.size, cp.root, cache)
        assert reader.tree_root() == cp.root
        for index in (0, 255, 256, 511, 700, 767, 768, 999):
            leaf = ledger.entry(index).leaf_hash
            proof = reader.inclusion_proof(index)
            answer = client.get(f"/v1/proofs/inclusion?leaf_hash={leaf.hex()}&tree_size={cp.size}").get_json()
            assert [h.hex() for h in proof] == answer["audit_path"] and answer["leaf_index"] == index
            merkle.verify_inclusion(leaf, index, cp.size, proof, cp.root)
        for old in (1, 255, 256, 600, 700, 999, 1000):
            proof = reader.consistency_proof(old)
            answer = client.get(f"/v1/proofs/consistency?first={old}&second={cp.size}").get_json()
            assert [h.hex() for h in proof] == answer["consistency"]
            merkle.verify_consistency(old, cp.size, ledger.root(old), cp.root, proof)
        assert list(reader.entries()) == list(ledger.export(0, cp.size))
        assert len(fetched) == len(set(fetched))  # every tile fetched once; bundles are not kept
        # a reader of the previous export's checkpoint (700) still finds its partial tiles; one of
        # the export before (600), whose partial tile 2 was deleted, reads the full tile instead
        for size, tried in ((700, ["tile/0/002.p/188", "tile/1/000.p/2", "tile/entries/002.p/188"]),
                            (600, ["tile/0/002.p/88", "tile/0/002", "tile/1/000.p/2", "tile/entries/002.p/88",
                                   "tile/entries/002"])):
            fetched.clear()
            old_reader = TileReader(fetcher(origin, fetched), size, ledger.root(size))
            merkle.verify_inclusion(ledger.entry(size - 1).leaf_hash, size - 1, size,
                                    old_reader.inclusion_proof(size - 1), ledger.root(size))
            assert list(old_reader.entries(size - 3, size)) == list(ledger.export(size - 3, size))
            assert fetched == tried
    finally:
        cl.stores.close()
        close_app(app)
