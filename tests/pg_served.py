"""``luodi serve`` on a database named by URL, for the multi-server and fault tests.

- :func:`pg_instance` makes an instance folder (its log key) whose database is
  a PostgreSQL URL (``luodi init --database URL``, which records it in the
  folder), with an admin and an intake token, and checks that the log really
  went there (no SQLite file in the folder, the genesis entry in PostgreSQL).
- :class:`Server` is a :class:`test_e2e_gunicorn.LiveServer` that can be killed
  with SIGKILL (master and workers at once, as a crash or ``kill -9`` of the
  process group would) and started again.
- :class:`Load` sends donations, signed disbursements and refunds from several
  threads to whichever servers are up, and keeps every acknowledged entry (201)
  to check afterwards (:func:`check_acknowledged`).  Everything is loopback.
"""

from __future__ import annotations

import http.client
import json
import os
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from test_e2e_gunicorn import HOST, LiveServer, clean_env, luodi

from ledger.charity import payload as P
from ledger.charity.receipt_check import check_receipt
from ledger.log.canonical import canonical_bytes
from ledger.log.checkpoint import open_checkpoint
from ledger.log.merkle import leaf_hash, verify_inclusion
from ledger.log.note import Signer, Verifier

CHARITY = "hope-foundation"
PROJECT = "school-meals"
RETRIES = 50  # tries of one donation that meets 503s or dead servers


def pg_env(**extra: str) -> dict:
    """The environment of ``luodi`` in these tests: no rate limits (the load is the test's own)."""
    return clean_env(LUODI_RATELIMIT_ENABLED="false", **extra)


@dataclass
class PgInstance:
    path: Path
    url: str | None
    log_key: Verifier
    admin: str
    intake: str
    signers: list[Signer] = field(default_factory=list)

    @property
    def env(self) -> dict:
        return pg_env()

    def luodi(self, *args, timeout: float = 120):
        return luodi(*args, *(() if "--url" in args else ("--instance", self.path)), env=self.env, timeout=timeout)


def pg_instance(path: Path, url: str | None) -> PgInstance:
    """``luodi init --database URL`` (None: SQLite, the default) and two tokens."""
    env = pg_env()
    done = luodi("init", "--instance", path, *(() if url is None else ("--database", url)), env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    vkey = next(line.split()[1] for line in done.stdout.splitlines() if line.startswith("verifier:"))
    if url is not None:
        import psycopg

        assert not (path / "luodi.sqlite").exists(), "luodi init wrote a SQLite file: the database URL was not used"
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM entries").fetchone()[0] == 2  # genesis and policy, there
    tokens = []
    for role in ("admin", "intake"):
        made = luodi("token", "create", "--instance", path, "--role", role, env=env)
        assert made.returncode == 0, made.stderr
        tokens.append(made.stdout.strip())
    return PgInstance(path, url, Verifier.from_string(vkey), tokens[0], tokens[1])


class Server(LiveServer):
    """A ``luodi serve`` that a test may kill -9 and start again (on a new port)."""

    def kill9(self) -> None:
        """SIGKILL the server's whole process group (master and workers) at once."""
        proc = self.proc
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)
        self.proc = None

    def restart(self) -> None:
        self.start()


def request(port: int, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 30):
    """(status, headers, parsed JSON or text); raises OSError when the server is gone."""
    conn = http.client.HTTPConnection(HOST, port, timeout=timeout)
    try:
        data = None if body is None else json.dumps(body)
        conn.request(method, path, body=data, headers={"Content-Type": "application/json", **(headers or {})})
        resp = conn.getresponse()
        raw = resp.read()
        ctype = resp.getheader("Content-Type", "")
        parsed = json.loads(raw) if "json" in ctype else raw.decode("utf-8", "replace")
        return resp.status, dict(resp.getheaders()), parsed
    finally:
        conn.close()


def setup_charity(inst: PgInstance, port: int) -> None:
    """Register CHARITY (2 of 3 keys) and open PROJECT, through the API."""
    inst.signers = [Signer.generate(f"{CHARITY}/finance-{i}") for i in (1, 2, 3)]
    auth = {"Authorization": f"Bearer {inst.admin}"}
    status, _, body = request(port, "POST", "/v1/charities", {
        "charity": CHARITY, "name": "Hope Foundation", "threshold": 2,
        "keys": [s.verifier.to_string() for s in inst.signers]}, auth)
    assert status == 201, body
    status, _, body = request(port, "POST", "/v1/projects", {
        "project": PROJECT, "charity": CHARITY, "title": "School meals", "purpose": "Hot lunches",
        "currency": "CNY"}, auth)
    assert status == 201, body


@dataclass
class Acked:
    kind: str
    item: dict  # the 201 answer's entry item (seq, leaf_hash, entry)
    answer: dict  # the whole answer (a donation's receipt, with its salt)
    donor_ref: str | None = None


