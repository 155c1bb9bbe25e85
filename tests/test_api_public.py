"""The public HTTP API, through the Flask test client: every read endpoint, its
answers checked with nothing but the ``ledger`` package (signatures, RFC 8785
bytes, RFC 9162 proofs), and every refusal as a problem that writes nothing."""

from __future__ import annotations

import hashlib
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest
import rfc8785
from api_helpers import (  # noqa: F401  (make_api is a fixture)
    CLOSED_DONATION,
    CLOSED_PROJECT,
    OTHER_DONATION,
    PROJECT,
    SEED_DONATIONS,
    assert_problem,
    item_hash,
    leaf_hash_hex,
    make_api,
    unhex,
    verify_receipt_offline,
)
from factories import CHARITY, OTHER_CHARITY, OTHER_PROJECT

from ledger.log.checkpoint import open_checkpoint
from ledger.log.merkle import verify_consistency, verify_inclusion
from ledger.log.note import Verifier


def opened_checkpoint(env):
    """GET /v1/log/key and GET /v1/checkpoint, and open the one with the other."""
    key = env.client.get("/v1/log/key")
    cp = env.client.get("/v1/checkpoint")
    return open_checkpoint(cp.get_data(as_text=True), Verifier.from_string(key.get_data(as_text=True).strip()))


# -- checkpoint and log key ------------------------------------------------------------


def test_checkpoint_opens_with_the_served_log_key(make_api):
    env = make_api()
    key = env.client.get("/v1/log/key")
    assert key.status_code == 200 and key.mimetype == "text/plain"
    text = key.get_data(as_text=True)
    assert text.endswith("\n") and text.count("\n") == 1
    verifier = Verifier.from_string(text.strip())
    assert verifier.to_string() == env.reader.genesis.body["log_key"]
    assert not text.startswith("PRIVATE")

    resp = env.client.get("/v1/checkpoint")
    assert resp.status_code == 200 and resp.mimetype == "text/plain"
    assert "no-cache" in resp.headers["Cache-Control"]
    cp = open_checkpoint(resp.get_data(as_text=True), verifier)
    assert cp.origin == verifier.name == env.reader.origin
    assert cp.size == env.size()
    assert cp.root == env.reader.root(cp.size)


def test_checkpoint_follows_the_log(make_api):
    env = make_api()
    first = opened_checkpoint(env)
    assert env.donate("follow-0001").status_code == 201
    second = opened_checkpoint(env)
    assert second.size == first.size + 1 == env.size()
    assert second.root == env.reader.root() != first.root


# -- entries ------------------------------------------------------------------------------


