"""The write side of the HTTP API, through the Flask test client: tokens, bodies,
idempotency, charity signatures, and every refusal as a problem that writes nothing."""

from __future__ import annotations

import base64
import hashlib

import pytest
from api_helpers import (  # noqa: F401  (make_api is a fixture)
    CLOSED_PROJECT,
    PROJECT,
    assert_problem,
    donation_body,
    item_hash,
    make_api,
    signed,
    verify_receipt_offline,
)
from conftest import REGISTRY, stores_of
from factories import CHARITY, OTHER_CHARITY, OTHER_PROJECT, charity_signers, vkeys

from ledger.charity import payload as P
from ledger.charity.service import donor_commitment, payment_ref_hash
from ledger.log.clock import utc_now

NEW_KEYS = vkeys(charity_signers("sky-trust", 3))


def charity_body(charity="sky-trust", **changes) -> dict:
    body = {"charity": charity, "name": "Sky Trust", "keys": NEW_KEYS, "threshold": 2}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def project_body(project="spring-seeds", **changes) -> dict:
    body = {
        "project": project,
        "charity": CHARITY,
        "title": "Spring seeds",
        "purpose": "Seeds and tools for village co-ops",
        "currency": "CNY",
        "target": "5000.00",
        "period": {"start": "2027-03-01", "end": "2027-05-31"},
    }
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def assert_item(env, resp, kind: str) -> dict:
    """A 201 whose body is the new entry item, exactly as GET /v1/entries/<seq> shows it."""
    assert resp.status_code == 201, resp.get_json()
    assert resp.mimetype == "application/json"
    it = resp.get_json()
    assert set(it) == {"seq", "leaf_hash", "entry"}
    assert it["entry"]["kind"] == kind
    assert item_hash(it) == it["leaf_hash"]
    assert it["seq"] == env.size() - 1
    assert env.client.get(f"/v1/entries/{it['seq']}").get_json() == it
    return it


# -- admin routes: charities and projects ---------------------------------------------------------

ADMIN_ROUTES = [("/v1/charities", charity_body), ("/v1/projects", project_body)]


@pytest.mark.parametrize(("url", "body"), ADMIN_ROUTES)
@pytest.mark.parametrize(
    ("header", "status"),
    [
        (None, 401),
        ("Basic YWRtaW46YWRtaW4=", 401),
        ("Bearer", 401),
        ("Bearer ", 401),
        ("Bearer luodi_not-a-real-token", 401),
        ("Bearer ADMIN-x", 401),
        ("Bearer INTAKE", 403),
        ("Bearer HOPE", 403),
    ],
)
def test_admin_routes_need_an_admin_token(make_api, url, body, header, status):
    env = make_api()
    headers = {}
    if header is not None:
        for name in ("admin", "intake", "hope"):
            header = header.replace(name.upper(), env.tokens[name])
        headers["Authorization"] = header
    with env.unchanged():
        resp = env.client.post(url, json=body(), headers=headers)
        assert_problem(resp, status, {401: "unauthorized", 403: "forbidden"}[status])
    if status == 401:
        assert resp.headers["WWW-Authenticate"] == 'Bearer realm="luodi"'
    # The same body with the admin token goes through.
    assert env.post(url, body(), "admin").status_code == 201


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "BeArEr"])
def test_bearer_scheme_is_case_insensitive(make_api, scheme):
    """RFC 9110 §11.1: the authentication scheme is a case-insensitive token."""
    env = make_api()
    resp = env.client.post("/v1/charities", json=charity_body(), headers={"Authorization": f"{scheme} {env.tokens['admin']}"})
    assert resp.status_code == 201, resp.get_json()


def test_register_a_charity(make_api):
    env = make_api()
    it = assert_item(env, env.post("/v1/charities", charity_body(), "admin"), "charity.registered")
    assert it["entry"]["body"] == charity_body()
    # Its keys now sign: open a project for it and spend from it.
    assert env.post("/v1/projects", project_body(charity="sky-trust"), "admin").status_code == 201
    assert env.donate("sky-gift-0001", project="spring-seeds").status_code == 201
    sky = charity_signers("sky-trust", 3)
    payload = env.disbursement(charity="sky-trust", project="spring-seeds")
    assert env.disburse(payload, sky[0], sky[2]).status_code == 201


