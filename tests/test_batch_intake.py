"""POST /v1/projects/<id>/donations/batch through the Flask test client: one result per
item, in order (receipt, replay or problem), refused items write nothing, the whole
batch commits once; the batch's own 2 MiB limit, and 64 KiB everywhere else."""

from __future__ import annotations

import json

import pytest
from api_helpers import (  # noqa: F401  (make_api is a fixture)
    PROJECT,
    assert_problem,
    donation_body,
    make_api,
    verify_receipt_offline,
)
from factories import OTHER_PROJECT

URL = f"/v1/projects/{PROJECT}/donations/batch"


def item(key: str, **changes) -> dict:
    return {**donation_body(payment_ref=f"PAY-{key}", **changes), "idempotency_key": key}


def batch(env, items, token="intake", project=PROJECT):
    return env.post(f"/v1/projects/{project}/donations/batch", {"donations": items}, token)


def test_mixed_batch_answers_item_by_item_and_refused_items_write_nothing(make_api):
    env = make_api()
    first = env.donate("batch-old-0001")  # recorded before: replayed in the batch
    assert first.status_code == 201
    before_size = env.size()
    before_checkpoints = env.client.get("/v1/checkpoint").get_data()
    items = [
        item("batch-new-0001", amount="1.00"),
        {**donation_body(), "idempotency_key": "batch-old-0001"},  # the same body: a replay
        item("batch-bad-0001", amount="1.001"),  # too many decimals for CNY: refused by the core
        item("batch-bad-0002", channel="pigeon"),  # refused by the schema
        {**donation_body(amount="99.00"), "idempotency_key": "batch-old-0001"},  # same key, other body
        item("batch-new-0002", amount="2.00"),
        item("batch-new-0001", amount="1.00"),  # the same key twice in the batch: a replay of the first
        item("batch-new-0002", amount="3.00"),  # ... or a conflict when the body differs
        {"idempotency_key": "short"},
    ]
    resp = batch(env, items)
    assert resp.status_code == 200, resp.get_json()
    results = resp.get_json()["results"]
    assert [r["status"] for r in results] == [201, 200, 422, 422, 409, 201, 200, 409, 422]
    for r in (results[0], results[5]):
        verify_receipt_offline(r)
        assert len(bytes.fromhex(r["salt"])) == 32
    assert results[0]["tree_size"] == results[5]["tree_size"] == before_size + 2  # one commit, one checkpoint
    assert results[1]["entry"] == first.get_json()["entry"] and results[1]["salt"] == first.get_json()["salt"]
    assert results[6]["entry"] == results[0]["entry"] and results[6]["salt"] == results[0]["salt"]
    for r in (results[2], results[3], results[4], results[7], results[8]):
        assert set(r) >= {"type", "title", "status", "detail"} and "entry" not in r
    assert results[3]["errors"] == {"json": {"channel": [results[3]["errors"]["json"]["channel"][0]]}}
    assert "idempotency_key" in results[8]["errors"]["json"]
    assert env.size() == before_size + 2  # the refused items wrote nothing
    assert env.client.get("/v1/checkpoint").get_data() != before_checkpoints
    project = env.client.get(f"/v1/projects/{PROJECT}").get_json()
    assert project["donations"] == 6 and project["raised"] == "188.00"  # 3 seeded (175) + 10 + 1 + 2
    # The whole batch again: every accepted item is now a replay, and nothing is written.
    with env.unchanged():
        again = batch(env, items).get_json()["results"]
    assert [r["status"] for r in again] == [200, 200, 422, 422, 409, 200, 200, 409, 422]
    assert again[0]["entry"] == results[0]["entry"] and again[5]["salt"] == results[5]["salt"]


def test_an_all_refused_batch_writes_nothing(make_api):
    env = make_api()
    with env.unchanged():
        resp = batch(env, [item("batch-bad-0003", amount="-1.00"), item("batch-bad-0004", value_date="2026-13-01")])
    assert resp.status_code == 200
    assert [r["status"] for r in resp.get_json()["results"]] == [422, 422]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"donations": []}, 422),
        ({"donations": "x"}, 422),
        ({}, 422),
        ({"donations": [{}], "extra": 1}, 422),
        ([1, 2], 422),
    ],
)
def test_a_malformed_batch_is_one_problem(make_api, body, status):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post(URL, body, "intake"), status)


def test_a_batch_that_is_not_json_is_400(make_api):
    env = make_api()
    with env.unchanged():
        resp = env.client.post(URL, data=b'{"donations": [', content_type="application/json", headers=env.auth("intake"))
        assert_problem(resp, 400)


def test_1000_items_pass_and_1001_are_refused_whole(make_api):
    env = make_api()
    with env.unchanged():
        assert_problem(batch(env, [item(f"batch-many-{n:05d}") for n in range(1001)]), 422)
    resp = batch(env, [item(f"batch-many-{n:05d}") for n in range(1000)])
    assert resp.status_code == 200
    assert [r["status"] for r in resp.get_json()["results"]] == [201] * 1000


def test_the_batch_body_limit_is_2_mib_and_64_kib_stays_elsewhere(make_api):
    env = make_api()
    big = item("batch-big-0001", personal={"note": "x" * 200_000})  # ~200 KB: over 64 KiB, under 2 MiB
    resp = batch(env, [big])
    assert resp.status_code == 200 and resp.get_json()["results"][0]["status"] == 201
    with env.unchanged():
        single = env.post(f"/v1/projects/{PROJECT}/donations", {**donation_body(personal={"note": "x" * 70_000})},
                          "intake", {"Idempotency-Key": "single-big-0001"})
        assert_problem(single, 413)
        over = json.dumps({"donations": [item("batch-big-0002", personal={"note": "x" * (2 * 1024 * 1024)})]})
        resp = env.client.post(URL, data=over, content_type="application/json", headers=env.auth("intake"))
        assert assert_problem(resp, 413)["detail"] == f"the request body is larger than {2 * 1024 * 1024} bytes"


@pytest.mark.parametrize(("token", "project", "status"), [
    ("intake", PROJECT, 200), ("admin", PROJECT, 200), ("hope", PROJECT, 200), ("river", OTHER_PROJECT, 200),
    ("river", PROJECT, 403), (None, PROJECT, 401), ("luodi_wrong", PROJECT, 401),
])
def test_batch_token_scoping(make_api, token, project, status):
    env = make_api()
    items = [item(f"batch-tok-{token}-01")]
    if status == 200:
        resp = batch(env, items, token, project)
        assert resp.status_code == 200 and resp.get_json()["results"][0]["status"] == 201
    else:
        with env.unchanged():
            assert_problem(batch(env, items, token, project), status)


def test_batch_to_an_unknown_project_is_404(make_api):
    env = make_api()
    with env.unchanged():
        assert_problem(batch(env, [item("batch-none-0001")], project="no-such-project"), 404)