def test_entries_pages_cover_the_log_and_hash_to_their_leaves(make_api):
    env = make_api()
    size = env.size()
    assert size > 7
    seen, start, pages = [], 0, 0
    while start is not None:
        resp = env.client.get(f"/v1/entries?start={start}&limit=3")
        assert resp.status_code == 200 and resp.mimetype == "application/json"
        page = resp.get_json()
        assert set(page) == {"entries", "next_start"}
        assert len(page["entries"]) <= 3
        seen += page["entries"]
        start = page["next_start"]
        pages += 1
        if start is not None:
            assert start == seen[-1]["seq"] + 1
    assert pages == -(-size // 3)
    assert [i["seq"] for i in seen] == list(range(size))
    prev = "0" * 64
    for it in seen:
        assert set(it) == {"seq", "leaf_hash", "entry"}
        assert it["entry"]["seq"] == it["seq"]
        # The item's RFC 8785 bytes are exactly what the log hashed.
        canonical = rfc8785.dumps(it["entry"])
        assert hashlib.sha256(b"\x00" + canonical).hexdigest() == it["leaf_hash"]
        assert canonical == env.reader.entry(it["seq"]).canonical
        assert it["entry"]["prev"] == prev
        prev = it["leaf_hash"]
    assert seen[0]["entry"]["kind"] == "genesis"


def test_entries_defaults_and_the_end_of_the_log(make_api):
    env = make_api()
    size = env.size()
    page = env.client.get("/v1/entries").get_json()
    assert [i["seq"] for i in page["entries"]] == list(range(size)) and page["next_start"] is None
    # A page that ends exactly at the end says so.
    page = env.client.get(f"/v1/entries?start={size - 2}&limit=2").get_json()
    assert [i["seq"] for i in page["entries"]] == [size - 2, size - 1] and page["next_start"] is None
    page = env.client.get(f"/v1/entries?start={size - 3}&limit=2").get_json()
    assert page["next_start"] == size - 1
    for start in (size, size + 5, 10**9):
        page = env.client.get(f"/v1/entries?start={start}").get_json()
        assert page == {"entries": [], "next_start": None}
    assert len(env.client.get("/v1/entries?limit=1000").get_json()["entries"]) == size
    assert len(env.client.get("/v1/entries?limit=1").get_json()["entries"]) == 1


PAGE_REFUSALS = [
    "limit=0",
    "limit=1001",
    "limit=-1",
    "start=-1",
    "start=abc",
    "limit=ten",
    "limit=1.5",
    "start=2.0",
    "start=",
]


@pytest.mark.parametrize("query", PAGE_REFUSALS)
def test_entries_paging_refusals(make_api, query):
    env = make_api()
    with env.unchanged():
        for url in (f"/v1/entries?{query}", f"/v1/projects/{PROJECT}/entries?{query}"):
            body = assert_problem(env.client.get(url), 422, "invalid-input")
            assert "query" in body["errors"], body


def test_page_limit_config_caps_pages(make_api):
    env = make_api(config={"PAGE_LIMIT": 2})
    page = env.client.get("/v1/entries?limit=100").get_json()
    assert [i["seq"] for i in page["entries"]] == [0, 1] and page["next_start"] == 2
    page = env.client.get(f"/v1/projects/{PROJECT}/entries?limit=100").get_json()
    assert len(page["entries"]) == 2 and page["next_start"] is not None


def test_one_entry_is_immutable_with_a_strong_etag(make_api):
    env = make_api()
    listed = env.client.get("/v1/entries").get_json()["entries"]
    for it in listed:
        resp = env.client.get(f"/v1/entries/{it['seq']}")
        assert resp.status_code == 200 and resp.mimetype == "application/json"
        assert resp.get_json() == it
        etag = resp.headers["ETag"]
        assert etag.startswith('"') and not etag.startswith("W/")
        assert "immutable" in resp.headers["Cache-Control"]
        again = env.client.get(f"/v1/entries/{it['seq']}", headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.get_data() == b""
        assert again.headers["ETag"] == etag
    # Distinct entries, distinct tags; a stale tag gets the full answer.
    tags = {env.client.get(f"/v1/entries/{i['seq']}").headers["ETag"] for i in listed}
    assert len(tags) == len(listed)
    other = env.client.get("/v1/entries/1", headers={"If-None-Match": env.client.get("/v1/entries/2").headers["ETag"]})
    assert other.status_code == 200 and other.get_json() == listed[1]


@pytest.mark.parametrize("seq", ["size", "10**6", "-1"])
def test_unknown_entry_is_a_404_problem(make_api, seq):
    env = make_api()
    n = {"size": env.size(), "10**6": 10**6, "-1": -1}[seq]
    with env.unchanged():
        assert_problem(env.client.get(f"/v1/entries/{n}"), 404, "not-found")


@pytest.mark.parametrize("seq", [2**53, 2**63 - 1, 2**63, 10**20])
def test_huge_seq_is_a_404_not_a_server_error(make_api, seq):
    """A seq no log can reach is simply not there (SQLite integers stop at 2^63 - 1)."""
    env = make_api(config={"TESTING": False})
    with env.unchanged():
        assert_problem(env.client.get(f"/v1/entries/{seq}"), 404, "not-found")


@pytest.mark.parametrize("start", [2**53, 2**63 - 1, 2**63, 10**20])
def test_huge_start_is_an_empty_page_or_a_422(make_api, start):
    """Paging past any possible seq answers like paging past the end (or refuses the query): never a 500."""
    env = make_api(config={"TESTING": False})
    with env.unchanged():
        for url in (f"/v1/entries?start={start}", f"/v1/projects/{PROJECT}/entries?start={start}"):
            resp = env.client.get(url)
            assert resp.status_code in (200, 422), (url, resp.status_code, resp.get_json())
            if resp.status_code == 200:
                assert resp.get_json() == {"entries": [], "next_start": None}
            else:
                assert_problem(resp, 422, "invalid-input")


def test_ping(make_api):
    env = make_api()
    resp = env.client.get("/v1/ping")
    assert resp.status_code == 200 and resp.get_json() == {"ok": True}


# -- inclusion proofs -------------------------------------------------------------------------


def test_inclusion_proofs_at_a_tree_size_verify_and_are_immutable(make_api):
    env = make_api()
    items = env.items()
    size = len(items)
    for n in (1, 2, 5, size - 1, size):
        root = env.reader.root(n)
        for it in items[:n]:
            resp = env.client.get(f"/v1/proofs/inclusion?leaf_hash={it['leaf_hash']}&tree_size={n}")
            assert resp.status_code == 200, resp.get_json()
            body = resp.get_json()
            assert body["leaf_index"] == it["seq"] and body["tree_size"] == n
            verify_inclusion(bytes.fromhex(it["leaf_hash"]), it["seq"], n, unhex(body["audit_path"]), root)
            assert "immutable" in resp.headers["Cache-Control"]
            etag = resp.headers["ETag"]
            assert not etag.startswith("W/")
            cached = env.client.get(
                f"/v1/proofs/inclusion?leaf_hash={it['leaf_hash']}&tree_size={n}", headers={"If-None-Match": etag}
            )
            assert cached.status_code == 304


def test_inclusion_proof_without_tree_size_uses_the_latest_checkpoint(make_api):
    env = make_api()
    cp = opened_checkpoint(env)
    for it in env.items():
        resp = env.client.get(f"/v1/proofs/inclusion?leaf_hash={it['leaf_hash']}")
        assert resp.status_code == 200
        body = resp.get_json()
        assert body["tree_size"] == cp.size and body["leaf_index"] == it["seq"]
        verify_inclusion(bytes.fromhex(it["leaf_hash"]), it["seq"], cp.size, unhex(body["audit_path"]), cp.root)
        # It changes as the log grows: no ETag, not immutable.
        assert "ETag" not in resp.headers
        assert "immutable" not in resp.headers.get("Cache-Control", "")


@pytest.mark.parametrize(
    "query",
    [
        "leaf_hash=",
        "leaf_hash=zz",
        "leaf_hash=" + "0" * 63,
        "leaf_hash=" + "0" * 65,
        "leaf_hash=" + "A" * 64,
        "leaf_hash=" + "g" * 64,
        "tree_size=3",
        "leaf_hash=GENESIS&tree_size=0",
        "leaf_hash=GENESIS&tree_size=-2",
        "leaf_hash=GENESIS&tree_size=abc",
    ],
)
def test_inclusion_proof_malformed_is_422(make_api, query):
    env = make_api()
    query = query.replace("GENESIS", env.reader.genesis.receipt)
    with env.unchanged():
        body = assert_problem(env.client.get(f"/v1/proofs/inclusion?{query}"), 422, "invalid-input")
        assert "query" in body["errors"]


def test_inclusion_proof_of_an_uppercase_real_leaf_is_422(make_api):
    env = make_api()
    real = env.gifts[0]
    assert_problem(env.client.get(f"/v1/proofs/inclusion?leaf_hash={real.upper()}"), 422)


@pytest.mark.parametrize("case", ["unknown", "beyond the log", "not in that tree", "at its own index"])
def test_inclusion_proof_not_found(make_api, case):
    env = make_api()
    size = env.size()
    gift = env.reader.entry_by_receipt(env.gifts[1])
    leaf, tree = {
        "unknown": ("0" * 64, None),
        "beyond the log": (gift.receipt, size + 1),
        "not in that tree": (gift.receipt, gift.seq - 1),
        "at its own index": (gift.receipt, gift.seq),
    }[case]
    url = f"/v1/proofs/inclusion?leaf_hash={leaf}" + (f"&tree_size={tree}" if tree else "")
    with env.unchanged():
        assert_problem(env.client.get(url), 404, "not-found")
    # One more entry makes the smallest tree holding it valid.
    assert env.client.get(f"/v1/proofs/inclusion?leaf_hash={gift.receipt}&tree_size={gift.seq + 1}").status_code == 200


# -- consistency proofs ------------------------------------------------------------------------


def test_consistency_between_two_served_checkpoints(make_api):
    env = make_api()
    old = opened_checkpoint(env)
    for i in range(3):
        assert env.donate(f"grow-{i:04d}", payment_ref=f"GROW-{i}").status_code == 201
    new = opened_checkpoint(env)
    assert new.size == old.size + 3
    resp = env.client.get(f"/v1/proofs/consistency?first={old.size}&second={new.size}")
    assert resp.status_code == 200
    body = resp.get_json()
    assert (body["first"], body["second"]) == (old.size, new.size)
    verify_consistency(old.size, new.size, old.root, new.root, unhex(body["consistency"]))
    assert "immutable" in resp.headers["Cache-Control"] and not resp.headers["ETag"].startswith("W/")
    assert env.client.get(
        f"/v1/proofs/consistency?first={old.size}&second={new.size}", headers={"If-None-Match": resp.headers["ETag"]}
    ).status_code == 304
    # Without second: to the latest checkpoint, and not cacheable.
    latest = env.client.get(f"/v1/proofs/consistency?first={old.size}")
    assert latest.status_code == 200 and latest.get_json() == body
    assert "ETag" not in latest.headers and "immutable" not in latest.headers.get("Cache-Control", "")


def test_consistency_proofs_verify_for_every_pair(make_api):
    env = make_api()
    size = env.size()
    roots = {n: env.reader.root(n) for n in range(1, size + 1)}
    for second in range(1, size + 1):
        for first in range(1, second + 1):
            body = env.client.get(f"/v1/proofs/consistency?first={first}&second={second}").get_json()
            verify_consistency(first, second, roots[first], roots[second], unhex(body["consistency"]))
    for first in range(1, size + 1):
        body = env.client.get(f"/v1/proofs/consistency?first={first}").get_json()
        assert body["second"] == size
        verify_consistency(first, size, roots[first], roots[size], unhex(body["consistency"]))


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("first=5&second=4", 404),
        ("first=SIZE+1", 404),
        ("first=2&second=SIZE+1", 404),
        ("first=0", 422),
        ("first=0&second=3", 422),
        ("first=-1", 422),
        ("first=2&second=0", 422),
        ("second=3", 422),
        ("first=x", 422),
        ("first=1&second=1.5", 422),
    ],
)
def test_consistency_refusals(make_api, query, status):
    env = make_api()
    query = query.replace("SIZE+1", str(env.size() + 1))
    with env.unchanged():
        assert_problem(env.client.get(f"/v1/proofs/consistency?{query}"), status)


