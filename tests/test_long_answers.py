"""A long answer that keeps flowing is not a hung request.

gunicorn's master stops a worker whose heartbeat is older than its
``timeout``; under api/worker.py the heartbeat of a running request is the
time it began *or last wrote a part of its answer*.  So the whole log's
export, streamed to an auditor who reads it only as fast as it checks it,
runs past the timeout and arrives whole, while a request that writes nothing
for that long is still stopped (tests/test_server_errors.py).

Here the real gunicorn (api.server.Server with LuodiWorker) serves a real
instance with a 3-second timeout, and a client reads the export slowly, for
well over 3 seconds (the socket buffers fill, so the server's writes wait on
the reader).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_e2e_gunicorn import HOST, clean_env, free_port

from api.instance import init_instance

TIMEOUT = 3  # gunicorn's worker timeout, seconds
DONATIONS = 20_000  # an export of about 12 MB: far more than the socket buffers hold


@pytest.fixture(scope="module")
def big(tmp_path_factory, module_backend) -> Path:
    path = tmp_path_factory.mktemp("long") / "instance"
    cl = init_instance(path, database=module_backend.database("long")).charity
    ledger = cl.ledger
    for start in range(0, DONATIONS, 5000):
        ledger.append_batch([("note", {"text": f"gift {i}: " + "x" * 500}) for i in range(start, start + 5000)])
    size = ledger.size()
    cl.stores.close()
    return path, size


def _serve(instance: Path, port: int, log: Path) -> subprocess.Popen:
    code = (
        "import sys; from api.server import Server; "
        f"Server({str(instance)!r}, {HOST!r}, {port}, 1, 2, extra={{'timeout': {TIMEOUT}}}).run()"
    )
    with log.open("wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen([sys.executable, "-c", code], stdout=out, stderr=subprocess.STDOUT,
                                env=clean_env(), start_new_session=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((HOST, port), timeout=1):
                return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError(log.read_text())


def test_a_slowly_read_export_runs_past_the_worker_timeout_and_arrives_whole(big, tmp_path):
    instance, size = big
    port, log = free_port(), tmp_path / "serve.log"
    proc = _serve(instance, port, log)
    try:
        with socket.create_connection((HOST, port), timeout=30) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
            sock.sendall(f"GET /v1/export HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
            started, data = time.monotonic(), bytearray()
            while chunk := sock.recv(16 * 1024):
                data += chunk
                time.sleep(0.01)  # about 1.6 MB/s: the export takes several times the timeout
            took = time.monotonic() - started
        head, _, body = bytes(data).partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        assert took > 2 * TIMEOUT, f"the export was read in {took:.1f} s: too fast to test anything"
        # chunked transfer coding: the entries are the NDJSON lines inside it
        lines = [line for line in body.split(b"\n") if line.startswith(b'{"body"')]
        assert len(lines) == size
        assert b'"seq":%d,' % (size - 1) in lines[-1]
        assert "WORKER TIMEOUT" not in log.read_text()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
