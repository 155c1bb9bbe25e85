"""The operator's tasks, over HTTP (admin token) and the CLI: close a project, and read
or erase what the intake sent about a donor.  Erasure keeps the chain verifiable."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from api_helpers import close_app
from conftest import REGISTRY

import api
from api.cli import main
from api.instance import init_instance, open_instance
from ledger.charity.audit import audit_books
from ledger.charity.demo import seed_demo
from ledger.charity.tokens import create_token
from ledger.log.verify import verify_log

PROBLEM = "application/problem+json"
PROJECT = "winter-relief"
GIFT = {
    "amount": "88.00",
    "channel": "wechat",
    "payment_ref": "WX-ADMIN-1",
    "donor_ref": "donor-admin-1",
    "value_date": "2026-11-29",
    "personal": {"name": "Li Wei", "phone": "+86 139 0000 0000"},
}


class Env:
    def __init__(self, path, database=None):
        result = init_instance(path, database=database)
        self.path = path
        self.cl = result.charity
        seed_demo(self.cl, donations=40)
        tokens = self.cl.stores.tokens
        self.admin = {"Authorization": "Bearer " + create_token(tokens, "admin")}
        self.intake = {"Authorization": "Bearer " + create_token(tokens, "intake")}
        self.app = api.create_app({"TESTING": True, "INSTANCE": str(path), "RATELIMIT_ENABLED": False})
        self.client = self.app.test_client()

    def give(self, key="admin-gift-0001", **changes) -> str:
        resp = self.client.post(
            f"/v1/projects/{PROJECT}/donations", json={**GIFT, **changes}, headers={**self.intake, "Idempotency-Key": key}
        )
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()["entry"]["leaf_hash"]


@pytest.fixture
def env(tmp_path, backend):
    e = Env(tmp_path / "inst", backend.database())
    yield e
    e.cl.stores.close()
    close_app(e.app)


def problem(resp, status: int, slug: str) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json()
    assert body["type"] == f"/problems/{slug}" and body["status"] == status and body["detail"]
    return body


# -- closing a project -----------------------------------------------------------------------------


def test_an_admin_closes_a_project_and_it_takes_no_more_money(env):
    size = env.cl.ledger.size()
    resp = env.client.post(f"/v1/projects/{PROJECT}/closure", json={"reason": "Winter is over"}, headers=env.admin)
    assert resp.status_code == 201, resp.get_json()
    item = resp.get_json()
    assert item["seq"] == size and item["entry"]["kind"] == "project.closed"
    assert item["entry"]["body"] == {"project": PROJECT, "reason": "Winter is over"}
    assert env.client.get(f"/v1/projects/{PROJECT}").get_json()["closed"] is True
    refused = env.client.post(
        f"/v1/projects/{PROJECT}/donations", json=GIFT, headers={**env.intake, "Idempotency-Key": "late-gift-0001"}
    )
    problem(refused, 409, "conflict")
    again = env.client.post(f"/v1/projects/{PROJECT}/closure", json={"reason": "again"}, headers=env.admin)
    assert "closed" in problem(again, 409, "conflict")["detail"]
    assert env.cl.ledger.size() == size + 1
    verify_log(env.cl.ledger.store, REGISTRY)
    audit_books(env.cl.stores)


@pytest.mark.parametrize(
    "headers, body, project, status, slug",
    [
        (None, {"reason": "x"}, PROJECT, 401, "unauthorized"),
        ("intake", {"reason": "x"}, PROJECT, 403, "forbidden"),
        ("admin", {"reason": "x"}, "no-such-project", 404, "not-found"),
        ("admin", {}, PROJECT, 422, "invalid-input"),
        ("admin", {"reason": ""}, PROJECT, 422, "invalid-input"),
        ("admin", {"reason": "x", "extra": 1}, PROJECT, 422, "invalid-input"),
    ],
    ids=["no-token", "intake-token", "unknown-project", "no-reason", "empty-reason", "unknown-field"],
)
def test_closing_refusals_write_nothing(env, headers, body, project, status, slug):
    headers = {"admin": env.admin, "intake": env.intake}.get(headers, {})
    before = env.cl.ledger.size(), env.cl.ledger.checkpoint()
    problem(env.client.post(f"/v1/projects/{project}/closure", json=body, headers=headers), status, slug)
    assert (env.cl.ledger.size(), env.cl.ledger.checkpoint()) == before


# -- personal data -----------------------------------------------------------------------------------


def test_an_admin_reads_and_erases_a_donors_personal_data(env):
    receipt = env.give()
    url = f"/v1/receipts/{receipt}/personal-data"
    got = env.client.get(url, headers=env.admin)
    assert got.status_code == 200 and got.headers["Cache-Control"] == "no-store"
    assert got.get_json() == {"receipt": receipt, "personal": GIFT["personal"]}
    size, checkpoint = env.cl.ledger.size(), env.cl.ledger.checkpoint()
    erased = env.client.delete(url, headers=env.admin)
    assert erased.status_code == 200 and erased.get_json() == {"receipt": receipt, "erased": True}
    assert env.client.get(url, headers=env.admin).get_json()["personal"] is None
    assert env.client.delete(url, headers=env.admin).get_json()["erased"] is False  # nothing left
    # The log did not move, and still verifies, audits and proves the gift.
    assert (env.cl.ledger.size(), env.cl.ledger.checkpoint()) == (size, checkpoint)
    verify_log(env.cl.ledger.store, REGISTRY)
    assert audit_books(env.cl.stores).donations == 41
    assert env.client.get(f"/v1/receipts/{receipt}").status_code == 200
    # An erased donor's intake key can no longer be replayed (the fingerprint is gone too).
    replay = env.client.post(
        f"/v1/projects/{PROJECT}/donations", json=GIFT, headers={**env.intake, "Idempotency-Key": "admin-gift-0001"}
    )
    assert "erased" in problem(replay, 409, "conflict")["detail"]


@pytest.mark.parametrize("method", ["get", "delete"])
@pytest.mark.parametrize(
    "who, receipt, status, slug",
    [
        (None, "gift", 401, "unauthorized"),
        ("intake", "gift", 403, "forbidden"),
        ("admin", "AB" * 32, 404, "not-found"),  # no route: the path's pattern is the receipt rule
        ("admin", "ab" * 31, 404, "not-found"),
    ],
    ids=["no-token", "intake-token", "upper-hex", "short-hex"],
)
def test_personal_data_refusals_change_nothing(env, method, who, receipt, status, slug):
    gift = env.give()
    receipt = gift if receipt == "gift" else receipt
    headers = {"admin": env.admin, "intake": env.intake}.get(who, {})
    resp = getattr(env.client, method)(f"/v1/receipts/{receipt}/personal-data", headers=headers)
    body = problem(resp, status, slug)
    assert "Li Wei" not in json.dumps(body)
    assert env.cl.personal_data(gift) == GIFT["personal"]


def test_an_unknown_receipt_has_no_personal_data(env):
    url = f"/v1/receipts/{'ab' * 32}/personal-data"
    assert env.client.get(url, headers=env.admin).get_json()["personal"] is None
    assert env.client.delete(url, headers=env.admin).get_json()["erased"] is False


def test_the_contract_documents_the_admin_routes(env):
    spec = env.client.get("/openapi.json").get_json()
    assert {"post"} <= set(spec["paths"]["/v1/projects/{project_id}/closure"])
    assert {"get", "delete"} <= set(spec["paths"]["/v1/receipts/{leaf_hash}/personal-data"])
    for op in (spec["paths"]["/v1/receipts/{leaf_hash}/personal-data"]["get"], spec["paths"]["/v1/projects/{project_id}/closure"]["post"]):
        assert op["security"] == [{"bearerAuth": []}]


# -- the same from the CLI -------------------------------------------------------------------------------


def luodi(*args):
    return CliRunner().invoke(main, list(args))


def test_luodi_project_close(env):
    inst = str(env.path)
    size = env.cl.ledger.size()
    done = luodi("project", "close", PROJECT, "--reason", "Winter is over", "--instance", inst)
    assert done.exit_code == 0, done.output
    assert done.output.startswith(f"project {PROJECT} closed at seq {size}, receipt ")
    again = luodi("project", "close", PROJECT, "--reason", "again", "--instance", inst)
    unknown = luodi("project", "close", "no-such-project", "--reason", "x", "--instance", inst)
    for refused in (again, unknown):
        assert refused.exit_code == 1 and len(refused.output.strip().splitlines()) == 1, refused.output
        assert refused.output.startswith("Error: ")
    missing = luodi("project", "close", PROJECT, "--instance", inst)
    assert missing.exit_code == 2 and "--reason" in missing.output
    cl = open_instance(inst, with_key=False)
    try:
        assert cl.ledger.size() == size + 1 and cl.project(PROJECT).closed
    finally:
        cl.stores.close()


def test_luodi_donor_show_and_erase(env):
    inst = str(env.path)
    receipt = env.give()
    shown = luodi("donor", "show", receipt, "--instance", inst)
    assert shown.exit_code == 0 and json.loads(shown.output) == GIFT["personal"]
    size = env.cl.ledger.size()
    erased = luodi("donor", "erase", receipt, "--instance", inst)
    assert erased.exit_code == 0 and erased.output.strip() == f"erased the personal data of {receipt}"
    assert json.loads(luodi("donor", "show", receipt, "--instance", inst).output) is None
    nothing = luodi("donor", "erase", receipt, "--instance", inst)
    assert nothing.exit_code == 0 and nothing.output.strip() == f"nothing to erase for {receipt}"
    assert env.cl.ledger.size() == size
    assert luodi("verify", "--instance", inst).exit_code == 0
    assert luodi("audit", "--instance", inst).exit_code == 0


@pytest.mark.parametrize("command", ["show", "erase"])
def test_luodi_donor_refuses_a_bad_receipt(env, command):
    result = luodi("donor", command, "NOT-A-RECEIPT", "--instance", str(env.path))
    assert result.exit_code == 1
    assert result.output.strip() == "Error: a receipt hash is 64 lowercase hex digits"