# -- receipts ----------------------------------------------------------------------------------


def spend_and_refund(env):
    """Seed gifts are 100, 50 and 25: spend 120 then 10 (FIFO: all of gift 0, then 20 and 10
    of gift 1), and refund 5 of gift 1.  Returns the two disbursement leaf hashes."""
    d1 = env.disburse(env.disbursement([("coats", "100.00"), ("delivery", "20.00")]))
    d2 = env.disburse(env.disbursement([("quilts", "10.00")]))
    assert d1.status_code == d2.status_code == 201, (d1.get_json(), d2.get_json())
    r = env.post(f"/v1/receipts/{env.gifts[1]}/refunds", {"amount": "5.00", "reason": "cooling-off"}, "intake")
    assert r.status_code == 201, r.get_json()
    return d1.get_json()["leaf_hash"], d2.get_json()["leaf_hash"]


def test_receipt_of_a_spent_donation_verifies_offline(make_api):
    env = make_api()
    d1, d2 = spend_and_refund(env)
    log_key = env.client.get("/v1/log/key").get_data(as_text=True).strip()

    resp = env.client.get(f"/v1/receipts/{env.gifts[1]}")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    receipt = resp.get_json()
    verify_receipt_offline(receipt, log_key)
    assert receipt["entry"]["leaf_hash"] == env.gifts[1]
    assert receipt["tree_size"] == env.size()
    assert (receipt["amount"], receipt["spent"], receipt["refunded"], receipt["unspent"]) == (
        "50.00", "30.00", "5.00", "15.00",
    )
    assert [(a["disbursement"]["leaf_hash"], a["amount"]) for a in receipt["allocation"]] == [
        (d1, "20.00"), (d2, "10.00"),
    ]
    assert "salt" not in receipt  # the salt is given once, to the intake

    first = env.client.get(f"/v1/receipts/{env.gifts[0]}").get_json()
    verify_receipt_offline(first, log_key)
    assert (first["spent"], first["unspent"]) == ("100.00", "0.00")
    assert [(a["disbursement"]["leaf_hash"], a["amount"]) for a in first["allocation"]] == [(d1, "100.00")]

    untouched = env.client.get(f"/v1/receipts/{env.gifts[2]}").get_json()
    verify_receipt_offline(untouched, log_key)
    assert untouched["allocation"] == [] and untouched["unspent"] == untouched["amount"] == "25.00"


