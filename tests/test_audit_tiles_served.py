"""The verifiers over HTTP from real gunicorn (``luodi serve``): ``luodi audit --tiles URL`` (the routes ``/checkpoint`` and ``/tile/...``, gzip bundles
included) with ``--state``, ``luodi verify-receipt URL --tiles URL``, and the witness policy
of ``audit --url``, ``audit --tiles`` and ``verify-receipt`` against a log whose checkpoint no
witness cosigned (exit 1, one line: who cosigned, what was needed).  The first audit is the
installed command in a child process; the others run the same command in this process (click's
runner), which spares a Python start-up each.

SQLite only: the verifiers read HTTP, whichever database serves it.
"""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_e2e_gunicorn import LiveServer, luodi

from api.cli import main
from api.instance import init_instance, open_instance
from ledger.charity.demo import seed_demo
from ledger.log.cosignature import Cosigner
from ledger.log.merkle import leaf_hash

WITNESSES = [a for i in (1, 2, 3) for a in ("--witness", Cosigner.generate(f"witness.example/w{i}").verifier.to_string())]


class _Done:
    def __init__(self, result):
        self.returncode, self.stdout, self.stderr = result.exit_code, result.stdout, result.stderr


def run(*args) -> _Done:
    """The command in this process, answering like :func:`luodi`."""
    return _Done(CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False))


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    path = tmp_path_factory.mktemp("tiles-served") / "instance"
    cl = init_instance(path).charity
    try:
        seed_demo(cl, donations=250, keys_dir=path / "demo-keys")
        key = cl.ledger.verifier
        gift = leaf_hash(next(e for e in cl.ledger.export() if b'"kind":"donation"' in e)).hex()
    finally:
        cl.stores.close()
    with LiveServer(path, key) as server:
        yield server, key.to_string(), gift, path


def _one_line(done, code: int, *needles: str) -> str:
    assert done.returncode == code, done.stdout + done.stderr
    lines = [x for x in done.stderr.splitlines() if not x.startswith("followed ")]
    assert len(lines) == 1, done.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_audit_from_the_servers_tiles_and_as_a_monitor(served, tmp_path):
    server, key, _, path = served
    state = tmp_path / "state.json"
    done = luodi("audit", "--tiles", server.url, "--log-key", key, "--state", state, "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["tiles"] == server.url and r["entries"] == r["checkpoint"]["tree_size"] == 265
    assert (r["donations"], r["disbursements"], r["refunds"]) == (250, 4, 1)
    assert r["requests"] == 6 and r["state"]["from"] is None
    # the same root as the audit over the API
    api = json.loads(run("audit", "--url", server.url, "--log-key", key, "--json", "--receipts", "3").stdout)
    assert api["checkpoint"] == r["checkpoint"]
    cl = open_instance(path)
    try:
        cl.close_project("farm-livestream", "done")
    finally:
        cl.stores.close()
    again = run("audit", "--tiles", server.url, "--log-key", key, "--state", state)
    assert again.returncode == 0, again.stderr
    assert "state: advanced from tree size 265 to 266, consistency proven" in again.stdout


def test_verify_receipt_from_the_servers_tiles(served):
    server, key, gift, _ = served
    done = run("verify-receipt", f"{server.url}/v1/receipts/{gift}", "--log-key", key, "--tiles", server.url, "--json")
    assert done.returncode == 0, done.stderr
    r = json.loads(done.stdout)
    assert r["tiles"]["url"] == server.url and r["tiles"]["entries_proven"][0] == r["seq"]
    assert len(r["tiles"]["entries_proven"]) == 1 + len(r["allocations"]) >= 2
    tlog = run("verify-receipt", f"{server.url}/v1/receipts/{gift}.tlog-proof", "--log-key", key, "--tiles", server.url)
    assert tlog.returncode == 0 and f"proves seq {r['seq']} included" in tlog.stdout, tlog.stderr
    _one_line(run("verify-receipt", f"{server.url}/v1/receipts/{gift}", "--log-key", key, "--tiles",
                    server.url + "/nothing-here"), 2, "no checkpoint is served")


@pytest.mark.parametrize("command", ["audit --url", "audit --tiles", "verify-receipt"])
def test_a_checkpoint_no_witness_cosigned_fails_a_witness_policy(served, command):
    server, key, gift, _ = served
    args = {"audit --url": ["audit", "--url", server.url],
            "audit --tiles": ["audit", "--tiles", server.url],
            "verify-receipt": ["verify-receipt", f"{server.url}/v1/receipts/{gift}", "--tiles", server.url]}[command]
    line = _one_line(run(*args, "--log-key", key, *WITNESSES, "--quorum", "2"), 1,
                     "is cosigned by 0 of the policy's witnesses (none); the policy needs 2 of (witness.example/w1, "
                     "witness.example/w2, witness.example/w3)")
    assert line.startswith("audit FAILED: " if command.startswith("audit") else "receipt invalid: ")