@pytest.mark.parametrize(
    ("change", "slug"),
    [
        ({"charity": CHARITY}, "conflict"),  # the id is taken
        ({"keys": vkeys(charity_signers(CHARITY, 2))}, "conflict"),  # the keys belong to another charity
    ],
)
def test_register_charity_conflicts(make_api, change, slug):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post("/v1/charities", charity_body(**change), "admin"), 409, slug)


def test_register_the_same_charity_twice(make_api):
    env = make_api()
    assert env.post("/v1/charities", charity_body(), "admin").status_code == 201
    with env.unchanged():
        assert_problem(env.post("/v1/charities", charity_body(), "admin"), 409, "conflict")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "charity"),
        (charity_body(name=None), "name"),
        (charity_body(keys=None), "keys"),
        (charity_body(threshold=None), "threshold"),
        (charity_body(threshold="2"), "threshold"),
        (charity_body(threshold=2.5), "threshold"),
        (charity_body(keys="key"), "keys"),
        (charity_body(keys=[1, 2]), "keys"),
        (charity_body(charity=7), "charity"),
        (charity_body(extra="x"), "extra"),
        (charity_body(website="https://example.org"), "website"),
    ],
)
def test_register_charity_schema_errors(make_api, body, field):
    env = make_api()
    with env.unchanged():
        problem = assert_problem(env.post("/v1/charities", body, "admin"), 422, "invalid-input")
    assert field in problem["errors"]["json"], problem


@pytest.mark.parametrize(
    "change",
    [
        {"charity": "Sky Trust"},  # not an id
        {"charity": ""},
        {"keys": []},
        {"keys": ["not a key"]},
        {"keys": [NEW_KEYS[0], NEW_KEYS[0]]},
        {"threshold": 4},
        {"threshold": 0},
        {"name": ""},
    ],
)
def test_register_charity_rule_errors(make_api, change):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post("/v1/charities", charity_body(**change), "admin"), 422)


def test_body_that_is_not_an_object_is_422(make_api):
    env = make_api()
    with env.unchanged():
        for body in ([charity_body()], "sky-trust", 42, True):
            assert_problem(env.post("/v1/charities", body, "admin"), 422)


def test_open_a_project(make_api):
    env = make_api()
    it = assert_item(env, env.post("/v1/projects", project_body(), "admin"), "project.opened")
    assert it["entry"]["body"] == {**project_body(), "target": 500000}
    listed = env.client.get("/v1/projects/spring-seeds").get_json()
    assert listed["opened_seq"] == it["seq"] and listed["raised"] == "0.00" and not listed["closed"]
    # Optional target and period.
    bare = project_body("bare-project", target=None, period=None)
    it = assert_item(env, env.post("/v1/projects", bare, "admin"), "project.opened")
    assert it["entry"]["body"] == bare
    jpy = assert_item(env, env.post("/v1/projects", project_body("yen-project", currency="JPY", target="5000"), "admin"), "project.opened")
    assert jpy["entry"]["body"]["target"] == 5000


@pytest.mark.parametrize(
    ("change", "status", "slug"),
    [
        ({"project": PROJECT}, 409, "conflict"),
        ({"project": CLOSED_PROJECT}, 409, "conflict"),
        ({"charity": "no-such-charity"}, 404, "not-found"),
        ({"currency": "XYZ"}, 422, None),
        ({"currency": "cny"}, 422, None),
        ({"target": "1.234"}, 422, None),
        ({"target": "0.00"}, 422, None),
        ({"target": 5000}, 422, "invalid-input"),
        ({"target": "-5"}, 422, "invalid-input"),
        ({"period": {"start": "2027-03-01"}}, 422, "invalid-input"),
        ({"period": {"start": "March", "end": "May"}}, 422, None),
        ({"project": "Spring Seeds"}, 422, None),
        ({"title": None}, 422, "invalid-input"),
        ({"owner": "me"}, 422, "invalid-input"),
    ],
)
def test_open_project_refusals(make_api, change, status, slug):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post("/v1/projects", project_body(**change), "admin"), status, slug)


# -- donations ------------------------------------------------------------------------------------------


