"""The suite's backends (tests/backends.py): ``--backend`` picks them, a test of SQLite
itself runs on SQLite only, each PostgreSQL test gets a schema of its own that is
dropped afterwards, and an unreachable server skips the PostgreSQL tests with the
reason (fails them under ``CI=true``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from backends import TEST_URL_ENV, PostgresBackend, schema_url

ROOT = Path(__file__).resolve().parent.parent
UNREACHABLE = "postgresql://luodi:s3cret@127.0.0.1:1/luodi_test"  # nothing listens on port 1
ONE_TEST = "tests/test_fund_tracing.py::test_one_disbursement_spanning_three_donations"


def pytest_run(*args: str, **env: str) -> subprocess.CompletedProcess:
    """The suite's own pytest, in a child, on a few of its tests."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CI"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-rs", *args],
        cwd=ROOT, env={**base, **env}, capture_output=True, text=True, timeout=120,
    )


def test_schema_url_puts_the_schema_first_on_the_search_path():
    assert schema_url("postgresql:///luodi_test", "t_ab12") == "postgresql:///luodi_test?options=-csearch_path%3Dt_ab12"
    assert (
        schema_url("postgresql://db.example/luodi?sslmode=require", "t_ab12")
        == "postgresql://db.example/luodi?sslmode=require&options=-csearch_path%3Dt_ab12"
    )


@pytest.mark.postgres_only
def test_each_name_is_a_schema_of_its_own_and_dropped_afterwards(postgres_server):
    pg = PostgresBackend(postgres_server)
    a, b = pg.target("a"), pg.target("b")
    assert a != b and pg.target("a") == a
    schemas = set(pg.schemas.values())
    with psycopg.connect(a, autocommit=True) as conn:
        assert conn.execute("SELECT current_schema()").fetchone()[0] == pg.schemas["a"]
        conn.execute("CREATE TABLE t (x int)")
    pg.drop()
    with psycopg.connect(postgres_server, autocommit=True) as conn:
        left = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)", (list(schemas),))}
    assert left == set()


@pytest.mark.parametrize(
    "choice, ids",
    [("all", ["[sqlite]", "[postgres]"]), ("sqlite", ["[sqlite]"]), ("postgres", ["[postgres]"])],
)
def test_the_backend_option_picks_the_runs(choice, ids):
    done = pytest_run("--co", "--backend", choice, ONE_TEST)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [line.rsplit("::", 1)[1] for line in done.stdout.splitlines() if "::" in line] == [
        f"test_one_disbursement_spanning_three_donations{i}" for i in ids
    ]


def test_a_sqlite_only_test_is_skipped_with_its_reason_when_sqlite_is_not_chosen():
    done = pytest_run("--backend", "postgres", "tests/test_storage.py::test_wal_mode_and_synchronous_full")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 skipped" in done.stdout
    assert "SQLite only: SQLite's pragmas" in done.stdout


def test_an_unreachable_server_skips_the_postgresql_runs_with_the_reason():
    done = pytest_run(ONE_TEST, **{TEST_URL_ENV: UNREACHABLE})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 1 skipped" in done.stdout
    assert "PostgreSQL is not reachable at postgresql://luodi:***@127.0.0.1:1/luodi_test" in done.stdout
    assert "Connection refused" in done.stdout and TEST_URL_ENV in done.stdout
    assert "s3cret" not in done.stdout + done.stderr


def test_under_ci_an_unreachable_server_fails_the_run():
    done = pytest_run(ONE_TEST, CI="true", **{TEST_URL_ENV: UNREACHABLE})
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 passed, 1 error" in done.stdout
    assert "CI=true: PostgreSQL is not reachable at postgresql://luodi:***@127.0.0.1:1/luodi_test" in done.stdout