def test_a_tampered_receipt_fails_offline(make_api):
    from ledger.errors import ProofError, SignatureError

    env = make_api()
    spend_and_refund(env)
    receipt = env.client.get(f"/v1/receipts/{env.gifts[1]}").get_json()
    verify_receipt_offline(receipt)
    bad = {**receipt, "entry": {**receipt["entry"], "leaf_hash": env.gifts[2]}}
    with pytest.raises(AssertionError):
        verify_receipt_offline(bad)
    bad = {**receipt, "inclusion_proof": list(reversed(receipt["inclusion_proof"]))}
    with pytest.raises(ProofError):
        verify_receipt_offline(bad)
    bad = {**receipt, "checkpoint": receipt["checkpoint"].replace(str(receipt["tree_size"]), str(receipt["tree_size"] + 1), 1)}
    with pytest.raises(SignatureError):
        verify_receipt_offline(bad)


def test_receipt_of_a_non_donation_is_404(make_api):
    env = make_api()
    items = env.items()
    others = [i for i in items if i["entry"]["kind"] != "donation"]
    assert {i["entry"]["kind"] for i in others} >= {"genesis", "charity.registered", "project.opened", "project.closed"}
    with env.unchanged():
        for it in others:
            assert_problem(env.client.get(f"/v1/receipts/{it['leaf_hash']}"), 404, "not-found")