def test_donation_returns_a_receipt_with_its_salt(make_api):
    env = make_api()
    before = env.size()
    body = donation_body(personal={"name": "Li Wei", "phone": "+86 138 0000 0000"})
    resp = env.post(f"/v1/projects/{PROJECT}/donations", body, "intake", {"Idempotency-Key": "intake-http-0001"})
    assert resp.status_code == 201, resp.get_json()
    receipt = resp.get_json()
    assert env.size() == before + 1
    verify_receipt_offline(receipt)
    entry = receipt["entry"]
    assert entry["seq"] == before and receipt["tree_size"] == before + 1
    assert (receipt["amount"], receipt["spent"], receipt["refunded"], receipt["unspent"]) == ("10.00", "0.00", "0.00", "10.00")
    salt = receipt["salt"]
    assert len(bytes.fromhex(salt)) == 32
    b = entry["entry"]["body"]
    assert b["amount"] == 1000 and b["currency"] == "CNY" and b["intake_key"] == "intake-http-0001"
    assert b["donor_commitment"] == donor_commitment(bytes.fromhex(salt), body["donor_ref"])
    assert b["payment_ref_hash"] == payment_ref_hash(body["payment_ref"])
    exported = env.client.get("/v1/export").get_data()
    for secret in (body["donor_ref"], body["payment_ref"], "Li Wei", "138 0000", salt):
        assert secret.encode() not in exported
    # Later reads of the receipt never give the salt again.
    public = env.client.get(f"/v1/receipts/{entry['leaf_hash']}").get_json()
    assert "salt" not in public and public["entry"] == entry
    project = env.client.get(f"/v1/projects/{PROJECT}").get_json()
    assert project["raised"] == "185.00" and project["donations"] == 4


def test_donation_replay_returns_the_same_receipt_and_writes_nothing(make_api):
    env = make_api()
    first = env.donate("intake-http-0002")
    assert first.status_code == 201
    with env.unchanged():
        for token in ("intake", "hope", "admin"):
            again = env.donate("intake-http-0002", token)
            assert again.status_code == 200, again.get_json()
            assert again.get_json()["entry"] == first.get_json()["entry"]
            assert again.get_json()["salt"] == first.get_json()["salt"]


@pytest.mark.parametrize(
    "change",
    [{"amount": "10.01"}, {"donor_ref": "someone-else"}, {"payment_ref": "WX-PAY-OTHER"}, {"channel": "alipay"},
     {"value_date": "2026-11-30"}, {"personal": {"name": "Li Wei"}}, {"project": "spring-seeds"}],
)
def test_same_key_with_a_different_body_is_409(make_api, change):
    env = make_api()
    assert env.donate("intake-http-0003").status_code == 201
    change = dict(change)  # the parameter is shared by every run of the test (one per backend)
    project = change.pop("project", PROJECT)
    if project != PROJECT:  # another project of the same charity: its intake keys are the charity's
        assert env.post("/v1/projects", project_body(project), "admin").status_code == 201
    with env.unchanged():
        problem = assert_problem(env.donate("intake-http-0003", project=project, **change), 409, "conflict")
    assert problem["detail"] == "this intake key was already used for a different donation"


def test_two_charities_may_use_the_same_idempotency_key(make_api):
    """Intake keys are scoped per charity (of the project, whichever token sends the donation):
    one charity's intake can neither block another's keys nor learn which keys it used."""
    env = make_api()
    key = "seed-intake-0000"  # used by CHARITY's intake when the instance was seeded
    river = env.donate(key, "river", project=OTHER_PROJECT, amount="7.00")
    assert river.status_code == 201, river.get_json()
    hope = env.donate(key, "hope", amount="7.00")  # the same key and body for CHARITY: its own seeded gift differs
    assert_problem(hope, 409, "conflict")
    fresh = "shared-key-0001"
    first = {
        name: env.donate(fresh, name, project=project) for name, project in (("hope", PROJECT), ("river", OTHER_PROJECT))
    }
    assert [r.status_code for r in first.values()] == [201, 201]
    receipts = {name: r.get_json()["entry"]["leaf_hash"] for name, r in first.items()}
    assert receipts["hope"] != receipts["river"]
    with env.unchanged():
        for name, project in (("hope", PROJECT), ("river", OTHER_PROJECT), ("intake", OTHER_PROJECT)):
            again = env.donate(fresh, name, project=project)  # a replay within one charity, from any of its tokens
            assert again.status_code == 200, again.get_json()
            assert again.get_json()["entry"]["leaf_hash"] == receipts["river" if project == OTHER_PROJECT else "hope"]
        other = env.donate(fresh, "river", project=OTHER_PROJECT, amount="99.00")
        assert assert_problem(other, 409, "conflict")["detail"] == "this intake key was already used for a different donation"
    assert env.client.get(f"/v1/projects/{OTHER_PROJECT}").get_json()["donations"] == 3


