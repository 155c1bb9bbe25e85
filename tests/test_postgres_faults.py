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
from pg_server import private_pg, psycopg_or_skip  # noqa: F401  (private_pg: a fixture)
from pg_served import PROJECT, Load, Server, check_acknowledged, pg_instance, request, setup_charity

pytestmark = pytest.mark.postgres_only  # about PostgreSQL's own faults; --backend sqlite leaves them out

PROBLEM = "application/problem+json"
WORKERS, THREADS = 2, 4
BURST = 8  # concurrent requests right after a restart: more than a worker's threads
# After PostgreSQL restarts, a request may meet a broken pooled connection before its
# worker's pool has replaced them: at most this many 503s in all, over the retries.
MAX_503_AFTER_RESTART = 16


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
    env = {**inst.env, "LUODI_WRITE_LOCK_TIMEOUT": "1"}  # a request waits 1 s for a connection, then 503
    with Server(inst.path, inst.log_key, workers=WORKERS, threads=THREADS, env=env) as server:
        setup_charity(inst, server.port)
        load = Load(inst, [server], threads=4, per_thread=30)
        down: list[tuple[int, dict, object]] = []

        def outage(load: Load) -> None:
            load.wait_ops(load.total // 4)
            private_pg.stop("immediate")
            # While it is down, writes and reads are 503s, each with Retry-After.
            for n in range(3):
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
        for n in range(3):
            status, _, body = donate(inst, server.port, f"down-{n}")
            assert status == 201, (status, body)  # 201, not a replay: the 503 wrote nothing
        check_acknowledged(load, server.port)
    done = inst.luodi("audit", "--log-key", inst.log_key.to_string())
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_statement_timeout_is_a_503_that_wrote_nothing(tmp_path, private_pg):
    psycopg = psycopg_or_skip()
    url = private_pg.url + "&options=" + "-c%20statement_timeout%3D1000"
    inst = pg_instance(tmp_path / "instance", url)  # the server's connections get the URL's options
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
            assert "statement timeout" in body["detail"], body  # PostgreSQL's reason, not a lock wait's
        finally:
            holder.rollback()
            holder.close()
        assert size_of(private_pg.url) == size
        status, _, body = donate(inst, server.port, "blocked")
        assert status == 201, (status, body)  # written now, once: the 503 wrote nothing
        assert size_of(private_pg.url) == size + 1


def _burst(inst, port: int, names: list[str]) -> list[tuple[int, dict, object]]:
    """One donation per name, all at once, each on its own connection."""
    answers: list = [None] * len(names)

    def send(i: int) -> None:
        answers[i] = donate(inst, port, names[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(names))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert all(a is not None for a in answers), answers
    return answers


def test_a_failover_like_restart_between_requests_costs_a_bounded_number_of_503s(tmp_path, private_pg):
    """``stop -m immediate`` then ``start`` (what a failover does to the connections):
    every connection the workers' pools hold is broken.  A burst of concurrent
    requests then finds them; each request that meets one is a proper 503 and
    wrote nothing, and the retries succeed within a bounded number of 503s."""
    inst = pg_instance(tmp_path / "instance", private_pg.url)
    with Server(inst.path, inst.log_key, workers=WORKERS, threads=THREADS, env=inst.env) as server:
        setup_charity(inst, server.port)
        names = [f"warm-{n}" for n in range(BURST)]
        assert [a[0] for a in _burst(inst, server.port, names)] == [201] * BURST  # the pools hold connections
        for round_ in range(2):
            private_pg.restart("immediate")
            names = [f"after-{round_}-{n}" for n in range(BURST)]
            unavailable = 0
            for attempt in range(MAX_503_AFTER_RESTART + 1):
                answers = _burst(inst, server.port, names)
                for status, headers, body in answers:
                    if status != 201:
                        assert_unavailable(status, headers, body)
                names = [name for name, a in zip(names, answers) if a[0] != 201]
                unavailable += len(names)
                if not names:
                    break
            assert not names and unavailable <= MAX_503_AFTER_RESTART, (round_, unavailable)
            # Then it keeps working: reads and writes, every one of them.
            for n in range(4):
                assert donate(inst, server.port, f"steady-{round_}-{n}")[0] == 201
                assert request(server.port, "GET", "/v1/checkpoint")[0] == 200
        assert size_of(private_pg.url) == 4 + BURST * 3 + 8  # each donation once: the 503s wrote nothing
    done = inst.luodi("audit", "--log-key", inst.log_key.to_string())
    assert done.returncode == 0, done.stdout + done.stderr
