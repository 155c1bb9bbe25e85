"""A witnessed log end to end: three real witnesses (``luodi witness serve``, gunicorn) and a
real ``luodi serve`` whose instance has a 2-of-3 witness policy.

Between the log and each witness sits a counting relay (cosigning_helpers.Relay), so
that the requests are counted on the wire and a witness can be made a black hole (it
takes the request and never answers) or refuse connections.  One scenario, in steps,
because every step builds on the witnesses' state from the one before (and the
servers are started once): the checkpoint is cosigned and served; receipts carry it;
a burst of appends makes many checkpoints but at most one submission per interval;
one witness down changes nothing for appends or the quorum; two down stop cosigning,
which the status shows, while the older cosigned checkpoint is still served; and an
operator who forks the log (same key, another history) gets no witness to cosign
the fork, so a donor's check of it fails.  SQLite only: the storage of cosigned
checkpoints is tested on both drivers in tests/test_cosigning.py.
"""

from __future__ import annotations

import math
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest
from cosigning_helpers import Relay, policy_text, wait_for
from test_e2e_gunicorn import HOST, LUODI, LiveServer, clean_env, free_port, http, init_instance, luodi

from api.instance import open_instance
from api.witness_client import HttpWitness
from ledger.charity.receipt_check import check_receipt, check_tlog_proof
from ledger.errors import QuorumNotMet, SignatureError
from ledger.log.checkpoint import open_checkpoint
from ledger.log.cosigning import Gatherer, log_policy
from ledger.log.policy import Policy
from ledger.log.witness import origin_hash

pytestmark = pytest.mark.sqlite_only("the witnesses and the gatherer are the same whatever the log's driver")

INTERVAL = 0.4  # LUODI_WITNESS_INTERVAL of the log server
TIMEOUT = 1.0  # LUODI_WITNESS_TIMEOUT
BURST = 40


class RealWitness:
    """``luodi witness serve`` (one gunicorn worker) for the log ``log_vkey``."""

    def __init__(self, folder: Path, name: str, log_vkey: str):
        folder.mkdir()
        made = luodi("witness", "keygen", "--name", name, "--out", folder / "witness.key")
        assert made.returncode == 0, made.stderr
        self.vkey = made.stdout.strip()
        self.port = free_port()
        self.out = open(folder / "serve.log", "wb")
        self.proc = subprocess.Popen(
            [LUODI, "witness", "serve", "--key", str(folder / "witness.key"), "--log", log_vkey,
             "--db", str(folder / "witness.sqlite"), "--host", HOST, "--port", str(self.port), "--workers", "1"],
            stdout=self.out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=clean_env(XDG_RUNTIME_DIR=str(folder)), start_new_session=True,
        )
        self.probe = f"{self.url}/{origin_hash(log_vkey.split('+')[0])}/checkpoint"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def ready(self) -> bool:
        assert self.proc.poll() is None, Path(self.out.name).read_text()
        try:
            return http("GET", self.probe, timeout=2).status == 404  # up, and has cosigned nothing yet
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.out.close()


@pytest.fixture(scope="module")
def witnessed(tmp_path_factory):
    """(server, relays, witnesses, policy, fork instance): the log serving with its witnesses."""
    root = tmp_path_factory.mktemp("witnessed")
    instance = root / "instance"
    log_key, admin, intake = init_instance(instance)
    fork = root / "fork"
    shutil.copytree(instance, fork)  # the same key and first entries: a fork to be
    witnesses = [RealWitness(root / f"w{i}", f"w{i}.example", log_key.to_string()) for i in (1, 2, 3)]
    relays: list[Relay] = []
    try:
        wait_for(lambda: all(w.ready() for w in witnesses), timeout=30)
        relays = [Relay(w.url) for w in witnesses]
        text = policy_text([(f"w{i}", w.vkey, r.url) for i, (w, r) in enumerate(zip(witnesses, relays), 1)], 2,
                           log_key.to_string())
        (instance / "witness-policy").write_text(text)
        env = {"LUODI_WITNESS_INTERVAL": str(INTERVAL), "LUODI_WITNESS_TIMEOUT": str(TIMEOUT)}
        with LiveServer(instance, log_key, env=env, threads=8) as server:
            server.tokens = (admin, intake)
            yield server, relays, witnesses, log_policy(text, log_key), fork
    finally:
        for r in relays:
            r.close()
        for w in witnesses:
            w.proc.terminate()  # all at once: each takes a moment to stop
        for w in witnesses:
            w.stop()