@pytest.mark.parametrize("token", ["intake", "hope", "admin"])
def test_donation_tokens_that_may_record(make_api, token):
    env = make_api()
    assert env.donate(f"intake-{token}-0001", token).status_code == 201


@pytest.mark.parametrize(
    ("token", "status", "slug"),
    [(None, 401, "unauthorized"), ("luodi_wrong", 401, "unauthorized"), ("river", 403, "forbidden")],
)
def test_donation_tokens_that_may_not(make_api, token, status, slug):
    env = make_api()
    with env.unchanged():
        assert_problem(env.donate("intake-http-0004", token), status, slug)
    # The river token may record for its own charity's project.
    assert env.donate("intake-http-0004", "river", project=OTHER_PROJECT).status_code == 201


@pytest.mark.parametrize(
    "key", [None, "", "short", "has space 123", "a" * 129, "ключ-12345678", "key/with/slash"],
)
def test_donation_needs_a_well_formed_idempotency_key(make_api, key):
    env = make_api()
    headers = {} if key is None else {"Idempotency-Key": key}
    with env.unchanged():
        resp = env.client.post(
            f"/v1/projects/{PROJECT}/donations", json=donation_body(), headers={**env.auth("intake"), **headers}
        )
        problem = assert_problem(resp, 422, "invalid-input")
    assert "headers" in problem["errors"], problem


@pytest.mark.parametrize(
    ("change", "slug"),
    [
        ({"amount": 10.5}, "invalid-input"),
        ({"amount": 10}, "invalid-input"),
        ({"amount": "1.234"}, None),
        ({"amount": "0.00"}, None),
        ({"amount": "0"}, None),
        ({"amount": "-10.00"}, "invalid-input"),
        ({"amount": "1e3"}, "invalid-input"),
        ({"amount": " 10.00"}, "invalid-input"),
        ({"amount": "10.00000000000000000000"}, None),
        ({"amount": None}, "invalid-input"),
        ({"channel": "paypal"}, "invalid-input"),
        ({"donor_ref": ""}, "invalid-input"),
        ({"payment_ref": "x" * 257}, "invalid-input"),
        ({"personal": {"age": 42}}, "invalid-input"),
        ({"value_date": "29/11/2026"}, None),
        ({"donor_name": "Li Wei"}, "invalid-input"),
    ],
)
def test_donation_body_refusals_are_422(make_api, change, slug):
    env = make_api()
    with env.unchanged():
        assert_problem(env.donate("intake-http-0005", **change), 422, slug)


def test_donation_to_an_unknown_project_is_404(make_api):
    env = make_api()
    with env.unchanged():
        for token in ("intake", "river"):
            assert_problem(env.donate("intake-http-0006", token, project="no-such-project"), 404, "not-found")


def test_donation_to_a_closed_project_is_409(make_api):
    env = make_api()
    with env.unchanged():
        assert_problem(env.donate("intake-http-0007", project=CLOSED_PROJECT), 409, "conflict")


# -- disbursements -------------------------------------------------------------------------------------------


def test_disbursement_signed_by_a_threshold_is_201(make_api):
    env = make_api()
    payload = env.disbursement([("200 coats", "120.00"), ("delivery", "5.50")], evidence=[("ab" * 32, "invoice 1")])
    resp = env.client.post(f"/v1/projects/{PROJECT}/disbursements", json=signed(payload, env.keys[2], env.keys[0]))
    it = assert_item(env, resp, "disbursement")
    body = it["entry"]["body"]
    assert body["payload"] == payload and len(body["signatures"]) == 2
    assert body["postings"] == [
        {"account": f"project:{PROJECT}", "currency": "CNY", "amount": -12550},
        {"account": "payees", "currency": "CNY", "amount": 12550},
    ]
    project = env.client.get(f"/v1/projects/{PROJECT}").get_json()
    assert (project["spent"], project["balance"]) == ("125.50", "49.50")
    # All three keys is fine too.
    assert env.disburse(env.disbursement(), *env.keys).status_code == 201


def test_disbursement_needs_no_token_but_a_token_does_not_help(make_api):
    env = make_api()
    payload = env.disbursement()
    with env.unchanged():
        resp = env.post(f"/v1/projects/{PROJECT}/disbursements", signed(payload, env.keys[0]), "admin")
        assert_problem(resp, 400, "bad-signature")
    assert env.post(f"/v1/projects/{PROJECT}/disbursements", signed(payload, *env.keys[:2])).status_code == 201


