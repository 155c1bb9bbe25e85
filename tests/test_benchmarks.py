"""The benchmark scripts run end to end at a tiny size (no timing is asserted here)."""

from __future__ import annotations

import os
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


@pytest.mark.slow
def test_http_benchmark_runs_against_a_real_server(tmp_path):
    env = dict(os.environ, LUODI_BENCH_OUT=str(tmp_path))
    args = ["--entries", "200", "--seconds", "1", "--loadgen", "python", "--max-requests", "300", "--receipts", "50"]
    done = subprocess.run([sys.executable, "http.py", *args], cwd=BENCH, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("# HTTP at 200 donations") and "targets" in done.stdout
    for start in ("ping (GET /v1/ping)", "donation POST", "receipt GET"):
        (line,) = [x for x in lines if x.startswith(start)]
        cells = line.split(" | ")
        assert int(cells[1].replace(",", "")) > 0, line  # requests made
        assert cells[-1] == "0", line  # no errors, no unexpected status
        assert cells[-3].endswith(" us") and cells[-2].endswith(" us"), line  # CPU per request
    assert "the log grew by" in done.stdout