def status(server) -> dict:
    got = server.get("/v1/status")
    assert got.status == 200, got.body
    return got.json


def caught_up(server) -> dict | None:
    s = status(server)
    w = s["witnessing"]
    return s if w["cosigned_tree_size"] == s["tree_size"] and w["behind_entries"] == 0 else None


def test_a_witnessed_log_end_to_end(witnessed):
    server, relays, witnesses, policy, fork = witnessed
    admin, intake = server.tokens
    donate = _donor(server, admin, intake)
    log_key = server.log_key

    # 1. Cosigned, served, and carried by receipts.
    first = donate("100.00")
    assert "cosigned" not in first  # a 201 carries the log-signed checkpoint it committed with
    assert len(_lines(first["checkpoint"])) == 1  # only the log's signature
    s = wait_for(lambda: caught_up(server))
    assert s["witnessing"]["quorum"] == "2 of (w1, w2, w3)" and s["witnessing"]["gatherer"]["error"] is None
    note = server.get("/v1/checkpoint").text
    checkpoint, cosigned = policy.check(note, log_key)
    assert checkpoint.size == s["tree_size"] and len(cosigned) >= 2
    assert Policy.of([w.vkey for w in witnesses], 2).check(note, log_key)  # the verifiers' --witness/--quorum form
    receipt = server.get(f"/v1/receipts/{first['entry']['leaf_hash']}").json
    assert receipt["cosigned"] is True and receipt["checkpoint"] == note
    check_receipt(receipt, log_key)
    proof = server.get(f"/v1/receipts/{first['entry']['leaf_hash']}.tlog-proof").text
    assert proof.endswith(note)
    check_tlog_proof(proof, log_key)

    # 2. A burst: many checkpoints, at most one submission per interval at each witness.
    before = [r.requests for r in relays]
    began = time.monotonic()
    answers = _burst(donate, BURST)
    elapsed = time.monotonic() - began
    assert len(answers) == BURST and all(a["status"] == 201 for a in answers)
    signed = len({a["tree_size"] for a in answers})
    wait_for(lambda: caught_up(server))
    sent = [r.requests - b for r, b in zip(relays, before)]
    ticks = math.ceil((time.monotonic() - began) / INTERVAL) + 1
    assert max(sent) <= ticks, (sent, ticks)
    assert max(sent) < signed, (sent, signed, elapsed)  # most checkpoints were never sent
    assert all(_old_size(b) > 0 for r, b0 in zip(relays, before) for b in r.bodies[b0:])  # proofs from their sizes

    # 3. One witness never answers: appends go on, the quorum is met without it.
    relays[2].mode = "hole"
    donate("1.00")
    wait_for(lambda: relays[2].holding)  # the witness has taken a submission and will never answer it
    more = [donate("2.00") for _ in range(5)]
    assert all(a["status"] == 201 for a in more) and relays[2].holding  # appended while it held it
    wait_for(lambda: caught_up(server))
    s = wait_for(lambda: (x := status(server)) and _witness(x, "w3")["last_error"] and x)
    assert "no answer" in _witness(s, "w3")["last_error"] and _witness(s, "w1")["last_error"] is None
    note = server.get("/v1/checkpoint").text
    assert set(policy.check(note, log_key)[1]) == {"w1", "w2"}

    # 4. Two down: no quorum; the older cosigned checkpoint is still served and the delay shows.
    relays[1].mode = "refuse"
    served_before = server.get("/v1/checkpoint").text
    last = donate("3.00")
    s = wait_for(lambda: (x := status(server)) and x["witnessing"]["gatherer"]["witnessing_size"] == x["tree_size"]
                 and (_witness(x, "w2")["last_error"] or "") and x)
    s = status(server)
    w = s["witnessing"]
    assert w["cosigned_tree_size"] < s["tree_size"] == last["tree_size"]
    assert w["behind_entries"] == s["tree_size"] - w["cosigned_tree_size"] and w["behind_seconds"] > 0
    assert w["gatherer"]["cosigned_by"] == ["w1"]
    assert server.get("/v1/checkpoint").text == served_before
    assert open_checkpoint(served_before, log_key).size == w["cosigned_tree_size"]
    fresh = server.get(f"/v1/receipts/{last['entry']['leaf_hash']}").json
    assert fresh["cosigned"] is False and fresh["tree_size"] == s["tree_size"] and len(_lines(fresh["checkpoint"])) == 1
    with pytest.raises(QuorumNotMet):
        policy.check(fresh["checkpoint"], log_key)
    old = server.get(f"/v1/receipts/{first['entry']['leaf_hash']}").json
    assert old["cosigned"] is True and old["checkpoint"] == served_before
    # They come back: cosigning catches up.
    relays[1].mode = relays[2].mode = "pass"
    relays[2].released.set()
    wait_for(lambda: caught_up(server))

    # 5. A split view: the operator forks the log (same key, another history) and asks the
    # same witnesses to cosign the fork.  None does; a donor shown the fork fails.
    main_size = status(server)["tree_size"]
    forked = open_instance(fork)
    try:
        forked.ledger.append_batch([("note", {"text": f"another history {i}"}) for i in range(main_size + 2)])
        g = Gatherer(forked.ledger, policy, HttpWitness.of, interval=60, timeout=TIMEOUT)
        g.start_couriers()
        g.tick()
        wait_for(g.idle)
        g.stop()
        assert forked.ledger.store.cosigned_checkpoint() is None
        assert all(st.last_error.startswith("422") for st in g.states.values()), g.status()
        fork_note = forked.ledger.checkpoint()
    finally:
        forked.stores.close()
    with pytest.raises(QuorumNotMet):
        policy.check(fork_note, log_key)
    pasted = fork_note + "".join(_lines(server.get("/v1/checkpoint").text)[1:])  # the main log's cosignatures
    with pytest.raises(SignatureError):
        policy.check(pasted, log_key)
    assert status(server)["witnessing"]["cosigned_tree_size"] == main_size  # the witnesses kept to the main log