def _tamper(env, payload: dict, sigs: list[dict], how: str) -> dict:
    if how == "payee":
        return {"payload": {**payload, "payee": {"name": "Someone Else Ltd."}}, "signatures": sigs}
    if how == "lines":
        lines = [{"description": "cash", "amount": payload["amount"]}]
        return {"payload": {**payload, "lines": lines}, "signatures": sigs}
    if how == "signature":
        raw = bytearray(base64.b64decode(sigs[1]["signature"]))
        raw[0] ^= 1
        bad = {**sigs[1], "signature": base64.b64encode(bytes(raw)).decode()}
        return {"payload": payload, "signatures": [sigs[0], bad]}
    if how == "swapped keys":
        return {"payload": payload, "signatures": [{**sigs[0], "key": sigs[1]["key"]}, {**sigs[1], "key": sigs[0]["key"]}]}
    raise AssertionError(how)


@pytest.mark.parametrize(
    "case",
    [
        "one signature",
        "same key twice",
        "other charity's keys",
        "unregistered keys",
        "one good, one foreign",
        "payee",
        "lines",
        "signature",
        "swapped keys",
        "signed_at too old",
        "signed_at in the future",
        "charity does not own the project",
    ],
)
def test_disbursement_signature_refusals_are_400(make_api, case):
    env = make_api()
    kw = {}
    if case == "signed_at too old":
        kw["signed_at"] = "2020-01-01T00:00:00.000Z"
    if case == "signed_at in the future":
        kw["signed_at"] = "2099-01-01T00:00:00.000Z"
    if case == "charity does not own the project":
        kw["charity"] = OTHER_CHARITY
    payload = env.disbursement(**kw)
    sigs = [P.sign(payload, s) for s in env.keys[:2]]
    body = {
        "one signature": {"payload": payload, "signatures": sigs[:1]},
        "same key twice": {"payload": payload, "signatures": [sigs[0], sigs[0]]},
        "other charity's keys": signed(payload, *env.other_keys[:2]),
        "unregistered keys": signed(payload, *charity_signers(CHARITY, 2, first=7)),
        "one good, one foreign": signed(payload, env.keys[0], env.other_keys[0]),
        "charity does not own the project": signed(payload, *env.other_keys[:2]),
        "signed_at too old": {"payload": payload, "signatures": sigs},
        "signed_at in the future": {"payload": payload, "signatures": sigs},
    }.get(case) or _tamper(env, payload, sigs, case)
    with env.unchanged():
        problem = assert_problem(env.client.post(f"/v1/projects/{PROJECT}/disbursements", json=body), 400, "bad-signature")
    assert problem["title"] == "Signature verification failed"


def test_disbursement_replay_is_409(make_api):
    env = make_api()
    payload = env.disbursement()
    body = signed(payload, *env.keys[:2])
    assert env.client.post(f"/v1/projects/{PROJECT}/disbursements", json=body).status_code == 201
    with env.unchanged():
        assert_problem(env.client.post(f"/v1/projects/{PROJECT}/disbursements", json=body), 409, "replay")
        # Another payload with the same nonce, freshly signed by other keys: still a replay.
        again = env.disbursement([("quilts", "1.00")], nonce=payload["nonce"])
        assert_problem(env.disburse(again, env.keys[1], env.keys[2]), 409, "replay")
        # The nonce is the charity's: used in a rotation payload, it is taken there too.
        rot = P.rotation(charity=CHARITY, keys=vkeys(env.keys), threshold=3, nonce=payload["nonce"])
        assert_problem(
            env.client.post(f"/v1/charities/{CHARITY}/key-rotations", json=signed(rot, *env.keys[:2])), 409, "replay"
        )


def test_disbursement_overspend_is_409(make_api):
    env = make_api()
    with env.unchanged():
        assert_problem(env.disburse(env.disbursement([("everything", "175.01")])), 409, "overspend")
    assert env.disburse(env.disbursement([("everything", "175.00")])).status_code == 201
    with env.unchanged():
        assert_problem(env.disburse(env.disbursement([("one more cent", "0.01")])), 409, "overspend")


