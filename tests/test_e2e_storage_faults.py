"""Storage faults under a real ``luodi serve`` (gunicorn, 2 workers of 4 threads):
what a client and an operator see when another process holds the write lock,
when the database turns read-only or fails with I/O errors, and when the disk
fills, and that the server recovers by itself once the fault clears.

Each refused write is a 503 problem+json with the request id that the server
logged with the exception; nothing is written; reads are answered meanwhile.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import time
from pathlib import Path

import pytest
from storage_faults import held_lock, require, unwritable
from test_e2e_gunicorn import HOST, LUODI, LiveServer, clean_env, free_port, http, init_instance, luodi, one_line_error

from api.instance import DB_NAME
from ledger.log.note import Signer

pytestmark = pytest.mark.sqlite_only("faults made on SQLite's files and locks (flock, chmod, a full disk)")

PROBLEM = "application/problem+json"
LOCK_TIMEOUT = "1"  # seconds, through LUODI_WRITE_LOCK_TIMEOUT (the --lock-timeout option's variable)
CLIENT_TIMEOUT = 30  # a functional bound: the old code hung until gunicorn's 60 s worker timeout, or forever
PROJECT = "clean-water"


def serve(instance: Path, log_key, **env) -> LiveServer:
    return LiveServer(instance, log_key, workers=2, threads=4, env={"LUODI_WRITE_LOCK_TIMEOUT": LOCK_TIMEOUT, **env})


def open_project(server: LiveServer, admin: str) -> None:
    auth = {"Authorization": f"Bearer {admin}"}
    key = Signer.generate("well-trust/finance-1").verifier.to_string()
    got = server.post("/v1/charities", {"charity": "well-trust", "name": "Well Trust", "keys": [key], "threshold": 1},
                      headers=auth)
    assert got.status == 201, got.body
    got = server.post("/v1/projects", {
        "project": PROJECT, "charity": "well-trust", "title": "Clean water", "purpose": "Wells for two villages",
        "currency": "CNY", "target": "9000.00", "period": {"start": "2026-09-01", "end": "2027-06-30"},
    }, headers=auth)
    assert got.status == 201, got.body


def donate(server: LiveServer, intake: str, key: str):
    body = {"amount": "12.00", "channel": "wechat", "payment_ref": f"WX-{key}", "donor_ref": "donor-x",
            "value_date": "2026-11-29"}
    return server.post(f"/v1/projects/{PROJECT}/donations", body, timeout=CLIENT_TIMEOUT,
                       headers={"Authorization": f"Bearer {intake}", "Idempotency-Key": f"storage-fault-{key}"})


def size(server: LiveServer) -> int:
    got = server.get("/v1/checkpoint", timeout=CLIENT_TIMEOUT)
    assert got.status == 200
    return int(got.text.splitlines()[1])


def unavailable(server: LiveServer, got, *words: str) -> dict:
    """A 503 problem+json whose request id is the one logged with the exception."""
    assert got.status == 503, (got.status, got.body)
    assert got.headers["Content-Type"].startswith(PROBLEM)
    body = got.json
    assert body["type"] == "/problems/unavailable" and body["status"] == 503
    assert all(w in body["detail"] for w in words), body["detail"]
    rid = body["request_id"]
    assert rid == got.headers["X-Request-Id"]
    deadline = time.monotonic() + 10
    while f"request {rid}: POST" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    log = server.log()
    assert f"request {rid}: POST /v1/projects/{PROJECT}/donations failed" in log
    after = log[log.index(f"request {rid}: POST"):]
    assert "Traceback" in after and "ledger.errors.Unavailable" in after
    return body


@pytest.fixture
def instance(tmp_path):
    path = tmp_path / "instance"
    log_key, admin, intake = init_instance(path)
    return path, log_key, admin, intake


@pytest.mark.parametrize("kind", ["flock", "exclusive"])
def test_a_held_lock_answers_503_reads_go_on_and_writes_resume(instance, kind):
    path, log_key, admin, intake = instance
    with serve(path, log_key) as server:
        open_project(server, admin)
        before = size(server)
        with held_lock(kind, path / DB_NAME):
            got = donate(server, intake, "lock-0001")
            unavailable(server, got, "busy", "nothing was written")
            assert got.headers["Retry-After"] == LOCK_TIMEOUT
            for _ in range(5):  # reads are answered while the lock is held
                assert size(server) == before
        got = donate(server, intake, "lock-0001")
        assert got.status == 201, got.body
        assert size(server) == before + 1


def test_io_errors_and_a_read_only_database_answer_503_and_the_server_recovers_by_itself(instance):
    path, log_key, admin, intake = instance
    with serve(path, log_key) as server:
        open_project(server, admin)
        before = size(server)
        db = path / DB_NAME
        # immutable under the open connections: their commits fail with SQLITE_IOERR; a
        # connection opened meanwhile is read-only (SQLITE_READONLY)
        with unwritable(db, db.with_name(DB_NAME + "-wal")):
            for i in range(4):
                got = donate(server, intake, f"ro-{i:04d}")
                body = unavailable(server, got, "nothing was written")
                assert "SQLITE_IOERR" in body["detail"] or "SQLITE_READONLY" in body["detail"]
                assert got.headers["Retry-After"] == "30"
                assert size(server) == before
        for i in range(4):  # no restart: each worker reopens its write connection
            got = donate(server, intake, f"ro-{i:04d}")
            assert got.status == 201, got.body
        assert size(server) == before + 4
    done = luodi("audit", "--instance", path)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def small_disk(tmp_path):
    """A 16 MiB tmpfs, mounted for this test (needs root)."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    require(os.geteuid() == 0, "mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)], capture_output=True)
    require(done.returncode == 0, f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=True)


