"""Trusted output sent without marshmallow (api/views.py ``rendered``) is byte for byte
what flask-smorest sends for the same answer: ``jsonify`` of the route's schema's dump.

Receipts (GET, with and without allocations and key rotations), a donation's 201
and its replay's 200, and batch results holding receipts, replays and problems.
Each answer is checked two ways: recomputed from the ledger and dumped through its
schema, and dumped again through its schema from what the client got (a fixed
point: nothing the schema would drop, rename, reorder or retype)."""

from __future__ import annotations

import json

from api_helpers import PROJECT, donation_body, make_api  # noqa: F401  (make_api is a fixture)
from flask import jsonify
from receipt_helpers import spent_gift

from api import schemas as s
from api import views
from api.instance import open_instance

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
    gift = spent_gift(env)  # spent twice (before and after a key rotation), partly refunded
    body = assert_receipt_as_smorest_sends_it(env, gift.receipt)
    assert len(body["allocation"]) == 2 and body["refunded"] == "5.00"
    assert len(body["charity"]["key_rotations"]) == 1
    body = assert_receipt_as_smorest_sends_it(env, env.other_gift)  # never spent, other charity
    assert body["allocation"] == [] and body["charity"]["key_rotations"] == []
    # non-ASCII text in an entry, sent as UTF-8 (ensure_ascii off) in both
    resp = env.post("/v1/projects", {
        "project": "xue-zhong", "charity": "hope-foundation", "title": "雪中送炭", "purpose": "冬衣", "currency": "CNY",
    }, "admin")
    assert resp.status_code == 201, resp.get_json()
    gift = env.donate("render-0001", project="xue-zhong")
    assert gift.status_code == 201
    body = assert_receipt_as_smorest_sends_it(env, gift.get_json()["entry"]["leaf_hash"])
    assert body["project_opening"]["entry"]["body"]["title"] == "雪中送炭"


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
