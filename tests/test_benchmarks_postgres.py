"""benchmarks/postgres.py runs end to end at a tiny size against a real PostgreSQL
server (no timing is asserted here), in databases of its own that it drops.

The server is the suite's (``LUODI_TEST_DATABASE_URL``, the ``postgres_server``
fixture: skipped without one, failed under ``CI=true``).  The script connects
to that URL only to create and drop its ``luodi_benchtest_<hex>_…`` databases,
and writes nothing in the tests' database.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"

pytestmark = pytest.mark.postgres_only


def _databases(server: str, prefix: str) -> list[str]:
    with psycopg.connect(server, autocommit=True) as conn:
        rows = conn.execute("SELECT datname FROM pg_database WHERE starts_with(datname, %s)", (prefix,)).fetchall()
    return [r[0] for r in rows]


@pytest.fixture
def prefix(postgres_server):
    """A prefix of the run's own databases; any the script left behind are dropped after the test."""
    name = f"luodi_benchtest_{secrets.token_hex(4)}"
    yield name
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        for db in _databases(postgres_server, name):
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def _run(tmp_path, server, prefix, *args):
    env = dict(os.environ, LUODI_BENCH_OUT=str(tmp_path))
    return subprocess.run(
        [sys.executable, "postgres.py", "--server", server, "--prefix", prefix, "--cleanup", *args],
        cwd=BENCH, env=env, capture_output=True, text=True, timeout=600,
    )


def _rows(stdout: str, start: str) -> list[list[str]]:
    return [line.split(" | ") for line in stdout.splitlines() if line.startswith(start)]


def test_append_proofs_and_verification_side_by_side(tmp_path, postgres_server, prefix):
    done = _run(tmp_path, postgres_server, prefix, "--parts", "append,proofs,verify", "--entries", "300",
                "--append-entries", "240", "--batches", "50,100", "--proofs", "200", "--proof-threads", "1,2")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("# ") and "target" in out
    assert "synchronous_commit=on" in out  # the baseline's durability, as the server reports it
    appends = _rows(out, "append ")
    assert [r[0].split()[-1] for r in appends] == ["50", "100"], out
    for r in appends:
        assert len(r) == 9 and r[7].endswith("met)") and r[8].endswith("x"), out
    proofs = _rows(out, "inclusion")
    assert [r[1] for r in proofs] == ["1", "2"], out
    assert all(r[3].endswith("/s") and r[4].endswith("x") for r in proofs), out
    verify = {r[0]: r for r in _rows(out, "SQLite") + _rows(out, "PostgreSQL") if len(r) == 8}
    assert set(verify) == {"SQLite", "PostgreSQL"}, out
    assert verify["SQLite"][7] == "1.00x"
    # the ledger the proofs and the verification read was built for the run, and is gone with --cleanup
    assert "built" in done.stderr and _databases(postgres_server, prefix) == []


@pytest.mark.skipif(
    shutil.which("wrk") is None and os.environ.get("CI") != "true",
    reason="Debian's wrk is not installed (.ci/run installs it); the HTTP part loads the servers with wrk",
)
def test_http_one_server_against_two(tmp_path, postgres_server, prefix):
    done = _run(tmp_path, postgres_server, prefix, "--parts", "http", "--http-entries", "200", "--seconds", "1",
                "--connections", "4")
    assert done.returncode == 0, done.stderr
    rows = {r[0]: r for r in _rows(done.stdout, "| ")}
    names = ["| SQLite, 1 server x 2 workers", "| PostgreSQL, 1 server x 2 workers",
             "| PostgreSQL, 2 servers x 2 workers", "| PostgreSQL, 2 servers x 1 worker"]
    assert all(name in rows for name in names), done.stdout
    for name in names:
        r = rows[name]
        assert r[-1] == "0 |", done.stdout  # every POST answered 201
        assert int(r[1].replace(",", "")) > 0 and "(" in r[10]  # commits and their average group
        assert r[6].endswith(" us") and r[9].endswith(" us")
    assert rows[names[1]][3] == "1.00x"
    assert _databases(postgres_server, prefix) == []