@pytest.mark.parametrize("leaf", ["0" * 64, "f" * 64])
def test_unknown_receipt_is_404(make_api, leaf):
    env = make_api()
    with env.unchanged():
        assert_problem(env.client.get(f"/v1/receipts/{leaf}"), 404, "not-found")


@pytest.mark.parametrize("leaf", ["zz", "0" * 63, "0" * 65, "g" * 64, "UPPER"])
def test_malformed_receipt_is_404(make_api, leaf):
    """The route's pattern is the receipt rule: a URL that breaks it names nothing."""
    env = make_api()
    leaf = env.gifts[0].upper() if leaf == "UPPER" else leaf
    with env.unchanged():
        body = assert_problem(env.client.get(f"/v1/receipts/{leaf}"), 404, "not-found")
    assert "64 lowercase hex digits" in body["detail"]


# -- projects ------------------------------------------------------------------------------------


def test_projects_and_their_totals(make_api):
    env = make_api()
    resp = env.client.get("/v1/projects")
    assert resp.status_code == 200
    listed = {p["project"]: p for p in resp.get_json()["projects"]}
    assert set(listed) == {PROJECT, CLOSED_PROJECT, OTHER_PROJECT}
    total = sum(Decimal(a) for a in SEED_DONATIONS)
    assert listed[PROJECT] == {
        "project": PROJECT,
        "charity": CHARITY,
        "currency": "CNY",
        "opened_seq": listed[PROJECT]["opened_seq"],
        "closed": False,
        "donations": len(SEED_DONATIONS),
        "raised": f"{total:.2f}",
        "spent": "0.00",
        "refunded": "0.00",
        "balance": f"{total:.2f}",
    }
    assert env.reader.entry(listed[PROJECT]["opened_seq"]).body["project"] == PROJECT
    assert listed[CLOSED_PROJECT]["closed"] is True and listed[CLOSED_PROJECT]["donations"] == 1
    assert listed[CLOSED_PROJECT]["raised"] == listed[CLOSED_PROJECT]["balance"] == CLOSED_DONATION
    assert listed[OTHER_PROJECT]["charity"] == OTHER_CHARITY and listed[OTHER_PROJECT]["raised"] == OTHER_DONATION
    for name, p in listed.items():
        one = env.client.get(f"/v1/projects/{name}")
        assert one.status_code == 200 and one.get_json() == p

    spend_and_refund(env)
    p = env.client.get(f"/v1/projects/{PROJECT}").get_json()
    assert (p["raised"], p["spent"], p["refunded"], p["balance"]) == ("175.00", "130.00", "5.00", "40.00")
    assert Decimal(p["raised"]) - Decimal(p["spent"]) - Decimal(p["refunded"]) == Decimal(p["balance"])


