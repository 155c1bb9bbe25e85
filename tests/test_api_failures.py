"""Unexpected failures are logged, once, with a request id that the answer names too.

With ``TESTING`` off (as the server runs), an exception no handler takes is
logged by Flask with its traceback and the request's id, and the client gets
an RFC 9457 problem carrying the same id.  The answer does not claim to know
what the failed request wrote.  A request's id comes from a sane
``X-Request-Id`` header, or is made up; every answer echoes it.

SQLite only (the default database): this is about logging unexpected failures; the
storage, service, API and end-to-end tests run on every backend.
"""

from __future__ import annotations

import logging

import pytest

import api
from api.instance import init_instance
from ledger.charity.service import CharityLedger
from ledger.errors import InstanceError


@pytest.fixture
def client(tmp_path):
    result = init_instance(tmp_path / "inst")
    result.charity.stores.close()
    app = api.create_app({"TESTING": False, "INSTANCE": str(tmp_path / "inst")})
    return app.test_client()


def _boom(self):
    raise RuntimeError("the disk said no")


def test_an_unexpected_error_is_logged_with_the_request_id_it_answers_with(client, monkeypatch, caplog):
    monkeypatch.setattr(CharityLedger, "projects", _boom)
    with caplog.at_level(logging.ERROR):
        resp = client.get("/v1/projects", headers={"X-Request-Id": "req-42.abc"})
    assert resp.status_code == 500 and resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert body["type"] == "/problems/internal" and body["status"] == 500 and body["request_id"] == "req-42.abc"
    assert resp.headers["X-Request-Id"] == "req-42.abc"
    assert "req-42.abc" in body["detail"] and "nothing was written" not in body["detail"]
    assert "disk said no" not in resp.get_data(as_text=True)  # the cause stays in the log
    records = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(records) == 1, [r.getMessage() for r in records]
    assert records[0].getMessage() == "request req-42.abc: GET /v1/projects failed"
    assert records[0].exc_info[0] is RuntimeError and "the disk said no" in caplog.text


def test_a_request_without_a_sane_id_gets_a_new_one(client, monkeypatch, caplog):
    monkeypatch.setattr(CharityLedger, "projects", _boom)
    with caplog.at_level(logging.ERROR):
        resp = client.get("/v1/projects", headers={"X-Request-Id": "bad id\twith spaces"})
    rid = resp.get_json()["request_id"]
    assert rid != "bad id\twith spaces" and len(rid) == 32 and resp.headers["X-Request-Id"] == rid
    assert f"request {rid}: GET /v1/projects failed" in caplog.text


def test_a_domain_error_of_the_server_is_logged_too(client, monkeypatch, caplog):
    def broken(self):
        raise InstanceError("the log key went missing")

    monkeypatch.setattr(CharityLedger, "projects", broken)
    with caplog.at_level(logging.ERROR):
        resp = client.get("/v1/projects")
    body = resp.get_json()
    assert resp.status_code == 500 and body["type"] == "/problems/instance"
    assert f"request {body['request_id']}: GET /v1/projects failed" in caplog.text


def test_refusals_are_answered_not_logged_as_errors(client, caplog):
    with caplog.at_level(logging.ERROR):
        resp = client.get("/v1/projects/no-such-project")
        ok = client.get("/v1/checkpoint")
    assert resp.status_code == 404 and resp.get_json()["request_id"] == resp.headers["X-Request-Id"]
    assert ok.status_code == 200 and len(ok.headers["X-Request-Id"]) == 32
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
