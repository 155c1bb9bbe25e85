"""Shared commits under real concurrency: ``luodi serve`` (real gunicorn, 2 workers
of 8 threads) takes a burst of concurrent donation POSTs in far fewer commits than
requests, every request still gets its own receipt proven against the checkpoint
signed with its commit, and a request refused inside a group leaves the others
intact.  Commits are counted through the checkpoints the log keeps (one per
commit), never by timing.  On every backend."""

from __future__ import annotations

import http.client
import json
import threading

import pytest
from test_e2e_gunicorn import CHARITY, PROJECT, HOST, LiveServer, Scenario, init_instance, verify_receipt

from api.instance import open_instance
from ledger.log.note import Signer

BURST = 48


def commits(instance) -> list[int]:
    """The tree size of every commit's checkpoint, oldest first."""
    books = open_instance(instance, with_key=False)
    try:
        return [size for size, _ in books.ledger.store.iter_checkpoints()]
    finally:
        books.stores.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, module_backend):
    instance = tmp_path_factory.mktemp("groups") / "instance"
    log_key, admin, intake = init_instance(instance, module_backend.database("groups"))
    with LiveServer(instance, log_key, workers=2, threads=8, env={"LUODI_RATELIMIT_ENABLED": "false"}) as server:
        signers = [Signer.generate(f"{CHARITY}/finance-{i}") for i in (1, 2, 3)]
        sc = Scenario(server, admin, intake, signers)
        got = server.post("/v1/charities", {"charity": CHARITY, "name": "Hope Foundation",
                                            "keys": [s.verifier.to_string() for s in signers], "threshold": 2},
                          headers=sc.auth(admin))
        assert got.status == 201, got.body
        got = server.post("/v1/projects", {"project": PROJECT, "charity": CHARITY, "title": "School meals",
                                           "purpose": "Hot lunches", "currency": "CNY"}, headers=sc.auth(admin))
        assert got.status == 201, got.body
        yield sc, instance


def _body(i: int, amount: str) -> dict:
    return {"amount": amount, "channel": "wechat", "payment_ref": f"WX-burst-{i}", "donor_ref": f"donor-{i}",
            "value_date": "2026-11-29"}


def _burst(server: LiveServer, token: str, requests: list[tuple[str, dict]]) -> list[tuple[int, dict]]:
    """Send every (key, body) at once, each on its own connection; the answers in order."""
    start = threading.Barrier(len(requests))
    answers: list = [None] * len(requests)

    def send(n: int, key: str, body: dict) -> None:
        conn = http.client.HTTPConnection(HOST, server.port, timeout=60)
        try:
            conn.connect()
            start.wait(30)
            conn.request("POST", f"/v1/projects/{PROJECT}/donations", body=json.dumps(body),
                         headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                                  "Idempotency-Key": key})
            resp = conn.getresponse()
            answers[n] = (resp.status, json.loads(resp.read()))
        finally:
            conn.close()

    threads = [threading.Thread(target=send, args=(n, key, body)) for n, (key, body) in enumerate(requests)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not any(t.is_alive() for t in threads)
    return answers


def test_a_burst_of_donations_shares_commits_and_each_gets_its_own_proven_receipt(served):
    sc, instance = served
    server = sc.server
    # Two keys already used: one is replayed (same body) in the burst, one reused with another body.
    for key, body in (("burst-replayed-key", _body(900, "9.00")), ("burst-reused-key", _body(901, "9.01"))):
        got = server.post(f"/v1/projects/{PROJECT}/donations", body,
                          headers={**sc.auth(sc.intake), "Idempotency-Key": key})
        assert got.status == 201, got.body
        replayed_receipt = got.json if key == "burst-replayed-key" else replayed_receipt
    before = commits(instance)
    requests = [(f"burst-key-{i:04d}", _body(i, f"{10 + i}.00")) for i in range(BURST)]
    requests.insert(11, ("burst-replayed-key", _body(900, "9.00")))
    requests.insert(29, ("burst-reused-key", _body(901, "1.00")))  # same key, another gift: refused
    answers = _burst(server, sc.intake, requests)

    new = [(req, ans) for req, ans in zip(requests, answers) if req[0].startswith("burst-key-")]
    assert all(status == 201 for _, (status, _) in new), [a for _, a in new if a[0] != 201][:2]
    replay_status, replay = answers[11]
    assert replay_status == 200 and replay["entry"] == replayed_receipt["entry"]
    refused_status, refused = answers[29]
    assert refused_status in (409, 422) and refused["status"] == refused_status and "request_id" in refused

    after = commits(instance)
    made = after[len(before):]
    assert after[-1] - before[-1] == BURST  # every new gift, and nothing for the refused one
    assert len(made) <= BURST // 2, f"{BURST} donations took {len(made)} commits"  # groups formed
    seqs = set()
    keys = [s.verifier.to_string() for s in sc.signers]
    for (_, body), (_, receipt) in new:
        verify_receipt(receipt, pinned=server.log_key, served_key=server.get("/v1/log/key").text,
                       salt=receipt["salt"], donor_ref=body["donor_ref"], charity_keys=keys, threshold=2)
        assert receipt["tree_size"] in made  # proven against the checkpoint signed with its own commit
        assert receipt["entry"]["entry"]["body"]["amount"] == int(body["amount"].replace(".", ""))
        seqs.add(receipt["entry"]["seq"])
    assert len(seqs) == BURST


def test_a_lone_donation_commits_alone_at_once(served):
    """No company comes: its group closes with it alone, in one commit of its own."""
    sc, instance = served
    before = commits(instance)
    got = sc.donate("5.00", "donor-alone")
    assert got.status == 201, got.body
    after = commits(instance)
    assert after[:-1] == before and after[-1] == before[-1] + 1
    assert got.json["tree_size"] == after[-1]
