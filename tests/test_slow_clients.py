"""Slow and idle clients cannot starve the others: ``luodi serve`` (api/worker.py)
reads each request in its event loop, so connections that trickle their header
lines or body, or send nothing, hold no thread; and a request that does not
arrive whole within ``CLIENT_TIMEOUT_SECONDS`` gets a 408 problem.

Each test holds more connections open than the server has threads in all
(workers x threads), on loopback, for a bounded time.  The client timeouts are
generous functional checks, not latencies.

SQLite only (the default database): this is about slow and idle clients, not the
database; the storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager

import pytest
from raw_http import connect, exchange, read_answer
from test_e2e_gunicorn import LiveServer, init_instance

WORKERS, THREADS = 1, 2
HELD = 4 * WORKERS * THREADS + 2  # connections held open, more than every thread
TIMEOUT = 20  # the client's patience for the ping: generous, and far below the server's CLIENT_TIMEOUT here
PING = b"GET /v1/ping HTTP/1.1\r\nHost: luodi\r\n\r\n"


def _served(tmp_path_factory, name: str, client_timeout: int):
    """A live server over a new instance whose clients get ``client_timeout`` seconds per request."""
    instance = tmp_path_factory.mktemp(name) / "instance"
    log_key, _, _ = init_instance(instance)
    with LiveServer(instance, log_key, workers=WORKERS, threads=THREADS,
                    env={"LUODI_CLIENT_TIMEOUT_SECONDS": str(client_timeout)}) as server:
        yield server


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """A server that waits 120 s for a request: a slow client is never cut off during a test."""
    yield from _served(tmp_path_factory, "slow", 120)


@contextmanager
def held_connections(port: int, kind: str):
    """HELD connections that trickle a request's head or body a byte every 0.2 s, or stay
    idle; or 3 x HELD that send a whole request with "Connection: close" and then neither
    read the answer nor close their end (gunicorn drains each for 2 s before it closes it)."""
    opening = {
        "head": b"GET /v1/ping HTTP/1.1\r\n",
        "body": b"POST /v1/charities HTTP/1.1\r\nHost: luodi\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{",
        "idle": b"",
        "unclosed": b"GET /v1/ping HTTP/1.1\r\nHost: luodi\r\nConnection: close\r\n\r\n",
    }[kind]
    socks = [connect(port, TIMEOUT) for _ in range(3 * HELD if kind == "unclosed" else HELD)]
    stop = threading.Event()

    def trickle():
        for s in socks:
            s.sendall(opening)
        while not stop.wait(0.2):
            for s in socks:
                try:
                    s.send(b"X" if kind == "head" else b" ")
                except OSError:
                    pass

    trickler = threading.Thread(target=trickle, daemon=True)
    if kind == "unclosed":
        for s in socks:
            s.sendall(opening)
    elif kind != "idle":
        trickler.start()
    time.sleep(1.0)  # the server has accepted them and read their first bytes
    try:
        yield socks
    finally:
        stop.set()
        if trickler.is_alive():
            trickler.join(5)
        for s in socks:
            s.close()


@pytest.mark.parametrize("kind", ["head", "body", "idle", "unclosed"])
def test_a_client_is_served_while_slow_or_idle_connections_hold_more_than_every_thread(patient, kind):
    with held_connections(patient.port, kind):
        with connect(patient.port, TIMEOUT) as sock:
            # a ping, then two requests pipelined on the same kept-alive connection
            sock.sendall(PING)
            first, rest = read_answer(sock)
            assert first.status == 200 and first.json == {"ok": True}
            sock.sendall(PING + b"GET /v1/checkpoint HTTP/1.1\r\nHost: luodi\r\n\r\n")
            second, rest = read_answer(sock, rest)
            third, rest = read_answer(sock, rest)
            assert second.json == {"ok": True}
            assert third.status == 200 and third.headers["content-type"].startswith("text/plain")
            # a body behind "Expect: 100-continue": the server asks for it, then the app answers
            body = b'{"charity": "x"}'
            sock.sendall(b"POST /v1/charities HTTP/1.1\r\nHost: luodi\r\nContent-Type: application/json\r\n"
                         b"Expect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
            interim, rest = read_answer(sock, rest, skip_1xx=False)
            assert interim.status == 100
            sock.sendall(body)
            final, rest = read_answer(sock, rest)
            assert final.status == 401 and final.headers["content-type"] == "application/problem+json"
            assert rest == b""  # one answer per request: no second "100 Continue"
        assert patient.get("/v1/ping", timeout=TIMEOUT).json == {"ok": True}


@pytest.fixture(scope="module")
def impatient(tmp_path_factory):
    yield from _served(tmp_path_factory, "impatient", 2)


def test_a_request_that_does_not_arrive_whole_in_time_gets_a_408_problem(impatient):
    with held_connections(impatient.port, "head") as socks, connect(impatient.port, TIMEOUT) as idle:
        answer, _ = read_answer(socks[0])  # within TIMEOUT, while the trickle goes on
        assert answer.status == 408
        assert answer.headers["content-type"] == "application/problem+json"
        problem = answer.json
        assert problem["type"] == "/problems/request-timeout" and problem["status"] == 408
        assert "2 s" in problem["detail"]
        assert re.fullmatch(r"[0-9a-f]{32}", problem["request_id"])
        assert answer.headers["x-request-id"] == problem["request_id"]
        assert problem["request_id"] in impatient.log()
        assert idle.recv(1024) == b""  # an idle connection is closed without a word
    with connect(impatient.port, TIMEOUT) as steady:
        for i in range(0, len(PING), 8):  # slow but whole within the deadline: served
            steady.sendall(PING[i : i + 8])
            time.sleep(0.05)
        answer, _ = read_answer(steady)
        assert answer.status == 200 and answer.json == {"ok": True}