@pytest.mark.parametrize("project", ["no-such-project", "UPPER", "x" * 100])
def test_unknown_project_is_404(make_api, project):
    env = make_api()
    with env.unchanged():
        assert_problem(env.client.get(f"/v1/projects/{project}"), 404, "not-found")
        assert_problem(env.client.get(f"/v1/projects/{project}/entries"), 404, "not-found")


def _project_of(entry: dict) -> str | None:
    body = entry["body"]
    return body.get("project") or (body.get("payload") or {}).get("project")


def test_project_entries_pages(make_api):
    env = make_api()
    spend_and_refund(env)
    env.donate("other-project-1", project=OTHER_PROJECT)
    want = [i for i in env.items() if _project_of(i["entry"]) == PROJECT]
    assert [i["entry"]["kind"] for i in want] == ["project.opened"] + ["donation"] * 3 + ["disbursement"] * 2 + ["refund"]
    got, start = [], 0
    while start is not None:
        resp = env.client.get(f"/v1/projects/{PROJECT}/entries?start={start}&limit=2")
        assert resp.status_code == 200
        page = resp.get_json()
        assert len(page["entries"]) <= 2
        for it in page["entries"]:
            assert item_hash(it) == it["leaf_hash"]
        got += page["entries"]
        start = page["next_start"]
        if start is not None:
            # next_start is the seq of the next entry of this project
            assert start == want[len(got)]["seq"]
    assert got == want
    whole = env.client.get(f"/v1/projects/{PROJECT}/entries").get_json()
    assert whole == {"entries": want, "next_start": None}
    tail = env.client.get(f"/v1/projects/{PROJECT}/entries?start={want[-1]['seq'] + 1}").get_json()
    assert tail == {"entries": [], "next_start": None}
    closed = env.client.get(f"/v1/projects/{CLOSED_PROJECT}/entries").get_json()
    assert [i["entry"]["kind"] for i in closed["entries"]] == ["project.opened", "donation", "project.closed"]


# -- export -----------------------------------------------------------------------------------------


def test_export_is_ndjson_of_the_canonical_bytes(make_api):
    env = make_api(demo=12)
    items = env.items()
    resp = env.client.get("/v1/export")
    assert resp.status_code == 200 and resp.mimetype == "application/x-ndjson"
    data = resp.get_data()
    assert data.endswith(b"\n")
    lines = data.split(b"\n")[:-1]
    assert len(lines) == len(items) == env.size()
    for line, it in zip(lines, items):
        assert line == rfc8785.dumps(it["entry"])
        assert leaf_hash_hex(line) == it["leaf_hash"]
        assert line == env.reader.entry(it["seq"]).canonical


