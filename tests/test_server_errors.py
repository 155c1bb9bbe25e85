"""What gunicorn refuses before the app runs is problem+json too (RFC 9457), with a
request id that the server logged: a bad request line, too many or too large
header fields, a URI too long, bad chunked framing, an unsupported transfer
coding; and so is the answer to a request whose worker is stopped under it.
Against a real ``luodi serve`` (api/worker.py).

SQLite only: these are gunicorn's refusals before the app, and a worker aborted while it
waits on SQLite's append lock file; the storage, service, API and end-to-end tests run
on every backend.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import signal
import time
from pathlib import Path

import pytest
from raw_http import connect, exchange, read_answer
from test_e2e_gunicorn import LiveServer, init_instance

from api.instance import DB_NAME
from ledger.log.note import Signer

TIMEOUT = 30  # a generous client timeout: a functional check, not a latency


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    instance = tmp_path_factory.mktemp("errors") / "instance"
    log_key, admin, _ = init_instance(instance)
    with LiveServer(instance, log_key, workers=1, threads=2) as server:
        yield server, admin


def chunked_post(admin: str, body: bytes) -> bytes:
    return (
        b"POST /v1/charities HTTP/1.1\r\nHost: luodi\r\nAuthorization: Bearer " + admin.encode()
        + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    )


CASES = {
    # name: (request, status, problem type, a word of the detail)
    "bad request line": (lambda a: b"BAD\r\n\r\n", 400, "bad-request", "request line"),
    "bad method": (lambda a: b"G@T /v1/ping HTTP/1.1\r\nHost: luodi\r\n\r\n", 400, "bad-request", "method"),
    "bad http version": (lambda a: b"GET /v1/ping HTTP/7.1\r\nHost: luodi\r\n\r\n", 400, "bad-request", "version"),
    "header field too large": (
        lambda a: b"GET /v1/ping HTTP/1.1\r\nHost: luodi\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        431, "header-fields-too-large", "limit"),
    "too many header fields": (
        lambda a: b"GET /v1/ping HTTP/1.1\r\nHost: luodi\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(120))
        + b"\r\n", 431, "header-fields-too-large", "limit"),
    "head too large": (
        lambda a: b"GET /v1/ping HTTP/1.1\r\nHost: luodi\r\n" + b"".join(b"X-%d: %s\r\n" % (i, b"a" * 4000)
                                                                            for i in range(10)) + b"\r\n",
        431, "header-fields-too-large", "request head over"),
    "uri too long": (lambda a: b"GET /v1/" + b"a" * 5000 + b" HTTP/1.1\r\nHost: luodi\r\n\r\n",
                     414, "uri-too-long", "too large"),
    "request line never ends": (lambda a: b"GET /v1/" + b"a" * 6000, 414, "uri-too-long", "too large"),
    "bad chunk size": (lambda a: chunked_post(a, b"zz\r\n{}\r\n0\r\n\r\n"), 400, "bad-request", "chunk size"),
    "chunk without its CRLF": (lambda a: chunked_post(a, b"2\r\n{}XX0\r\n\r\n"), 400, "bad-request", "chunk"),
    "chunked framing far over the body limit": (
        # past twice the worker's largest body limit (the batch route's 2 MiB), by ~60 KB
        lambda a: chunked_post(a, b"1\r\nx\r\n" * 710_000), 413, "too-large", "framing"),
    "unsupported transfer coding": (
        lambda a: b"POST /v1/charities HTTP/1.1\r\nHost: luodi\r\nTransfer-Encoding: gzip\r\n\r\n",
        400, "bad-request", "transfer-encoding"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_refusals_before_the_app_are_problem_json_with_a_logged_request_id(served, case):
    server, admin = served
    request, status, slug, word = CASES[case]
    answer = exchange(server.port, request(admin), TIMEOUT)
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json
    assert set(problem) >= {"type", "title", "status", "detail", "request_id"}
    assert problem["type"] == f"/problems/{slug}"
    assert problem["status"] == status
    assert word.lower() in problem["detail"].lower()
    rid = problem["request_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", rid)
    assert answer.headers["x-request-id"] == rid
    assert rid in server.log()  # the refusal is logged with the same id
    assert "<html" not in answer.body.decode()
    assert answer.headers["connection"] == "close"



def has_open(pid: int, suffix: str) -> bool:
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).endswith(suffix):
                return True
        except OSError:
            continue
    return False


def test_a_request_whose_worker_is_aborted_gets_a_500_problem_and_nothing_is_written(tmp_path):
    """SIGABRT is what gunicorn's master sends a worker whose request ran over its timeout:
    the request waiting on the append lock is answered, not cut off."""
    instance = tmp_path / "instance"
    log_key, admin, _ = init_instance(instance)
    with LiveServer(instance, log_key, workers=1, threads=2) as server:
        size = server.get("/v1/checkpoint", timeout=TIMEOUT).text.splitlines()[1]
        [worker] = server.worker_pids()
        lock_path = instance / (DB_NAME + ".lock")
        held = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(held, fcntl.LOCK_EX)  # the append lock: every write now waits
            body = json.dumps({"charity": "hope", "name": "Hope", "threshold": 1,
                               "keys": [Signer.generate("hope/k1").verifier.to_string()]}).encode()
            with connect(server.port, TIMEOUT) as sock:
                sock.sendall(b"POST /v1/charities HTTP/1.1\r\nHost: luodi\r\nAuthorization: Bearer %s\r\n"
                             b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (admin.encode(), len(body), body))
                deadline = time.monotonic() + TIMEOUT
                while not has_open(worker, DB_NAME + ".lock") and time.monotonic() < deadline:
                    time.sleep(0.05)  # until the request waits on the lock
                assert has_open(worker, DB_NAME + ".lock"), server.log()
                os.kill(worker, signal.SIGABRT)
                answer, _ = read_answer(sock)
        finally:
            os.close(held)
        assert answer.status == 500, answer
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json
        assert problem["type"] == "/problems/internal"
        assert "stopped before it was answered" in problem["detail"] and "not known" in problem["detail"]
        assert answer.headers["x-request-id"] == problem["request_id"]
        assert problem["request_id"] in server.log()
        # the master starts a new worker, which serves; the refused write left nothing
        deadline = time.monotonic() + TIMEOUT
        while server.worker_pids() in ([], [worker]) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.get("/v1/checkpoint", timeout=TIMEOUT).text.splitlines()[1] == size