def fill(folder: Path) -> Path:
    """Fill the file system of ``folder`` up to its last byte."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for chunk in (1 << 20, 4096, 1):
            try:
                while f.write(b"\0" * chunk):
                    pass
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
    return filler


def test_a_full_disk_answers_503_and_writes_resume_once_space_is_freed(small_disk):
    path = small_disk / "instance"
    log_key, admin, intake = init_instance(path)
    with serve(path, log_key) as server:
        open_project(server, admin)
        before = size(server)
        filler = fill(small_disk)
        for i in range(3):
            got = donate(server, intake, f"full-{i:04d}")
            unavailable(server, got, "full", "nothing was written")
            assert got.headers["Retry-After"] == "30"
            assert size(server) == before
        filler.unlink()
        got = donate(server, intake, "full-0000")
        assert got.status == 201, got.body
        assert size(server) == before + 1


def test_serve_refuses_an_instance_folder_it_cannot_write(instance):
    path = instance[0]
    with unwritable(path):  # SQLite cannot make the WAL beside the database
        done = luodi("serve", "--instance", path, "--host", HOST, "--port", free_port(), timeout=30)
        line = one_line_error(done)
        assert "cannot write the database" in line and "--read-only" in line


def test_serve_refuses_a_database_it_cannot_write_and_serves_it_read_only(instance):
    path, log_key, admin, intake = instance
    with unwritable(path / DB_NAME):
        done = luodi("serve", "--instance", path, "--host", HOST, "--port", free_port(), timeout=30)
        line = one_line_error(done)
        assert "cannot write the database" in line and "--read-only" in line
        with LiveServer(path, log_key, threads=4, env={"LUODI_READ_ONLY": "1"}) as server:
            assert size(server) == 2  # genesis and policy
            got = server.post("/v1/charities", {"charity": "x"}, headers={"Authorization": f"Bearer {admin}"})
            assert got.status == 503 and got.headers["Content-Type"].startswith(PROBLEM)
            assert "reads only" in got.json["detail"] and "Retry-After" not in got.headers
            assert "read-only" in server.log()


def test_serve_demo_writes_its_tokens_to_a_private_file_not_to_its_output(tmp_path):
    instance = tmp_path / "instance"
    port = free_port()
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with open(out, "wb") as o, open(err, "wb") as e:
        proc = subprocess.Popen(
            [LUODI, "serve", "--demo", "--instance", str(instance), "--host", HOST, "--port", str(port)],
            stdout=o, stderr=e, stdin=subprocess.DEVNULL, env=clean_env(), start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, err.read_text()
            try:
                if http("GET", f"http://{HOST}:{port}/v1/checkpoint", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "luodi serve --demo did not come up"
            time.sleep(0.2)
        tokens_file = instance / "demo-tokens.txt"
        assert stat.S_IMODE(tokens_file.stat().st_mode) == 0o600
        tokens = dict(line.split(":", 1) for line in tokens_file.read_text().splitlines())
        admin, intake = tokens["demo admin token"].strip(), tokens["demo intake token"].strip()
        printed = out.read_text() + err.read_text()
        assert admin not in printed and intake not in printed
        assert f"demo tokens written to {tokens_file}" in printed
        projects = json.loads(http("GET", f"http://{HOST}:{port}/v1/projects").body)
        project = projects["projects"][0]["project"] if isinstance(projects, dict) else projects[0]["project"]
        got = http("POST", f"http://{HOST}:{port}/v1/projects/{project}/closure", {"reason": "demo over"},
                   headers={"Authorization": f"Bearer {admin}"})
        assert got.status in (200, 201), got.body  # the admin token in the file works
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            proc.wait()


def test_serve_refuses_a_read_only_demo_with_one_line(tmp_path):
    instance = tmp_path / "instance"
    done = luodi("serve", "--demo", "--read-only", "--instance", instance, "--port", free_port(), timeout=30)
    assert "cannot be served --read-only" in one_line_error(done)
    assert not instance.exists()  # nothing created
