"""A bounded stress test: concurrent donations, disbursements and refunds from
several client processes against real gunicorn, a ``kill -9`` of the whole
server mid-load, a restart, and then: every acknowledged write is still there
and proven, every request that got no answer resolves to exactly one entry or
none when retried with its Idempotency-Key, and ``luodi verify`` and ``luodi
audit`` pass.  Two rounds; loopback only; each client stops by itself.  On every
backend.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from stress_client import read_lines
from test_e2e_gunicorn import LiveServer, clean_env, entry_leaf, init_instance, luodi, verify_receipt

from ledger.log.keyfile import write_key_file
from ledger.log.note import Signer

CLIENT = Path(__file__).with_name("stress_client.py")
CHARITY = "stress-charity"
PROJECTS = ("stress-a", "stress-b")
ROUNDS = 2
DONORS = 3  # donor processes per round
KILL_AFTER_ACKS = 40  # acknowledged donations in a round before the kill
ROUND_SECONDS = 20.0  # each client's own budget: it stops by itself

pytestmark = pytest.mark.slow


def _start(role: str, server: LiveServer, token: str, out: Path, **opts) -> subprocess.Popen:
    args = [sys.executable, str(CLIENT), role, server.url, token, str(out), "--seconds", str(ROUND_SECONDS)]
    for k, v in opts.items():
        args += [f"--{k}", str(v)]
    return subprocess.Popen(args, env=clean_env(), stdin=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _kill_server(server: LiveServer) -> None:
    """SIGKILL the master and every worker at once: no shutdown code runs."""
    os.killpg(server.proc.pid, signal.SIGKILL)
    server.stop()


def _setup(server: LiveServer, admin: str, signer: Signer) -> None:
    auth = {"Authorization": f"Bearer {admin}"}
    got = server.post("/v1/charities", {"charity": CHARITY, "name": "Stress Charity", "threshold": 1,
                                        "keys": [signer.verifier.to_string()]}, headers=auth)
    assert got.status == 201, got.body
    for project in PROJECTS:
        got = server.post("/v1/projects", {"project": project, "charity": CHARITY, "title": project,
                                           "purpose": "stress", "currency": "CNY"}, headers=auth)
        assert got.status == 201, got.body


def _round(server: LiveServer, n: int, tokens: tuple[str, str], key_file: Path, work: Path) -> list[Path]:
    """Start the clients, wait for enough acknowledged donations, kill the server
    under them, and wait for every client to notice and stop."""
    admin, intake = tokens
    outs = [work / f"r{n}-donor{i}.jsonl" for i in range(DONORS)]
    procs = [_start("donor", server, intake, out, prefix=f"r{n}d{i}") for i, out in enumerate(outs)]
    outs.append(work / f"r{n}-charity.jsonl")
    procs.append(_start("charity", server, admin, outs[-1], keys=key_file))
    outs.append(work / f"r{n}-refunder.jsonl")
    procs.append(_start("refunder", server, intake, outs[-1], acks=outs[0]))
    try:
        deadline = time.monotonic() + ROUND_SECONDS
        while time.monotonic() < deadline:
            acked = sum(1 for out in outs[:DONORS] for line in read_lines(out) if line["kind"] == "donation")
            if acked >= KILL_AFTER_ACKS:
                break
            time.sleep(0.05)
        stopped = [(p.args[2], p.returncode, p.stderr.read().decode()) for p in procs if p.poll() is not None]
        assert not stopped, f"a client stopped before the kill: {stopped}"
        _kill_server(server)
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    return outs


def test_kill_9_under_concurrent_load_loses_no_acknowledged_write(tmp_path, backend):
    instance = tmp_path / "instance"
    log_key, admin, intake = init_instance(instance, backend.database())
    signer = Signer.generate(f"{CHARITY}/finance")
    key_file = tmp_path / "charity.key"
    write_key_file(key_file, signer)
    env = {"LUODI_RATELIMIT_ENABLED": "false"}
    records: list[dict] = []
    for n in range(ROUNDS):
        with LiveServer(instance, log_key, workers=2, threads=4, env=env) as server:
            if n == 0:
                _setup(server, admin, signer)
            for out in _round(server, n, (admin, intake), key_file, tmp_path):
                records += read_lines(out)

    kinds = Counter(r["kind"] for r in records)
    assert kinds["donation"] >= KILL_AFTER_ACKS * ROUNDS and kinds["refund"] > 0 and kinds["disbursement"] > 0, kinds
    assert kinds["unanswered"] >= 1, kinds  # the kill did land mid-load
    assert not [r for r in records if r["kind"] == "refused" and r["status"] >= 500], "a 5xx under load"

    with LiveServer(instance, log_key, workers=2, threads=4, env=env) as server:
        served_key = server.get("/v1/log/key").text
        # Every acknowledged donation: its receipt, proven against a signed checkpoint.
        for r in (r for r in records if r["kind"] == "donation"):
            got = server.get(f"/v1/receipts/{r['leaf']}")
            assert got.status == 200, (r, got.body)
            assert got.json["entry"]["seq"] == r["seq"]
            verify_receipt(got.json, pinned=log_key, served_key=served_key, salt=r["salt"], donor_ref=r["donor_ref"],
                           charity_keys=[signer.verifier.to_string()], threshold=1)
        # Every acknowledged disbursement and refund: the same entry at the same seq.
        for r in (r for r in records if r["kind"] in ("disbursement", "refund")):
            got = server.get(f"/v1/entries/{r['seq']}")
            assert got.status == 200 and entry_leaf(got.json).hex() == r["leaf"], r
        # A donation that got no answer, sent again with its key: now it is recorded exactly once.
        auth = {"Authorization": f"Bearer {intake}"}
        for r in (r for r in records if r["kind"] == "unanswered" and "key" in r):
            got = server.post(f"/v1/projects/{r['project']}/donations", r["body"],
                              headers={**auth, "Idempotency-Key": r["key"]})
            assert got.status in (200, 201), got.body
        export = server.get("/v1/export", timeout=120)
        assert export.status == 200
    entries = [json.loads(line) for line in export.body.splitlines()]
    assert [e["seq"] for e in entries] == list(range(len(entries)))
    intake_keys = Counter(e["body"]["intake_key"] for e in entries if e["kind"] == "donation")
    assert intake_keys and max(intake_keys.values()) == 1  # no retried gift was recorded twice

    done = luodi("verify", "--instance", instance, "--log-key", log_key.to_string())
    assert done.returncode == 0, done.stderr
    done = luodi("audit", "--instance", instance, "--log-key", log_key.to_string())
    assert done.returncode == 0, done.stderr
    assert f"{len(entries)} entries verified" in done.stdout
