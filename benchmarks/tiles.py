"""C2SP tlog-tiles (issue 14): inclusion proofs assembled from tiles by a client, against
the proofs API, and tile export throughput, on the 1,000,000-entry log.

(a) One ``luodi serve --read-only`` (gunicorn, 2 workers) over the cached ledger of
benchmarks/_common.py.  The same random leaves are proved three ways over one
keep-alive connection, one after the other:

- ``GET /v1/proofs/inclusion?leaf_hash=&tree_size=`` (the proofs API);
- a :class:`~ledger.log.tile_reader.TileReader` for the checkpoint, as a client that
  proves many leaves at one checkpoint keeps it: tiles fetched once and kept, every
  tile checked against the checkpoint's root once (*warm*);
- the same leaves again with that reader, every tile it needs already kept (*hot*);
- a new reader with an empty cache for every proof, as a client that proves one leaf
  and forgets (*cold*): every tile it needs is fetched and checked.

Every proof is verified, outside the timing.  The reader's requests and bytes per
proof are counted.

(b) ``luodi tiles export`` (``api.cli_tiles.export_folder``) of the whole log into an
empty folder (every file flushed to disk and renamed into place, the checkpoint last),
then an incremental export of its last commit (10,000 entries).

    python benchmarks/tiles.py [--entries 1000000] [--proofs 2000] [--workers 2]
"""

from __future__ import annotations

import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))
_saved_path = list(sys.path)
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.getcwd()) != _HERE]
import http.client  # noqa: E402  (this folder's http.py must not hide the standard library's)

sys.path[:] = _saved_path

import argparse  # noqa: E402
import gzip  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
from pathlib import Path  # noqa: E402

from _common import Timer, cached_ledger_path, open_ledger, row, workdir  # noqa: E402

from api.cli_tiles import export_folder  # noqa: E402
from ledger.log import merkle  # noqa: E402
from ledger.log.checkpoint import open_checkpoint  # noqa: E402
from ledger.log.tile_reader import TileReader  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_http", Path(__file__).with_name("http.py"))
bench_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)


class Client:
    """One keep-alive connection, counting requests and bytes received."""

    def __init__(self, port: int):
        self.conn = http.client.HTTPConnection(bench_http.HOST, port, timeout=30)
        self.requests = self.bytes = 0

    def get(self, path: str) -> tuple[int, bytes]:
        self.conn.request("GET", path, headers={"Accept-Encoding": "gzip, identity"})
        resp = self.conn.getresponse()
        body = resp.read()
        self.requests += 1
        self.bytes += len(body)
        if resp.getheader("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        return resp.status, body

    def fetch(self, path: str) -> bytes | None:
        status, body = self.get("/" + path)
        if status == 404:
            return None
        if status != 200:
            raise SystemExit(f"GET /{path}: {status} {body[:200]!r}")
        return body


def proofs(args, path: Path) -> None:
    ledger = open_ledger(path)
    cp = ledger.latest_checkpoint()
    rng = random.Random(args.entries)
    seqs = [rng.randrange(cp.size) for _ in range(args.proofs)]
    leaves = [ledger.entry(s).leaf_hash for s in seqs]
    verifier = ledger.verifier
    ledger.store.close()
    with workdir() as scratch:
        instance = scratch / "instance"
        instance.mkdir(mode=0o700)
        shutil.copy(path, instance / "luodi.sqlite")
        server = bench_http.Server(instance, args.workers, 8, scratch, extra_env={"LUODI_READ_ONLY": "true"})
        try:
            client = Client(server.port)
            status, note = client.get("/checkpoint")
            assert status == 200 and open_checkpoint(note.decode(), verifier).size == cp.size
            results = {}
            got: dict[str, list] = {}
            client.requests = client.bytes = 0
            with Timer() as t:
                answers = [client.get(f"/v1/proofs/inclusion?leaf_hash={h.hex()}&tree_size={cp.size}")[1]
                           for h in leaves]
            got["api"] = [[bytes.fromhex(x) for x in json.loads(a)["audit_path"]] for a in answers]
            results["api"] = (t.seconds, client.requests, client.bytes)
            client.requests = client.bytes = 0
            with Timer() as t:
                reader = TileReader(client.fetch, cp.size, cp.root)
                got["warm"] = [reader.inclusion_proof(s) for s in seqs]
            results["warm"] = (t.seconds, client.requests, client.bytes)
            client.requests = client.bytes = 0
            with Timer() as t:
                got["hot"] = [reader.inclusion_proof(s) for s in seqs]  # the same leaves again: all kept
            results["hot"] = (t.seconds, client.requests, client.bytes)
            client.requests = client.bytes = 0
            with Timer() as t:
                got["cold"] = [TileReader(client.fetch, cp.size, cp.root).inclusion_proof(s) for s in seqs]
            results["cold"] = (t.seconds, client.requests, client.bytes)
        finally:
            server.stop()
    for name, found in got.items():
        for s, leaf, proof in zip(seqs, leaves, found, strict=True):
            merkle.verify_inclusion(leaf, s, cp.size, proof, cp.root)
        assert found == got["api"], name
    n = args.proofs
    print(f"# (a) {n:,} random inclusion proofs at tree size {cp.size:,}, one keep-alive connection to "
          f"luodi serve --read-only ({args.workers} workers); every proof verified, outside the timing")
    print("# target: none set by the issue; the ratios are the figures (tiles/API)")
    row("client", "proofs/s", "vs proofs API", "requests/proof", "bytes/proof")
    api_rate = n / results["api"][0]
    for name, label in (("api", "proofs API (GET /v1/proofs/inclusion)"),
                        ("warm", "tiles, one reader for the checkpoint (warm cache)"),
                        ("hot", "tiles, the same leaves again (every tile kept)"),
                        ("cold", "tiles, a new reader per proof (cold)")):
        seconds, requests, nbytes = results[name]
        rate = n / seconds
        row(label, f"{rate:,.0f}", f"{rate / api_rate:.2f}x", f"{requests / n:.2f}", f"{nbytes / n:,.0f}")


def export(args, path: Path) -> None:
    ledger = open_ledger(path)
    size = ledger.size()
    older = max((s for s, _ in ledger.store.iter_checkpoints() if s < size), default=None)
    with workdir() as scratch:
        with Timer() as whole:
            full = export_folder(ledger, scratch / "full")
        results = [("whole log, into an empty folder", 0, full, whole.seconds)]
        if older:
            export_folder(ledger, scratch / "step", ledger.checkpoint(older))
            with Timer() as step:
                done = export_folder(ledger, scratch / "step")
            results.append((f"its last commit ({size - older:,} entries)", older, done, step.seconds))
    ledger.store.close()
    print(f"# (b) luodi tiles export of the {size:,}-entry log (SQLite), every file flushed and renamed into "
          "place, the checkpoint last")
    row("export", "entries", "files", "MB written", "seconds", "entries/s", "MB/s")
    for label, old, done, seconds in results:
        n = done.new_size - old
        row(label, f"{n:,}", f"{done.files:,}", f"{done.bytes / 1e6:,.1f}", f"{seconds:.2f}",
            f"{n / seconds:,.0f}", f"{done.bytes / 1e6 / seconds:,.1f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=1_000_000)
    ap.add_argument("--proofs", type=int, default=2000)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    path = cached_ledger_path(args.entries)
    proofs(args, path)
    export(args, path)


if __name__ == "__main__":
    main()
