"""HTTP-level refusals and limits, through the Flask test client: unknown routes,
wrong methods, oversized and non-JSON bodies, schema errors, rate limits, and
the app factory's configuration layers.  Every refusal is an RFC 9457 problem
and writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import os

import pytest
from api_helpers import PROJECT, assert_problem, make_api, signed  # noqa: F401  (make_api is a fixture)
from factories import CHARITY, charity_signers, vkeys

from ledger.charity import payload as P
from ledger.log.clock import format_time

# SQLite only: the HTTP edge's error answers (problem+json, status codes); the storage under them is tested on both backends by test_api_writes and test_api_public.
pytestmark = pytest.mark.sqlite_only("the HTTP edge's error answers (problem+json, status codes); the storage under them is tested on both backends by test_api_writes and test_api_public")

MAX_BODY = 64 * 1024


def charity_body(i: int = 0) -> dict:
    return {"charity": f"sky-trust-{i}", "name": "Sky Trust", "keys": vkeys(charity_signers(f"sky-trust-{i}", 3)), "threshold": 2}


def post_routes(env) -> list[tuple[str, str | None, dict]]:
    """(url, token, a valid body) for every POST route."""
    rotation = P.rotation(charity=CHARITY, keys=vkeys(env.keys), threshold=2)  # the same keys again
    return [
        ("/v1/charities", "admin", charity_body()),
        ("/v1/projects", "admin", {"project": "p-1", "charity": CHARITY, "title": "t", "purpose": "p", "currency": "CNY"}),
        (f"/v1/projects/{PROJECT}/donations", "intake", {"amount": "1.00", "channel": "cash", "payment_ref": "r",
                                                          "donor_ref": "d", "value_date": "2026-11-29"}),
        (f"/v1/projects/{PROJECT}/disbursements", None, signed(env.disbursement(), *env.keys[:2])),
        (f"/v1/charities/{CHARITY}/key-rotations", None, signed(rotation, *env.keys[:2])),
        (f"/v1/receipts/{env.gifts[0]}/refunds", "intake", {"amount": "1.00", "reason": "r"}),
    ]


ROUTE_IDS = ["charities", "projects", "donations", "disbursements", "key-rotations", "refunds"]


# -- routing -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url"),
    [
        ("GET", "/nope"),
        ("GET", "/v1"),
        ("GET", "/v1/"),
        ("GET", "/v2/checkpoint"),
        ("GET", "/v1/entry/1"),
        ("GET", "/v1/entries/abc"),
        ("GET", "/v1/entries/1.5"),
        ("GET", "/v1/projects/a/b/c"),
        ("POST", "/v1/nope"),
        ("POST", "/v1/donations"),
        ("DELETE", "/v1/nope"),
    ],
)
def test_unknown_route_is_a_404_problem(make_api, method, url):
    env = make_api()
    with env.unchanged():
        body = assert_problem(env.client.open(url, method=method, headers=env.auth("admin")), 404, "not-found")
    assert body["instance"] == url


@pytest.mark.parametrize(
    ("method", "url", "allowed"),
    [
        ("DELETE", "/v1/entries", {"GET"}),
        ("POST", "/v1/entries", {"GET"}),
        ("PUT", "/v1/entries/1", {"GET"}),
        ("POST", "/v1/checkpoint", {"GET"}),
        ("POST", "/v1/log/key", {"GET"}),
        ("POST", "/v1/export", {"GET"}),
        ("POST", "/v1/proofs/inclusion", {"GET"}),
        ("GET", "/v1/charities", {"POST"}),
        ("PUT", "/v1/charities", {"POST"}),
        ("PATCH", "/v1/projects", {"GET", "POST"}),
        ("DELETE", "/v1/projects/x", {"GET"}),
        ("GET", "/v1/projects/x/donations", {"POST"}),
        ("GET", "/v1/projects/x/disbursements", {"POST"}),
        ("GET", "/v1/charities/x/key-rotations", {"POST"}),
        ("DELETE", "/v1/receipts/" + "0" * 64, {"GET"}),
        ("GET", "/v1/receipts/" + "0" * 64 + "/refunds", {"POST"}),
        ("POST", "/openapi.json", {"GET"}),
        ("POST", "/docs", {"GET"}),
    ],
)
def test_wrong_method_is_405_with_allow(make_api, method, url, allowed):
    env = make_api()
    with env.unchanged():
        resp = env.client.open(url, method=method, json={}, headers=env.auth("admin"))
        assert_problem(resp, 405, "method-not-allowed")
    allow = {m.strip() for m in resp.headers["Allow"].split(",")}
    assert allowed <= allow and method not in allow, allow


# -- bodies -----------------------------------------------------------------------------------------------


def _padded(body: dict, size: int) -> bytes:
    """``body`` plus an unknown string member, as JSON of exactly ``size`` bytes."""
    base = json.dumps({**body, "pad": ""}).encode()
    data = json.dumps({**body, "pad": "x" * (size - len(base))}).encode()
    assert len(data) == size
    return data


@pytest.mark.parametrize("route", range(6), ids=ROUTE_IDS)
def test_body_over_64_kib_is_413(make_api, route):
    env = make_api()
    url, token, body = post_routes(env)[route]
    with env.unchanged():
        headers = {**env.auth(token), "Idempotency-Key": "size-test-0001"}
        resp = env.client.post(url, data=_padded(body, MAX_BODY + 1), content_type="application/json", headers=headers)
        assert_problem(resp, 413, "too-large")
        # Exactly 64 KiB is read; its unknown member makes it a schema error.
        resp = env.client.post(url, data=_padded(body, MAX_BODY), content_type="application/json", headers=headers)
        problem = assert_problem(resp, 422, "invalid-input")
        assert "pad" in problem["errors"]["json"]
    # And the body itself is fine.
    assert env.post(url, body, token, {"Idempotency-Key": "size-test-0001"}).status_code == 201


@pytest.mark.parametrize("route", range(6), ids=ROUTE_IDS)
@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/xml"]
)
def test_non_json_body_is_415(make_api, route, content_type):
    env = make_api()
    url, token, body = post_routes(env)[route]
    headers = {**env.auth(token), "Idempotency-Key": "type-test-0001"}
    if content_type == "application/x-www-form-urlencoded":
        kwargs = {"data": {"amount": "1.00"}}
    elif content_type == "multipart/form-data":
        kwargs = {"data": {"amount": "1.00"}, "content_type": content_type}
    elif content_type is None:
        kwargs = {"data": json.dumps(body)}
    else:
        kwargs = {"data": json.dumps(body), "content_type": content_type}
    with env.unchanged():
        resp = env.client.post(url, headers=headers, **kwargs)
        assert_problem(resp, 415, "unsupported-media-type")


@pytest.mark.parametrize("route", [0, 1, 2, 5], ids=["charities", "projects", "donations", "refunds"])
def test_token_is_checked_before_the_body(make_api, route):
    """A write route that needs a token refuses a missing one before it looks at the body."""
    env = make_api()
    url, token, _ = post_routes(env)[route]
    assert token is not None
    with env.unchanged():
        assert_problem(env.client.post(url, data="not json", content_type="text/plain"), 401, "unauthorized")


@pytest.mark.parametrize("route", range(6), ids=ROUTE_IDS)
@pytest.mark.parametrize("data", ["{bad json", "", "{'single': 'quotes'}", "[1, 2", "\xff"])
def test_malformed_json_is_a_problem(make_api, route, data):
    env = make_api()
    url, token, _ = post_routes(env)[route]
    with env.unchanged():
        resp = env.client.post(url, data=data.encode("latin-1"), content_type="application/json",
                               headers={**env.auth(token), "Idempotency-Key": "json-test-0001"})
        assert resp.status_code in (400, 422)
        assert_problem(resp, resp.status_code)


def test_deeply_nested_json_is_a_client_error(make_api):
    """JSON nested deeper than Python's recursion limit (a few KiB) is the client's mistake:
    a 400 problem, not the 500 'the server failed'."""
    env = make_api(config={"TESTING": False})
    deep = "[" * 30000 + "]" * 30000
    with env.unchanged():
        resp = env.client.post(f"/v1/projects/{PROJECT}/disbursements", data=deep, content_type="application/json")
        assert_problem(resp, 400)


@pytest.mark.parametrize(
    "value, status",
    # Numbers JSON text may hold but no body means are refused by the body reader (400);
    # numbers that read fine but break the payload's rules by the core (422).
    [("1.5", 422), ("1e400", 400), ("NaN", 400), ("Infinity", 400), ("-5", 422), ("100000000000000000000000000000", 400)],
)
def test_numbers_a_payload_may_not_hold_are_refused(make_api, value, status):
    env = make_api()
    payload = env.disbursement()
    sigs = signed(payload, *env.keys[:2])["signatures"]
    text = json.dumps({"payload": {**payload, "amount": 0}, "signatures": sigs}).replace('"amount": 0', f'"amount": {value}', 1)
    with env.unchanged():
        resp = env.client.post(f"/v1/projects/{PROJECT}/disbursements", data=text, content_type="application/json")
        assert_problem(resp, status)


def test_schema_errors_list_every_field(make_api):
    env = make_api()
    with env.unchanged():
        resp = env.post(f"/v1/projects/{PROJECT}/donations", {"amount": 10, "channel": "fax", "extra": 1}, "intake",
                        {"Idempotency-Key": "schema-test-0001"})
        problem = assert_problem(resp, 422, "invalid-input")
    errors = problem["errors"]["json"]
    assert {"amount", "channel", "extra", "payment_ref", "donor_ref", "value_date"} <= set(errors)
    assert all(isinstance(v, list) and v for v in errors.values())


def test_missing_instance_is_a_500_problem(make_api, tmp_path):
    app = make_api.app({}, path=tmp_path / "not-an-instance")
    resp = app.test_client().get("/v1/checkpoint")
    body = assert_problem(resp, 500, "instance")
    assert "PRIVATE" not in json.dumps(body)


# -- rate limits ---------------------------------------------------------------------------------------------


def test_writes_over_the_rate_limit_are_429(make_api):
    env = make_api(config={"RATELIMIT_WRITES": "2 per minute"})
    assert env.post("/v1/charities", charity_body(1), "admin").status_code == 201
    assert env.post("/v1/charities", charity_body(2), "admin").status_code == 201
    with env.unchanged():
        resp = env.post("/v1/charities", charity_body(3), "admin")
        body = assert_problem(resp, 429, "too-many-requests")
    assert "2 per 1 minute" in body["detail"]
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    # Reads are not limited.
    for _ in range(5):
        assert env.client.get("/v1/checkpoint").status_code == 200
    # The refused charity is not there.
    ids = [i["entry"]["body"].get("charity") for i in env.items() if i["entry"]["kind"] == "charity.registered"]
    assert ids.count("sky-trust-3") == 0 and ids.count("sky-trust-2") == 1


def test_rate_limit_disabled(make_api):
    env = make_api(config={"RATELIMIT_WRITES": "1 per minute", "RATELIMIT_ENABLED": False})
    for i in range(3):
        assert env.post("/v1/charities", charity_body(i), "admin").status_code == 201


def test_each_app_keeps_its_own_rate_limits(make_api):
    """create_app is a factory: making a second app in the same process must not reset or
    switch off the first one's limits."""
    env = make_api(config={"RATELIMIT_WRITES": "2 per minute"})
    assert env.post("/v1/charities", charity_body(1), "admin").status_code == 201
    assert env.post("/v1/charities", charity_body(2), "admin").status_code == 201
    make_api("second", config={"RATELIMIT_ENABLED": False})
    with env.unchanged():
        assert_problem(env.post("/v1/charities", charity_body(3), "admin"), 429, "too-many-requests")