class Load:
    """Writes from ``threads`` clients, ``per_thread`` each, spread over the servers up.

    Mostly donations; every 8th operation a disbursement of 1.00 signed 2 of 3,
    every 8th (offset) a refund of 1.00 from the client's latest gift.  A request
    that meets a dead server (connection refused or reset, or an answer cut off
    halfway by the kill) is not acknowledged;
    a donation is then retried with the same Idempotency-Key on another server,
    which answers the first receipt (200) if it was written, or writes it (201)."""

    def __init__(self, inst: PgInstance, servers: list[Server], threads: int = 6, per_thread: int = 40):
        self.inst = inst
        self.servers = servers
        self.threads = threads
        self.per_thread = per_thread
        self.acked: list[Acked] = []
        self.statuses: dict[int | str, int] = {}
        self.retry_after: list[str] = []
        self.lock = threading.Lock()
        self.done_ops = 0
        self.progress = threading.Condition(self.lock)
        self.errors: list[str] = []

    def _count(self, status) -> None:
        with self.lock:
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def _send(self, rng: random.Random, method: str, path: str, body, headers: dict):
        """Try the servers that are up, in random order; (port, status, headers, answer) or None."""
        ports = [s.port for s in self.servers if s.proc is not None]
        rng.shuffle(ports)
        for port in ports:
            try:
                status, hdrs, answer = request(port, method, path, body, headers)
            except (OSError, http.client.HTTPException):  # refused, reset, or cut off mid-answer
                self._count("connection")
                continue
            self._count(status)
            if status == 503:
                self.retry_after.append(hdrs.get("Retry-After", ""))
            return port, status, hdrs, answer
        return None

    def _keep(self, kind: str, answer: dict, donor_ref: str | None = None) -> None:
        item = answer["entry"] if kind == "donation" else answer
        with self.lock:
            self.acked.append(Acked(kind, item, answer, donor_ref))

    def _client(self, n: int) -> None:
        rng = random.Random(n)
        intake = {"Authorization": f"Bearer {self.inst.intake}"}
        gifts: list[str] = []
        for i in range(self.per_thread):
            try:
                if i % 8 == 3:
                    self._disburse(rng, n, i)
                elif i % 8 == 6 and gifts:
                    got = self._send(rng, "POST", f"/v1/receipts/{gifts[-1]}/refunds",
                                     {"amount": "1.00", "reason": "asked back"}, intake)
                    if got and got[1] == 201:
                        self._keep("refund", got[3])
                else:
                    key, ref = f"load-{n}-{i:04d}", f"donor-{n}-{i}"
                    body = {"amount": f"{rng.randint(5, 50)}.00", "channel": "wechat", "payment_ref": f"WX-{key}",
                            "donor_ref": ref, "value_date": "2026-11-29"}
                    headers = {**intake, "Idempotency-Key": key}
                    got = self._send(rng, "POST", f"/v1/projects/{PROJECT}/donations", body, headers)
                    for _ in range(RETRIES):  # a 503 wrote nothing, nor did a server that died: again
                        if got is not None and got[1] != 503:
                            break
                        time.sleep(0.2)
                        got = self._send(rng, "POST", f"/v1/projects/{PROJECT}/donations", body, headers)
                    if got is not None and got[1] in (200, 201):
                        if got[1] == 201:
                            self._keep("donation", got[3], ref)
                        gifts.append(got[3]["entry"]["leaf_hash"])
            except Exception as exc:  # noqa: BLE001 - reported by the test
                with self.lock:
                    self.errors.append(f"client {n} op {i}: {exc!r}")
            with self.progress:
                self.done_ops += 1
                self.progress.notify_all()

    def _disburse(self, rng: random.Random, n: int, i: int) -> None:
        payload = P.disbursement(
            charity=CHARITY, project=PROJECT, currency="CNY", payee=f"Canteen {n}", purpose=f"Lunches {i}",
            period=("2026-11-01", "2026-11-30"), lines=[("rice", "1.00")], amount="1.00",
        )
        body = {"payload": payload, "signatures": [P.sign(payload, s) for s in self.inst.signers[:2]]}
        got = self._send(rng, "POST", f"/v1/projects/{PROJECT}/disbursements", body, {})
        if got and got[1] == 201:
            self._keep("disbursement", got[3])

    def run(self, during=None) -> None:
        """Run every client; ``during(load)`` runs in this thread meanwhile (a kill, say)."""
        clients = [threading.Thread(target=self._client, args=(n,), daemon=True) for n in range(self.threads)]
        for t in clients:
            t.start()
        try:
            if during is not None:
                during(self)
        finally:
            for t in clients:
                t.join(600)
        assert not any(t.is_alive() for t in clients), "the load did not finish"

    def wait_ops(self, count: int, timeout: float = 300) -> None:
        with self.progress:
            assert self.progress.wait_for(lambda: self.done_ops >= count, timeout), f"{self.done_ops} ops done"

    @property
    def total(self) -> int:
        return self.threads * self.per_thread


def check_acknowledged(load: Load, port: int) -> tuple[int, bytes]:
    """Every acknowledged entry is in the log: its bytes at its seq, its inclusion in
    the latest checkpoint (signed by the pinned key), and for a gift the whole
    receipt as a donor checks it offline.  Returns the checkpoint's (size, root)."""
    log_key = load.inst.log_key
    status, _, note = request(port, "GET", "/v1/checkpoint")
    assert status == 200
    cp = open_checkpoint(note, log_key)
    seqs = [a.item["seq"] for a in load.acked]
    assert len(set(seqs)) == len(seqs), "two acknowledged writes got one seq"
    for a in load.acked:
        item = a.item
        assert leaf_hash(canonical_bytes(item["entry"])).hex() == item["leaf_hash"]
        status, _, stored = request(port, "GET", f"/v1/entries/{item['seq']}")
        assert status == 200 and stored == item, (a.kind, item["seq"])
        status, _, proof = request(port, "GET", f"/v1/proofs/inclusion?leaf_hash={item['leaf_hash']}&tree_size={cp.size}")
        assert status == 200, proof
        verify_inclusion(bytes.fromhex(item["leaf_hash"]), item["seq"], cp.size,
                         [bytes.fromhex(h) for h in proof["audit_path"]], cp.root)
        if a.kind == "donation":
            status, _, receipt = request(port, "GET", f"/v1/receipts/{item['leaf_hash']}")
            assert status == 200, receipt
            check_receipt(receipt, log_key, salt=a.answer["salt"], donor_ref=a.donor_ref)
    return cp.size, cp.root
