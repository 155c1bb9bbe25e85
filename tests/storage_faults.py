"""Real storage faults for tests: another process holding the append flock or
SQLite's write lock, files that cannot be written (even by root), a failing
connection at the storage seam, and a bounded wait for calls that used to hang.

Tests that need root or a kernel feature call :func:`require`: without it they
skip with the reason, but under ``CI=true`` they fail instead.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

HOLDER = r"""
import fcntl, os, sqlite3, sys
kind, path = sys.argv[1], sys.argv[2]
if kind == "flock":
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
else:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("BEGIN EXCLUSIVE")
print("held", flush=True)
sys.stdin.read()  # hold until the test closes our stdin
"""


def require(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``condition``; under CI=true, fail instead."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this test: {reason}")
    pytest.skip(reason)


@contextmanager
def held_lock(kind: str, db_path: Path):
    """Another process holds the append flock (``kind="flock"``) or SQLite's write
    lock (``kind="exclusive"``, a ``BEGIN EXCLUSIVE``) on ``db_path`` inside the block."""
    db_path = Path(db_path)
    target = db_path.with_name(db_path.name + ".lock") if kind == "flock" else db_path
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, str(target)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout.readline().strip() == "held", "the lock holder did not get its lock"
        yield
    finally:
        proc.stdin.close()
        proc.wait(timeout=30)
        proc.stdout.close()


def _chattr(flag: str, paths) -> bool:
    done = subprocess.run(["chattr", flag, *map(str, paths)], capture_output=True)
    return done.returncode == 0


@contextmanager
def unwritable(*paths: Path):
    """The files cannot be written inside the block, by root too: ``chattr +i``
    as root (root ignores mode bits), mode 0444 otherwise."""
    paths = [Path(p) for p in paths if Path(p).exists()]
    if os.geteuid() == 0:
        require(_chattr("+i", paths), "chattr +i does not work on this file system")
        try:
            yield
        finally:
            _chattr("-i", paths)
    else:
        modes = [p.stat().st_mode for p in paths]
        for p in paths:
            p.chmod(0o444)
        try:
            yield
        finally:
            for p, mode in zip(paths, modes):
                p.chmod(mode)


def storage_error(message: str, name: str) -> sqlite3.OperationalError:
    """An error as sqlite3 raises it for a failing storage (``name``: e.g. SQLITE_IOERR_WRITE)."""
    exc = sqlite3.OperationalError(message)
    exc.sqlite_errorname = name
    exc.sqlite_errorcode = getattr(sqlite3, name)
    return exc


class FailingConnection:
    """A write connection whose statements starting with ``prefix`` fail as a
    failing disk makes them fail; everything else goes to the real connection."""

    def __init__(self, conn: sqlite3.Connection, prefix: str, error: sqlite3.Error):
        self._conn = conn
        self._prefix = prefix.upper()
        self._error = error

    def execute(self, sql, *args):
        if sql.lstrip().upper().startswith(self._prefix):
            raise self._error
        return self._conn.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self._conn, name)


def bounded(fn, timeout: float = 30.0):
    """``fn()``'s result or exception, or AssertionError if it has not returned
    within ``timeout`` seconds (a functional bound for calls that used to hang)."""
    box: dict = {}

    def run():
        try:
            box["result"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise AssertionError(f"no answer within {timeout:g} s")
    if "error" in box:
        raise box["error"]
    return box["result"]