# -- the contract and its explorer --------------------------------------------------------------------

V1_ROUTES = {
    ("get", "/v1/checkpoint"),
    ("get", "/v1/log/key"),
    ("get", "/v1/entries"),
    ("get", "/v1/entries/{seq}"),
    ("get", "/v1/proofs/inclusion"),
    ("get", "/v1/proofs/consistency"),
    ("get", "/v1/receipts/{leaf_hash}"),
    ("get", "/v1/projects"),
    ("get", "/v1/projects/{project_id}"),
    ("get", "/v1/projects/{project_id}/entries"),
    ("get", "/v1/export"),
    ("post", "/v1/charities"),
    ("post", "/v1/projects"),
    ("post", "/v1/projects/{project_id}/donations"),
    ("post", "/v1/projects/{project_id}/disbursements"),
    ("post", "/v1/charities/{charity_id}/key-rotations"),
    ("post", "/v1/receipts/{leaf_hash}/refunds"),
}


def test_openapi_documents_every_v1_route(make_api):
    env = make_api()
    resp = env.client.get("/openapi.json")
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    spec = resp.get_json()
    assert spec["openapi"].startswith("3.")
    assert spec["info"]["title"] and spec["info"]["version"]
    documented = {(m, path) for path, ops in spec["paths"].items() for m in ops if m in ("get", "post", "put", "delete", "patch")}
    assert V1_ROUTES <= documented, V1_ROUTES - documented
    # Every route the app serves under /v1 is in the contract, method by method.
    served = set()
    for rule in env.app.url_map.iter_rules():
        if rule.rule.startswith("/v1/"):
            path = re.sub(r"<(?:[^:>]+:)?([a-z_]+)>", r"{\1}", rule.rule)
            served |= {(m.lower(), path) for m in rule.methods - {"HEAD", "OPTIONS"}}
    assert served <= documented, served - documented
    for method, path in V1_ROUTES:
        op = spec["paths"][path][method]
        assert op.get("summary") or op.get("description"), (method, path)
        assert any(code.startswith("2") for code in op["responses"]), (method, path)


def test_openapi_security_requirements_name_declared_schemes(make_api):
    """OpenAPI 3: each name in a security requirement MUST be a declared security scheme."""
    env = make_api()
    spec = env.client.get("/openapi.json").get_json()
    declared = set(spec.get("components", {}).get("securitySchemes", {}))
    used = {
        (method, path, name)
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
        if isinstance(op, dict)
        for req in op.get("security", [])
        for name in req
    }
    assert {(m, p) for m, p, _ in used} >= {
        ("post", "/v1/charities"), ("post", "/v1/projects"),
        ("post", "/v1/projects/{project_id}/donations"), ("post", "/v1/receipts/{leaf_hash}/refunds"),
    }
    assert {name for _, _, name in used} <= declared, f"undeclared security schemes: {used}; declared {declared}"


class _Assets(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "script" and attrs.get("src"):
            self.urls.append(attrs["src"])
        if tag == "link" and attrs.get("href"):
            self.urls.append(attrs["href"])


def test_docs_page_loads_its_assets_from_the_server(make_api):
    env = make_api()
    resp = env.client.get("/docs")
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "/openapi.json" in html
    parser = _Assets()
    parser.feed(html)
    assert any(u.endswith("swagger-ui-bundle.js") for u in parser.urls), parser.urls
    for url in parser.urls:
        assert not url.startswith(("http://", "https://", "//")), url
        with env.client.get(url) as asset:
            assert asset.status_code == 200, url
            assert asset.get_data()
    assert "http://" not in html and "https://" not in html
    with env.client.get("/docs-assets/swagger-ui-bundle.js") as bundle:
        assert bundle.status_code == 200
        assert "javascript" in bundle.mimetype
        assert b"SwaggerUIBundle" in bundle.get_data()
    with env.client.get("/docs-assets/no-such-asset.js") as missing:
        assert missing.status_code == 404