# -- helpers -------------------------------------------------------------------------------


def _donor(server, admin: str, intake: str):
    auth = {"Authorization": f"Bearer {admin}"}
    got = server.post("/v1/charities", {"charity": "hope", "name": "Hope", "keys": [_charity_key()], "threshold": 1},
                      headers=auth)
    assert got.status == 201, got.body
    got = server.post(
        "/v1/projects",
        {"project": "meals", "charity": "hope", "title": "Meals", "purpose": "Lunches", "currency": "CNY",
         "target": "1000.00", "period": {"start": "2026-09-01", "end": "2027-06-30"}},
        headers=auth,
    )
    assert got.status == 201, got.body
    counter = iter(range(1_000_000))
    lock = threading.Lock()

    def donate(amount: str) -> dict:
        with lock:
            key = f"cosign-{next(counter):06d}"
        body = {"amount": amount, "channel": "wechat", "payment_ref": f"WX-{key}", "donor_ref": "d",
                "value_date": "2026-11-29"}
        got = server.post("/v1/projects/meals/donations", body,
                          headers={"Authorization": f"Bearer {intake}", "Idempotency-Key": key})
        assert got.status == 201, got.body
        return {**got.json, "status": got.status}

    return donate


def _charity_key() -> str:
    from ledger.log.note import Signer

    return Signer.generate("hope/finance").verifier.to_string()


def _burst(donate, n: int) -> list[dict]:
    out: list[dict] = []
    threads = [threading.Thread(target=lambda: out.extend(donate("5.00") for _ in range(n // 8))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


def _lines(note: str) -> list[str]:
    return [line + "\n" for line in note.split("\n\n")[-1].splitlines()]


def _old_size(body: bytes) -> int:
    return int(body.split(b"\n", 1)[0].split()[1])


def _witness(status_: dict, name: str) -> dict:
    return next(w for w in status_["witnessing"]["witnesses"] if w["name"] == name)