@pytest.mark.parametrize(
    ("case", "status", "slug"),
    [
        ("another project in the URL", 422, "invalid-input"),
        ("unknown project in the URL", 422, "invalid-input"),
        ("unknown project in both", 404, "not-found"),
        ("closed project", 409, "conflict"),
        ("other currency", 422, None),
        ("missing signatures", 422, "invalid-input"),
        ("no signatures", 422, "invalid-input"),
        ("signature not base64", 422, "invalid-entry"),
        ("signature without key", 422, "invalid-input"),
        ("missing payload", 422, "invalid-input"),
        ("payload not an object", 422, "invalid-input"),
        ("payload missing amount", 422, None),
        ("amount not the lines' sum", 422, None),
        ("wrong action", 422, None),
        ("extra member", 422, None),
        ("extra top-level field", 422, "invalid-input"),
    ],
)
def test_disbursement_other_refusals(make_api, case, status, slug):
    env = make_api()
    payload = env.disbursement()
    url_project = PROJECT
    if case == "another project in the URL":
        url_project = OTHER_PROJECT
    elif case == "unknown project in the URL":
        url_project = "no-such-project"
    elif case == "unknown project in both":
        payload = env.disbursement(project="no-such-project")
        url_project = "no-such-project"
    elif case == "closed project":
        payload = env.disbursement(project=CLOSED_PROJECT)
        url_project = CLOSED_PROJECT
    elif case == "other currency":
        payload = {**payload, "currency": "USD"}
    elif case == "payload missing amount":
        payload = {k: v for k, v in payload.items() if k != "amount"}
    elif case == "amount not the lines' sum":
        payload = {**payload, "amount": payload["amount"] + 1}
    elif case == "wrong action":
        payload = {**payload, "action": "charity.keys_rotated"}
    elif case == "extra member":
        payload = {**payload, "bank_account": "6222 0000"}
    body = signed(payload, *env.keys[:2])
    if case == "missing signatures":
        del body["signatures"]
    elif case == "no signatures":
        body["signatures"] = []
    elif case == "signature not base64":
        body["signatures"][1]["signature"] = "!!!"
    elif case == "signature without key":
        del body["signatures"][1]["key"]
    elif case == "missing payload":
        del body["payload"]
    elif case == "payload not an object":
        body["payload"] = "pay 10.00"
    elif case == "extra top-level field":
        body["note"] = "hello"
    with env.unchanged():
        assert_problem(env.client.post(f"/v1/projects/{url_project}/disbursements", json=body), status, slug)


# -- key rotations --------------------------------------------------------------------------------------------


def test_key_rotation_replaces_the_keys(make_api):
    env = make_api()
    new = charity_signers(CHARITY, 2, first=4) + [env.keys[2]]
    rot = P.rotation(charity=CHARITY, keys=vkeys(new), threshold=2)
    resp = env.client.post(f"/v1/charities/{CHARITY}/key-rotations", json=signed(rot, env.keys[0], env.keys[2]))
    it = assert_item(env, resp, "charity.keys_rotated")
    assert it["entry"]["body"]["payload"] == rot
    # Old keys no longer sign; the new ones (and the kept one) do.
    with env.unchanged():
        assert_problem(env.disburse(env.disbursement(), env.keys[0], env.keys[1]), 400, "bad-signature")
        assert_problem(env.disburse(env.disbursement(), env.keys[0], new[0]), 400, "bad-signature")
    assert env.disburse(env.disbursement(), new[0], new[1]).status_code == 201
    assert env.disburse(env.disbursement(), new[2], new[1]).status_code == 201
    # And only the new keys may rotate again.
    back = P.rotation(charity=CHARITY, keys=vkeys(env.keys), threshold=2)
    with env.unchanged():
        assert_problem(
            env.client.post(f"/v1/charities/{CHARITY}/key-rotations", json=signed(back, *env.keys[:2])), 400, "bad-signature"
        )
    assert env.client.post(f"/v1/charities/{CHARITY}/key-rotations", json=signed(back, *new[:2])).status_code == 201


