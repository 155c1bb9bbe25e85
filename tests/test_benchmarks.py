"""The benchmark scripts run end to end at a tiny size (no timing is asserted here)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    "script, args, rows",
    [
        ("append.py", ["--entries", "300", "--batches", "50,100"], ["batch     50", "batch    100"]),
        ("proofs.py", ["--sizes", "200,400", "--proofs", "300"], ["200 |", "400 |"]),
        ("verify.py", ["--sizes", "200,400"], ["200 |", "400 |"]),
        ("audit.py", ["--entries", "300", "--receipts", "20"], ["| local --db", "| remote --url"]),
        ("receipt_cpu.py", ["--entries", "300", "--requests", "50", "--receipts", "20"], ["ping (GET", "receipt GET"]),
    ],
)
def test_benchmark_script_runs_and_prints_its_table(tmp_path, script, args, rows):
    env = dict(os.environ, LUODI_BENCH_OUT=str(tmp_path))
    done = subprocess.run(
        [sys.executable, script, *args], cwd=BENCH, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# ") and "target" in done.stdout
    for start in rows:
        matching = [line for line in lines if line.startswith(start)]
        assert len(matching) == 1, done.stdout
        assert "x" in matching[0] or "%" in matching[0]


@pytest.mark.skipif(
    shutil.which("wrk") is None and os.environ.get("CI") != "true",
    reason="Debian's wrk is not installed (.ci/run installs it); the soak paces its load with wrk",
)
def test_http_benchmark_runs_every_phase_and_the_soak(tmp_path):
    env = dict(os.environ, LUODI_BENCH_OUT=str(tmp_path))
    done = subprocess.run(
        [sys.executable, "http.py", "--entries", "300", "--seconds", "1", "--connections", "8", "--receipts", "50",
         "--soak", "2", "--loadgen", "wrk"],
        cwd=BENCH, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for start, target in (("ping (GET", "sync-ping"), ("donation POST", "crud-post"), ("receipt GET", "ping")):
        matching = [line for line in lines if line.startswith(start)]
        assert len(matching) == 1 and f"x {target}" in matching[0], done.stdout
    post = next(line for line in lines if line.startswith("donation POST")).split(" | ")
    assert post[-2] == "0" and "(" in post[-1]  # no errors; its commits and their average group
    for start in ("ping, sync workers", "baseline: CRUD app POST"):
        assert sum(line.startswith(start) for line in lines) == 1, done.stdout
    soak = [line for line in lines if line.startswith("1 | ")]
    assert len(soak) == 1 and soak[0].endswith("| 0") and "MiB" in soak[0], done.stdout


def test_batch_benchmark_runs_its_in_process_paths(tmp_path):
    """benchmarks/batch.py at a tiny size, in process only (the HTTP side needs a server)."""
    env = dict(os.environ, LUODI_BENCH_OUT=str(tmp_path))
    args = ["--entries", "200", "--donations", "120", "--batch", "50", "--no-http"]
    done = subprocess.run(
        [sys.executable, "batch.py", *args], cwd=BENCH, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "ledger of 200 donations, 120 more in batches of 50"
    for path in ("record_donation_in", "record_donations"):
        (line,) = [x for x in lines if x.startswith(f"in-process {path} batches: ")]
        assert "donations/s" in line and "µs CPU each" in line
    assert not any("HTTP" in x for x in lines)
