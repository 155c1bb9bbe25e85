"""Batch intake: in-process batches against ``POST /v1/projects/<id>/donations/batch``
over HTTP (``luodi serve``), 1,000 donations per batch, on a copy of a cached ledger
(benchmarks/http.py's).

In process, two paths: ``record_donation_in`` called once per donation inside one
writer per batch (no receipts), and ``record_donations`` (what the batch endpoint
calls: one commit per batch, each item's refusal its own, receipts with proofs).
Each prints its rate (wall clock) and its CPU time per donation (``process_time``,
steadier than the wall clock on a shared machine).

Issue 12's targets: in-process batches >= 20,000 donations/s; HTTP at >= 0.5x the
in-process rate, and >= 10,000 donations/s.

    python benchmarks/batch.py [--entries 100000] [--donations 100000] [--batch 1000]
                               [--workers 2] [--threads 8] [--connections 2] [--no-http]
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


def _items(run: str, lo: int, hi: int) -> list[dict]:
    out = []
    for i in range(lo, hi):
        d = donation(run, i)
        d["intake_key"] = d.pop("idempotency_key")
        out.append(d)
    return out


def in_process(instance: Path, n: int, size: int) -> tuple[float, float]:
    """``record_donation_in`` once per donation, one writer per batch: (donations/s, CPU µs each)."""
    books = open_instance(instance)
    batches = [_items("local", lo, min(n, lo + size)) for lo in range(0, n, size)]
    started, cpu = time.perf_counter(), time.process_time()
    for items in batches:
        with books.ledger.writer() as w:
            for d in items:
                books.record_donation_in(w, bench_http.PROJECT, **d)
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    books.stores.close()
    return n / seconds, cpu / n * 1e6


def in_process_batches(instance: Path, n: int, size: int) -> tuple[float, float]:
    """``record_donations`` (the batch endpoint's call, receipts included): (donations/s, CPU µs each)."""
    books = open_instance(instance)
    batches = [_items("many", lo, min(n, lo + size)) for lo in range(0, n, size)]
    started, cpu = time.perf_counter(), time.process_time()
    for items in batches:
        done = books.record_donations(bench_http.PROJECT, items)
        if any(not hasattr(d, "receipt") or d.replayed for d in done):
            raise SystemExit(f"record_donations refused an item: {next(d for d in done if not hasattr(d, 'receipt'))!r}")
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    books.stores.close()
    return n / seconds, cpu / n * 1e6


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
    ap.add_argument("--no-http", action="store_true", help="the in-process paths only")
    args = ap.parse_args()
    source = bench_http.cached_instance(args.entries)
    with workdir() as scratch:
        local, remote = scratch / "local", scratch / "remote"
        shutil.copytree(source, local)
        shutil.copytree(source, remote)
        rate_local, cpu_local = in_process(local, args.donations, args.batch)
        rate_many, cpu_many = in_process_batches(local, args.donations, args.batch)
        if not args.no_http:
            rate_http = over_http(remote, scratch, args.donations, args.batch, args.workers, args.threads,
                                  args.connections)
    print(f"ledger of {args.entries} donations, {args.donations} more in batches of {args.batch}")
    print(f"in-process record_donation_in batches: {rate_local:,.0f} donations/s, {cpu_local:.1f} µs CPU each")
    print(f"in-process record_donations batches: {rate_many:,.0f} donations/s, {cpu_many:.1f} µs CPU each"
          " (target >= 20,000/s)")
    if not args.no_http:
        print(f"HTTP batch intake ({args.workers} workers, {args.connections} connections): "
              f"{rate_http:,.0f} donations/s")
        print(f"ratio HTTP / in-process: {rate_http / rate_many:.2f} (target >= 0.5, and >= 10,000/s over HTTP)")


if __name__ == "__main__":
    main()
