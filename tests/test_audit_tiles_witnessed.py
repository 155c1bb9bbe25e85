"""The verifiers against a witnessed log end to end: real ``luodi serve`` (gunicorn) gathering
cosignatures from three honest tlog-witnesses (cosigning_helpers.StandIn, over real HTTP) under a
2-of-3 policy, and ``audit --tiles``, ``verify-receipt --tiles`` and the offline
``verify-receipt`` with the donor's ``--witness`` keys and ``--quorum 2``: the log's cosigned
checkpoint passes; a receipt from a fork of the log (same key, another history, which no witness
cosigned) fails, offline for the quorum and from the honest tiles for its history.

SQLite only: the verifiers read HTTP.
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
from click.testing import CliRunner
from cosigning_helpers import StandIn, policy_text
from test_e2e_gunicorn import LiveServer, http

from api import create_app
from api.cli import main
from api.instance import init_instance, open_instance
from ledger.charity.demo import seed_demo
from ledger.log.merkle import leaf_hash

pytestmark = pytest.mark.sqlite_only("the verifiers read HTTP, whichever driver the log has")


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def _status(url: str) -> dict:
    return json.loads(http("GET", f"{url}/v1/status", timeout=5).body)


def _cosigned(url: str) -> None:
    """Wait until the log's latest checkpoint is the cosigned one it serves."""
    deadline = time.monotonic() + 30
    while (s := _status(url))["witnessing"]["cosigned_tree_size"] != s["tree_size"]:
        assert time.monotonic() < deadline, s
        time.sleep(0.1)


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory):
    root = tmp_path_factory.mktemp("witnessed-verifiers")
    instance = root / "instance"
    cl = init_instance(instance).charity
    try:
        seed_demo(cl, donations=30, keys_dir=instance / "demo-keys")
        log_key = cl.ledger.verifier
        gift = leaf_hash(next(e for e in cl.ledger.export() if b'"kind":"donation"' in e)).hex()
    finally:
        cl.stores.close()
    fork = root / "fork"
    fork.mkdir(mode=0o700)
    for f in ("luodi.sqlite", "log.key"):
        shutil.copy2(instance / f, fork / f)
    witnesses = [StandIn(f"w{i}.example", log_key) for i in (1, 2, 3)]
    try:
        (instance / "witness-policy").write_text(
            policy_text([(f"w{i}", w.vkey, w.url) for i, w in enumerate(witnesses, 1)], 2, log_key.to_string()))
        with LiveServer(instance, log_key, env={"LUODI_WITNESS_INTERVAL": "0.2", "LUODI_WITNESS_TIMEOUT": "2"}) as server:
            _cosigned(server.url)
            yield server, log_key.to_string(), gift, [a for w in witnesses for a in ("--witness", w.vkey)], fork
    finally:
        for w in witnesses:
            w.close()


def test_the_logs_cosigned_checkpoint_meets_the_donors_policy(witnessed):
    server, key, gift, keys, _ = witnessed
    done = run("audit", "--tiles", server.url, "--log-key", key, *keys, "--quorum", "2", "--json")
    assert done.exit_code == 0, done.output
    assert len(json.loads(done.stdout)["witnesses"]["cosigned"]) >= 2
    receipt = run("verify-receipt", f"{server.url}/v1/receipts/{gift}", "--log-key", key, "--tiles", server.url,
                  *keys, "--quorum", "2")
    assert receipt.exit_code == 0, receipt.output
    assert "witnesses: cosigned by" in receipt.stdout
    offline = run("verify-receipt", f"{server.url}/v1/receipts/{gift}", "--log-key", key, *keys, "--quorum", "2")
    assert offline.exit_code == 0, offline.output  # the receipt carries the cosigned checkpoint


def test_a_receipt_from_a_fork_fails_the_donors_check(witnessed, tmp_path):
    server, key, _, keys, fork = witnessed
    cl = open_instance(fork)
    try:
        project = cl.projects()[0].project
        gift = cl.record_donation(project, "8.00", "cash", payment_ref="FORK", donor_ref="forked-donor",
                                  value_date="2026-11-28", intake_key="fork-only-gift").entry.receipt
    finally:
        cl.stores.close()
    doc = create_app({"TESTING": True, "INSTANCE": str(fork)}).test_client().get(f"/v1/receipts/{gift}").get_json()
    (tmp_path / "fork.json").write_text(json.dumps(doc))
    assert run("verify-receipt", tmp_path / "fork.json", "--log-key", key).exit_code == 0  # the key alone: fooled
    quorum = run("verify-receipt", tmp_path / "fork.json", "--log-key", key, *keys, "--quorum", "2")
    assert quorum.exit_code == 1 and "cosigned by 0 of the policy's witnesses (none)" in quorum.stderr
    # the honest log grows past the fork's size, and its witnesses cosign it: the fork's gift is not in it
    honest = open_instance(server.instance)
    try:
        honest.ledger.append_batch([("note", {"text": f"honest {i}"}) for i in range(2)])
    finally:
        honest.stores.close()
    _cosigned(server.url)
    tiles = run("verify-receipt", tmp_path / "fork.json", "--log-key", key, "--tiles", server.url, *keys, "--quorum", "2")
    assert tiles.exit_code == 1, tiles.output
    assert f"tiles.inclusion: seq {doc['leaf_index']}" in tiles.stderr and "is not in the tiles' tree" in tiles.stderr
