"""Trusted output sent without marshmallow (api/render.py) is byte for byte what
flask-smorest sends for the same answer: ``jsonify`` of the route's schema's dump.

Receipts (GET, with and without allocations and key rotations), a donation's 201
and its replay's 200, and batch results holding receipts, replays and problems.
Each answer is checked two ways: recomputed from the ledger and dumped through its
schema, and dumped again through its schema from what the client got (a fixed
point: nothing the schema would drop, rename, reorder or retype)."""

from __future__ import annotations

import json

import pytest
from api_helpers import PROJECT, donation_body, make_api  # noqa: F401  (make_api is a fixture)
from flask import Flask, jsonify
from hypothesis import given
from hypothesis import strategies as st
from receipt_helpers import spent_gift
from test_canonical import json_values, keys

from api import render, views
from api import schemas as s
from api.instance import open_instance
from ledger.log.canonical import canonical_bytes
from ledger.log.entry import load_entry, seal

# SQLite only: how answers are rendered to bytes, the same whatever the storage.
pytestmark = pytest.mark.sqlite_only('how answers are rendered to bytes, the same whatever the storage')

RECEIPT_HEADERS = {"Content-Type", "Content-Length", "X-Request-Id"}


def smorest(app, schema, body) -> bytes:
    """What flask-smorest's ``@blp.response(schema)`` sends for ``body``."""
    with app.test_request_context():
        return jsonify(schema.dump(body)).get_data()


def assert_fixed_point(app, resp, schema) -> dict:
    data = resp.get_data()
    body = json.loads(data)
    assert smorest(app, schema, body) == data
    assert resp.mimetype == "application/json"
    return body


def assert_receipt_as_smorest_sends_it(env, receipt: str) -> dict:
    resp = env.client.get(f"/v1/receipts/{receipt}")
    assert resp.status_code == 200
    # The headers are those of before: no ETag and no Cache-Control on a receipt (it changes as the log grows).
    assert set(resp.headers.keys()) == RECEIPT_HEADERS, resp.headers
    body = assert_fixed_point(env.app, resp, s.Receipt())
    books = open_instance(env.path, with_key=False)
    try:
        assert resp.get_data() == smorest(env.app, s.Receipt(), views.receipt(books.receipt(receipt)))
    finally:
        books.stores.close()
    return body


def test_receipts_with_and_without_allocations_are_sent_as_the_schema_dumps_them(make_api):
    env = make_api()
    before = assert_receipt_as_smorest_sends_it(env, env.gifts[0])  # its project's part is kept at this size
    assert before["allocation"] == [] and before["charity"]["key_rotations"] == []
    gift = spent_gift(env)  # spent twice (before and after a key rotation), partly refunded
    body = assert_receipt_as_smorest_sends_it(env, gift.receipt)
    assert len(body["allocation"]) == 2 and body["refunded"] == "5.00"
    assert len(body["charity"]["key_rotations"]) == 1
    after = assert_receipt_as_smorest_sends_it(env, env.gifts[0])  # a larger tree, a key rotation more
    assert after["tree_size"] > before["tree_size"] and after["allocation"]
    assert after["project_opening"]["inclusion_proof"] != before["project_opening"]["inclusion_proof"]
    body = assert_receipt_as_smorest_sends_it(env, env.other_gift)  # never spent, other charity
    assert body["allocation"] == [] and body["charity"]["key_rotations"] == []
    # text that JSON escapes, and non-ASCII text sent as UTF-8 (ensure_ascii off)
    title = '雪中送炭 "warm" \\ \u2028 coats'
    resp = env.post("/v1/projects", {
        "project": "xue-zhong", "charity": "hope-foundation", "title": title, "purpose": "冬衣", "currency": "CNY",
    }, "admin")
    assert resp.status_code == 201, resp.get_json()
    gift = env.donate("render-0001", project="xue-zhong")
    assert gift.status_code == 201
    body = assert_receipt_as_smorest_sends_it(env, gift.get_json()["entry"]["leaf_hash"])
    assert body["project_opening"]["entry"]["body"]["title"] == title


