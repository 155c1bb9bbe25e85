"""Write rate limits fit intake: a token's writes are counted under its id, wherever they
come from, with its own rate or its role's default; writes without a valid token are
counted per client address; an in-memory limit is shared out among the workers, so that
it means the same under a real gunicorn with two workers.  A 429 is a problem with
Retry-After and writes nothing."""

from __future__ import annotations

import threading

import pytest

from api_helpers import PROJECT, assert_problem, donation_body, make_api  # noqa: F401  (make_api is a fixture)
from click.testing import CliRunner
from test_e2e_gunicorn import LiveServer, http, init_instance, luodi, one_line_error

from api.cli import main
from api.instance import open_stores
from api.limits import shared_out
from ledger.charity.tokens import list_tokens

# SQLite only: rate limits live in the server's memory, not in the database.
pytestmark = pytest.mark.sqlite_only("rate limits live in the server's memory, not in the database")

A, B = "198.51.100.7", "203.0.113.9"


def donate(env, key: str, token: str = "intake", address: str = A):
    return env.client.post(
        f"/v1/projects/{PROJECT}/donations",
        json=donation_body(payment_ref=f"PAY-{key}"),
        headers={**env.auth(token), "Idempotency-Key": f"rate-limit-{key}"},
        environ_overrides={"REMOTE_ADDR": address},
    )


def test_two_tokens_behind_one_address_have_a_budget_each(make_api):
    env = make_api(config={"RATELIMIT_INTAKE": "2 per minute"})
    assert [donate(env, f"k{i}").status_code for i in range(2)] == [201, 201]
    with env.unchanged():
        resp = donate(env, "k2")
    assert_problem(resp, 429, "too-many-requests")
    assert int(resp.headers["Retry-After"]) > 0
    # Another intake token from the same address still has its whole budget.
    assert [donate(env, f"h{i}", token="hope").status_code for i in range(2)] == [201, 201]


def test_one_token_from_two_addresses_has_one_budget(make_api):
    env = make_api(config={"RATELIMIT_INTAKE": "2 per minute"})
    assert donate(env, "k0", address=A).status_code == 201
    assert donate(env, "k1", address=B).status_code == 201
    with env.unchanged():
        assert_problem(donate(env, "k2", address="192.0.2.1"), 429, "too-many-requests")


def test_intake_tokens_do_not_meet_the_default_write_limit(make_api):
    env = make_api(config={"RATELIMIT_WRITES": "2 per minute"})
    assert [donate(env, f"k{i}").status_code for i in range(6)] == [201] * 6
    # while an admin token keeps the write limit
    admin = [env.client.post("/v1/projects", json={}, headers=env.auth("admin")).status_code for _ in range(3)]
    assert admin == [422, 422, 429]


def test_a_token_with_a_rate_of_its_own(make_api):
    env = make_api(config={})
    runner = CliRunner()
    made = runner.invoke(main, ["token", "create", "--instance", str(env.path), "--role", "intake",
                                "--rate", "1 per minute"])
    assert made.exit_code == 0, made.output
    env.tokens["slow"] = made.output.strip()
    assert donate(env, "s0", token="slow").status_code == 201
    with env.unchanged():
        assert_problem(donate(env, "s1", token="slow"), 429, "too-many-requests")
    assert [donate(env, f"k{i}").status_code for i in range(3)] == [201] * 3  # the default intake rate
    listed = runner.invoke(main, ["token", "list", "--instance", str(env.path)])
    assert "1 per minute" in listed.output and env.tokens["slow"] not in listed.output
    stores = open_stores(env.path)
    try:
        assert sorted(t.rate or "" for t in list_tokens(stores.tokens)) == ["", "", "", "", "1 per minute"]
    finally:
        stores.close()


def test_a_bad_rate_is_refused_and_makes_no_token(tmp_path):
    instance = tmp_path / "inst"
    assert luodi("init", "--instance", instance).returncode == 0
    for rate in ("lots", "0 per minute", "5 per fortnight", "1.5 per second"):
        line = one_line_error(luodi("token", "create", "--instance", instance, "--role", "intake", "--rate", rate))
        assert "N per second|minute|hour|day" in line
    assert luodi("token", "list", "--instance", instance).stdout == ""


def test_writes_without_a_token_are_limited_per_address(make_api):
    env = make_api(config={"RATELIMIT_WRITES": "1 per minute"})
    url = f"/v1/projects/{PROJECT}/disbursements"

    def post(address, headers=None):
        return env.client.post(url, json={}, headers=headers or {}, environ_overrides={"REMOTE_ADDR": address})

    assert post(A).status_code == 422
    with env.unchanged():
        assert_problem(post(A), 429, "too-many-requests")
        # A made-up token buys no budget of its own: it is counted under its address.
        assert_problem(post(A, {"Authorization": "Bearer luodi_made-up"}), 429, "too-many-requests")
    assert post(B).status_code == 422
    # A valid token's writes from the spent address are its own, not the address's.
    assert post(A, env.auth("admin")).status_code == 422


def test_an_in_memory_limit_is_shared_out_among_workers(make_api):
    assert shared_out("10 per minute", 1) == "10 per minute"
    assert shared_out("10 per minute", 2) == "5 per 1 minute"
    assert shared_out("3 per minute;100 per day", 4) == "1 per 1 minute;25 per 1 day"
    env = make_api(config={"RATELIMIT_INTAKE": "4 per minute", "WORKERS": 2})
    assert [donate(env, f"k{i}").status_code for i in range(3)] == [201, 201, 429]


def test_two_gunicorn_workers_allow_the_configured_limit_in_total(tmp_path):
    """Many fresh connections reach both workers; each counts in its own memory, yet
    together they let through the configured 10 writes a minute, not 10 each."""
    instance = tmp_path / "instance"
    log_key, admin, _ = init_instance(instance)
    with LiveServer(instance, log_key, workers=2, env={"LUODI_RATELIMIT_WRITES": "10 per minute"}) as server:
        statuses: list[int] = []
        lock = threading.Lock()

        def send(n):
            for _ in range(n):
                got = http("POST", server.url + "/v1/projects", {}, headers={"Authorization": f"Bearer {admin}"})
                with lock:
                    statuses.append(got.status)

        threads = [threading.Thread(target=send, args=(25,)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(statuses) == 200
        assert set(statuses) == {422, 429}
        assert statuses.count(422) == 10  # 5 in each worker