@pytest.mark.parametrize(
    ("case", "status", "slug"),
    [
        ("another charity in the URL", 422, "invalid-input"),
        ("unknown charity", 404, "not-found"),
        ("one signature", 400, "bad-signature"),
        ("signed by the new keys", 400, "bad-signature"),
        ("signed by another charity", 400, "bad-signature"),
        ("tampered threshold", 400, "bad-signature"),
        ("keys of another charity", 409, "conflict"),
        ("threshold above the keys", 422, None),
        ("disbursement payload", 422, None),
        ("replay", 409, "replay"),
        ("no payload", 422, "invalid-input"),
    ],
)
def test_key_rotation_refusals(make_api, case, status, slug):
    env = make_api()
    new = charity_signers(CHARITY, 3, first=4)
    charity = CHARITY
    rot = P.rotation(charity=CHARITY, keys=vkeys(new), threshold=2)
    signers = env.keys[:2]
    url = CHARITY
    if case == "another charity in the URL":
        url = OTHER_CHARITY
    elif case == "unknown charity":
        charity = url = "no-such-charity"
        rot = P.rotation(charity=charity, keys=vkeys(new), threshold=2)
    elif case == "one signature":
        signers = env.keys[:1]
    elif case == "signed by the new keys":
        signers = new[:2]
    elif case == "signed by another charity":
        signers = env.other_keys[:2]
    elif case == "keys of another charity":
        rot = P.rotation(charity=CHARITY, keys=vkeys(env.other_keys), threshold=2)
    elif case == "threshold above the keys":
        rot = {**rot, "threshold": 4}
    elif case == "disbursement payload":
        rot = env.disbursement()
    elif case == "replay":
        rot = P.rotation(charity=CHARITY, keys=vkeys(env.keys), threshold=2)  # the same keys: they still sign
        assert env.client.post(f"/v1/charities/{CHARITY}/key-rotations", json=signed(rot, *signers)).status_code == 201
    body = signed(rot, *signers)
    if case == "tampered threshold":
        body["payload"] = {**rot, "threshold": 1}
    if case == "no payload":
        del body["payload"]
    with env.unchanged():
        assert_problem(env.client.post(f"/v1/charities/{url}/key-rotations", json=body), status, slug)


# -- refunds ------------------------------------------------------------------------------------------------


def test_refund_of_unspent_money(make_api):
    env = make_api()
    gift = env.gifts[2]  # 25.00, unspent
    resp = env.post(f"/v1/receipts/{gift}/refunds", {"amount": "7.50", "reason": "Donor asked"}, "intake")
    it = assert_item(env, resp, "refund")
    assert it["entry"]["body"] == {
        "donation": gift,
        "project": PROJECT,
        "amount": 750,
        "currency": "CNY",
        "reason": "Donor asked",
        "postings": [
            {"account": f"project:{PROJECT}", "currency": "CNY", "amount": -750},
            {"account": "donors", "currency": "CNY", "amount": 750},
        ],
    }
    receipt = env.client.get(f"/v1/receipts/{gift}").get_json()
    verify_receipt_offline(receipt)
    assert (receipt["refunded"], receipt["unspent"]) == ("7.50", "17.50")
    project = env.client.get(f"/v1/projects/{PROJECT}").get_json()
    assert (project["refunded"], project["balance"]) == ("7.50", "167.50")
    # The rest, with the charity's own scoped token and then an admin token.
    assert env.post(f"/v1/receipts/{gift}/refunds", {"amount": "10.00", "reason": "r"}, "hope").status_code == 201
    assert env.post(f"/v1/receipts/{gift}/refunds", {"amount": "7.50", "reason": "r"}, "admin").status_code == 201
    assert env.client.get(f"/v1/receipts/{gift}").get_json()["unspent"] == "0.00"
    assert env.post(f"/v1/receipts/{env.other_gift}/refunds", {"amount": "1.00", "reason": "r"}, "river").status_code == 201


def test_refund_from_a_closed_project(make_api):
    """A closed project takes no donations or disbursements, but its unspent money can go back."""
    env = make_api()
    resp = env.post(f"/v1/receipts/{env.closed_gift}/refunds", {"amount": "30.00", "reason": "project closed"}, "hope")
    assert assert_item(env, resp, "refund")["entry"]["body"]["project"] == CLOSED_PROJECT
    project = env.client.get(f"/v1/projects/{CLOSED_PROJECT}").get_json()
    assert (project["refunded"], project["balance"], project["closed"]) == ("30.00", "0.00", True)


def test_refund_above_unspent_is_409(make_api):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post(f"/v1/receipts/{env.gifts[2]}/refunds", {"amount": "25.01", "reason": "r"}, "intake"), 409, "overspend")
    # Spend all of gift 0 (FIFO), then even a cent of it is too much.
    assert env.disburse(env.disbursement([("coats", "100.00")])).status_code == 201
    with env.unchanged():
        assert_problem(env.post(f"/v1/receipts/{env.gifts[0]}/refunds", {"amount": "0.01", "reason": "r"}, "intake"), 409, "overspend")


