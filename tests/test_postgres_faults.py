"""PostgreSQL faults, as a client of ``luodi serve`` sees them: a 503 problem+json
with Retry-After that wrote nothing, then recovery without anyone restarting
the server.

Each test runs a PostgreSQL server of its own (:class:`pg_server.PrivateServer`),
which it stops, crashes and starts: the shared cluster is never touched.  They
skip with the reason when the server binaries are absent (fail under CI=true).

- PostgreSQL stopped (``pg_ctl stop -m immediate``) under a load of donations:
  every answer meanwhile is 201 (before the stop), 503 with Retry-After, or a
  replay; when PostgreSQL is back the same server takes writes again by itself
  (its pool reconnects), and every acknowledged write is in the log, which audits.
- A statement timeout (``statement_timeout`` in the URL's options; another
  connection holds a lock the append needs): 503, nothing written; once the
  lock is gone, the same request is written (201, not a replay).
- A failover-like restart between requests: the next requests succeed after at
  most a bounded number of 503s.
"""

from __future__ import annotations

import threading

import pytest
from pg_server import PrivateServer, psycopg_or_skip
from pg_served import PROJECT, Load, Server, check_acknowledged, pg_instance, request, setup_charity

PROBLEM = "application/problem+json"
WORKERS, THREADS = 2, 4
# After PostgreSQL restarts, each worker may meet each pooled connection broken once
# before its pool has replaced them: never more than this many 503s in a row.
MAX_503_AFTER_RESTART = 16


@pytest.fixture
def private_pg():
    server = PrivateServer()
    try:
        server.start()
        yield server
    finally:
        server.close()


def _donation(n: int | str) -> tuple[dict, str]:
    key = f"fault-{n}"
    return {"amount": "10.00", "channel": "wechat", "payment_ref": f"WX-{key}", "donor_ref": f"donor-{n}",
            "value_date": "2026-11-29"}, key


def donate(inst, port: int, n: int | str, timeout: float = 60):
    body, key = _donation(n)
    headers = {"Authorization": f"Bearer {inst.intake}", "Idempotency-Key": key}
    return request(port, "POST", f"/v1/projects/{PROJECT}/donations", body, headers, timeout=timeout)


def assert_unavailable(status: int, headers: dict, body) -> None:
    """A 503 the way the service promises it: problem+json, with Retry-After."""
    assert status == 503, (status, body)
    assert headers.get("Content-Type", "").startswith(PROBLEM), headers
    assert isinstance(body, dict) and body["status"] == 503 and body["type"].endswith("/unavailable"), body
    assert int(headers["Retry-After"]) >= 1, headers


def size_of(url: str) -> int:
    psycopg = psycopg_or_skip()
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM entries").fetchone()[0]


def test_postgres_stopped_under_load_answers_503_then_recovers_by_itself(tmp_path, private_pg):
    inst = pg_instance(tmp_path / "instance", private_pg.url)
    with Server(inst.path, inst.log_key, workers=WORKERS, threads=THREADS, env=inst.env) as server:
        setup_charity(inst, server.port)
        load = Load(inst, [server], threads=4, per_thread=30)
        down: list[tuple[int, dict, object]] = []

        def outage(load: Load) -> None:
            load.wait_ops(load.total // 4)
            private_pg.stop("immediate")
            # While it is down, writes and reads are 503s, each with Retry-After.
            for n in range(4):
                down.append(donate(inst, server.port, f"down-{n}", timeout=60))
                down.append(request(server.port, "GET", "/v1/checkpoint", timeout=60))
            private_pg.start()

        load.run(outage)
        assert not load.errors, load.errors[:3]
        for status, headers, body in down:
            assert_unavailable(status, headers, body)
        assert set(load.statuses) <= {200, 201, 409, 503}, load.statuses  # never a 500, never a hang
        assert load.statuses.get(503, 0) > 0 and all(r.isdigit() and int(r) >= 1 for r in load.retry_after)
        # Back by itself: the same server process writes again, and nothing it answered 503 was written.
        for n in range(4):
            status, _, body = donate(inst, server.port, f"down-{n}")
            assert status == 201, (status, body)  # 201, not a replay: the 503 wrote nothing
        check_acknowledged(load, server.port)
    done = inst.luodi("audit", "--log-key", inst.log_key.to_string())
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_statement_timeout_is_a_503_that_wrote_nothing(tmp_path, private_pg):
    psycopg = psycopg_or_skip()
    url = private_pg.url + "&options=" + "-c%20statement_timeout%3D1000"
    inst = pg_instance(tmp_path / "instance", url)
    env = {**inst.env, "LUODI_WRITE_LOCK_TIMEOUT": "15"}  # the statement timeout, not the lock wait, is what fires
    with Server(inst.path, inst.log_key, workers=1, threads=2, env=env) as server:
        setup_charity(inst, server.port)
        assert donate(inst, server.port, "before")[0] == 201
        size = size_of(private_pg.url)
        holder = psycopg.connect(private_pg.url)
        try:
            # Another session holds the log's table locked: the append's statements wait on it
            # until statement_timeout (1 s) cancels them.
            holder.execute("LOCK TABLE entries IN ACCESS EXCLUSIVE MODE")
            status, headers, body = donate(inst, server.port, "blocked")
            assert_unavailable(status, headers, body)
        finally:
            holder.rollback()
            holder.close()
        assert size_of(private_pg.url) == size
        status, _, body = donate(inst, server.port, "blocked")
        assert status == 201, (status, body)  # written now, once: the 503 wrote nothing
        assert size_of(private_pg.url) == size + 1


def test_a_failover_like_restart_between_requests_costs_a_bounded_number_of_503s(tmp_path, private_pg):
    inst = pg_instance(tmp_path / "instance", private_pg.url)
    with Server(inst.path, inst.log_key, workers=WORKERS, threads=THREADS, env=inst.env) as server:
        setup_charity(inst, server.port)
        # Every worker's pool holds connections before the restart.
        threads = [threading.Thread(target=donate, args=(inst, server.port, f"warm-{n}")) for n in range(16)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        for round_ in range(2):
            private_pg.restart("immediate")  # every pooled connection is now broken
            unavailable, answers = 0, []
            for n in range(MAX_503_AFTER_RESTART + 1):
                status, headers, body = donate(inst, server.port, f"after-{round_}-{n}")
                answers.append(status)
                if status == 201:
                    break
                assert_unavailable(status, headers, body)
                unavailable += 1
            assert answers[-1] == 201, answers
            # Then it keeps working: reads and writes, every one of them.
            for n in range(8):
                assert donate(inst, server.port, f"steady-{round_}-{n}")[0] == 201
                assert request(server.port, "GET", "/v1/checkpoint")[0] == 200
    done = inst.luodi("audit", "--log-key", inst.log_key.to_string())
    assert done.returncode == 0, done.stdout + done.stderr
