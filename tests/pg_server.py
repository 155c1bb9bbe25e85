"""A PostgreSQL server of a test's own, which the test may stop, crash and start again.

The shared test server (``LUODI_TEST_DATABASE_URL``, a schema per test: see
:mod:`backends`) must never be stopped: a test that stops PostgreSQL uses a
:class:`PrivateServer` (``initdb`` into a temporary folder, run as the
``postgres`` user, on a unix socket and a port of its own, no TCP listener).
:func:`require_postgres` skips a test, with the reason, when one cannot be run
here (no server binaries, not root), and fails it instead under ``CI=true``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from backends import in_ci

PG_USER = "postgres"


def _bin_dir() -> Path | None:
    configured = os.environ.get("LUODI_TEST_PG_BIN")
    candidates = [Path(configured)] if configured else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((p for p in candidates if (p / "initdb").is_file() and (p / "pg_ctl").is_file()), None)


BIN = _bin_dir()


def require_postgres(why: str) -> None:
    """Skip with ``why`` (fail under CI=true, where PostgreSQL must be there)."""
    if in_ci():
        pytest.fail(f"CI=true: {why}", pytrace=False)
    pytest.skip(why)


def psycopg_or_skip():
    try:
        import psycopg
    except ImportError:
        require_postgres("psycopg is not installed (pip install 'psycopg[binary,pool]')")
    return psycopg


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivateServer:
    """A PostgreSQL server of this test's own: ``start``, ``stop`` (``-m fast`` or
    ``immediate``, a crash as far as clients are concerned), ``start`` again.

    Its folder is a fresh ``/tmp/luodi-pg-*`` owned by ``postgres`` (a test's own
    tmp_path is root's and closed to others); it listens only on a unix socket in
    that folder, with trust authentication for the local user ``postgres``.
    """

    def __init__(self, database: str = "luodi"):
        if BIN is None:
            require_postgres("the PostgreSQL server binaries (initdb, pg_ctl) are not installed")
        if shutil.which("runuser") is None:
            require_postgres("runuser is not installed: cannot run initdb as the postgres user")
        if os.geteuid() != 0:
            require_postgres("a private PostgreSQL server is started as the postgres user, which needs root")
        self.database = database
        self.root = Path(tempfile.mkdtemp(prefix="luodi-pg-"))
        self.data = self.root / "data"
        self.sock = self.root / "sock"
        self.sock.mkdir()
        self.logfile = self.root / "server.log"
        self.port = _free_port()
        shutil.chown(self.root, PG_USER)
        shutil.chown(self.sock, PG_USER)
        self._as_postgres([str(BIN / "initdb"), "-D", str(self.data), "-U", PG_USER, "--auth=trust", "-E", "UTF8",
                           "--no-sync", "--no-instructions"])
        self.running = False

    def _as_postgres(self, args: list[str], timeout: float = 60) -> subprocess.CompletedProcess:
        done = subprocess.run(["runuser", "-u", PG_USER, "--", *args], capture_output=True, text=True,
                              timeout=timeout, cwd=self.root)
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(args[:2])} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
                                 f"\n{self.log()}")
        return done

    @property
    def url(self) -> str:
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        return f"postgresql://{PG_USER}@/{database}?host={self.sock}&port={self.port}"

    def start(self) -> None:
        options = f"-k {self.sock} -p {self.port} -c listen_addresses='' -c fsync=on"
        self._as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.logfile), "-o", options,
                           "-w", "-t", "60", "start"], timeout=90)
        self.running = True
        psycopg = psycopg_or_skip()
        with psycopg.connect(self.url_for("postgres"), autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,)).fetchone() is None:
                conn.execute(f'CREATE DATABASE "{self.database}"')

    def stop(self, mode: str = "immediate") -> None:
        """Stop the server: ``immediate`` ends every backend at once, without a
        checkpoint (the next start runs crash recovery); ``fast`` rolls back what
        is open and shuts down cleanly."""
        self._as_postgres([str(BIN / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop"],
                          timeout=90)
        self.running = False

    def restart(self, mode: str = "immediate") -> None:
        self.stop(mode)
        self.start()

    def log(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def close(self) -> None:
        try:
            if self.running:
                self.stop("immediate")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PrivateServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@pytest.fixture
def private_pg():
    """A running private PostgreSQL server (``.url``), removed afterwards."""
    server = PrivateServer()
    try:
        server.start()
        yield server
    finally:
        server.close()