def test_other_json_provider_settings_get_the_schema_shape_too(make_api):
    env = make_api()
    resp = env.post("/v1/projects", {
        "project": "xue-zhong", "charity": "hope-foundation", "title": "雪中送炭", "purpose": "冬衣", "currency": "CNY",
    }, "admin")
    assert resp.status_code == 201, resp.get_json()
    gift = env.donate("render-0003", project="xue-zhong").get_json()["entry"]["leaf_hash"]
    env.app.json.compact = False  # as in debug mode: answers are indented
    resp = env.client.get(f"/v1/receipts/{gift}")
    assert b'\n  "entry": {' in resp.get_data()
    assert_fixed_point(env.app, resp, s.Receipt())
    first = env.donate("render-0004")
    assert first.status_code == 201
    assert_fixed_point(env.app, first, s.DonationReceipt())
    env.app.json.compact = None
    env.app.json.ensure_ascii = True  # a provider that escapes non-ASCII text
    resp = env.client.get(f"/v1/receipts/{gift}")
    assert "\\u96ea\\u4e2d".encode() in resp.get_data()
    assert_fixed_point(env.app, resp, s.Receipt())
    resp = env.post(f"/v1/projects/{PROJECT}/donations/batch", {"donations": [
        {**donation_body(payment_ref="PAY-render-5"), "idempotency_key": "render-0005"},
        {**donation_body(channel="pigeon"), "idempotency_key": "render-0006"},
    ]}, "intake")
    assert resp.status_code == 200
    assert_fixed_point(env.app, resp, s.BatchResults())


def test_a_donation_and_its_replay_are_sent_as_the_schema_dumps_them(make_api):
    env = make_api()
    first = env.donate("render-0002", personal={"name": "张三"})
    assert first.status_code == 201
    body = assert_fixed_point(env.app, first, s.DonationReceipt())
    assert "project_opening" not in body and len(bytes.fromhex(body["salt"])) == 32
    again = env.donate("render-0002", personal={"name": "张三"})
    assert again.status_code == 200
    replay = assert_fixed_point(env.app, again, s.DonationReceipt())
    assert replay["salt"] == body["salt"] and "project_opening" in replay and "charity" in replay
    assert list(replay)[-1] == "salt"  # after the receipt's members, as the schema orders them


def test_batch_results_are_sent_as_the_schema_dumps_them(make_api):
    env = make_api()
    assert env.donate("render-old-0001").status_code == 201

    def item(key: str, **changes) -> dict:
        return {**donation_body(payment_ref=f"PAY-{key}", **changes), "idempotency_key": key}

    items = [
        item("render-new-0001", amount="1.00"),
        {**donation_body(), "idempotency_key": "render-old-0001"},  # a replay
        item("render-bad-0001", amount="1.001"),  # refused by the core
        item("render-bad-0002", channel="pigeon"),  # refused by the schema
        {**donation_body(amount="99.00"), "idempotency_key": "render-old-0001"},  # a conflict
        item("render-new-0002", amount="2.00", personal={"note": "路费"}),
    ]
    resp = env.post(f"/v1/projects/{PROJECT}/donations/batch", {"donations": items}, "intake")
    assert resp.status_code == 200
    results = assert_fixed_point(env.app, resp, s.BatchResults())["results"]
    assert [r["status"] for r in results] == [201, 200, 422, 422, 409, 201]
    for r in results:
        schema = s.BatchReceipt() if "entry" in r else s.BatchProblem()
        dumped = schema.dump(r)
        assert dumped == r and list(dumped) == list(r)  # the same members, in the same order
        if "entry" in r:
            assert list(r)[-2:] == ["salt", "status"]


@pytest.fixture(scope="module")
def plain_app():
    app = Flask(__name__)
    app.json.ensure_ascii = False
    app.json.sort_keys = False
    return app


@given(st.dictionaries(keys, json_values, max_size=8), st.integers(0, 2**53 - 1))
def test_an_entry_body_sent_from_its_canonical_bytes_is_what_the_encoder_writes(plain_app, body, seq):
    entry = load_entry(seal(seq, "0" * 64, "2026-12-02T10:00:00.000Z", "note", body, canonical_bytes(body)).canonical)
    with plain_app.app_context():
        w = render._writer()
        assert w.raw_bodies
        text = render.body_text(entry, w)
    assert entry.canonical.decode().startswith('{"body":' + text + ',"kind":')  # sent from the bytes
    assert text == json.dumps(entry.body, ensure_ascii=False, separators=(",", ":"))  # as the encoder writes it