# -- configuration layers ---------------------------------------------------------------------------------------


def _clear_luodi_env(monkeypatch):
    for name in list(os.environ):
        if name.startswith("LUODI_"):
            monkeypatch.delenv(name)


def _signed_minutes_ago(env, minutes: int):
    when = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=minutes)
    return signed(env.disbursement(signed_at=format_time(when)), *env.keys[:2])


def test_instance_config_py_then_env_then_test_config(make_api, monkeypatch):
    _clear_luodi_env(monkeypatch)
    path, known = make_api.instance()
    (path / "config.py").write_text('PAGE_LIMIT = 3\nCLIENT_TIMEOUT_SECONDS = 240\nRATELIMIT_WRITES = "7 per minute"\n')
    monkeypatch.setenv("LUODI_INSTANCE", str(path))

    # 1. defaults, then <instance>/config.py
    app = make_api.app(None)
    assert app.config["INSTANCE"] == str(path.resolve())
    assert (app.config["PAGE_LIMIT"], app.config["CLIENT_TIMEOUT_SECONDS"], app.config["RATELIMIT_WRITES"]) == (
        3, 240, "7 per minute",
    )
    assert app.config["MAX_CONTENT_LENGTH"] == MAX_BODY and not app.testing
    page = app.test_client().get("/v1/entries?limit=100").get_json()
    assert len(page["entries"]) == 3 and page["next_start"] == 3

    # 2. LUODI_* environment variables override config.py
    monkeypatch.setenv("LUODI_PAGE_LIMIT", "4")
    monkeypatch.setenv("LUODI_CLIENT_TIMEOUT_SECONDS", "60")
    app = make_api.app(None)
    assert (app.config["PAGE_LIMIT"], app.config["CLIENT_TIMEOUT_SECONDS"], app.config["RATELIMIT_WRITES"]) == (
        4, 60, "7 per minute",
    )
    assert len(app.test_client().get("/v1/entries?limit=100").get_json()["entries"]) == 4

    # 3. test_config overrides both
    app = make_api.app({"PAGE_LIMIT": 5, "CLIENT_TIMEOUT_SECONDS": 900}, path=path)
    assert (app.config["PAGE_LIMIT"], app.config["CLIENT_TIMEOUT_SECONDS"]) == (5, 900)
    assert app.config["INSTANCE"] == str(path.resolve()) and app.testing
    assert len(app.test_client().get("/v1/entries?limit=100").get_json()["entries"]) == 5
    monkeypatch.setenv("LUODI_MAX_CONTENT_LENGTH", "1024")
    app = make_api.app({}, path=path)
    assert app.config["MAX_CONTENT_LENGTH"] == 1024  # env still applies under a test_config
    assert app.config["PAGE_LIMIT"] == 4


def test_the_signing_window_is_the_logs_not_the_configs(make_api, monkeypatch):
    """The window comes from the log's policy entry (600 s, as init recorded it), so
    that an auditor replays it: a window set in the configuration changes nothing."""
    _clear_luodi_env(monkeypatch)
    env = make_api()
    assert env.reader.entry(1).body == {"signing_window_seconds": 600}
    monkeypatch.setenv("LUODI_INSTANCE", str(env.path))
    monkeypatch.setenv("LUODI_SIGNATURE_WINDOW_SECONDS", "60")
    client = make_api.app(None).test_client()
    url = f"/v1/projects/{PROJECT}/disbursements"
    assert client.post(url, json=_signed_minutes_ago(env, 5)).status_code == 201
    with env.unchanged():
        problem = assert_problem(client.post(url, json=_signed_minutes_ago(env, 11)), 400, "bad-signature")
    assert "600s" in problem["detail"]


def test_body_limit_from_config(make_api):
    env = make_api(config={"MAX_CONTENT_LENGTH": 512})
    with env.unchanged():
        assert_problem(env.post("/v1/charities", {**charity_body(), "name": "n" * 600}, "admin"), 413, "too-large")
    assert env.post("/v1/charities", charity_body(), "admin").status_code == 201
