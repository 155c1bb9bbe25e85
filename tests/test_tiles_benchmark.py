"""benchmarks/tiles.py runs end to end at a tiny size (no timing is asserted here):
proofs from tiles against the proofs API over a real ``luodi serve``, and the export."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_tiles_benchmark_runs_and_prints_its_tables(tmp_path):
    env = dict(os.environ, LUODI_BENCH_OUT=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "tiles.py", "--entries", "600", "--proofs", "40"],
        cwd=BENCH, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# (a) 40 random inclusion proofs at tree size 601") and "target" in lines[1]
    rows = {line.split(" | ")[0]: line.split(" | ") for line in lines if " | " in line}
    assert rows["proofs API (GET /v1/proofs/inclusion)"][2:4] == ["1.00x", "1.00"]
    assert rows["tiles, the same leaves again (every tile kept)"][3] == "0.00"  # no request at all
    for name in ("tiles, one reader for the checkpoint (warm cache)", "tiles, a new reader per proof (cold)"):
        assert rows[name][2].endswith("x") and float(rows[name][3]) > 0
    whole = rows["whole log, into an empty folder"]
    assert whole[1:3] == ["601", "8"]  # 601 entries: 3 level-0 tiles, their 3 bundles, 1 level-1 tile, the checkpoint
    assert rows["its last commit (600 entries)"][1] == "600"
