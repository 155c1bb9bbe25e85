"""Inclusion and consistency proofs per second at 1,000,000 entries, against 100,000.

Targets: >= 20,000 inclusion proofs/s at 1M, and the 1M rate within 1.5x of
the 100k rate.  Proofs are asked at random indexes against the latest tree
size, through a freshly opened Ledger (its node cache starts empty).  Every
100th proof is verified, outside the timing, to keep the benchmark honest.

    python benchmarks/proofs.py [--sizes 100000,1000000] [--proofs 50000]
"""

from __future__ import annotations

import argparse
import random

from _common import Timer, cached_ledger_path, open_ledger, row

from ledger.log import merkle


def measure(n: int, count: int) -> tuple[float, float]:
    ledger = open_ledger(cached_ledger_path(n))
    size = ledger.size()
    rng = random.Random(n)
    indexes = [rng.randrange(size) for _ in range(count)]
    firsts = [rng.randrange(1, size) for _ in range(count)]
    with Timer() as inc:
        proofs = [ledger.inclusion_proof(i, size) for i in indexes]
    with Timer() as con:
        cproofs = [ledger.consistency_proof(m, size) for m in firsts]
    root = ledger.root(size)
    for i, proof in list(zip(indexes, proofs, strict=True))[::100]:
        merkle.verify_inclusion(ledger.entry(i).leaf_hash, i, size, proof, root)
    for m, proof in list(zip(firsts, cproofs, strict=True))[::100]:
        merkle.verify_consistency(m, size, ledger.root(m), root, proof)
    ledger.store.close()
    return count / inc.seconds, count / con.seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100000,1000000")
    ap.add_argument("--proofs", type=int, default=50_000)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = {n: measure(n, args.proofs) for n in sizes}
    base_n = sizes[0]
    print(f"# {args.proofs:,} random proofs per size, against the latest tree size, one process")
    print("# targets: >= 20,000 inclusion proofs/s at 1M; 1M within 1.5x of 100k")
    row("entries", "inclusion/s", f"vs {base_n:,}", "consistency/s", f"vs {base_n:,}")
    for n in sizes:
        inc, con = results[n]
        row(
            f"{n:,}",
            f"{inc:,.0f}",
            f"{results[base_n][0] / inc:.2f}x slower",
            f"{con:,.0f}",
            f"{results[base_n][1] / con:.2f}x slower",
        )


if __name__ == "__main__":
    main()
