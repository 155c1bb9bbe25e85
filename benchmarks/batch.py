"""Batch intake: in-process ``record_donation_in`` batches (one writer each) against
``POST /v1/projects/<id>/donations/batch`` over HTTP (``luodi serve``), 1,000
donations per batch, on a copy of a cached ledger (benchmarks/http.py's).

Issue 12's target: HTTP at >= 0.5x the in-process rate, and >= 10,000 donations/s.

    python benchmarks/batch.py [--entries 100000] [--donations 100000] [--batch 1000]
                               [--workers 2] [--threads 8] [--connections 2]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import importlib.util  # noqa: E402

from _common import workdir  # noqa: E402

from api.instance import open_instance  # noqa: E402
from ledger.charity.tokens import create_token  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_http", Path(__file__).resolve().parent / "http.py")
bench_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)


def donation(run: str, i: int) -> dict:
    return {"amount": f"{10 + i % 90}.00", "channel": "wechat", "payment_ref": f"PAY-{run}-{i:08d}",
            "donor_ref": f"donor-{run}-{i:08d}", "value_date": "2026-11-29",
            "idempotency_key": f"batch-{run}-{i:08d}"}


def in_process(instance: Path, n: int, size: int) -> float:
    books = open_instance(instance)
    started = time.perf_counter()
    for lo in range(0, n, size):
        with books.ledger.writer() as w:
            for i in range(lo, min(n, lo + size)):
                d = donation("local", i)
                key = d.pop("idempotency_key")
                books.record_donation_in(w, bench_http.PROJECT, intake_key=key, **d)
    seconds = time.perf_counter() - started
    books.stores.close()
    return n / seconds


def over_http(instance: Path, scratch: Path, n: int, size: int, workers: int, threads: int, connections: int) -> float:
    books = open_instance(instance, with_key=False)
    token = create_token(books.stores.tokens, "intake")
    books.stores.close()
    server = bench_http.Server(instance, workers, threads, scratch)
    path = f"/v1/projects/{bench_http.PROJECT}/donations/batch"
    starts = list(range(0, n, size))
    lock, failures = threading.Lock(), []

    def client():
        conn = bench_http.http.client.HTTPConnection(bench_http.HOST, server.port, timeout=300)
        while True:
            with lock:
                if not starts:
                    break
                lo = starts.pop(0)
            body = json.dumps({"donations": [donation("http", i) for i in range(lo, min(n, lo + size))]})
            conn.request("POST", path, body, {"Content-Type": "application/json", "Authorization": f"Bearer {token}"})
            resp = conn.getresponse()
            data = resp.read()
            if resp.status != 200 or any(r["status"] != 201 for r in json.loads(data)["results"]):
                failures.append(data[:300])
        conn.close()

    try:
        started = time.perf_counter()
        pool = [threading.Thread(target=client) for _ in range(connections)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    if failures:
        raise SystemExit(f"batch intake failed: {failures[0]!r}")
    return n / seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--entries", type=int, default=100_000, help="donations in the ledger first (default 100000)")
    ap.add_argument("--donations", type=int, default=100_000, help="donations recorded by each side")
    ap.add_argument("--batch", type=int, default=1000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=8)
    ap.add_argument("--connections", type=int, default=2)
    args = ap.parse_args()
    source = bench_http.cached_instance(args.entries)
    with workdir() as scratch:
        local, remote = scratch / "local", scratch / "remote"
        shutil.copytree(source, local)
        shutil.copytree(source, remote)
        rate_local = in_process(local, args.donations, args.batch)
        rate_http = over_http(remote, scratch, args.donations, args.batch, args.workers, args.threads,
                              args.connections)
    print(f"ledger of {args.entries} donations, {args.donations} more in batches of {args.batch}")
    print(f"in-process record_donation_in batches: {rate_local:,.0f} donations/s")
    print(f"HTTP batch intake ({args.workers} workers, {args.connections} connections): {rate_http:,.0f} donations/s")
    print(f"ratio HTTP / in-process: {rate_http / rate_local:.2f} (target >= 0.5, and >= 10,000/s over HTTP)")


if __name__ == "__main__":
    main()
