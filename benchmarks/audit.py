"""A remote audit over loopback beside a local audit of the same log's database file.

Target (issue 10): ``luodi audit --url`` of the HTTP benchmark's
1,000,000-donation instance, served by ``luodi serve`` on 127.0.0.1, takes at
most 2x ``luodi audit --db`` of a copy of the same database file.  Both are the
real command, run as child processes, one after the other in one run; each
is timed by wall clock and its peak memory (max RSS) is read from the
kernel's accounting of that child (``os.wait4``).  The remote audit streams
``/v1/export``, replays the books and compares every project's totals,
``--receipts`` sampled receipts and as many inclusion proofs with the server's
answers; the local one re-verifies every entry, tree node and checkpoint, then
replays the books and compares them with the file's own index.

    python benchmarks/audit.py [--entries 1000000] [--receipts 100] [--repeat 1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import row, workdir

from api.instance import DB_NAME, open_instance

_HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("bench_http", _HERE / "http.py")
bench_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_http)


def run(args: list[str]) -> tuple[float, float, dict]:
    """Run ``luodi audit ... --json``: (wall seconds, peak RSS in MiB, its JSON report)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [bench_http.LUODI, "audit", *args, "--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
        env=bench_http._env(),
    )
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    report = json.loads(out)
    if os.waitstatus_to_exitcode(status) != 0 or not report.get("ok"):
        raise SystemExit(f"luodi audit {' '.join(args)} failed: {report}")
    return seconds, usage.ru_maxrss / 1024, report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--entries", type=int, default=1_000_000, help="donations in the ledger (default 1000000)")
    ap.add_argument("--receipts", default="100", help="receipts the remote audit compares (default 100)")
    ap.add_argument("--repeat", type=int, default=1, help="runs of each audit (the median is reported)")
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers of the server (default 2)")
    args = ap.parse_args()

    source = bench_http.cached_instance(args.entries)
    with workdir() as scratch:
        instance = scratch / "instance"
        shutil.copytree(source, instance)
        cl = open_instance(instance, with_key=False)
        log_key, size = cl.ledger.verifier.to_string(), cl.ledger.size()
        cl.stores.close()
        copy = scratch / "copy.sqlite"
        shutil.copyfile(instance / DB_NAME, copy)
        print(f"# {size:,} entries; cores: {os.cpu_count()}; python {sys.version.split()[0]}")
        local, remote = [], []
        server = bench_http.Server(instance, args.workers, 8, scratch)
        try:
            for _ in range(args.repeat):
                local.append(run(["--db", str(copy), "--log-key", log_key]))
                remote.append(run(["--url", server.url, "--log-key", log_key, "--receipts", args.receipts]))
        finally:
            server.stop()
    report = remote[-1][2]
    print(
        f"# remote audit checked {report['receipts_checked']} receipts and {report['inclusion_proofs_checked']} "
        f"inclusion proofs in {report['requests']} requests"
    )
    base = statistics.median(r[0] for r in local)
    row("| audit", "seconds (median)", "time / local", "entries/s", "peak RSS (MiB)", "runs |")
    row("|---", "---", "---", "---", "---", "--- |")
    for name, runs in (("local --db", local), ("remote --url over loopback", remote)):
        secs = statistics.median(r[0] for r in runs)
        peak = max(r[1] for r in runs)
        row(f"| {name}", f"{secs:.1f}", f"{secs / base:.2f}x", f"{size / secs:,.0f}", f"{peak:.0f}", f"{len(runs)} |")
    ratio = statistics.median(r[0] for r in remote) / base
    print(f"\nremote / local: {ratio:.2f}x (target: at most 2x) -> {'met' if ratio <= 2 else 'NOT met'}")


if __name__ == "__main__":
    main()