@pytest.mark.parametrize(
    ("token", "status", "slug"),
    [(None, 401, "unauthorized"), ("luodi_nope", 401, "unauthorized"), ("river", 403, "forbidden")],
)
def test_refund_token_refusals(make_api, token, status, slug):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post(f"/v1/receipts/{env.gifts[0]}/refunds", {"amount": "1.00", "reason": "r"}, token), status, slug)
    with env.unchanged():
        assert_problem(env.post(f"/v1/receipts/{env.other_gift}/refunds", {"amount": "1.00", "reason": "r"}, "hope"), 403, "forbidden")


def test_refund_of_an_unknown_receipt_is_404(make_api):
    env = make_api()
    genesis = env.reader.genesis.receipt
    with env.unchanged():
        for leaf in ("0" * 64, genesis, hashlib.sha256(b"nothing").hexdigest()):
            assert_problem(env.post(f"/v1/receipts/{leaf}/refunds", {"amount": "1.00", "reason": "r"}, "intake"), 404, "not-found")


@pytest.mark.parametrize("leaf", ["zz", "0" * 63, "UPPER"])
def test_refund_of_a_malformed_receipt_is_refused(make_api, leaf):
    env = make_api()
    leaf = env.gifts[0].upper() if leaf == "UPPER" else leaf
    with env.unchanged():
        resp = env.post(f"/v1/receipts/{leaf}/refunds", {"amount": "1.00", "reason": "r"}, "intake")
        assert resp.status_code in (404, 422)
        assert_problem(resp, resp.status_code)


@pytest.mark.parametrize(
    "body",
    [
        {"amount": "1.00"},
        {"reason": "r"},
        {"amount": 1.0, "reason": "r"},
        {"amount": "1.001", "reason": "r"},
        {"amount": "0.00", "reason": "r"},
        {"amount": "1.00", "reason": ""},
        {"amount": "1.00", "reason": "r" * 2001},
        {"amount": "1.00", "reason": "r", "to": "donor"},
    ],
)
def test_refund_body_refusals_are_422(make_api, body):
    env = make_api()
    with env.unchanged():
        assert_problem(env.post(f"/v1/receipts/{env.gifts[0]}/refunds", body, "intake"), 422)


def test_writes_then_the_whole_log_still_verifies(make_api):
    """After a run of HTTP writes, the log and the books pass the auditor's checks."""
    from ledger.charity.audit import audit_books
    from ledger.log.verify import verify_log

    env = make_api()
    assert env.post("/v1/charities", charity_body(), "admin").status_code == 201
    assert env.post("/v1/projects", project_body(), "admin").status_code == 201
    for i in range(3):
        assert env.donate(f"audit-intake-{i:04d}", project="spring-seeds").status_code == 201
    assert env.disburse(env.disbursement([("seeds", "150.00")])).status_code == 201
    assert env.post(f"/v1/receipts/{env.gifts[2]}/refunds", {"amount": "5.00", "reason": "r"}, "intake").status_code == 201
    rot = P.rotation(charity=CHARITY, keys=vkeys(charity_signers(CHARITY, 3, first=4)), threshold=2, signed_at=utc_now())
    assert env.client.post(f"/v1/charities/{CHARITY}/key-rotations", json=signed(rot, *env.keys[1:])).status_code == 201
    verify_log(env.reader.store, REGISTRY, workers=1)
    audit_books(stores_of(env.reader))


def test_concurrent_donations_share_commits_and_every_receipt_verifies(make_api):
    """Threads of one worker (gunicorn's gthread) post at once: their donations may
    commit together, and each 201 is proven against the checkpoint that covers it."""
    import threading

    env = make_api()
    before = env.size()
    results, errors = {}, []

    def post(k):
        try:
            client = env.app.test_client()
            for i in range(6):
                key = f"thread-{k}-{i:03d}"
                resp = client.post(
                    f"/v1/projects/{PROJECT}/donations",
                    json=donation_body(payment_ref=f"PAY-{key}", donor_ref=f"donor-{key}"),
                    headers={**env.auth("intake"), "Idempotency-Key": key},
                )
                results[key] = (resp.status_code, resp.get_json())
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(k,)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors and len(results) == 36
    seqs = set()
    for key, (status, receipt) in results.items():
        assert status == 201, receipt
        verify_receipt_offline(receipt)
        assert receipt["entry"]["entry"]["body"]["intake_key"] == key
        assert receipt["leaf_index"] < receipt["tree_size"] <= before + 36
        seqs.add(receipt["leaf_index"])
    assert seqs == set(range(before, before + 36))
    assert env.size() == before + 36
