"""``GET /v1/export?start=&tree_size=`` and the snapshot of ``GET /v1/projects``.

A remote audit pins a checkpoint's size first and exports exactly up to it,
then catches up from where it stopped; the project totals come with the tree
size and signed checkpoint of the same snapshot, so they can be compared with
the log at that size.  Bad values are refused with problem+json.
"""

from __future__ import annotations

import pytest
from api_helpers import assert_problem, make_api  # noqa: F401

from ledger.log.checkpoint import open_checkpoint


def _lines(resp) -> list[bytes]:
    assert resp.status_code == 200, resp.get_data()
    assert resp.mimetype == "application/x-ndjson"
    data = resp.get_data()
    return data.split(b"\n")[:-1] if data else []


def test_export_ranges(make_api):
    env = make_api(demo=6)
    size = env.size()
    whole = _lines(env.client.get("/v1/export"))
    assert len(whole) == size
    assert _lines(env.client.get(f"/v1/export?start=3&tree_size={size - 2}")) == whole[3 : size - 2]
    assert _lines(env.client.get("/v1/export?start=5")) == whole[5:]
    assert _lines(env.client.get("/v1/export?tree_size=4")) == whole[:4]
    assert _lines(env.client.get(f"/v1/export?start={size}")) == []
    assert _lines(env.client.get("/v1/export?start=4&tree_size=4")) == []
    assert _lines(env.client.get(f"/v1/export?tree_size={size}")) == whole


def test_an_export_up_to_a_tree_size_ignores_later_entries(make_api):
    env = make_api(demo=2)
    size = env.size()
    before = _lines(env.client.get(f"/v1/export?tree_size={size}"))
    env.client.post(
        "/v1/projects/winter-coats/donations",
        json={"amount": "1.00", "channel": "cash", "payment_ref": "P-1", "donor_ref": "D-1", "value_date": "2026-11-29"},
        headers={"Authorization": f"Bearer {env.tokens['intake']}", "Idempotency-Key": "export-range-1"},
    )
    assert env.size() == size + 1
    assert _lines(env.client.get(f"/v1/export?tree_size={size}")) == before
    assert len(_lines(env.client.get("/v1/export"))) == size + 1


@pytest.mark.parametrize(
    "query, status, says",
    [
        ("start=x", 422, "query parameter start: must be an integer"),
        ("start=-1", 422, "query parameter start"),
        ("tree_size=1.5", 422, "query parameter tree_size: must be an integer"),
        ("tree_size=-3", 422, "query parameter tree_size"),
        ("tree_size=100000", 404, "tree size 100000 is not between 0 and"),
        ("start=5&tree_size=4", 404, "start 5 is beyond the tree size 4"),
        ("start=100000", 404, "start 100000 is beyond the log's size"),
    ],
)
def test_bad_export_ranges_are_refused(make_api, query, status, says):
    env = make_api()
    resp = env.client.get(f"/v1/export?{query}")
    body = assert_problem(resp, status)
    assert says in body["detail"]


def test_projects_come_with_the_checkpoint_of_their_snapshot(make_api):
    env = make_api(demo=4)
    doc = env.client.get("/v1/projects").get_json()
    assert doc["tree_size"] == env.size()
    cp = open_checkpoint(doc["checkpoint"], env.reader.verifier)
    assert cp.size == doc["tree_size"] and cp.root == env.reader.root()
    assert {p["project"] for p in doc["projects"]} >= {"winter-coats", "autumn-drive"}


def test_the_contract_documents_the_new_parameters(make_api):
    env = make_api()
    spec = env.client.get("/openapi.json").get_json()
    op = spec["paths"]["/v1/export"]["get"]
    params = {p["name"]: p for p in op["parameters"]}
    assert params["start"]["in"] == "query" and params["start"]["schema"]["minimum"] == 0
    assert params["tree_size"]["schema"]["type"] == "integer"
    assert {"200", "404", "422"} <= set(op["responses"])
    listed = spec["components"]["schemas"]["ProjectList"]
    assert {"projects", "tree_size", "checkpoint"} <= set(listed["required"])
