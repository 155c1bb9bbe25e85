"""Whole-log verification time against a bare SHA-256 pass, and its peak memory.

The baseline streams the same canonical bytes from the same table and hashes
each one (SHA-256 of 0x00 || bytes), nothing else.  Target: verification
<= 12x the baseline's time.  Peak memory is each run's maximum resident set,
measured in a fresh child process per size, beside a child that only opens the
database; the target is that it stays flat as n grows.

    python benchmarks/verify.py [--sizes 100000,1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from _common import OUT, cached_ledger_path, row

CHILD = r"""
import hashlib, json, resource, sys, time
sys.path.insert(0, {bench!r})
from ledger.charity.kinds import registry
from ledger.log.verify import verify_log
from ledger.stores.sqlite import open_sqlite
store = open_sqlite({path!r}).log
kinds = registry()
mode = {mode!r}
t = time.perf_counter()
if mode == "verify1":
    size = verify_log(store, kinds, workers=1).size
elif mode == "verify":
    size = verify_log(store, kinds).size
elif mode == "sha":
    # The same scan verification makes (same query, same connection settings), hashing only.
    size = 0
    with store.snapshot(streaming=True):
        for _, _, _, data in store.iter_entries():
            hashlib.sha256(b"\x00" + data).digest()
            size += 1
else:
    size = store.size()
seconds = time.perf_counter() - t
print(json.dumps({{"size": size, "seconds": seconds,
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "worker_maxrss_kib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}))
"""


def child(path, mode: str) -> dict:
    code = CHILD.format(bench=str(OUT.parent), path=str(path), mode=mode)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    args = ap.parse_args()
    cores = os.cpu_count()
    print("# whole-log verification vs a bare SHA-256 pass over the same canonical bytes (one core)")
    print("# targets: one core <= 12x the bare pass; peak memory flat as n grows")
    row("entries", "bare sha s", "verify 1 core s", "ratio", f"verify {cores} cores s", "ratio",
        "peak RSS 1 core", f"peak RSS {cores} cores", "peak RSS open only")
    for n in (int(s) for s in args.sizes.split(",")):
        path = cached_ledger_path(n)
        sha = child(path, "sha")
        one = child(path, "verify1")
        all_ = child(path, "verify")
        idle = child(path, "open")
        row(
            f"{n:,}",
            f"{sha['seconds']:.3f}",
            f"{one['seconds']:.2f}",
            f"{one['seconds'] / sha['seconds']:.1f}x",
            f"{all_['seconds']:.2f}",
            f"{all_['seconds'] / sha['seconds']:.1f}x",
            f"{one['maxrss_kib'] / 1024:.1f} MiB",
            f"{all_['maxrss_kib'] / 1024:.1f} + {all_['worker_maxrss_kib'] / 1024:.1f} MiB per worker",
            f"{idle['maxrss_kib'] / 1024:.1f} MiB",
        )


if __name__ == "__main__":
    main()
