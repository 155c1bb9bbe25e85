"""Hostile bodies over real HTTP: ``luodi serve`` (gunicorn) on loopback, as in
``tests/test_e2e_gunicorn.py``, whose :class:`LiveServer` runs it.

What the test client checks in ``tests/test_hostile_bodies.py`` holds on the
wire too: an integer of 5,000 digits is a 400 problem without a token (it was
a 500), a key sent twice is a 400 problem and records nothing (the last one
won), and a chunked body over 64 KiB is a 413 problem (it was a 400, or, when the cut
at 64 KiB still left valid JSON, taken and recorded).

SQLite only (the default database): this is about gunicorn's framing of hostile
requests, not the database; the storage, service, API and end-to-end tests run on every
backend.
"""

from __future__ import annotations

import http.client
import json

import pytest
from test_e2e_gunicorn import HOST, LiveServer, init_instance

PROBLEM = "application/problem+json"
CHARITY, PROJECT = "hope-foundation", "school-meals"
MAX_BODY = 64 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from ledger.log.note import Signer

    instance = tmp_path_factory.mktemp("hostile") / "instance"
    log_key, admin, intake = init_instance(instance)
    with LiveServer(instance, log_key) as live:
        live.admin, live.intake = admin, intake
        keys = [Signer.generate(f"{CHARITY}/finance-{i}").verifier.to_string() for i in (1, 2)]
        got = live.post("/v1/charities", {"charity": CHARITY, "name": "Hope", "keys": keys, "threshold": 2},
                        headers=bearer(admin))
        assert got.status == 201, got.body
        got = live.post("/v1/projects", {"project": PROJECT, "charity": CHARITY, "title": "School meals",
                                         "purpose": "Hot lunches", "currency": "CNY"}, headers=bearer(admin))
        assert got.status == 201, got.body
        yield live


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def send(server: LiveServer, path: str, body, headers: dict) -> tuple[int, str, dict]:
    """POST ``body`` (bytes, or an iterable of chunks: sent chunked) and read the whole answer."""
    conn = http.client.HTTPConnection(HOST, server.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json", **headers})
        resp = conn.getresponse()
        return resp.status, resp.getheader("Content-Type", ""), json.loads(resp.read())
    finally:
        conn.close()


def donation(key: str, **change) -> dict:
    return {"amount": "10.00", "channel": "wechat", "payment_ref": f"PAY-{key}", "donor_ref": "donor-h",
            "value_date": "2026-11-29", **change}


def raised(server: LiveServer) -> str:
    return server.get(f"/v1/projects/{PROJECT}").json["raised"]


def test_an_integer_of_5000_digits_is_a_400_problem_without_a_token(server):
    text = ('{"payload": {"amount": ' + "9" * 5000 + '}, "signatures": []}').encode()
    status, ctype, body = send(server, f"/v1/projects/{PROJECT}/disbursements", text, {})
    assert (status, ctype) == (400, PROBLEM), body
    assert "5000 digits" in body["detail"]
    assert body["request_id"]


def test_an_amount_sent_twice_is_a_400_problem_and_records_nothing(server):
    before = raised(server)
    text = json.dumps(donation("dup-0001", amount="9999.00")).replace('{"amount"', '{"amount": "1.00", "amount"', 1)
    status, ctype, body = send(server, f"/v1/projects/{PROJECT}/donations", text.encode(),
                               {**bearer(server.intake), "Idempotency-Key": "hostile-dup-0001"})
    assert (status, ctype) == (400, PROBLEM), body
    assert "duplicate key 'amount'" in body["detail"]
    assert raised(server) == before


def chunks(data: bytes, size: int = 8192):
    return (data[i:i + size] for i in range(0, len(data), size))


def test_a_chunked_body_over_64_kib_is_a_413_problem_and_one_under_it_is_taken(server):
    before = raised(server)
    text = json.dumps(donation("chunk-0001")).encode()
    status, ctype, body = send(server, f"/v1/projects/{PROJECT}/donations", chunks(text + b" " * (MAX_BODY + 4096)),
                               {**bearer(server.intake), "Idempotency-Key": "hostile-chunk-0001"})
    assert (status, ctype) == (413, PROBLEM), body
    assert str(MAX_BODY) in body["detail"]
    assert raised(server) == before
    # The other side of the limit, so that the 413 is about size, not about chunking.
    text = json.dumps(donation("chunk-0002")).encode()
    status, ctype, body = send(server, f"/v1/projects/{PROJECT}/donations", chunks(text + b" " * 1000, 100),
                               {**bearer(server.intake), "Idempotency-Key": "hostile-chunk-0002"})
    assert status == 201, body
    assert body["amount"] == "10.00"
